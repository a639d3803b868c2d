"""Render the README's preview sheets: every edit of each family on two sample clips.

    python examples/make_previews.py [--out examples/previews]

One sheet per family; rows are clips, the first column the original, then one column per edit
(the middle sampled frame, exactly as an audit with seed 0 edits it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from auditkit import perturbations
from auditkit.media.clips import discover
from auditkit.core.engine import preview
from auditkit.media.samples import sample_clips
from auditkit.perturbations.annotate import Annotator

CLIPS = ("collins_07_medium", "hopper_04_wide")
HEIGHT = 180


def label(image: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((22, image.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (20, 20, 20), 1, cv2.LINE_AA)
    return np.concatenate([bar, image])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "previews"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sources = {s.id: s for s in discover(sample_clips())}
    clips = [sources[c].read(num_frames=8) for c in CLIPS]
    annotator = Annotator()
    for family in perturbations.families():
        names = perturbations.available(family)
        edits = [perturbations.get(n) for n in names]
        rows = []
        for clip in clips:
            shown = preview(clip, edits, seed=0, annotator=annotator)
            w = shown[names[0]].shape[1]
            original = shown[names[0]][:, : (w - 4) // 2]
            tiles = [label(original, "original")]
            tiles += [label(shown[n][:, (w + 4) // 2:], n) for n in names if n in shown]
            scale = HEIGHT / tiles[0].shape[0]
            tiles = [cv2.resize(t, (int(t.shape[1] * scale), HEIGHT), interpolation=cv2.INTER_AREA)
                     for t in tiles]
            gap = np.full((HEIGHT, 4, 3), 255, np.uint8)
            rows.append(np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1))
        width = max(r.shape[1] for r in rows)
        sheet = np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)),
                                       constant_values=255) for r in rows])
        path = out / f"{family}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 82])
        print(f"wrote {path} ({', '.join(names)})")


if __name__ == "__main__":
    main()
