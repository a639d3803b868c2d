"""What a vendor audit's recording costs: a 60-second 640x360 25 fps sample clip with its sound,
``background:office`` rendered at every frame and encoded as H.264 with the audio stream copied
(``auditkit.core.recording.render``), its time split into decoding, annotation, the edit and the
encoding, and its peak memory measured in a fresh process. Also what reading the sound adds to
the 16-frame decode of a two-minute 720p clip, and how much the edits flicker at full frame rate
on the sample clips (the measures of tests/test_shots.py, whose bounds they are held to).

    python bench/recording_speed.py [--seconds 60] [--edit background:office] [--flicker-only]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np


def stages(path, edit_name: str) -> dict[str, float]:
    """Seconds of each stage, each measured by a pass that stops after it (a cold annotator)."""
    import itertools

    from auditkit.core.recording import CHUNK, render
    from auditkit.media.recording import RecordingSpec, iter_frames
    from auditkit.perturbations import get
    from auditkit.perturbations.annotate import Annotator

    spec, edit = RecordingSpec(), get(edit_name)
    out: dict[str, float] = {}
    start = time.perf_counter()
    frames = sum(1 for _ in iter_frames(path, spec))
    out["decode"] = time.perf_counter() - start
    annotator = Annotator(use_cache=False)
    start = time.perf_counter()
    chunks = []
    it = iter_frames(path, spec)
    while True:
        chunk = list(itertools.islice(it, CHUNK))
        if not chunk:
            break
        pixels = np.stack([f for _, f in chunk])
        chunks.append((pixels, annotator.annotate(pixels, times=np.array([t for t, _ in chunk]))))
        if len(chunks) >= 8:  # eight chunks tell the rate; memory stays small
            break
    per_frame = (time.perf_counter() - start - out["decode"] * sum(len(c[0]) for c in chunks) / frames) \
        / sum(len(c[0]) for c in chunks)
    out["annotate"] = per_frame * frames
    start = time.perf_counter()
    for pixels, ann in chunks:
        import torch

        edit(torch.from_numpy(pixels), ann, seed=0)
    out["edit"] = (time.perf_counter() - start) / sum(len(c[0]) for c in chunks) * frames
    start = time.perf_counter()
    render(path, edit, spec, clip_id="bench", seed=0, annotator=Annotator(use_cache=False))
    out["render"] = time.perf_counter() - start
    out["encode and the rest"] = out["render"] - out["decode"] - out["annotate"] - out["edit"]
    out["frames"] = frames
    return out


def peak(path, edit_name: str) -> float:
    """Peak resident memory (MiB) of a fresh process that renders the recording once."""
    code = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from auditkit.core.recording import render\n"
        "from auditkit.media.recording import RecordingSpec\n"
        "from auditkit.perturbations import get\n"
        "from auditkit.perturbations.annotate import Annotator\n"
        f"render(Path({str(path)!r}), get({edit_name!r}), RecordingSpec(), clip_id='bench', seed=0,\n"
        "       annotator=Annotator(use_cache=False))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(proc.stdout.strip().splitlines()[-1])


def sound_overhead(repeats: int = 5) -> tuple[float, float]:
    """Seconds to decode 16 frames of a two-minute 720p 30 fps sample clip, without and with its sound."""
    from auditkit.contract.paths import cache_root
    from auditkit.contract.rater import AudioSpec
    from auditkit.media.clips import read_video
    from auditkit.media.samples import SAMPLES_VERSION, _write_long

    path = cache_root() / f"bench-long-v{SAMPLES_VERSION}-120s-1280x720-30fps.mp4"
    if not path.is_file():  # one clip of the long sample set, written once
        print("writing (once, cached) a two-minute 720p sample clip ...", flush=True)
        _write_long(path, 0, (1280, 720), 120 * 30, 30)
    spec = AudioSpec(16000, 1, None)
    times = {False: [], True: []}
    for _ in range(repeats):
        for audio in (False, True):
            start = time.perf_counter()
            read_video(path, num_frames=16, audio=spec if audio else None)
            times[audio].append(time.perf_counter() - start)
    return float(np.median(times[False])), float(np.median(times[True]))


def flicker_figures() -> None:
    """Per edit, over every sample clip at full frame rate: the frame-to-frame change along the
    edit's edge, edited against the clip's own there (levels), and the glasses' motion against
    the eyes (pixels a frame)."""
    import importlib.util
    from pathlib import Path

    from auditkit.media.clips import discover
    from auditkit.media.samples import sample_clips
    from auditkit.perturbations.annotate import LEFT_IRIS, RIGHT_IRIS, Annotator

    tests = Path(__file__).parents[1] / "tests"
    spec = importlib.util.spec_from_file_location("shots_measures", tests / "test_shots.py")
    measures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(measures)
    annotator = Annotator()
    sources = discover(sample_clips())
    for name in ("background:office", "background:plain", "bookshelf:insert"):
        excess = []
        for source in sources:
            original, edited = measures._full_rate(source, name, annotator)
            bands = [measures._band((e != o).any(-1)) for e, o in zip(edited, original)]
            excess.append(measures.flicker(edited, bands) - measures.flicker(original, bands))
        print(f"{name}: edge change frame to frame, edited minus the clip's own, over {len(sources)} clips: "
              f"mean {np.mean(excess):+.2f}, worst {np.max(excess):+.2f} levels "
              f"(test bound +{measures.FLICKER_LEVELS:g})")
    for name in ("glasses:thick", "glasses:sunglasses"):
        worst = []
        for source in sources:
            original, edited = measures._full_rate(source, name, annotator)
            marks = annotator.annotate(np.stack(original), times=np.arange(len(original)) / 15).landmarks.numpy()
            eyes = 0.5 * (marks[:, RIGHT_IRIS, :2] + marks[:, LEFT_IRIS, :2])
            centres = [np.argwhere((e != o).any(-1)).mean(axis=0)[::-1] for e, o in zip(edited, original)]
            worst.append(float(np.abs(np.diff(np.array(centres) - eyes, axis=0)).mean(axis=0).max()))
        print(f"{name}: motion against the eyes, frame to frame: mean {np.mean(worst):.2f}, worst {np.max(worst):.2f} "
              f"px (test bound {measures.GLASSES_JITTER:g})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--edit", default="background:office")
    parser.add_argument("--skip-sound", action="store_true", help="skip the two-minute 720p decode row")
    parser.add_argument("--flicker-only", action="store_true", help="only the flicker figures")
    args = parser.parse_args()
    if args.flicker_only:
        flicker_figures()
        return
    from auditkit.media.clips import discover
    from auditkit.media.samples import long_sample_clips

    print(f"building (once, cached) the {args.seconds:g} s 640x360 25 fps sample clips ...", flush=True)
    path = discover(long_sample_clips(seconds=args.seconds, size=(640, 360), fps=25, workers=2))[0].path
    figures = stages(path, args.edit)
    figures["peak MiB"] = peak(path, args.edit)
    print(json.dumps({k: round(v, 2) for k, v in figures.items()}))
    print(f"{args.edit} over {int(figures['frames'])} frames ({args.seconds:g} s of 640x360 25 fps with sound): "
          f"render {figures['render']:.1f} s ({figures['render'] / args.seconds:.2f}x the clip's length), "
          f"peak {figures['peak MiB']:.0f} MiB")
    for stage in ("decode", "annotate", "edit", "encode and the rest"):
        print(f"  {stage:20s} {figures[stage]:6.1f} s")
    if not args.skip_sound:
        silent, heard = sound_overhead()
        print(f"16 frames of a two-minute 720p clip: {silent:.3f} s without the sound, {heard:.3f} s with it "
              f"(+{100 * (heard / silent - 1):.1f}%)")
    flicker_figures()


if __name__ == "__main__":
    main()
