"""Preview sheets: every edit of a family on every clip, one image per family, so a reviewer can
judge the counterfactuals before trusting an audit built on them. Rows are clips (the original
first, then each edit's middle frame, exactly as an audit with the same seed edits it); an edit
that does not apply to a clip shows its reason in place of the frame.

``examples/make_previews.py`` renders the README's sheets with it, ``auditkit perturb --sheet``
a user's own clips.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from auditkit.core.work import apply_edit
from auditkit.media.clips import Clip
from auditkit.perturbations import DEFAULT_MAX_MISSING_FACE, Perturbation
from auditkit.perturbations.annotate import Annotator

TILE_HEIGHT = 150
GAP = 4
LABEL = 18
MAX_WIDTH = 1900   # rows of clips wrap into side-by-side blocks up to this width


def _label(width: int, text: str, *, dark: bool = False) -> np.ndarray:
    import cv2

    bar = np.full((LABEL, width, 3), 40 if dark else 255, np.uint8)
    cv2.putText(bar, text[: max(4, width // 7)], (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (235, 235, 235) if dark else (20, 20, 20), 1, cv2.LINE_AA)
    return bar


def _tile(frame: np.ndarray, height: int) -> np.ndarray:
    import cv2

    w = max(1, int(round(frame.shape[1] * height / frame.shape[0])))
    return cv2.resize(frame, (w, height), interpolation=cv2.INTER_AREA)


def _reason(width: int, height: int, text: str) -> np.ndarray:
    import cv2

    tile = np.full((height, width, 3), 225, np.uint8)
    words, line, y = text.split(), "", 16
    for word in words + [""]:
        if word and len(line) + len(word) + 1 <= max(8, width // 7):
            line = f"{line} {word}".strip()
            continue
        cv2.putText(tile, line, (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (60, 60, 60), 1, cv2.LINE_AA)
        line, y = word, y + 15
        if y > height - 4:
            break
    return tile


def clip_row(clip: Clip, edits: Sequence[Perturbation], annotations, *, seed: int,
             height: int = TILE_HEIGHT, max_missing_face: float = DEFAULT_MAX_MISSING_FACE) -> list[np.ndarray]:
    """The tiles of one clip: the original middle frame, then each edit's (or why it does not
    apply), each with its label above."""
    frames = torch.from_numpy(clip.frames)
    middle = clip.num_frames // 2
    original = _tile(clip.frames[middle], height)
    tiles = [np.concatenate([_label(original.shape[1], clip.id, dark=True), original])]
    for edit in edits:
        edited = apply_edit(edit, clip, frames, annotations, seed, max_missing_face)
        body = (_reason(original.shape[1], height, edited) if isinstance(edited, str)
                else _tile(edited[middle].cpu().numpy(), height))
        tiles.append(np.concatenate([_label(body.shape[1], edit.name), body]))
    return tiles


def layout(rows: list[list[np.ndarray]], max_width: int = MAX_WIDTH) -> np.ndarray:
    """Rows of tiles into one image: each row left to right, rows top to bottom, and when a row
    is narrow, several rows side by side up to ``max_width``."""
    def hcat(tiles: list[np.ndarray]) -> np.ndarray:
        h = max(t.shape[0] for t in tiles)
        parts = []
        for t in tiles:
            parts += [np.pad(t, ((0, h - t.shape[0]), (0, 0), (0, 0)), constant_values=255),
                      np.full((h, GAP, 3), 255, np.uint8)]
        return np.concatenate(parts[:-1], axis=1)

    strips = [hcat(r) for r in rows]
    row_w = max(s.shape[1] for s in strips)
    per_line = max(1, (max_width + 3 * GAP) // (row_w + 3 * GAP))
    blocks = []
    for i in range(0, len(strips), per_line):
        group = [np.pad(s, ((0, 0), (0, row_w - s.shape[1]), (0, 0)), constant_values=255)
                 for s in strips[i:i + per_line]]
        while len(group) < per_line and i:
            group.append(np.full_like(group[0], 255))
        parts = []
        for g in group:
            parts += [g, np.full((g.shape[0], 3 * GAP, 3), 255, np.uint8)]
        blocks.append(np.concatenate(parts[:-1], axis=1))
    width = max(b.shape[1] for b in blocks)
    lines = []
    for b in blocks:
        lines += [np.pad(b, ((0, 0), (0, width - b.shape[1]), (0, 0)), constant_values=255),
                  np.full((GAP, width, 3), 255, np.uint8)]
    return np.concatenate(lines[:-1], axis=0)


def family_sheets(clips: Sequence[Clip], edits: Sequence[Perturbation], *, seed: int = 0,
                  annotator: Annotator | None = None, height: int = TILE_HEIGHT,
                  max_missing_face: float = DEFAULT_MAX_MISSING_FACE) -> dict[str, np.ndarray]:
    """One sheet (RGB uint8) per family of ``edits``: a row per clip. Clips are annotated once
    (from the annotator's cache when it has them)."""
    families: dict[str, list[Perturbation]] = {}
    for e in edits:
        families.setdefault(e.family, []).append(e)
    annotator = annotator or Annotator()
    rows: dict[str, list[list[np.ndarray]]] = {f: [] for f in families}
    for clip in clips:
        annotations = annotator.annotate_clip(clip) if any(e.requires for e in edits) else None
        for family, members in families.items():
            rows[family].append(clip_row(clip, members, annotations, seed=seed, height=height,
                                         max_missing_face=max_missing_face))
    return {family: layout(r) for family, r in rows.items()}


def timeline_sheet(clips: Sequence[Clip], edits: Sequence[Perturbation], *, seed: int = 0,
                   annotator: Annotator | None = None, height: int = TILE_HEIGHT, columns: int = 6,
                   max_missing_face: float = DEFAULT_MAX_MISSING_FACE) -> np.ndarray:
    """One sheet across time: for each clip, a row for the original and one per edit, each
    ``columns`` frames spread over the clip — what an edit does at a cut, a fade or where the
    person leaves, which a middle frame cannot show."""
    from auditkit.media.clips import sample_indices

    annotator = annotator or Annotator()
    rows: list[list[np.ndarray]] = []
    for clip in clips:
        annotations = annotator.annotate_clip(clip) if any(e.requires for e in edits) else None
        frames = torch.from_numpy(clip.frames)
        picks = sample_indices(clip.num_frames, columns).tolist()
        versions: list[tuple[str, np.ndarray | str]] = [(clip.id, clip.frames)]
        for edit in edits:
            edited = apply_edit(edit, clip, frames, annotations, seed, max_missing_face)
            versions.append((edit.name, edited if isinstance(edited, str) else edited.cpu().numpy()))
        for name, pixels in versions:
            tiles = []
            for k, i in enumerate(picks):
                body = (_reason(_tile(clip.frames[i], height).shape[1], height, pixels) if isinstance(pixels, str)
                        else _tile(pixels[i], height))
                text = name if k == 0 else f"{clip.times[i]:.2f} s"
                tiles.append(np.concatenate([_label(body.shape[1], text, dark=pixels is clip.frames), body]))
            rows.append(tiles)
    return layout(rows, max_width=0)  # one row under the other


def write_sheet(path: str | os.PathLike, sheet: np.ndarray, quality: int = 80) -> Path:
    """A sheet as a JPEG (written to a temporary name and renamed: a reader never sees half)."""
    import cv2

    path = Path(path)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"{path}: OpenCV could not encode the sheet")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.tobytes())
    os.replace(tmp, path)
    return path
