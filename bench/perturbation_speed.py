"""Speed of annotation and of every edit, mask stability over time, and cache reuse.

Prints, at 224 and 480 lines (16 frames per clip, sample clips scaled to that height):
- annotation frames per second with a cold cache (MediaPipe face mesh + selfie segmentation, and
  the hand model on the frames where skin near the head calls for it: the share is printed),
  and the cost of a warm-cache lookup;
- frames per second of each edit with warm annotations;
- how much the person mask changes from frame to frame (raw MediaPipe vs the smoothed mask the
  edits use), on consecutive frames of the sample clips;
- the frames annotated by a first and a second run of the same audit (the second must be 0).

    python bench/perturbation_speed.py [--clips 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from auditkit import perturbations
from auditkit import run_audit
from auditkit.media.clips import Clip, discover
from auditkit.media.samples import sample_clips
from auditkit.perturbations.annotate import Annotator


def scaled(clip: Clip, lines: int) -> Clip:
    h, w = clip.size
    width = int(round(w * lines / h / 2)) * 2
    frames = np.stack([cv2.resize(f, (width, lines), interpolation=cv2.INTER_AREA if lines < h
                                  else cv2.INTER_LINEAR) for f in clip.frames])
    return Clip.from_frames(f"{clip.id}@{lines}", frames, clip.fps)


def timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def mask_stability(clips: list[Clip], annotator: Annotator) -> tuple[float, float, float, float]:
    """Mean |Δmask| and mean IoU (mask > 0.5) of consecutive frames, raw and smoothed."""
    _, seg = annotator._models()
    raw_d, raw_iou, sm_d, sm_iou = [], [], [], []
    for clip in clips:
        raw = np.stack([seg.process(f).segmentation_mask for f in clip.frames])
        smooth = annotator.annotate(clip.frames).mask.numpy()
        for masks, d_out, iou_out in ((raw, raw_d, raw_iou), (smooth, sm_d, sm_iou)):
            d_out.append(float(np.abs(np.diff(masks, axis=0)).mean()))
            a, b = masks[:-1] > 0.5, masks[1:] > 0.5
            iou_out.append(float(((a & b).sum(axis=(1, 2)) / np.maximum((a | b).sum(axis=(1, 2)), 1)).mean()))
    return (float(np.mean(raw_d)), float(np.mean(raw_iou)), float(np.mean(sm_d)), float(np.mean(sm_iou)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=3, help="sample clips per size")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    sources = discover(sample_clips())
    base = [s.read(num_frames=16) for s in sources[:: max(1, len(sources) // args.clips)][: args.clips]]
    # Every edit an audit applies to the frames it has (the retest control decodes other frames
    # instead: its cost is decoding, in bench/audit_speed.py).
    edits = [n for family in perturbations.families() for n in perturbations.available(family)
             if perturbations.get(n).resample is None]
    print(f"CPU threads: {torch.get_num_threads()}; {len(base)} clips x 16 frames per size\n")

    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for lines in (224, 480):
            clips = [scaled(c, lines) for c in base]
            cold = Annotator(Path(tmp) / f"cold{lines}", use_cache=False)
            cold_s = sum(timed(lambda c=c: cold.annotate(c.frames), 1) for c in clips)
            warm = Annotator(Path(tmp) / f"warm{lines}")
            anns = [warm.annotate(c.frames) for c in clips]
            warm_s = sum(timed(lambda c=c: warm.annotate(c.frames), args.repeats) for c in clips)
            frames = 16 * len(clips)
            rows.append(("annotate, cold cache", lines, frames / cold_s))
            searched = cold.stats["frames_hand_searched"] / max(1, cold.stats["frames_annotated"])
            rows.append(("annotate, warm cache (lookup)", lines, frames / warm_s))
            for name in edits:
                edit = perturbations.get(name)
                pairs = [(torch.from_numpy(c.frames), a) for c, a in zip(clips, anns)]
                seconds = sum(timed(lambda f=f, a=a: edit(f, a, seed=0), args.repeats) for f, a in pairs)
                rows.append((name, lines, frames / seconds))
        print(f"{'work':34s} {'lines':>5s} {'frames/s':>10s}")
        for what, lines, fps in rows:
            print(f"{what:34s} {lines:5d} {fps:10.1f}")
        print(f"\nhand model run on {searched:.0%} of the frames annotated (cold, last size)")

        # Consecutive frames: every frame of the first 2 s of each sample clip.
        consecutive = [s.read(num_frames=30) for s in sources[:4]]
        raw_d, raw_iou, sm_d, sm_iou = mask_stability(consecutive, Annotator(Path(tmp) / "stab"))
        print("\nperson mask, consecutive frames (15 fps):")
        print(f"  raw MediaPipe:  mean |change| {raw_d:.4f}, IoU {raw_iou:.4f}")
        print(f"  smoothed mask:  mean |change| {sm_d:.4f}, IoU {sm_iou:.4f}")

        cache = Path(tmp) / "audit-cache"
        work = []
        for run in (1, 2):
            annotator = Annotator(cache)
            start = time.perf_counter()
            run_audit("builtin:constant", sources, ["glasses:thick", "background:bookshelf"],
                      annotator=annotator)
            work.append((run, annotator.stats["frames_annotated"], time.perf_counter() - start))
        print("\nsame audit twice (12 clips, glasses + background):")
        for run, annotated, seconds in work:
            print(f"  run {run}: {annotated} frames annotated, {seconds:.1f} s")


if __name__ == "__main__":
    main()
