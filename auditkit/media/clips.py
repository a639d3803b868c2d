"""Clips: decoded, uniformly sampled frames of one interview video, plus who is in it.

Pixels come from OpenCV. What decoding costs follows the frames sampled, not the clip's length:
PyAV lists the presentation time of every frame from the container's packets (no decoding), and
OpenCV seeks to each sampled frame and is checked, frame by frame, to have landed on the one with
that time. The frame count a container reports can be wrong, so it is checked rather than
trusted: against the packets, and by decoding the last frame and finding nothing after it. When
any check fails the frames are counted by decoding every one, as a sequential read would.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from auditkit.contract.errors import ClipError, ConfigError, first_line, last_line
from auditkit.contract.paths import file_digest

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".m4v")
METADATA_FILE = "metadata.csv"
DEFAULT_FRAMES = 16
DEFAULT_MAX_SIDE = 640
MIN_SIDE = 32  # below this there is no face to see and no background to swap
# The retest control of a rater that watches motion (frames by rate) or takes recordings: the
# window a fraction of a second later. Half a sampling interval, the retest of a rater that takes a
# handful of frames, would be half a frame here: no change at all.
RETEST_SHIFT = 0.2  # seconds


@dataclass(frozen=True, eq=False)
class Clip:
    """Frames are RGB uint8 ``[T, H, W, 3]``; ``fps`` is the source's frame rate. ``audio``: the
    sound over the same window as the frames, float32 ``[C, S]`` in [-1, 1] at ``sample_rate``
    (``None``: not asked for, or the clip has none — ``audio_problem`` says which);
    ``window``: (start, seconds) of the clip the frames and the sound come from; ``times``: each
    frame's time in seconds from the clip's first frame (default: consecutive at ``fps``)."""

    id: str
    frames: np.ndarray
    fps: float
    metadata: Mapping[str, str] = field(default_factory=dict)
    path: Path | None = None
    source_frames: int = 0
    content_hash: str = ""
    audio: np.ndarray | None = None
    sample_rate: int = 0
    window: tuple[float, float] = (0.0, 0.0)
    audio_problem: str = ""
    times: np.ndarray | None = None
    # The sound of the window as the clip has it (its own rate and channels), before it was
    # conformed to the rater: what an edit of the sound works on. (audio, rate, seconds).
    source_sound: tuple[np.ndarray, int, float] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        f = self.frames
        if not (isinstance(f, np.ndarray) and f.dtype == np.uint8 and f.ndim == 4 and f.shape[-1] == 3):
            raise ValueError(f"clip {self.id!r}: frames must be a uint8 array [T, H, W, 3], "
                             f"got {getattr(f, 'dtype', type(f))} {getattr(f, 'shape', '')}")
        if f.shape[0] == 0:
            raise ValueError(f"clip {self.id!r}: frames is empty")
        a = self.audio
        if a is not None and not (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.ndim == 2
                                  and a.shape[0] >= 1 and a.shape[1] >= 1 and self.sample_rate > 0):
            raise ValueError(f"clip {self.id!r}: audio must be float32 [channels, samples] with a sample_rate, "
                             f"got {getattr(a, 'dtype', type(a))} {getattr(a, 'shape', '')} at {self.sample_rate}")
        rate = self.fps if self.fps > 0 else 25.0
        if not any(self.window):
            object.__setattr__(self, "window", (0.0, f.shape[0] / rate))
        times = np.arange(f.shape[0]) / rate if self.times is None else np.asarray(self.times, np.float64)
        if times.shape != (f.shape[0],):
            raise ValueError(f"clip {self.id!r}: times must have one entry per frame, got shape {times.shape}")
        object.__setattr__(self, "times", times)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)"""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    @classmethod
    def from_frames(cls, id: str, frames: np.ndarray, fps: float = 25.0, *, metadata: Mapping[str, str] | None = None,
                    path: Path | None = None, content_hash: str | None = None,
                    audio: tuple[np.ndarray, int] | None = None) -> "Clip":
        """A clip from frames in memory; its content hash is the frames' own unless given.
        ``audio``: (float32 ``[C, S]`` in [-1, 1], sample rate), the sound of the same span."""
        frames = np.ascontiguousarray(frames)
        digest = content_hash or hashlib.sha256(frames.tobytes()).hexdigest()
        sound, rate = (np.ascontiguousarray(audio[0], dtype=np.float32), int(audio[1])) if audio else (None, 0)
        return cls(id=id, frames=frames, fps=fps, metadata=dict(metadata or {}), path=path,
                   source_frames=len(frames), content_hash=digest, audio=sound, sample_rate=rate)


@dataclass(frozen=True)
class ClipSource:
    """A video file found in a clip folder, not yet decoded."""

    id: str
    path: Path
    metadata: Mapping[str, str] = field(default_factory=dict)

    def read(self, num_frames: int = DEFAULT_FRAMES, max_side: int = DEFAULT_MAX_SIDE, *,
             offset: float = 0.0, audio: Any = None, timing: "Timing | None" = None) -> Clip:
        return read_video(self.path, num_frames=num_frames, max_side=max_side, clip_id=self.id,
                          metadata=self.metadata, offset=offset, audio=audio, timing=timing)

    def read_for(self, spec: Any, max_side: int = DEFAULT_MAX_SIDE, *, offset: float = 0.0, shift: float = 0.0,
                 sound: bool = True) -> Clip:
        """The clip as a rater's :class:`~auditkit.contract.rater.InputSpec` asks for it: its
        frames (by count or by rate) inside its window, and its sound when it listens."""
        return self.read(spec.frames, max_side, offset=offset, audio=spec.audio if sound else None,
                         timing=Timing(spec.window, spec.fps, shift))


def sample_indices(total: int, num_frames: int, offset: float = 0.0) -> np.ndarray:
    """Uniform positions over the whole clip; short clips repeat frames rather than fail.

    ``offset`` moves every position later by that fraction of one sampling interval (the distance
    between neighbouring positions; with one position, the whole clip). Positions never leave the
    clip: one that would fall past the last frame is the last frame (so with any offset the last
    frame is still sampled, and the first one is not unless the interval is under a frame).
    """
    if total <= 0 or num_frames <= 0:
        raise ValueError("total and num_frames must be positive")
    if not (isinstance(offset, (int, float)) and 0 <= offset < 1):
        raise ValueError(f"offset must be a number in [0, 1) (a fraction of one sampling interval), got {offset!r}")
    positions = np.linspace(0, total - 1, num_frames)
    if not offset:
        return np.round(positions).astype(int)
    interval = (total - 1) / (num_frames - 1) if num_frames > 1 else total - 1
    # Halves round up here (np.round would send 0.5 back to 0, the frame it is meant to leave).
    return np.floor(np.minimum(positions + offset * interval, total - 1) + 0.5).astype(int)


def window_span(times: np.ndarray, window: float | None, shift: float = 0.0) -> tuple[int, int, float, float]:
    """Frames ``[lo, hi)`` inside ``window`` seconds centred in a clip whose frames start at
    ``times`` (seconds, sorted, from the first frame), and the window's (start, seconds). ``None``,
    or a window longer than the clip, is the whole clip (a longer window starts with the clip:
    its sound is zero past the clip's end). ``shift``: the window starts that much later (kept
    inside the clip, for a window shorter than it)."""
    n = len(times)
    step = float(np.median(np.diff(times))) if n > 1 else 0.04
    duration = float(times[-1] - times[0]) + step
    if window is None:
        if shift:
            start = min(shift, max(duration - step, 0.0))
            lo = int(np.searchsorted(times - times[0], start - 1e-9))
            return lo, n, start, duration - start
        return 0, n, 0.0, duration
    start = max(0.0, (duration - window) / 2)
    start = min(start + shift, max(duration - window, start)) if shift else start
    rel = times - times[0]
    lo = int(np.searchsorted(rel, start - 1e-9))
    hi = max(lo + 1, int(np.searchsorted(rel, start + window - 1e-9)))
    return lo, min(hi, n), start, float(window)


def _open(path: Path):
    import cv2

    from auditkit.contract.quiet import quiet_stderr

    with quiet_stderr():  # ffmpeg prints its own complaints about broken files; ours say it once
        cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise ClipError(path, "cannot be opened as a video (corrupt file or unsupported codec)")
    # A phone's portrait clip is stored sideways with a display rotation: frames are read upright,
    # as a player (and a vendor's decoder) shows them, and as the recordings sent to vendors are.
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def read_video(path: str | os.PathLike, num_frames: int = DEFAULT_FRAMES,
               max_side: int = DEFAULT_MAX_SIDE, *, clip_id: str | None = None,
               metadata: Mapping[str, str] | None = None, offset: float = 0.0,
               audio: Any = None, timing: "Timing | None" = None) -> Clip:
    """Decode ``num_frames`` frames spread uniformly over the video, downscaled so that the
    longer side is at most ``max_side``. Raises :class:`ClipError` with the reason.

    ``offset`` (in [0, 1)) samples every position that fraction of a sampling interval later,
    clamped to the last frame (:func:`sample_indices`); the clip's ``content_hash`` then names the
    offset too, so annotations cached for the unshifted frames are never reused for these.
    ``timing`` (a :class:`Timing`): a ``window`` (seconds, centred; :func:`window_span`) to sample
    the frames inside, frames by rate (``fps``: ``num_frames`` of them ``1 / fps`` apart from the
    window's start, the source frame nearest each time) and a ``shift`` (the window that many
    seconds later: the retest of such a rater, :data:`RETEST_SHIFT`); the hash names it too.
    ``audio`` (an :class:`~auditkit.contract.rater.AudioSpec`, or ``None`` for no sound) also
    reads the sound over the window, conformed to that spec — a clip without sound says so in
    ``audio_problem``."""
    import cv2

    path = Path(path)
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if max_side < 16:
        raise ValueError(f"max_side must be >= 16, got {max_side}")
    if not (isinstance(offset, (int, float)) and 0 <= offset < 1):
        raise ValueError(f"offset must be a number in [0, 1) (a fraction of one sampling interval), got {offset!r}")
    if not path.is_file():
        if path.is_symlink():
            raise ClipError(path, "is a symbolic link that leads nowhere (broken, or a loop)")
        if path.is_dir():
            raise ClipError(path, "is a folder, not a video file")
        # A pipe or device would block or never end when read.
        raise ClipError(path, "is not a regular file (a pipe, socket or device)" if path.exists() else "no such file")
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise ClipError(path, f"not a video file (extension {path.suffix or 'none'}; "
                              f"expected one of {', '.join(VIDEO_EXTENSIONS)})")
    from auditkit.contract.quiet import quiet_stderr

    try:
        with quiet_stderr():  # FFmpeg's own complaints about a damaged stream; the ClipError says it once
            clip = _read_video(path, num_frames, max_side, clip_id, metadata, float(offset), timing or Timing())
        return clip if audio is None else with_audio(clip, audio)
    except OSError as exc:  # unreadable, vanished, or a failing disk: one clip's problem, not the run's
        raise ClipError(path, f"cannot be read ({exc.strerror or exc})") from None
    except cv2.error as exc:
        raise ClipError(path, f"could not be decoded ({last_line(exc, 160)})") from None


def with_audio(clip: Clip, spec: Any) -> Clip:
    """``clip`` with its sound over its window, as ``spec`` (an AudioSpec) wants it: read from its
    file, or conformed from the sound it carries in memory. No sound is ``audio_problem``."""
    from dataclasses import replace

    from .audio import conform, read_audio

    start, seconds = clip.window
    if clip.audio is not None:  # sound given in memory: the spec's window of it, centred
        total = clip.audio.shape[1] / clip.sample_rate
        seconds = spec.seconds if spec.seconds is not None else total
        first = round(max(0.0, (total - seconds) / 2) * clip.sample_rate)
        sound: tuple[np.ndarray, int] | None = (clip.audio[:, first:], clip.sample_rate)
    elif clip.path is not None:
        sound = read_audio(clip.path, start, seconds)
    else:
        sound = None
    if sound is None:
        return replace(clip, audio=None, sample_rate=0, audio_problem="no audio track", source_sound=None)
    native = np.asarray(sound[0], dtype=np.float32)[:, :max(1, round(seconds * sound[1]))]
    native = np.pad(native, ((0, 0), (0, max(0, round(seconds * sound[1]) - native.shape[1]))))
    return replace(clip, audio=conform(native, sound[1], spec, seconds), sample_rate=spec.sample_rate,
                   audio_problem="", source_sound=(native, int(sound[1]), float(seconds)))


@dataclass(frozen=True)
class Timing:
    """Where in time the frames come from: a ``window`` (seconds, centred; ``None``: the whole
    clip), at a rate (``fps``; ``None``: spread uniformly), starting ``shift`` seconds later."""

    window: float | None = None
    fps: float | None = None
    shift: float = 0.0

    def tag(self) -> str:
        """What goes into the clip's content hash (empty when it is the whole clip, as always)."""
        parts = [f"{k}={v!r}" for k, v in (("window", self.window), ("fps", self.fps), ("shift", self.shift or None))
                 if v is not None]
        return ":".join(parts)


def _read_video(path: Path, num_frames: int, max_side: int, clip_id: str | None,
                metadata: Mapping[str, str] | None, offset: float, timing: Timing = Timing()) -> Clip:
    size = path.stat().st_size
    if size == 0:
        raise ClipError(path, "empty file (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    # FFmpeg decodes a still image as a one-frame "video" and a cut-short file as far as it
    # goes; either would be audited without anyone noticing, so both are named and refused.
    problem = _not_a_whole_video(path, head, size)
    if problem:
        raise ClipError(path, problem)

    sampled = decode_sampled(path, num_frames, max_side, offset=offset, timing=timing)
    decoded = sampled.frames
    shapes = {f.shape for f in decoded.values()}
    if len(shapes) != 1:
        raise ClipError(path, f"frames change size inside the video ({sorted(shapes)})")
    h, w = next(iter(shapes))[:2]
    if min(h, w) < MIN_SIDE:
        raise ClipError(path, f"frames are {w}x{h} pixels; at least {MIN_SIDE} on each side are needed")
    frames = np.stack([decoded[i] for i in sampled.indices.tolist()])
    digest = file_digest(path)
    if offset:
        digest = hashlib.sha256(f"{digest}:offset={offset!r}".encode()).hexdigest()
    if timing.tag():
        digest = hashlib.sha256(f"{digest}:{timing.tag()}".encode()).hexdigest()
    fps = sampled.fps
    return Clip(id=clip_id or path.stem, frames=frames,
                fps=float(fps) if fps and np.isfinite(fps) and fps > 0 else 25.0,
                metadata=dict(metadata or {}), path=path, source_frames=sampled.total,
                content_hash=digest, window=sampled.window, times=sampled.times)


# ------------------------------------------------------------------------------------ decoding

# A seek makes OpenCV decode from the keyframe at or before 16 frames before the target up to
# it; decoding forward is cheaper than that across shorter gaps (and reads a short clip's frames
# once each).
WALK_FRAMES = 24


@dataclass
class DecodeReport:
    """How a clip's sampled frames were found (tests and benchmarks read it)."""

    mode: str = ""      # "timeline": each frame found by its time, count checked | "count": all decoded to count them
    total: int = 0
    grabs: int = 0      # frames decoded by grab() here (a seek also decodes, inside OpenCV, up to 16 + one GOP)
    seeks: int = 0
    reason: str = ""    # why the frames had to be counted, when they were


@dataclass
class Sampled:
    frames: dict[int, np.ndarray]  # source index -> RGB frame, downscaled
    indices: np.ndarray            # the sampled index of each output frame, in order
    total: int
    fps: float
    report: DecodeReport
    window: tuple[float, float] = (0.0, 0.0)  # (start, seconds) the frames were sampled in
    times: np.ndarray | None = None           # seconds of each sampled frame from the clip's first


def _sample(times_s: np.ndarray, num_frames: int, offset: float, timing: "Timing"
            ) -> tuple[np.ndarray, tuple[float, float]]:
    lo, hi, start, seconds = window_span(times_s, timing.window, timing.shift)
    if timing.fps is None:
        return lo + sample_indices(hi - lo, num_frames, offset), (start, seconds)
    # By rate: the frame nearest each tick start + k / fps (the window's frames only).
    ticks = start + (np.arange(num_frames) + offset) / timing.fps
    rel = times_s - times_s[0]
    right = np.clip(np.searchsorted(rel, ticks), 1, len(rel) - 1)
    nearest = np.where(np.abs(rel[right - 1] - ticks) <= np.abs(rel[right] - ticks), right - 1, right)
    return np.clip(nearest, lo, max(lo, hi - 1)), (start, seconds)


def decode_sampled(path: str | os.PathLike, num_frames: int = DEFAULT_FRAMES, max_side: int = DEFAULT_MAX_SIDE,
                   *, offset: float = 0.0, timing: "Timing | None" = None) -> Sampled:
    """The sampled frames of a video file and how they were found; :func:`read_video` is this
    with the checks a clip needs. Frames equal those of a sequential read (``grab`` and
    ``retrieve`` every frame) at the same indices."""
    import cv2

    path = Path(path)
    timing = timing or Timing()
    report = DecodeReport()
    cap = _open(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        reported = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        line = _timeline(path)
        if isinstance(line, str):
            report.reason = line
        else:
            times, pts, header = line
            # A header whose count disagrees with the packets lies about one of them, and OpenCV's
            # seeks stop at the stated count: count by decoding, as a sequential read does.
            if header and reported != len(times):
                report.reason = f"the container states {reported} frames but holds {len(times)}"
            else:
                wanted, span = _sample((times - times[0]) / 1000, num_frames, offset, timing)
                found = _decode_by_time(cap, times, pts, sorted(set(wanted.tolist())), max_side, report)
                if isinstance(found, dict):
                    report.mode, report.total = "timeline", len(times)
                    return Sampled(found, wanted, len(times), fps, report, span, (times[wanted] - times[0]) / 1000)
                report.reason = found
    finally:
        cap.release()
    return _decode_by_count(path, num_frames, max_side, offset, report, timing)


def _timeline(path: Path) -> tuple[np.ndarray, np.ndarray, int] | str:
    """Presentation times (ms from the stream's start, as OpenCV reports them) of every frame of
    the first video stream, sorted, its raw timestamps, and the frame count its header states (0
    when it states none); or why they cannot be had. Reads packets, decodes nothing."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "no video stream found by the packet reader"
            stream = container.streams.video[0]
            base = stream.time_base
            start = stream.start_time or 0
            stamps = []
            for packet in container.demux(stream):
                if packet.size == 0 and packet.pts is None and packet.dts is None:
                    continue  # the end-of-stream marker PyAV appends
                if packet.pts is None or packet.size == 0:
                    return "a packet without a timestamp or without data"
                stamps.append(packet.pts)
            header = stream.frames
    except (av.FFmpegError, OSError, ValueError) as exc:
        return f"the packet reader failed ({first_line(exc, 120)})"
    if not stamps or base is None:
        return "no timestamped frames found by the packet reader"
    pts = np.sort(np.asarray(stamps, dtype=np.int64))
    if len(pts) > 1 and np.diff(pts).min() <= 0:
        return "two frames share a timestamp"
    # OpenCV's CAP_PROP_POS_MSEC: (pts - start_time) * time_base * 1000, in doubles.
    times = (pts - start).astype(np.float64) * (base.numerator / base.denominator) * 1000
    return times, pts, int(header or 0)


def _decode_by_time(cap, times: np.ndarray, pts: np.ndarray, wanted: list[int], max_side: int,
                    report: DecodeReport) -> dict[int, np.ndarray] | str:
    """Decode the frames at ``wanted`` (sorted indices into ``times``), finding each by its time;
    returns why not when OpenCV's frames do not line up with the timeline."""
    import cv2

    n = len(times)
    tol = 0.25 * float(np.diff(times).min()) if n > 1 else 1.0
    zero = int(np.flatnonzero(pts == 0)[0]) if (pts == 0).any() else -1
    fps = cap.get(cv2.CAP_PROP_FPS)

    def which(t: float) -> int | None:
        k = int(np.searchsorted(times, t))
        near = min((c for c in (k - 1, k) if 0 <= c < n), key=lambda c: abs(times[c] - t))
        if abs(times[near] - t) <= tol:
            return near
        # OpenCV reports a frame whose timestamp is exactly 0 by its decoding time, never later.
        return zero if zero >= 0 and t < times[zero] else None

    def grab() -> int | None:
        """Decode the next frame; its index, or None at the end or when its time is not listed."""
        report.grabs += 1
        if not cap.grab():
            return None
        return which(cap.get(cv2.CAP_PROP_POS_MSEC))

    def seek(i: int) -> int | str:
        """Seek to at or before frame ``i`` and decode the frame found there; its index."""
        back = 0
        for _ in range(4):
            report.seeks += 1
            # OpenCV numbers frames by time x fps; after a seek to number k, grab() returns frame k.
            target = max(0, int(times[i] * fps / 1000 + 0.5) - back)
            cap.set(cv2.CAP_PROP_POS_FRAMES, target)
            j = grab()
            if j is None:
                return f"no frame with a listed time after seeking to frame {i}"
            if j <= i:
                return j
            back = max(16, 2 * back + 2 * (j - i))
        return f"seeking kept landing after frame {i}"

    keep = set(wanted)
    # The last frame is always reached: decoding it and finding no frame after it is what
    # checks the count.
    targets = wanted if wanted[-1] == n - 1 else [*wanted, n - 1]
    decoded: dict[int, np.ndarray] = {}
    # One full-resolution buffer, reused: an 8K frame is 100 MB, and only the downscaled copies
    # are kept, so memory stays at one source frame whatever the resolution or frame count.
    bgr = None
    pos = 0  # the index the next grab() returns
    for i in targets:
        if i - pos > WALK_FRAMES:
            j = seek(i)
            if isinstance(j, str):
                return j
        else:
            j = grab()
            if j != pos:
                return f"frame {pos} has no listed time, or another one ({j})"
        while j < i:
            k = grab()
            if k != j + 1:
                return f"the frame after {j} is {k}, not {j + 1}"
            j = k
        if i in keep:
            ok, bgr = cap.retrieve(bgr)
            if not ok or bgr is None:
                return f"frame {i} could not be decoded"
            decoded[i] = _to_rgb(bgr, max_side)
        pos = i + 1
    report.grabs += 1
    if cap.grab():
        return f"a frame follows the last of the {n} listed"
    return decoded


def _decode_by_count(path: Path, num_frames: int, max_side: int, offset: float, report: DecodeReport,
                     timing: "Timing") -> Sampled:
    """The sequential read: count the frames by decoding them all, then decode again up to the
    last sampled one."""
    import cv2

    report.mode = "count"
    cap = _open(path)
    try:
        total = 0
        while cap.grab():
            total += 1
        report.grabs += total + 1
        fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    if total == 0:
        raise ClipError(path, "contains no decodable frames")
    report.total = total

    rate = fps if fps and np.isfinite(fps) and fps > 0 else 25.0
    wanted, span = _sample(np.arange(total) / rate, num_frames, offset, timing)
    unique = set(wanted.tolist())
    decoded: dict[int, np.ndarray] = {}
    cap = _open(path)
    bgr = None  # one full-resolution buffer, reused (see _decode_by_time)
    try:
        for index in range(max(unique) + 1):
            report.grabs += 1
            if not cap.grab():
                raise ClipError(path, f"frame {index} of {total} could not be read on the second pass")
            if index in unique:
                ok, bgr = cap.retrieve(bgr)
                if not ok or bgr is None:
                    raise ClipError(path, f"frame {index} could not be decoded")
                decoded[index] = _to_rgb(bgr, max_side)
    finally:
        cap.release()
    return Sampled(decoded, wanted, total, fps, report, span, wanted / rate)


_SNIFF_BYTES = 512
_IMAGES = ((b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG\r\n\x1a\n", "a PNG image"),
           (b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"), (b"II*\x00", "a TIFF image"),
           (b"MM\x00*", "a TIFF image"), (b"%PDF-", "a PDF document"))


def _not_a_whole_video(path: Path, head: bytes, size: int) -> str | None:
    """Why the file is not a whole video, judged from its first bytes; ``None`` when it may be."""
    named = f"not a video despite its {path.suffix} name"
    for magic, what in _IMAGES:
        if head.startswith(magic):
            return f"is {what}, {named}"
    if head[:2] == b"BM" and head[6:10] == b"\x00\x00\x00\x00":  # two reserved zero words
        return f"is a BMP image, {named}"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return f"is a WebP image, {named}"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        # The RIFF header states the size of the first RIFF chunk (the whole file below 1 GB).
        if int.from_bytes(head[4:8], "little") + 8 > size:
            return ("is truncated (the file ends before the length its header states: "
                    "cut short or still being written)")
        return None
    if head[4:8] == b"ftyp":
        return _truncated_mp4(path, size)
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return _truncated_matroska(head, size)
    return None  # anything else (text, junk) FFmpeg refuses to open, which says so


def _truncated_mp4(path: Path, size: int) -> str | None:
    """ISO media files (mp4, mov, m4v) are a sequence of boxes that tile the file exactly; a box
    running past the end means the file was cut short."""
    with open(path, "rb") as fh:
        pos = 0
        while pos + 8 <= size:
            fh.seek(pos)
            header = fh.read(16)
            box, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if box == 1 and len(header) == 16:
                box = int.from_bytes(header[8:16], "big")
            elif box == 0:  # "to the end of the file"
                return None
            if box < 8 or not kind.isascii():
                return None  # not a box structure this check understands: FFmpeg decides
            if pos + box > size:
                return (f"is truncated (its {kind.decode('ascii', 'replace')!r} box ends "
                        f"{pos + box - size} bytes after the end of the file: cut short or still being written)")
            pos += box
    return None


def _vint(data: bytes, pos: int, *, marker: bool) -> tuple[int | None, int]:
    """An EBML variable-length integer at ``pos``: (value, position after it). The value is
    ``None`` for "unknown" (all value bits set) and for bytes that are not a valid integer."""
    if pos >= len(data) or data[pos] == 0:
        return None, len(data)
    length = 9 - data[pos].bit_length()
    if pos + length > len(data):
        return None, len(data)
    raw = int.from_bytes(data[pos:pos + length], "big")
    if not marker:
        return raw, pos + length
    value = raw & ((1 << (7 * length)) - 1)
    return (None if value == (1 << (7 * length)) - 1 else value), pos + length


def _truncated_matroska(head: bytes, size: int) -> str | None:
    """WebM and Matroska: the EBML header, then one Segment element whose size, when the writer
    recorded it (live recordings may not), says where the file must end."""
    header_size, pos = _vint(head, 4, marker=True)
    if header_size is None:
        return None
    segment_id, pos = _vint(head, pos + header_size, marker=False)
    if segment_id != 0x18538067:
        return None
    segment_size, pos = _vint(head, pos, marker=True)
    if segment_size is not None and pos + segment_size > size:
        return (f"is truncated (its Segment ends {pos + segment_size - size} bytes after the end "
                "of the file: cut short or still being written)")
    return None


def _to_rgb(bgr: np.ndarray, max_side: int) -> np.ndarray:
    import cv2

    if bgr.ndim == 2:
        bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    h, w = bgr.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def discover(folder: str | os.PathLike) -> list[ClipSource]:
    """The video files under ``folder`` (sorted, links not followed) with their metadata rows.

    Raises :class:`ConfigError` for a missing folder, a folder without videos, duplicate clip
    ids, or a ``metadata.csv`` that does not fit the clips.
    """
    root = Path(folder)
    if not root.exists():
        raise ConfigError(f"{root}: clip folder does not exist")
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder (--clips takes a folder of videos)")
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if path.suffix.lower() not in VIDEO_EXTENSIONS or name.startswith("."):
                continue
            clip_id = path.relative_to(root).with_suffix("").as_posix()
            if clip_id in found:
                raise ConfigError(f"{root}: two videos share the clip id {clip_id!r}: "
                                  f"{found[clip_id].name} and {path.name}")
            found[clip_id] = path
    if not found:
        raise ConfigError(f"{root}: no video files found (looked for {', '.join(VIDEO_EXTENSIONS)})")
    metadata = read_metadata(root / METADATA_FILE, found) if (root / METADATA_FILE).exists() else {}
    return [ClipSource(i, p, metadata.get(i, {})) for i, p in sorted(found.items())]


def read_metadata(path: Path, clips: Mapping[str, Path]) -> dict[str, dict[str, str]]:
    """``metadata.csv``: a ``clip_id`` column (the id or the file name), then any columns such
    as ``subject_id`` or group columns. Every row must name a clip in the folder."""
    by_name = {p.relative_to(path.parent).as_posix(): i for i, p in clips.items()}
    rows: dict[str, dict[str, str]] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: Excel's "CSV UTF-8" BOM
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "clip_id" not in reader.fieldnames:
                raise ConfigError(f"{path}: needs a 'clip_id' column (found: "
                                  f"{', '.join(reader.fieldnames or []) or 'no header'})")
            for row in reader:
                line = reader.line_num
                key = (row.get("clip_id") or "").strip()
                clip_id = key if key in clips else by_name.get(key)
                if clip_id is None:
                    raise ConfigError(f"{path}, line {line}: clip_id {key!r} matches no video in the folder")
                if clip_id in rows:
                    raise ConfigError(f"{path}, line {line}: clip_id {key!r} appears twice")
                rows[clip_id] = {k: (v or "").strip() for k, v in row.items()
                                 if k and k != "clip_id"}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise ConfigError(f"{path}: not a valid CSV file ({exc})") from None
    return rows


def load_clips(folder: str | os.PathLike, num_frames: int = DEFAULT_FRAMES,
               max_side: int = DEFAULT_MAX_SIDE) -> list[Clip]:
    """Decode every clip in a folder. Raises on the first unreadable clip; the audit engine
    instead lists unreadable clips as skipped and goes on."""
    return [source.read(num_frames, max_side) for source in discover(folder)]


def as_sources(clips: str | os.PathLike | Iterable[Clip | ClipSource]) -> list[Clip | ClipSource]:
    if isinstance(clips, (str, os.PathLike)):
        return list(discover(clips))
    items = list(clips)
    ids = [c.id for c in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"clips: the clip id {dup!r} appears more than once")
    if not items:
        raise ConfigError("clips: no clips given")
    return items
