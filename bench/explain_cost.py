"""What ``explain`` costs against the audit itself: same rater, the 12 sample clips, warm cache.

Prints wall seconds of:
- the audit: ``run_audit`` with the 10 edits of ``bench/audit_speed.py``;
- the region family audited (4 edits) and its attribution read from those scores (no rater call);
- ``explain`` with its default options (8 clips, 16 Integrated Gradients steps, every trait), by
  Integrated Gradients and by ablation, each as a ratio to the audit and per clip;
and the attribution of two traits, so a run shows what the time bought.

The rater is the reference regressor (resnet18, random weights: the cost, not the answer, is
measured here) at its own defaults, 112 px and 8 frames; ``--size``/``--frames`` change that.
Annotations are computed once before anything is timed.

    python bench/explain_cost.py [--size 112] [--frames 8] [--steps 16] [--clips 8] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from auditkit import run_audit
from auditkit.core.explain import (DEFAULT_CLIPS, DEFAULT_STEPS, ExplainSettings, explain, from_scores,
                                   scores_from_store)
from auditkit.core.store import Store
from auditkit.media.clips import discover
from auditkit.media.samples import sample_clips
from auditkit.models.ocean import OceanRegressor
from auditkit.perturbations.annotate import Annotator
from auditkit.raters import InputSpec, TorchRater

EDITS = ["glasses:thin", "glasses:thick", "glasses:sunglasses", "background:plain", "background:bookshelf",
         "bookshelf:insert", "headwear:headscarf", "lighting:dim", "lighting:warm", "quality:jpeg"]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--clips", type=int, default=DEFAULT_CLIPS)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = OceanRegressor("resnet18", size=args.size, frames=args.frames)
    rater = TorchRater(model, input=InputSpec(size=(args.size, args.size), frames=args.frames),
                       name="reference").to(args.device)
    folder = sample_clips()
    annotator = Annotator()
    clips = [s.read(args.frames) for s in discover(folder)]
    for clip in clips:
        annotator.annotate_clip(clip)  # warm: neither side pays for MediaPipe
    print(f"rater: resnet18 {args.size}px x {args.frames} frames on {args.device}, "
          f"{torch.get_num_threads()} threads; {len(clips)} sample clips")

    _, audit_s = timed(lambda: run_audit(rater, folder, EDITS, annotator=annotator, device=args.device,
                                         thumbs=False))
    print(f"audit, {len(EDITS)} edits:                      {audit_s:7.1f} s  ({audit_s / len(clips):.2f} s/clip)")

    with Store(":memory:") as store:
        result, region_s = timed(lambda: run_audit(rater, clips, ["region"], annotator=annotator,
                                                   device=args.device, store=store, thumbs=False))
        _, read_s = timed(lambda: from_scores(scores_from_store(store), clips, annotator, result.traits))
    print(f"audit, region family (4 edits):            {region_s:7.1f} s  ({region_s / audit_s:.2f} x the audit)")
    print(f"  attribution from its scores:             {read_s:7.1f} s  (no rater call)")

    n = min(args.clips, len(clips))
    found = {}
    for method in ("integrated_gradients", "ablation"):
        settings = ExplainSettings(method, args.clips, steps=args.steps)
        found[method], seconds = timed(lambda: explain(rater, folder, settings, annotator=annotator))
        label = f"explain, {method} ({n} clips" + (f", {args.steps} steps)" if method != "ablation" else ")")
        print(f"{label + ':':43s}{seconds:7.1f} s  ({seconds / audit_s:.2f} x the audit, {seconds / n:.2f} s/clip)")

    for method, attribution in found.items():
        data = attribution.to_dict()["traits"]
        for trait in ("conscientiousness", "extraversion"):
            parts = ", ".join(f"{r} {s.share:.2f} (density {s.density:.2f})"
                              for r, s in attribution.summary(trait).items())
            gap = data[trait].get("completeness_gap")
            print(f"  {method:21s} {trait:18s} {parts}" + ("" if gap is None else f"; completeness gap {gap:.3f}"))


if __name__ == "__main__":
    main()
