"""Writing frames to a video file (the sample clips, previews, an HTTP rater's MP4 bodies)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

FPS = 15


def write_video(path: Path, frames: np.ndarray | Iterable[np.ndarray], fps: float = FPS, *,
                audio: np.ndarray | None = None, sample_rate: int = 0) -> None:
    """RGB uint8 frames ([T, H, W, 3], or any iterable of [H, W, 3], written as they come: a long
    clip need not be held in memory) to a video file (mp4v in .mp4/.mov/.m4v, MJPG in .avi/.mkv,
    VP8 in .webm); with ``audio`` (float32 ``[C, S]`` at ``sample_rate``), an MP4 or MOV file
    carries it as AAC beside the same picture."""
    if audio is not None:
        from .audio import mux_audio

        path = Path(path)
        if path.suffix.lower() not in (".mp4", ".mov", ".m4v"):
            raise ValueError(f"{path}: sound is written into .mp4, .mov or .m4v files only")
        silent = path.with_name(f".{path.stem}.silent{path.suffix}")
        try:
            write_video(silent, frames, fps)
            mux_audio(silent, audio, sample_rate, path)
        finally:
            silent.unlink(missing_ok=True)
        return
    import cv2

    fourcc = {".mp4": "mp4v", ".mov": "mp4v", ".m4v": "mp4v", ".avi": "MJPG",
              ".webm": "VP80", ".mkv": "MJPG"}[path.suffix.lower()]
    writer = None
    try:
        for frame in frames:
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
                if not writer.isOpened():
                    raise RuntimeError(f"{path}: OpenCV cannot write {fourcc} video here")
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        if writer is not None:
            writer.release()
    if writer is None:
        raise ValueError(f"{path}: no frames to write")
