"""Writing frames to a video file (the sample clips, previews, an HTTP rater's MP4 bodies)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

FPS = 15


def write_video(path: Path, frames: np.ndarray | Iterable[np.ndarray], fps: float = FPS) -> None:
    """RGB uint8 frames ([T, H, W, 3], or any iterable of [H, W, 3], written as they come: a long
    clip need not be held in memory) to a video file (mp4v in .mp4/.mov/.m4v, MJPG in .avi/.mkv,
    VP8 in .webm)."""
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
