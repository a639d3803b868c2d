"""What an audit costs beyond the rater's own forward passes, and whether memory grows with clips.

Prints, in one run:
- the harness overhead ratio: wall time of a whole audit with a warm annotation cache divided by
  the time of the rater's forward passes alone, replayed on tensors of the same shapes outside
  the audit (reference regressor: resnet18, 224 px, 16 frames, the 12 sample clips, 10 edits);
- frames per second through the rater, and the cold- versus warm-cache wall time;
- peak memory (resident set, this process and its worker processes) of audits of 100 and 1,000
  clips, each in a fresh process.

    python bench/audit_speed.py [--device cpu|cuda] [--workers 1] [--memory 100,1000] [--ray ACTORS]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

EDITS = ["glasses:thin", "glasses:thick", "glasses:sunglasses", "background:plain", "background:bookshelf",
         "bookshelf:insert", "headwear:headscarf", "lighting:dim", "lighting:warm", "quality:jpeg"]
MEMORY_EDITS = ["lighting:dim", "glasses:thick", "background:plain"]


class TimedRater:
    """The reference rater, recording each call's input shape and the time spent inside it."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.trait_names, self.input, self.name = inner.trait_names, inner.input, "reference"
        self.identity = inner.identity
        self.shapes: list[tuple[int, ...]] = []
        self.seconds = 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = self.inner(x)
        if x.is_cuda:
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - start
        self.shapes.append(tuple(x.shape))
        return out


def reference_rater(device: torch.device):
    from auditkit.raters import InputSpec, TorchRater
    from auditkit.models.ocean import OceanRegressor

    torch.manual_seed(0)
    return TorchRater(OceanRegressor("resnet18"), input=InputSpec(size=(224, 224), frames=16),
                      name="reference").to(device)


def forward_only(rater, shapes: list[tuple[int, ...]], device: torch.device) -> float:
    """The same forward passes, alone: inputs already on the device, nothing else running."""
    inputs = [torch.rand(s, device=device) for s in shapes]
    rater(inputs[0])  # warm-up (cuDNN autotune, allocator), not counted
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for x in inputs:
        rater(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def overhead(device: torch.device, workers: int, ray_actors: int = 0) -> None:
    from auditkit import run_audit
    from auditkit.media.samples import sample_clips
    from auditkit.perturbations.annotate import Annotator

    clips = sample_clips()
    with tempfile.TemporaryDirectory() as tmp:
        annotator = Annotator(Path(tmp) / "annotations")
        rows = []
        for label in ("cold", "warm"):
            rater = TimedRater(reference_rater(device))
            start = time.perf_counter()
            result = run_audit(rater, clips, EDITS, device=str(device), annotator=annotator, workers=workers)
            rows.append((label, time.perf_counter() - start, rater))
        alone = forward_only(rows[-1][2].inner, rows[-1][2].shapes, device)
        if ray_actors:
            import ray

            ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
            rater = reference_rater(device)  # shipped to the actors as it is (cloudpickle)
            start = time.perf_counter()
            spread = run_audit(rater, clips, EDITS, device=str(device), annotator=annotator,
                               executor="ray", workers=ray_actors)
            ray_wall = time.perf_counter() - start
            ray.shutdown()
            same = [t.to_dict() for t in spread.tests] == [t.to_dict() for t in result.tests]
    frames = sum(s[0] * s[1] for s in rows[-1][2].shapes)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print(f"audit: {result.n_clips} clips x (original + {len(EDITS)} edits), reference regressor resnet18 "
          f"224 px 16 frames, {len(rows[-1][2].shapes)} rater calls, {frames} frames, workers={workers}")
    for label, wall, rater in rows:
        print(f"  {label:>4} annotation cache: {wall:7.2f} s wall, {rater.seconds:7.2f} s inside the rater, "
              f"{frames / wall:7.1f} frames/s")
    warm = rows[-1][1]
    print(f"  rater forward passes alone (same shapes, replayed): {alone:.2f} s = {frames / alone:.1f} frames/s")
    print(f"  harness overhead ratio (warm audit wall / forward alone): {warm / alone:.3f}")
    print(f"  cold - warm cache: {rows[0][1] - warm:.2f} s for {result.n_clips} clips "
          f"({(rows[0][1] - warm) / result.n_clips:.2f} s per clip of annotation)")
    print(f"  warm audit per clip: {warm / result.n_clips:.2f} s")
    if ray_actors:
        print(f"  Ray executor, {ray_actors} actor(s) on this machine (cluster already up): {ray_wall:.2f} s wall, "
              f"{ray_wall / result.n_clips:.2f} s per clip, tests identical to local: {same}")


def _high_water_mib() -> float:
    # VmHWM is this process's own peak; ru_maxrss would include the benchmark parent's peak,
    # which an exec'd child inherits.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _memory_child(folder: str, n: int, workers: int) -> None:
    from auditkit import run_audit

    start = time.perf_counter()
    result = run_audit("builtin:appearance", folder, MEMORY_EDITS, workers=workers, store=Path(folder) / "r.sqlite")
    wall = time.perf_counter() - start
    own = _high_water_mib()
    # Worker processes: the largest of them (ru_maxrss of a fork+exec child starts from this
    # process's peak at spawn time, so this is an upper bound).
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"clips": n, "scored": result.n_clips, "wall": wall, "rss_mb": own, "children_rss_mb": children}))


def memory(counts: list[int], workers: int) -> None:
    from auditkit.media.clips import discover
    from auditkit.media.samples import sample_clips

    sources = [s.path for s in discover(sample_clips())]
    print(f"peak memory, builtin:appearance with {', '.join(MEMORY_EDITS)} (warm cache), fresh process each:")
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            folder = Path(tmp) / f"clips{n}"
            folder.mkdir()
            for i in range(n):  # links, not copies: same bytes, distinct clips to the audit
                src = sources[i % len(sources)]
                os.link(src, folder / f"c{i:05d}{src.suffix}")
            out = subprocess.run([sys.executable, __file__, "--memory-child", str(folder), str(n), str(workers)],
                                 capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            figures.append(row)
            print(f"  {n:5d} clips: {row['scored']} scored in {row['wall']:.1f} s, peak RSS {row['rss_mb']:.0f} MiB"
                  f" (worker processes {row['children_rss_mb']:.0f} MiB)")
            shutil.rmtree(folder)
    if len(figures) > 1:
        first, last = figures[0], figures[-1]
        print(f"  growth {first['clips']} -> {last['clips']} clips: "
              f"{100 * (last['rss_mb'] / first['rss_mb'] - 1):+.1f}% (this process), "
              f"{100 * (last['children_rss_mb'] / max(first['children_rss_mb'], 1) - 1):+.1f}% (workers)")


def main() -> None:
    if sys.argv[1:2] == ["--memory-child"]:
        _memory_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=1, help="annotation worker processes (default 1)")
    parser.add_argument("--memory", default="100,1000", help="clip counts for the memory figures ('' skips)")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--ray", type=int, default=0, metavar="ACTORS",
                        help="also run the warm audit on a local Ray cluster with this many actors")
    args = parser.parse_args()
    if not args.skip_overhead:
        overhead(torch.device(args.device), args.workers, args.ray)
    if args.memory:
        memory([int(n) for n in args.memory.split(",")], args.workers)


if __name__ == "__main__":
    main()
