"""Measurements behind the realism checks (issue 15): what a sceptical reviewer looks for, as
numbers a test can hold an edit to.

- :func:`border_cuts`: the longest run of changed pixels along the frame's border where the
  person is not (an edit that ends in a straight cut at the border, where no body leaves the
  frame, has one).
- :func:`landmark_shift`: how far the face mesh's landmarks move when it looks at the edited
  frame instead of the original, over the landmarks the edit did not cover.
- :func:`ring_stats`: luminance and chroma of the background in a ring round the person.
"""

from __future__ import annotations

import numpy as np
import torch

from auditkit.perturbations.kernels import dilate

BORDER_LINES = 2      # the outermost rows and columns that count as "the border"
PERSON_SLACK = 3      # the person's mask along the border, grown by this many pixels


def _longest_run(flags: np.ndarray) -> int:
    """Length of the longest run of True in a 1-D bool array."""
    if not flags.any():
        return 0
    padded = np.concatenate([[0], flags.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max())


def border_cuts(changed: torch.Tensor, mask: torch.Tensor) -> list[int]:
    """Per frame, the longest run of changed pixels along any border line (the outermost
    ``BORDER_LINES`` rows and columns) where the person mask (> 0.5, grown by ``PERSON_SLACK``
    pixels along the line) is absent."""
    changed = changed.cpu().numpy()
    person = mask.cpu().numpy() > 0.5
    out = []
    for c, p in zip(changed, person):
        worst = 0
        lines = []
        for k in range(BORDER_LINES):
            lines += [(c[k], p[k]), (c[-1 - k], p[-1 - k]), (c[:, k], p[:, k]), (c[:, -1 - k], p[:, -1 - k])]
        for cl, pl in lines:
            grown = np.convolve(pl.astype(np.int32), np.ones(2 * PERSON_SLACK + 1, np.int32), "same") > 0
            worst = max(worst, _longest_run(cl & ~grown))
        out.append(worst)
    return out


def mesh_points(face_mesh, frame: np.ndarray) -> np.ndarray | None:
    """478 landmarks (pixel x, y) of the face MediaPipe finds in ``frame``, or None."""
    found = face_mesh.process(np.ascontiguousarray(frame)).multi_face_landmarks
    if not found:
        return None
    h, w = frame.shape[:2]
    return np.array([(p.x * w, p.y * h) for p in found[0].landmark])


def landmark_shift(face_mesh, original: np.ndarray, edited: np.ndarray, changed: np.ndarray,
                   grow: int = 3) -> tuple[float, float, int] | None:
    """(median, 95th percentile) distance in pixels between the landmarks found on ``original``
    and on ``edited``, over landmarks outside the changed region (grown by ``grow`` pixels), and
    how many landmarks that was. None when the mesh finds no face in the edited frame; raises
    when it finds none in the original (the check cannot be made there)."""
    before = mesh_points(face_mesh, original)
    if before is None:
        raise ValueError("the face mesh finds no face in the original frame")
    after = mesh_points(face_mesh, edited)
    if after is None:
        return None
    covered = dilate(torch.from_numpy(changed).float()[None, None], grow)[0, 0].numpy() > 0
    h, w = changed.shape
    xy = np.round(before).astype(int)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    free = inside.copy()
    free[inside] = ~covered[xy[inside, 1], xy[inside, 0]]
    if not free.any():
        return 0.0, 0.0, 0
    d = np.linalg.norm(after[free] - before[free], axis=1)
    return float(np.median(d)), float(np.percentile(d, 95)), int(free.sum())


def _ycc(frames: np.ndarray) -> np.ndarray:
    """Luma Y' and chroma (Cb, Cr) of sRGB uint8 pixels ``[..., 3]`` (BT.601, 0-255)."""
    x = frames.astype(np.float64)
    y = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    cb = 128 + 0.564 * (x[..., 2] - y)
    cr = 128 + 0.713 * (x[..., 0] - y)
    return np.stack([y, cb, cr], -1)


def ring(mask: torch.Tensor, width: float = 0.12) -> np.ndarray:
    """bool ``[T, H, W]``: background pixels (mask < 0.05) within ``width`` of the frame's
    height of the person (mask > 0.5)."""
    t, h, w = mask.shape
    r = max(2, int(round(width * h)))
    near = dilate((mask > 0.5).float().unsqueeze(1), r).squeeze(1) > 0
    return (near & (mask < 0.05)).cpu().numpy()


def ring_stats(frames: np.ndarray, where: np.ndarray, spread: tuple[float, float] = (5, 95)) -> dict[str, np.ndarray]:
    """Over the pixels ``where`` of ``frames``: the mean of Y', Cb, Cr and their ``spread``
    percentiles (``low``, ``high``)."""
    px = _ycc(frames[where])
    return {"mean": px.mean(0), "low": np.percentile(px, spread[0], axis=0),
            "high": np.percentile(px, spread[1], axis=0)}
