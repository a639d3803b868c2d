"""Shots: where a clip cuts or fades, found on the frames themselves, so that nothing temporal
(mask smoothing, landmark filtering, bridging a missed face) reaches from one shot into another,
or across frames further apart than a fraction of a second.

Interview recordings have title cards, cuts between cameras and fades to black; the frames an
audit samples can be seconds apart. A frame is compared with the one before it by the
histogram of its colours (a cut changes the whole distribution at once); a blank frame (black,
white or one flat colour: the bottom of a fade, a slate) is a shot of its own, so a fade through
black always separates what is before it from what is after it.
"""

from __future__ import annotations

import numpy as np

# Frames further apart than this are never smoothed or bridged together: at 25 fps that is six
# frames; sampled frames seconds apart are each on their own.
REACH = 0.25  # seconds
CUT = 0.45    # histogram intersection below which two neighbouring frames are different shots
BLANK = 6.0   # luma standard deviation (8-bit levels) below which a frame is blank
_BINS = (8, 4, 4)  # hue, saturation, value


def _signature(frame: np.ndarray) -> tuple[np.ndarray, float]:
    """A frame's normalised HSV histogram and its luma spread, on a small copy. The picture is
    brought to one mean brightness first, so that a fade (a gain on the whole frame) keeps its
    histogram and only a change of content reads as a cut."""
    import cv2

    h, w = frame.shape[:2]
    step = max(1, min(h, w) // 64)
    small = np.ascontiguousarray(frame[::step, ::step]).astype(np.float32)
    gain = 110.0 / max(float(small.mean()), 1.0)
    hsv = cv2.cvtColor(np.clip(small * gain, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(_BINS), [0, 180, 0, 256, 0, 256]).ravel()
    luma = small @ np.float32([0.299, 0.587, 0.114])
    return hist / max(float(hist.sum()), 1.0), float(luma.std())


def scan(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int32 ``[T]``: the shot of each frame (0, 1, 2, ... in order), from uint8 ``[T, H, W, 3]``,
    and bool ``[T]``: which frames are blank. A new shot starts at a cut (colour histograms of
    neighbours intersect less than ``CUT``), and at and after a blank frame."""
    shots = np.zeros(len(frames), np.int32)
    blank = np.zeros(len(frames), bool)
    prev_hist = None
    for i, frame in enumerate(frames):
        hist, spread = _signature(frame)
        blank[i] = spread < BLANK
        if i:
            cut = float(np.minimum(hist, prev_hist).sum()) < CUT
            shots[i] = shots[i - 1] + int(cut or blank[i] or blank[i - 1])
        prev_hist = hist
    return shots, blank


def find_shots(frames: np.ndarray) -> np.ndarray:
    """The shot of each frame (:func:`scan`)."""
    return scan(frames)[0]


def links(times: np.ndarray, shots: np.ndarray, reach: float = REACH) -> np.ndarray:
    """bool ``[T]``: whether each frame may be smoothed with the one before it (the same shot,
    at most ``reach`` seconds apart); the first frame has no link."""
    out = np.zeros(len(times), bool)
    if len(times) > 1:
        out[1:] = (shots[1:] == shots[:-1]) & (np.diff(np.asarray(times, np.float64)) <= reach + 1e-9)
    return out


JUMP = 0.5  # a mask that changes by more than this between neighbours changed content, not flickered


def similar(frames: np.ndarray, i: int, j: int) -> np.ndarray:
    """float32 ``[H, W]`` in [0, 1]: how alike frames ``i`` and ``j`` are around each pixel (the
    mean absolute difference over 5 x 5 pixels: 1 within 4 grey levels, 0 beyond 16)."""
    import cv2

    diff = np.abs(frames[i].astype(np.float32) - frames[j].astype(np.float32)).mean(axis=-1)
    diff = cv2.blur(diff, (5, 5))
    return np.clip((16.0 - diff) / 12.0, 0.0, 1.0).astype(np.float32)


def smooth_masks(masks: np.ndarray, frames: np.ndarray, linked: np.ndarray) -> np.ndarray:
    """A [1, 2, 1]/4 filter over time of float ``[T, H, W]`` masks, between linked neighbours only
    and, pixel by pixel, only where the picture stayed the same and the mask only flickered (it
    moved by at most ``JUMP``). That is what keeps a person who moved, left or was cut away from
    leaving a ghost in the neighbouring frame, where a wall behind them may match their colour."""
    t = len(masks)
    masks = masks.astype(np.float32)
    num = 2.0 * masks
    den = np.full(masks.shape, 2.0, np.float32)
    for i in range(1, t):
        if linked[i]:
            w = similar(frames, i, i - 1) * (np.abs(masks[i] - masks[i - 1]) <= JUMP)
            num[i] += w * masks[i - 1]
            den[i] += w
            num[i - 1] += w * masks[i]
            den[i - 1] += w
    return (num / den).astype(np.float32)
