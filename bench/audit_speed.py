"""What an audit costs beyond the rater's own forward passes, and whether memory grows with clips.

Prints, in one run:
- the harness overhead ratio: wall time of a whole audit with a warm annotation cache divided by
  the time of the rater's forward passes alone, on tensors of the same shapes (reference
  regressor: resnet18, 224 px, 16 frames, the 12 sample clips, 10 edits) — paired (each call
  replayed alone right after it, in the same minutes, the replays taken off the audit's time:
  the figure to quote on a machine whose speed drifts) and replayed after the audit — and where
  the warm audit's time goes (decode, annotation, edits, rater inputs, rater);
- frames per second through the rater, and the cold- versus warm-cache wall time;
- the long-clip row: the same twelve people as two-minute 720p clips at 30 fps (written once
  into $AUDITKIT_CACHE, minutes the first time): decode time per clip and the overhead ratio on
  them against the short clips';
- peak memory (resident set, this process and its worker processes) of audits of 100 and 1,000
  clips, each in a fresh process.

    python bench/audit_speed.py [--device cpu|cuda] [--workers 1] [--memory 100,1000] [--ray ACTORS]
                                [--long 12] [--long-seconds 120]
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
    """The reference rater, recording each call's input shape and the time spent inside it.

    With ``replay``, every call is run a second time right after, alone, on random inputs of the
    same shape: the forward passes alone, measured in the same minutes as the audit itself (on a
    shared machine whose speed drifts by tens of percent from one minute to the next, a replay
    after the audit compares two different machines). The audit's own time is then its wall
    time less the replays'."""

    def __init__(self, inner, replay: bool = False) -> None:
        self.inner = inner
        self.trait_names, self.input, self.name = inner.trait_names, inner.input, "reference"
        self.identity = inner.identity
        self.shapes: list[tuple[int, ...]] = []
        self.seconds = 0.0
        self.replay = replay
        self.replayed = 0.0          # the replayed forward passes
        self.replay_wall = 0.0       # the replays with their inputs: to take off the audit's wall
        self.replay_cpu = 0.0

    def _sync(self, x: torch.Tensor) -> None:
        if x.is_cuda:
            torch.cuda.synchronize()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = self.inner(x)
        self._sync(x)
        self.seconds += time.perf_counter() - start
        self.shapes.append(tuple(x.shape))
        if self.replay:
            cpu, begin = _cpu_seconds(), time.perf_counter()
            twin = torch.rand_like(x)
            self._sync(x)
            start = time.perf_counter()
            self.inner(twin)
            self._sync(x)
            self.replayed += time.perf_counter() - start
            self.replay_wall += time.perf_counter() - begin
            self.replay_cpu += _cpu_seconds() - cpu
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


class TimedExecutor:
    """The local executor, asking every batch to time its stages and adding them up."""

    def __init__(self, workers: int) -> None:
        from auditkit.core.executors import LocalExecutor

        self.inner = LocalExecutor(workers=workers)
        self.seconds: dict[str, float] = {}

    def run(self, job, batches):
        from dataclasses import replace

        for outcome in self.inner.run(replace(job, timing=True), batches):
            for stage, value in outcome.seconds.items():
                self.seconds[stage] = self.seconds.get(stage, 0.0) + value
            yield outcome


STAGES = ("decode", "annotate", "edits", "input", "rater")


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the audit's worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def audit_overhead(clips, device: torch.device, workers: int, *, cold: bool = True) -> dict:
    """A cold and a warm audit of ``clips`` (a folder) and the rater's forward passes alone.

    ``cold=False`` fills the annotation cache by annotating the clips directly instead of by a
    whole cold audit. On the CPU the warm audit itself times its stages (reading a clock costs
    nothing); on CUDA timing synchronises the device at every stage, which would slow the audit
    it measures, so a third, timed audit gives the breakdown there. Wall and CPU time are both
    kept: on a machine shared with other work the CPU-time ratio is the steadier of the two."""
    from auditkit import run_audit
    from auditkit.media.clips import DEFAULT_MAX_SIDE
    from auditkit.media.clips import discover
    from auditkit.perturbations.annotate import Annotator

    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        annotator = Annotator(Path(tmp) / "annotations")
        if not cold:
            start = time.perf_counter()
            for source in discover(clips):
                annotator.annotate_clip(source.read(16, DEFAULT_MAX_SIDE))
            figures["warm_up"] = time.perf_counter() - start
        for label in ("cold", "warm") if cold else ("warm",):
            rater = TimedRater(reference_rater(device), replay=label == "warm")
            timed = TimedExecutor(workers) if (label == "warm" and device.type == "cpu") else None
            cpu, start = _cpu_seconds(), time.perf_counter()
            result = run_audit(rater, clips, EDITS, device=str(device), annotator=annotator, workers=workers,
                               executor=timed or "local")
            figures[label] = time.perf_counter() - start
            figures[f"{label}_cpu"] = _cpu_seconds() - cpu
            figures[f"{label}_rater"] = rater.seconds
            if rater.replay:
                figures["paired_alone"] = rater.replayed
                figures["paired_ratio"] = (figures[label] - rater.replay_wall) / rater.replayed
                figures["paired_cpu_ratio"] = (figures[f"{label}_cpu"] - rater.replay_cpu) / rater.replay_cpu
                figures[label] -= rater.replay_wall
                figures[f"{label}_cpu"] -= rater.replay_cpu
            if timed is not None:
                figures["stages"] = dict(timed.seconds)
                figures["stages"]["rater"] = figures["stages"].get("rater", 0.0) - rater.replay_wall
        if device.type != "cpu":
            timed = TimedExecutor(workers)
            start = time.perf_counter()
            run_audit(reference_rater(device), clips, EDITS, device=str(device), annotator=annotator,
                      workers=workers, executor=timed)
            figures["timed_wall"] = time.perf_counter() - start
            figures["stages"] = timed.seconds
    cpu = _cpu_seconds()
    figures["alone"] = forward_only(rater.inner, rater.shapes, device)
    figures["alone_cpu"] = _cpu_seconds() - cpu
    figures["calls"] = len(rater.shapes)
    figures["frames"] = sum(s[0] * s[1] for s in rater.shapes)
    figures["result"] = result
    figures["ratio"] = figures["warm"] / figures["alone"]
    figures["cpu_ratio"] = figures["warm_cpu"] / figures["alone_cpu"]
    return figures


def print_stages(figures: dict, indent: str = "  ") -> None:
    stages = figures.get("stages", {})
    wall = figures.get("timed_wall", figures["warm"])
    parts = ", ".join(f"{name} {stages.get(name, 0.0):.2f} s" for name in STAGES)
    print(f"{indent}where the time goes (timed audit, {wall:.2f} s wall; decode and annotation summed over the "
          f"processes that did them, overlapped with the rater when --workers > 0): {parts}")


def overhead(device: torch.device, workers: int, ray_actors: int = 0) -> dict:
    from auditkit import run_audit
    from auditkit.media.samples import sample_clips

    clips = sample_clips()
    figures = audit_overhead(clips, device, workers)
    result, alone, frames = figures["result"], figures["alone"], figures["frames"]
    if ray_actors:
        import ray

        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        rater = reference_rater(device)  # shipped to the actors as it is (cloudpickle)
        start = time.perf_counter()
        spread = run_audit(rater, clips, EDITS, device=str(device), executor="ray", workers=ray_actors)
        ray_wall = time.perf_counter() - start
        ray.shutdown()
        same = [t.to_dict() for t in spread.tests] == [t.to_dict() for t in result.tests]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print(f"audit: {result.n_clips} clips x (original + {len(EDITS)} edits), reference regressor resnet18 "
          f"224 px 16 frames, {figures['calls']} rater calls, {frames} frames, workers={workers}")
    for label in ("cold", "warm"):
        wall = figures[label]
        print(f"  {label:>4} annotation cache: {wall:7.2f} s wall, {figures[label + '_rater']:7.2f} s inside the "
              f"rater, {frames / wall:7.1f} frames/s")
    warm = figures["warm"]
    print(f"  rater forward passes alone (same shapes, replayed): {alone:.2f} s = {frames / alone:.1f} frames/s")
    print(f"  harness overhead ratio, paired (each rater call of the warm audit replayed alone right after "
          f"it, the replays taken off its wall time): {figures['paired_ratio']:.3f} wall, "
          f"{figures['paired_cpu_ratio']:.3f} CPU time ({figures['paired_alone']:.2f} s of forward passes alone)")
    print(f"  harness overhead ratio (warm audit wall / forward alone replayed after it): {warm / alone:.3f}")
    print(f"  CPU-time ratio (warm audit, this process and its workers / forward alone): {figures['cpu_ratio']:.3f} "
          f"({figures['warm_cpu']:.1f} / {figures['alone_cpu']:.1f} CPU s; steadier than wall time on a busy machine)")
    print(f"  cold - warm cache: {figures['cold'] - warm:.2f} s for {result.n_clips} clips "
          f"({(figures['cold'] - warm) / result.n_clips:.2f} s per clip of annotation)")
    print(f"  warm audit per clip: {warm / result.n_clips:.2f} s")
    print_stages(figures)
    if ray_actors:
        # The Ray run has its own annotation cache (the user cache): the first Ray run pays for it.
        print(f"  Ray executor, {ray_actors} actor(s) on this machine (cluster already up): {ray_wall:.2f} s wall, "
              f"{ray_wall / result.n_clips:.2f} s per clip, tests identical to local: {same}")
    return figures


def _linked(sources, folder: Path) -> Path:
    folder.mkdir()
    for source in sources:  # links, not copies
        os.link(source.path, folder / source.path.name)
    return folder


def long_clips(device: torch.device, workers: int, count: int, seconds: float, short: dict | None) -> dict:
    """Decode time per long clip, and the overhead ratio on long clips against short ones.

    Two short references: the sample clips (smaller frames, so cheaper edits) and the same
    people as 2-second clips at the long clips' size, which differ from the long ones in
    duration alone."""
    import cv2

    from auditkit.media.clips import decode_sampled, discover, read_video
    from auditkit.media.samples import long_sample_clips

    start = time.perf_counter()

    def progress(done, total, clip_id):
        print(f"  writing clips: {done}/{total} {clip_id} ({time.perf_counter() - start:.0f} s)", flush=True)

    procs = min(count, os.cpu_count() or 1)
    sources = discover(long_sample_clips(seconds=seconds, workers=procs, progress=progress))[:count]
    brief = discover(long_sample_clips(seconds=2, workers=procs, progress=progress))[:count]
    first = cv2.VideoCapture(str(sources[0].path))
    width, height = first.get(cv2.CAP_PROP_FRAME_WIDTH), first.get(cv2.CAP_PROP_FRAME_HEIGHT)
    fps, reported = first.get(cv2.CAP_PROP_FPS), int(first.get(cv2.CAP_PROP_FRAME_COUNT))
    first.release()
    print(f"long clips: {len(sources)} x {seconds:g} s, {width:.0f}x{height:.0f} at {fps:g} fps "
          f"({reported} frames each), {sum(s.path.stat().st_size for s in sources) / 2**20:.0f} MiB")
    # The old read: one grab() pass to count, then grab() again up to the last sampled frame.
    t, cpu = time.perf_counter(), time.process_time()
    cap = cv2.VideoCapture(str(sources[0].path))
    while cap.grab():
        pass
    cap.release()
    one_pass, one_pass_cpu = time.perf_counter() - t, time.process_time() - cpu
    decode, decode_cpu, reports = [], [], []
    for source in sources:
        t, cpu = time.perf_counter(), time.process_time()
        read_video(source.path)
        decode.append(time.perf_counter() - t)
        decode_cpu.append(time.process_time() - cpu)
        reports.append(decode_sampled(source.path).report)
    modes = sorted({r.mode for r in reports})
    print(f"  decode, 16 frames per clip (read_video, file hash included): mean {sum(decode) / len(decode):.2f} s, "
          f"max {max(decode):.2f} s wall per clip (CPU {sum(decode_cpu) / len(decode_cpu):.2f} s, "
          f"max {max(decode_cpu):.2f} s); mode {', '.join(modes)}, {reports[0].grabs} grabs and "
          f"{reports[0].seeks} seeks per clip")
    print(f"  one grab() pass over a whole clip (the old read made two): {one_pass:.2f} s wall, "
          f"{one_pass_cpu:.2f} s CPU")
    with tempfile.TemporaryDirectory() as tmp:
        # The annotation cache is filled by annotating, not by a cold audit: these rows are about
        # the warm audit, and a cold one would double their time.
        figures = audit_overhead(_linked(sources, Path(tmp) / "long"), device, workers, cold=False)
        same_size = audit_overhead(_linked(brief, Path(tmp) / "brief"), device, workers, cold=False)
    for label, f in ((f"{seconds:g} s clips", figures), ("2 s clips, same size", same_size)):
        print(f"  audit of {f['result'].n_clips} {label} x (original + {len(EDITS)} edits), {f['frames']} frames: "
              f"warm {f['warm']:.2f} s wall, forward alone {f['alone']:.2f} s: overhead ratio {f['ratio']:.3f}, "
              f"CPU-time ratio {f['cpu_ratio']:.3f} (cache filled in {f['warm_up']:.1f} s)")
        print_stages(f, indent="    ")
    print(f"  harness overhead ratio on {seconds:g} s clips: {figures['ratio']:.3f}; on 2 s clips of the same size "
          f"{same_size['ratio']:.3f} (duration adds {figures['ratio'] - same_size['ratio']:+.3f})"
          + (f"; on the sample clips {short['ratio']:.3f} ({figures['ratio'] - short['ratio']:+.3f}: their frames are "
             f"smaller, so their edits cost less)" if short else ""))
    print(f"  CPU-time ratio on {seconds:g} s clips: {figures['cpu_ratio']:.3f}; on 2 s clips of the same size "
          f"{same_size['cpu_ratio']:.3f} (duration adds {figures['cpu_ratio'] - same_size['cpu_ratio']:+.3f})")
    print(f"  warm audit per long clip: {figures['warm'] / figures['result'].n_clips:.2f} s")
    figures["decode"] = decode
    figures["same_size"] = same_size
    return figures


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
    parser.add_argument("--long", type=int, default=12, metavar="CLIPS",
                        help="long clips for the long-clip row (0 skips it; at most 12)")
    parser.add_argument("--long-seconds", type=float, default=120, help="duration of each long clip")
    args = parser.parse_args()
    if not 0 <= args.long <= 12:
        parser.error(f"--long takes 0 to 12 clips, got {args.long}")
    short = None
    if not args.skip_overhead:
        short = overhead(torch.device(args.device), args.workers, args.ray)
    if args.long:
        long_clips(torch.device(args.device), args.workers, args.long, args.long_seconds, short)
    if args.memory:
        memory([int(n) for n in args.memory.split(",")], args.workers)


if __name__ == "__main__":
    main()
