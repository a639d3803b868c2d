"""The built-in sample clip set: short interview-like videos made from real portraits that ship
inside installed packages (matplotlib's Grace Hopper, scikit-image's astronaut Eileen Collins).

Each clip is a still portrait brought to life with a mild, smooth head motion (a local warp
around the detected face, so the head nods and sways while the room stays put), a framing of its
own and the portrait's original background. They are written as real video files once, into the
user cache, and are the default clip set of ``auditkit run`` and ``auditkit demo``.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from auditkit.contract.paths import cache_root

from .video import write_video

SAMPLES_VERSION = 2  # 2: every clip speaks (AAC beside the same mp4v picture as version 1)
FPS = 15
SECONDS = 2
SPEECH_LEAD = 0.05  # seconds of silence before the answer starts
SPEECH_GAP = 0.6    # seconds between answers, when a long clip repeats it

@dataclass(frozen=True)
class _Variant:
    portrait: str
    framing: str          # tight | medium | wide
    size: tuple[int, int]  # (width, height)
    mirror: bool
    roll_deg: float       # amplitude of the head's roll
    nod_px: float         # amplitude of the vertical nod, in face heights x 100
    sway_px: float        # amplitude of the sideways sway, likewise
    phase: float


_FRAMING = {"tight": 1.9, "medium": 2.6, "wide": 3.4}  # crop height in face heights

_VARIANTS = [
    _Variant("hopper", "tight", (320, 240), False, 3.0, 2.0, 1.0, 0.0),
    _Variant("hopper", "medium", (320, 240), True, 2.0, 3.0, 2.0, 1.1),
    _Variant("hopper", "wide", (384, 216), False, 4.0, 1.5, 3.0, 2.3),
    _Variant("hopper", "medium", (288, 288), False, 2.5, 2.5, 1.5, 0.7),
    _Variant("hopper", "wide", (320, 240), True, 3.5, 2.0, 2.5, 3.0),
    _Variant("hopper", "tight", (384, 216), True, 1.5, 3.5, 1.0, 4.2),
    _Variant("collins", "tight", (320, 240), False, 3.0, 2.0, 1.5, 0.3),
    _Variant("collins", "medium", (384, 216), False, 2.0, 2.5, 2.5, 1.7),
    _Variant("collins", "wide", (320, 240), True, 3.5, 1.5, 2.0, 2.9),
    _Variant("collins", "medium", (288, 288), True, 2.5, 3.0, 1.0, 0.9),
    _Variant("collins", "wide", (384, 216), False, 4.0, 2.0, 3.0, 3.8),
    _Variant("collins", "tight", (288, 288), False, 1.5, 3.5, 2.0, 5.1),
]


def load_portraits() -> dict[str, np.ndarray]:
    """RGB uint8 portraits from installed packages."""
    import cv2
    from matplotlib.cbook import get_sample_data
    from skimage import data

    hopper = cv2.imread(str(get_sample_data("grace_hopper.jpg", asfileobj=False)))
    if hopper is None:
        raise RuntimeError("matplotlib's sample image grace_hopper.jpg could not be read")
    return {"hopper": cv2.cvtColor(hopper, cv2.COLOR_BGR2RGB), "collins": data.astronaut()}


def speech(portrait: str, seconds: float) -> tuple[np.ndarray, int]:
    """The portrait's spoken answer (``speech/<portrait>.wav``, see its README) over ``seconds``:
    float32 ``[1, S]``, the answer after a short lead, repeated after a pause on a long clip."""
    from .audio import read_wav

    answer, rate = read_wav(Path(__file__).with_name("speech") / f"{portrait}.wav")
    answer = answer[:, :np.flatnonzero(np.abs(answer[0]) > 1e-3)[-1] + 1]  # its trailing silence
    out = np.zeros((1, round(seconds * rate)), dtype=np.float32)
    period = answer.shape[1] + round(SPEECH_GAP * rate)
    for start in range(round(SPEECH_LEAD * rate), out.shape[1], period):
        piece = answer[:, :out.shape[1] - start]
        out[:, start:start + piece.shape[1]] = piece
    return out, rate


def _face_box(image: np.ndarray) -> tuple[float, float, float, float]:
    """(cx, cy, w, h) of the most confident face, in pixels."""
    import mediapipe as mp

    from auditkit.contract.quiet import quiet_stderr

    with quiet_stderr(), mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=0.5) as det:
        found = det.process(image).detections
    if not found:
        raise RuntimeError("no face found in a sample portrait")
    box = max(found, key=lambda d: d.score[0]).location_data.relative_bounding_box
    h, w = image.shape[:2]
    return ((box.xmin + box.width / 2) * w, (box.ymin + box.height / 2) * h,
            box.width * w, box.height * h)


class _HeadMotion:
    """Warp the head region by a small rotation and translation that fades out with distance
    from the face, so the head moves and the background does not tear. The pixel grid and the
    weights depend only on the portrait, so they are computed once per clip, not per frame."""

    def __init__(self, image: np.ndarray, face: tuple[float, float, float, float], v: _Variant) -> None:
        cx, cy, fw, fh = face
        h, w = image.shape[:2]
        self.image, self.v, self.fh = image, v, fh
        self.ys, self.xs = np.mgrid[0:h, 0:w].astype(np.float32)
        # Weight: 1 on the head (centre slightly above the face box centre), 0 far away.
        self.hx, self.hy = cx, cy - 0.1 * fh
        sigma = 0.95 * max(fw, fh)
        self.weight = np.exp(-(((self.xs - self.hx) ** 2 + (self.ys - self.hy) ** 2)
                               / (2 * sigma ** 2))).astype(np.float32)

    def __call__(self, t: float) -> np.ndarray:
        import cv2

        v, fh, xs, ys, hx, hy = self.v, self.fh, self.xs, self.ys, self.hx, self.hy
        omega = 2 * np.pi * t
        angle = np.deg2rad(v.roll_deg * np.sin(0.9 * omega + v.phase))
        dx = v.sway_px / 100 * fh * np.sin(0.6 * omega + 2 * v.phase)
        dy = v.nod_px / 100 * fh * np.sin(1.3 * omega + 0.5 * v.phase)
        # Inverse map: where does each output pixel come from? Rotate back about the head centre.
        c, s = np.cos(-angle), np.sin(-angle)
        rx = c * (xs - hx - dx) - s * (ys - hy - dy) + hx
        ry = s * (xs - hx - dx) + c * (ys - hy - dy) + hy
        map_x = xs + self.weight * (rx - xs)
        map_y = ys + self.weight * (ry - ys)
        return cv2.remap(self.image, map_x, map_y, interpolation=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)


def _head_motion(image: np.ndarray, face: tuple[float, float, float, float], v: _Variant,
                 t: float) -> np.ndarray:
    return _HeadMotion(image, face, v)(t)


def _crop(image: np.ndarray, face: tuple[float, float, float, float], v: _Variant) -> tuple[int, int, int, int]:
    h, w = image.shape[:2]
    out_w, out_h = v.size
    cx, cy, _, fh = face
    crop_h = min(h, _FRAMING[v.framing] * fh)
    crop_w = crop_h * out_w / out_h
    if crop_w > w:
        crop_w, crop_h = w, w * out_h / out_w
    # Place the face a little above the centre, as an interview framing does.
    x0 = int(np.clip(cx - crop_w / 2, 0, w - crop_w))
    y0 = int(np.clip(cy - 0.42 * crop_h, 0, h - crop_h))
    return x0, y0, int(crop_w), int(crop_h)


def iter_frames(image: np.ndarray, face: tuple[float, float, float, float], v: _Variant,
                frames: int = FPS * SECONDS, fps: float = FPS):
    """The clip's frames one at a time (a two-minute 720p clip is gigabytes as one array); the
    head moves at the same speed in real time whatever ``fps``."""
    import cv2

    x0, y0, cw, ch = _crop(image, face, v)
    motion = _HeadMotion(image, face, v)
    for i in range(frames):
        moved = motion(i / fps / SECONDS)
        frame = cv2.resize(moved[y0:y0 + ch, x0:x0 + cw], v.size, interpolation=cv2.INTER_AREA)
        yield np.ascontiguousarray(frame[:, ::-1] if v.mirror else frame)


def render_clip(image: np.ndarray, face: tuple[float, float, float, float], v: _Variant,
                frames: int = FPS * SECONDS) -> np.ndarray:
    return np.stack(list(iter_frames(image, face, v, frames)))


def build_samples(dest: Path) -> Path:
    """Write the sample set into ``dest`` (created) with its ``metadata.csv``."""
    dest.mkdir(parents=True, exist_ok=True)
    portraits = load_portraits()
    faces = {name: _face_box(img) for name, img in portraits.items()}
    rows = []
    for i, v in enumerate(_VARIANTS):
        clip_id = f"{v.portrait}_{i:02d}_{v.framing}"
        write_video(dest / f"{clip_id}.mp4", render_clip(portraits[v.portrait], faces[v.portrait], v),
                    FPS, audio=(sound := speech(v.portrait, SECONDS))[0], sample_rate=sound[1])
        rows.append({"clip_id": clip_id, "subject_id": v.portrait, "framing": v.framing})
    write_metadata(dest, rows)
    return dest


def write_metadata(dest: Path, rows: list[dict[str, str]]) -> None:
    """``dest/metadata.csv`` of a generated clip set: clip, person and framing per clip."""
    with open(dest / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["clip_id", "subject_id", "framing"])
        writer.writeheader()
        writer.writerows(rows)


def built_once(target: Path, build: Callable[[Path], Path]) -> Path:
    """``target``, built by ``build`` on first use. Safe when several processes race: each
    builds in a private folder and the first to rename it into place wins."""
    if (target / "metadata.csv").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "metadata.csv").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def sample_clips(dest: str | os.PathLike | None = None) -> Path:
    """The folder of sample clips, built on first use (see :func:`built_once`)."""
    return built_once(Path(dest) if dest is not None else cache_root() / f"samples-v{SAMPLES_VERSION}",
                      build_samples)


def _write_long(path: Path, index: int, size: tuple[int, int], frames: int, fps: float) -> None:
    portraits = load_portraits()
    v = replace(_VARIANTS[index], size=size)
    image = portraits[v.portrait]
    audio, rate = speech(v.portrait, frames / fps)
    write_video(path, iter_frames(image, _face_box(image), v, frames, fps), fps=fps, audio=audio, sample_rate=rate)


def long_sample_clips(seconds: float = 120, size: tuple[int, int] = (1280, 720), fps: float = 30,
                      dest: str | os.PathLike | None = None, workers: int = 1, progress=None) -> Path:
    """The sample set's twelve people again as long clips (default: two minutes of 720p at
    30 fps, as real interview answers run), built on first use into the user cache. Writing
    them takes minutes: ``workers`` processes write clips side by side, and
    ``progress(done, total, clip_id)`` hears of each clip written."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    w, h = size
    if not (seconds > 0 and fps > 0 and min(size) >= 32 and workers >= 1):
        raise ValueError(f"long sample clips need seconds > 0, fps > 0, sides >= 32 and workers >= 1, "
                         f"got {seconds}, {fps}, {size}, {workers}")
    name = f"samples-long-v{SAMPLES_VERSION}-{seconds:g}s-{w}x{h}-{fps:g}fps"

    def build(tmp: Path) -> Path:
        ids = [f"{v.portrait}_{i:02d}_{v.framing}_long" for i, v in enumerate(_VARIANTS)]
        jobs = [(tmp / f"{clip_id}.mp4", i, (w, h), round(seconds * fps), fps) for i, clip_id in enumerate(ids)]
        if workers == 1:
            for done, job in enumerate(jobs, 1):
                _write_long(*job)
                if progress is not None:
                    progress(done, len(jobs), ids[job[1]])
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                futures = {pool.submit(_write_long, *job): ids[job[1]] for job in jobs}
                for done, future in enumerate(as_completed(futures), 1):
                    future.result()
                    if progress is not None:
                        progress(done, len(jobs), futures[future])
        write_metadata(tmp, [{"clip_id": clip_id, "subject_id": v.portrait, "framing": v.framing}
                             for clip_id, v in zip(ids, _VARIANTS)])
        return tmp

    return built_once(Path(dest) if dest is not None else cache_root() / name, build)
