"""The checks that need a CUDA device, in one command (sized to finish within 8 minutes on one GPU).

1. The CUDA tests: every edit on CUDA against the CPU (tests/test_perturbations.py,
   tests/test_quality.py: the tests skipped elsewhere with "needs a CUDA device").
2. The harness overhead ratio on the GPU (warm audit wall / the rater's forward passes alone) on
   the 12 short sample clips, on 12 two-minute 720p clips and on the same people as 2-second 720p
   clips (both written into $AUDITKIT_CACHE first, one process per clip), with where the time
   goes: decode, annotation, edits, rater inputs, rater calls.

    python bench/gpu_check.py [--workers 4] [--long 12] [--long-seconds 120] [--skip-tests]

On a machine without CUDA it prints one line and exits 0. Exit status 1 when a CUDA test fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
CUDA_TESTS = ["tests/test_perturbations.py", "tests/test_quality.py"]
CUDA_SELECT = "cuda or nvjpeg"


def cuda_tests(timeout: float, expect_skips: bool = False) -> int:
    """Run the CUDA tests; any of them skipped on a machine that has CUDA is a failure too."""
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *CUDA_TESTS, "-k", CUDA_SELECT]
    print("$ " + " ".join(command[2:]), flush=True)
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"gpu_check: the CUDA tests ran past {timeout:.0f} s")
        return 1
    lines = done.stdout.strip().splitlines()
    for line in lines:
        if line.startswith(("FAILED", "ERROR", "SKIPPED")):
            print("  " + line)
    print("  " + (lines[-1] if lines else "(pytest printed nothing)"))
    if done.returncode != 0:
        print(done.stdout[-4000:] + done.stderr[-2000:])
        return 1
    if any(line.startswith("SKIPPED") for line in lines) and not expect_skips:
        print("gpu_check: CUDA tests were skipped on a machine with CUDA")
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda",
                        help="cuda (default); cpu runs the same steps on the CPU, to check this script")
    parser.add_argument("--workers", type=int, default=4,
                        help="processes that decode and annotate ahead of the GPU (default 4)")
    parser.add_argument("--long", type=int, default=12, metavar="CLIPS", help="long clips (0 skips them)")
    parser.add_argument("--long-seconds", type=float, default=120)
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: skipped (no CUDA device)")
        return 0
    if not 0 <= args.long <= 12:
        parser.error(f"--long takes 0 to 12 clips, got {args.long}")
    if args.workers < 0:
        parser.error(f"--workers must be >= 0, got {args.workers}")
    start = time.perf_counter()
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        print(f"gpu_check: {props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, "
              f"CUDA {torch.version.cuda}, {os.cpu_count()} CPUs", flush=True)
    status = 0
    if not args.skip_tests:
        status = cuda_tests(timeout=240, expect_skips=device.type != "cuda")
        verdict = "FAILED" if status else ("passed" if device.type == "cuda" else "skipped, as they must be on the CPU")
        print(f"gpu_check: CUDA tests {verdict} ({time.perf_counter() - start:.0f} s)", flush=True)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from audit_speed import long_clips, overhead

    short = overhead(device, args.workers)
    long_ = long_clips(device, args.workers, args.long, args.long_seconds, short) if args.long else None
    print(f"gpu_check summary ({device}, workers={args.workers}, {time.perf_counter() - start:.0f} s in all):")
    print(f"  overhead ratio, short clips: {short['ratio']:.3f}")
    if long_ is not None:
        same = long_["same_size"]["ratio"]
        print(f"  overhead ratio, 2 s clips at the long clips' size: {same:.3f}")
        print(f"  overhead ratio, long clips:  {long_['ratio']:.3f} (duration adds {long_['ratio'] - same:+.3f}); "
              f"decode {sum(long_['decode']) / len(long_['decode']):.2f} s per long clip")
    return status


if __name__ == "__main__":
    sys.exit(main())
