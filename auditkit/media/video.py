"""Writing frames to a video file (the sample clips, previews, an HTTP rater's MP4 bodies)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FPS = 15


def write_video(path: Path, frames: np.ndarray, fps: float = FPS) -> None:
    """RGB uint8 [T, H, W, 3] to a video file (mp4v in .mp4/.mov, MJPG in .avi, VP8 in .webm)."""
    import cv2

    fourcc = {".mp4": "mp4v", ".mov": "mp4v", ".m4v": "mp4v", ".avi": "MJPG",
              ".webm": "VP80", ".mkv": "MJPG"}[path.suffix.lower()]
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write {fourcc} video here")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
