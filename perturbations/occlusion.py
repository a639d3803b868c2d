"""What is in front of the head: hands (and the forearm behind them) found by the annotation, as
a soft cover that a drawn scarf or glasses go behind.

The hand's shape comes from its 21 landmarks: a capsule along every bone, a filled palm, and the
forearm continuing from the wrist away from the fingers. Landmarks are joint centres, so the
capsules are drawn a little wide, then the edge is snapped to the frame's own edges with a
guided filter (the hand is usually a different colour from what it covers), and the cover is
kept inside the person mask (a hand is part of the person).
"""

from __future__ import annotations

import torch

from .annotate import HAND_BONES, MIDDLE_MCP, WRIST
from .kernels import dilate, guided_filter

FINGER = 0.13     # finger radius, in palm lengths (wrist to the middle finger's knuckle)
PALM = 0.42       # palm half-width
FOREARM = (0.3, 0.36)    # forearm radius at the wrist and at its far end
REACH = 2.6       # the forearm's length


def _capsule(px: torch.Tensor, py: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
             ra: torch.Tensor, rb: torch.Tensor) -> torch.Tensor:
    """Signed distance of pixels ``[h, w]`` to a tapered capsule between points ``a``, ``b``."""
    d = b - a
    h = (((px - a[0]) * d[0] + (py - a[1]) * d[1]) / (d * d).sum().clamp(min=1e-6)).clamp(0, 1)
    return torch.hypot(px - a[0] - h * d[0], py - a[1] - h * d[1]) - (ra + (rb - ra) * h)


def hand_cover(annotations, frames: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor | None:
    """float ``[T, y1-y0, x1-x0]`` in [0, 1]: how much of each pixel of ``box`` (x0, y0, x1, y1)
    is a hand or forearm in front of the head; None when no hand was found in the clip (the
    usual case, which then costs nothing)."""
    hands = getattr(annotations, "hands", None)
    if hands is None or not bool(torch.isfinite(hands[..., 0]).any()):
        return None
    x0, y0, x1, y1 = box
    t = frames.shape[0]
    dev = frames.device
    ys = torch.arange(y0, y1, device=dev, dtype=torch.float32).view(-1, 1) + 0.5
    xs = torch.arange(x0, x1, device=dev, dtype=torch.float32).view(1, -1) + 0.5
    cover = torch.zeros((t, y1 - y0, x1 - x0), device=dev)
    hands = hands.to(dev)
    for i in range(t):
        for pts in hands[i]:
            if not bool(torch.isfinite(pts).all()):
                continue
            p = pts[:, :2]
            palm = (p[WRIST] - p[MIDDLE_MCP]).norm()
            if float(palm) < 2:
                continue
            lo, hi = p.min(0).values - 3.5 * palm, p.max(0).values + 3.5 * palm
            if float(hi[0]) < x0 or float(lo[0]) > x1 or float(hi[1]) < y0 or float(lo[1]) > y1:
                continue
            r = FINGER * palm
            dist = torch.full((y1 - y0, x1 - x0), float("inf"), device=dev)
            for a, b in HAND_BONES:
                dist = torch.minimum(dist, _capsule(xs, ys, p[a], p[b], r, r))
            centre = 0.5 * (p[WRIST] + p[MIDDLE_MCP])
            dist = torch.minimum(dist, _capsule(xs, ys, p[WRIST], p[MIDDLE_MCP], PALM * palm, PALM * palm * 0.9))
            dist = torch.minimum(dist, _capsule(xs, ys, p[5], p[17], r * 1.3, r * 1.3))
            away = (p[WRIST] - centre) / (p[WRIST] - centre).norm().clamp(min=1e-6)
            elbow = p[WRIST] + away * REACH * palm
            dist = torch.minimum(dist, _capsule(xs, ys, p[WRIST], elbow, FOREARM[0] * palm, FOREARM[1] * palm))
            cover[i] = torch.maximum(cover[i], (0.5 - dist).clamp(0, 1))
    if not bool((cover > 0).any()):
        return None
    mask = annotations.mask[:, y0:y1, x0:x1].to(dev, torch.float32)
    cover = cover * ((mask - 0.3) / 0.4).clamp(0, 1)
    guide = frames[:, y0:y1, x0:x1].permute(0, 3, 1, 2).to(torch.float32) / 255.0
    palm_px = float(torch.nan_to_num((hands[..., WRIST, :2] - hands[..., MIDDLE_MCP, :2]).norm(dim=-1), nan=0).max())
    radius = max(2, round(0.12 * palm_px))
    refined = guided_filter(guide, cover.unsqueeze(1), radius, 2e-3).squeeze(1).clamp(0, 1)
    # The filter only moves the edge: well inside the drawn hand it stays a hand, well outside
    # it nothing.
    grown = dilate(cover.unsqueeze(1), radius).squeeze(1)
    inner = -dilate(-cover.unsqueeze(1), radius).squeeze(1)
    out = torch.where(inner >= 1, torch.ones_like(cover), torch.where(grown > 0, refined, cover))
    # Nearly all hand is all hand: a 1% trace of cloth over it would still change its pixels.
    return torch.where(out > 0.97, torch.ones_like(out), out)
