"""Render the README's preview sheets: every edit of each family on every sample clip and on the
clips of other framings, light and skin tones (``auditkit.media.variants``), one sheet a family.

    python examples/make_previews.py [--out examples/previews] [--frames 8]

Rows are clips: the original middle frame, then each edit's, exactly as an audit with seed 0
edits it (``auditkit perturb --sheet`` does the same for your own clips); for the edits of the
sound, the spectrogram of each person's answer and of each edit's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from auditkit import perturbations
from auditkit.app.sheets import family_sheets, timeline_sheet, write_sheet
from auditkit.media.clips import discover
from auditkit.media.samples import sample_clips
from auditkit.media.variants import variant_clips
from auditkit.perturbations.annotate import Annotator

HEIGHT = 104      # tile height: the sheets stay readable and about 300 KB as JPEGs
# The clips that are not one shot of a face, and the edits to watch across their time.
STORIES = ("hopper_title_cut", "collins_fade_out", "collins_leaves")
ACROSS_TIME = ("background:office", "background:plain", "bookshelf:insert", "glasses:thick", "headwear:headscarf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "previews"))
    parser.add_argument("--frames", type=int, default=8, help="frames sampled per clip (default 8)")
    parser.add_argument("--family", action="append", help="only these families (default: all)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sources = discover(sample_clips()) + discover(variant_clips())
    clips = [s.read(num_frames=args.frames) for s in sources]
    # The counterfactual edits: not the retest control (the same clip a moment later) nor the
    # region ablations (grey fills that say where the rater looks, not edits to believe).
    families = args.family or [f for f in perturbations.families() if f not in ("control", "region")]
    edits = [perturbations.get(n) for f in families for n in perturbations.available(f)]
    seen = [e for e in edits if not perturbations.edits_sound(e)]
    heard = [e for e in edits if perturbations.edits_sound(e)]
    sheets = family_sheets(clips, seen, seed=0, annotator=Annotator(), height=HEIGHT) if seen else {}
    # Every clip of a person speaks the same answer in the same voice: the sound's sheets show
    # one clip a person (the framings and light of the others are nothing the ears hear).
    voices = list({c.metadata.get("subject_id", c.id): c for c in clips[:len(discover(sample_clips()))]}.values())
    if heard:
        sheets.update(family_sheets(voices, heard, seed=0, height=HEIGHT))
    for family, sheet in sheets.items():
        path = write_sheet(out / f"{family}.jpg", sheet, quality=72)
        print(f"wrote {path} ({sheet.shape[1]}x{sheet.shape[0]}, {path.stat().st_size // 1024} KB): "
              f"{', '.join(perturbations.available(family))}")
    if args.family:
        return
    stories = [s.read(num_frames=16) for s in discover(variant_clips()) if s.id in STORIES]
    sheet = timeline_sheet(stories, [perturbations.get(n) for n in ACROSS_TIME], seed=0, annotator=Annotator(),
                           height=HEIGHT - 20)
    path = write_sheet(out / "shots.jpg", sheet, quality=72)
    print(f"wrote {path} ({sheet.shape[1]}x{sheet.shape[0]}, {path.stat().st_size // 1024} KB): "
          f"{', '.join(ACROSS_TIME)} across a cut, a fade and a pan away, six frames each")


if __name__ == "__main__":
    main()
