"""Clips: decoded, uniformly sampled frames of one interview video, plus who is in it.

Decoding uses OpenCV. The frame count a container reports is unreliable, so frames are
counted by reading them (``grab`` without decoding), then only the sampled frames are decoded.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from .errors import ClipError, ConfigError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".m4v")
METADATA_FILE = "metadata.csv"
DEFAULT_FRAMES = 16
DEFAULT_MAX_SIDE = 640
MIN_SIDE = 32  # below this there is no face to see and no background to swap


@dataclass(frozen=True, eq=False)
class Clip:
    """Frames are RGB uint8 ``[T, H, W, 3]``; ``fps`` is the source's frame rate."""

    id: str
    frames: np.ndarray
    fps: float
    metadata: Mapping[str, str] = field(default_factory=dict)
    path: Path | None = None
    source_frames: int = 0
    content_hash: str = ""

    def __post_init__(self) -> None:
        f = self.frames
        if not (isinstance(f, np.ndarray) and f.dtype == np.uint8 and f.ndim == 4 and f.shape[-1] == 3):
            raise ValueError(f"clip {self.id!r}: frames must be a uint8 array [T, H, W, 3], "
                             f"got {getattr(f, 'dtype', type(f))} {getattr(f, 'shape', '')}")
        if f.shape[0] == 0:
            raise ValueError(f"clip {self.id!r}: frames is empty")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)"""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    @classmethod
    def from_frames(cls, id: str, frames: np.ndarray, fps: float = 25.0, **kw) -> "Clip":
        frames = np.ascontiguousarray(frames)
        digest = kw.pop("content_hash", None) or hashlib.sha256(frames.tobytes()).hexdigest()
        return cls(id=id, frames=frames, fps=fps, source_frames=len(frames), content_hash=digest, **kw)


@dataclass(frozen=True)
class ClipSource:
    """A video file found in a clip folder, not yet decoded."""

    id: str
    path: Path
    metadata: Mapping[str, str] = field(default_factory=dict)

    def read(self, num_frames: int = DEFAULT_FRAMES, max_side: int = DEFAULT_MAX_SIDE) -> Clip:
        return read_video(self.path, num_frames=num_frames, max_side=max_side,
                          clip_id=self.id, metadata=self.metadata)


def file_hash(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sample_indices(total: int, num_frames: int) -> np.ndarray:
    """Uniform positions over the whole clip; short clips repeat frames rather than fail."""
    if total <= 0 or num_frames <= 0:
        raise ValueError("total and num_frames must be positive")
    return np.round(np.linspace(0, total - 1, num_frames)).astype(int)


def _open(path: Path):
    import cv2

    from .quiet import quiet_stderr

    with quiet_stderr():  # ffmpeg prints its own complaints about broken files; ours say it once
        cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise ClipError(path, "cannot be opened as a video (corrupt file or unsupported codec)")
    return cap


def read_video(path: str | os.PathLike, num_frames: int = DEFAULT_FRAMES,
               max_side: int = DEFAULT_MAX_SIDE, *, clip_id: str | None = None,
               metadata: Mapping[str, str] | None = None) -> Clip:
    """Decode ``num_frames`` frames spread uniformly over the video, downscaled so that the
    longer side is at most ``max_side``. Raises :class:`ClipError` with the reason."""
    import cv2

    path = Path(path)
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if max_side < 16:
        raise ValueError(f"max_side must be >= 16, got {max_side}")
    if not path.is_file():
        raise ClipError(path, "no such file")
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise ClipError(path, f"not a video file (extension {path.suffix or 'none'}; "
                              f"expected one of {', '.join(VIDEO_EXTENSIONS)})")
    if path.stat().st_size == 0:
        raise ClipError(path, "empty file (0 bytes)")

    cap = _open(path)
    try:
        total = 0
        while cap.grab():
            total += 1
        fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    if total == 0:
        raise ClipError(path, "contains no decodable frames")

    wanted = sample_indices(total, num_frames)
    unique = sorted(set(wanted.tolist()))
    decoded: dict[int, np.ndarray] = {}
    cap = _open(path)
    try:
        for index in range(unique[-1] + 1):
            if not cap.grab():
                raise ClipError(path, f"frame {index} of {total} could not be read on the second pass")
            if index in unique:
                ok, bgr = cap.retrieve()
                if not ok or bgr is None:
                    raise ClipError(path, f"frame {index} could not be decoded")
                decoded[index] = _to_rgb(bgr, max_side)
    finally:
        cap.release()

    shapes = {f.shape for f in decoded.values()}
    if len(shapes) != 1:
        raise ClipError(path, f"frames change size inside the video ({sorted(shapes)})")
    h, w = next(iter(shapes))[:2]
    if min(h, w) < MIN_SIDE:
        raise ClipError(path, f"frames are {w}x{h} pixels; at least {MIN_SIDE} on each side are needed")
    frames = np.stack([decoded[i] for i in wanted.tolist()])
    return Clip(id=clip_id or path.stem, frames=frames,
                fps=float(fps) if fps and np.isfinite(fps) and fps > 0 else 25.0,
                metadata=dict(metadata or {}), path=path, source_frames=total,
                content_hash=file_hash(path))


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
