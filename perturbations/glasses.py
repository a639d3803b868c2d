"""Glasses drawn onto the face: rims, bridge, temples and tinted, partly transparent lenses.

Every frame the glasses are anchored on the eye corners and irises (lens centres), the nose
bridge and the temples, scaled by the distance between the eyes and rotated with the head's
roll; the pose is smoothed over time so they sit still on the face instead of jittering.

Drawing is a signed-distance rendering in the glasses' own coordinate frame (units of the eye
distance), evaluated for all frames at once on the clip's device, with one-pixel anti-aliasing.
Only a box around the eyes is computed and touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from .annotate import (LEFT_EYE_INNER, LEFT_EYE_OUTER, LEFT_IRIS, LEFT_TEMPLE, NOSE_BRIDGE,
                       RIGHT_EYE_INNER, RIGHT_EYE_OUTER, RIGHT_IRIS, RIGHT_TEMPLE, smooth_time)
from .base import Perturbation, register, to_float, to_uint8


@dataclass(frozen=True)
class Style:
    half_width: float          # lens half-width, in eye distances
    top: float                 # lens half-height above its centre
    bottom: float              # and below
    exponent: float            # superellipse exponent: 2 oval, 4+ rectangular
    taper: float               # > 0: wider at the top (browline, wayfarer)
    rim: float                 # rim thickness
    bridge: float
    temple: float
    drop: float                # lens centre below the eye centre
    lens_alpha: tuple[float, float]   # tint opacity at the lens top and bottom
    frame_colours: tuple[tuple[int, int, int], ...]
    tints: tuple[tuple[int, int, int], ...]
    mottled: bool = False      # tortoiseshell-like pattern in the frame
    description: str = ""


STYLES: dict[str, Style] = {
    "thin": Style(0.39, 0.25, 0.29, 2.3, 0.0, 0.020, 0.018, 0.016, 0.05, (0.06, 0.06),
                  ((196, 164, 96), (190, 190, 196), (92, 94, 100)), ((225, 235, 255),),
                  description="thin metal frames with clear lenses"),
    "thick": Style(0.43, 0.26, 0.25, 4.0, 0.12, 0.070, 0.060, 0.050, 0.06, (0.08, 0.08),
                   ((22, 20, 20), (92, 56, 30), (110, 28, 32), (28, 34, 62)), ((235, 240, 255),),
                   mottled=True, description="thick plastic frames with clear lenses"),
    "sunglasses": Style(0.45, 0.29, 0.35, 2.8, 0.05, 0.042, 0.040, 0.038, 0.07, (0.88, 0.72),
                        ((20, 20, 22), (60, 42, 28), (170, 140, 80)),
                        ((18, 16, 14), (48, 34, 20), (22, 36, 26)),
                        description="dark sunglasses"),
}


def _capsule(px: torch.Tensor, py: torch.Tensor, a: tuple[torch.Tensor, torch.Tensor],
             b: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Distance from points to the segment a–b (per frame endpoints broadcast over pixels)."""
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    h = (((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy + 1e-9)).clamp(0, 1)
    return torch.hypot(px - ax - h * dx, py - ay - h * dy)


def eye_geometry(landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-frame anchors in pixels: lens centres (eye corners blended with the irises), the
    centre between them, eye distance and roll, smoothed over time."""
    lm = landmarks[..., :2]
    right = 0.25 * (lm[:, RIGHT_EYE_OUTER] + lm[:, RIGHT_EYE_INNER]) + 0.5 * lm[:, RIGHT_IRIS]
    left = 0.25 * (lm[:, LEFT_EYE_OUTER] + lm[:, LEFT_EYE_INNER]) + 0.5 * lm[:, LEFT_IRIS]
    # Image-left eye first, so the local x axis runs left to right across the image.
    first = torch.where((right[:, :1] <= left[:, :1]), right, left)
    second = torch.where((right[:, :1] <= left[:, :1]), left, right)
    centre = 0.5 * (first + second)
    delta = second - first
    dist = torch.linalg.vector_norm(delta, dim=1)
    roll = torch.atan2(delta[:, 1], delta[:, 0])
    pose = np.concatenate([centre.cpu().numpy(), dist[:, None].cpu().numpy(),
                           roll[:, None].cpu().numpy()], axis=1)
    pose = torch.from_numpy(smooth_time(pose)).to(landmarks.device)
    return {"centre": pose[:, :2], "dist": pose[:, 2], "roll": pose[:, 3],
            "temples": torch.stack([lm[:, RIGHT_TEMPLE], lm[:, LEFT_TEMPLE]], 1),
            "bridge": lm[:, NOSE_BRIDGE]}


def eye_box(geometry: Mapping[str, torch.Tensor], half_w: float = 1.6,
            half_h: float = 0.85) -> torch.Tensor:
    """Per-frame (x0, y0, x1, y1) of the region the glasses may touch, sized by eye distance."""
    c, d = geometry["centre"], geometry["dist"]
    return torch.stack([c[:, 0] - half_w * d, c[:, 1] - half_h * d,
                        c[:, 0] + half_w * d, c[:, 1] + half_h * d], dim=1)


class Glasses(Perturbation):
    family = "glasses"
    requires = frozenset({"face"})

    def __init__(self, style: str) -> None:
        self.style_name = style
        self.style = STYLES[style]
        self.name = f"glasses:{style}"
        self.description = self.style.description

    def make_params(self, frames, annotations, rng: np.random.Generator) -> dict[str, Any]:
        s = self.style
        return {"frame_colour": [int(c) for c in s.frame_colours[rng.integers(len(s.frame_colours))]],
                "tint": [int(c) for c in s.tints[rng.integers(len(s.tints))]],
                "scale": float(rng.uniform(0.96, 1.04)),       # frame size varies between pairs
                "pattern_phase": float(rng.uniform(0, 2 * math.pi))}

    def transform(self, frames: torch.Tensor, params: Mapping[str, Any], annotations) -> torch.Tensor:
        geo = eye_geometry(annotations.landmarks)
        t, h, w = frames.shape[:3]
        box = eye_box(geo)
        x0 = int(max(0, math.floor(float(box[:, 0].min()))))
        y0 = int(max(0, math.floor(float(box[:, 1].min()))))
        x1 = int(min(w, math.ceil(float(box[:, 2].max()))))
        y1 = int(min(h, math.ceil(float(box[:, 3].max()))))
        out = frames.clone()
        if x1 <= x0 or y1 <= y0:
            return out
        region = to_float(frames[:, y0:y1, x0:x1])
        cover_lens, cover_frame, shade, lens_alpha, pattern = self._render(geo, params, x0, y0,
                                                                         x1, y1)
        dev = frames.device
        tint = torch.tensor(params["tint"], dtype=torch.float32, device=dev) / 255.0
        colour = torch.tensor(params["frame_colour"], dtype=torch.float32, device=dev) / 255.0
        a_lens = (cover_lens * lens_alpha).unsqueeze(-1)
        # A lens darkens and tints what is behind it; a faint reflection brightens its top.
        lensed = region * (1 - a_lens) + tint * a_lens
        frame_rgb = (colour * shade.unsqueeze(-1)) * (1 - 0.35 * pattern.unsqueeze(-1))
        a_frame = cover_frame.unsqueeze(-1)
        edited = (lensed * (1 - a_frame) + frame_rgb.clamp(0, 1) * a_frame)
        out[:, y0:y1, x0:x1] = to_uint8(edited)
        return out

    def _local(self, geo, params, x0, y0, x1, y1):
        """Pixel grid of a region → the glasses' frame: u across the eyes, v downwards, in eye
        distances (per frame), plus pixels per unit and the rotation."""
        dev = geo["centre"].device
        ys = torch.arange(y0, y1, device=dev, dtype=torch.float32).view(1, -1, 1) + 0.5
        xs = torch.arange(x0, x1, device=dev, dtype=torch.float32).view(1, 1, -1) + 0.5
        cx = geo["centre"][:, 0].view(-1, 1, 1)
        cy = geo["centre"][:, 1].view(-1, 1, 1)
        d = (geo["dist"] * params["scale"]).view(-1, 1, 1)
        cos, sin = torch.cos(geo["roll"]).view(-1, 1, 1), torch.sin(geo["roll"]).view(-1, 1, 1)
        u = ((xs - cx) * cos + (ys - cy) * sin) / d
        v = (-(xs - cx) * sin + (ys - cy) * cos) / d
        return u, v, d, (cx, cy, cos, sin)

    def _lens_sdf(self, u, v, side: float) -> torch.Tensor:
        s = self.style
        lu = (u - side).abs()
        lv = v - s.drop
        half_h = torch.where(lv < 0, torch.full_like(lv, s.top), torch.full_like(lv, s.bottom))
        half_w = s.half_width * (1 - s.taper * lv / (s.top + s.bottom))
        f = ((lu / half_w).abs().pow(s.exponent) + (lv / half_h).abs().pow(s.exponent)
             ).pow(1.0 / s.exponent) - 1.0
        return f * min(s.half_width, s.top)  # in units; close to a distance near the edge

    def lens_mask(self, annotations, params: Mapping[str, Any], size: tuple[int, int], *,
                  separate: bool = False):
        """bool ``[T, H, W]``: pixels inside the lenses (image-left and image-right lens
        separately with ``separate=True``). For checks that the eyes sit behind the lenses."""
        geo = eye_geometry(annotations.landmarks)
        u, v, _, _ = self._local(geo, params, 0, 0, size[1], size[0])
        masks = [self._lens_sdf(u, v, side) < 0 for side in (-0.5, 0.5)]
        return tuple(masks) if separate else masks[0] | masks[1]

    def _render(self, geo, params, x0, y0, x1, y1):
        s = self.style
        u, v, d, (cx, cy, cos, sin) = self._local(geo, params, x0, y0, x1, y1)
        px = d  # pixels per unit, per frame
        lens_sdf = torch.minimum(self._lens_sdf(u, v, -0.5), self._lens_sdf(u, v, 0.5))
        lens_px = lens_sdf * px
        cover_lens = (0.5 - lens_px).clamp(0, 1)
        rim = (s.rim * px / 2 + 0.5 - lens_px.abs()).clamp(0, 1)

        # Bridge: two segments meeting above the lens centres, over the nose.
        inner = 0.5 - s.half_width * 0.92
        ytop = s.drop - s.top * 0.55
        mid = (torch.zeros_like(cx), torch.full_like(cx, s.drop - s.top * 0.8))
        bridge_d = torch.minimum(
            _capsule(u, v, (torch.full_like(cx, -inner), torch.full_like(cx, ytop)), mid),
            _capsule(u, v, mid, (torch.full_like(cx, inner), torch.full_like(cx, ytop))))
        bridge = (s.bridge * px / 2 + 0.5 - bridge_d * px).clamp(0, 1)

        # Temples: from each lens's outer top corner towards the temple landmark.
        temples = torch.zeros_like(u)
        for k, side in enumerate((-1.0, 1.0)):
            tx = geo["temples"][:, k, 0].view(-1, 1, 1)
            ty = geo["temples"][:, k, 1].view(-1, 1, 1)
            tu = ((tx - cx) * cos + (ty - cy) * sin) / d
            tv = (-(tx - cx) * sin + (ty - cy) * cos) / d
            # The landmark order is the subject's; pick the temple on this side of the image.
            tu_side = torch.where(tu * side > 0, tu, -tu)
            start = (torch.full_like(cx, side * (0.5 + s.half_width * 0.95)),
                     torch.full_like(cx, s.drop - s.top * 0.5))
            end = (tu_side, tv.clamp(max=s.drop))
            dist = _capsule(u, v, start, end)
            temples = torch.maximum(temples, (s.temple * px / 2 + 0.5 - dist * px).clamp(0, 1))

        cover_frame = torch.maximum(torch.maximum(rim, bridge), temples)
        # Light from above: frames a little brighter on top, lenses darker at the top (gradient).
        shade = 1.15 - 0.3 * ((v - s.drop + s.top) / (s.top + s.bottom)).clamp(0, 1)
        top_a, bottom_a = s.lens_alpha
        lens_alpha = top_a + (bottom_a - top_a) * ((v - s.drop + s.top) / (s.top + s.bottom)).clamp(0, 1)
        glare = torch.exp(-(((u + v * 0.8) % 1.0 - 0.3) / 0.06) ** 2) * 0.08
        lens_alpha = (lens_alpha + glare).clamp(0, 0.95)
        if s.mottled:
            ph = params["pattern_phase"]
            pattern = (0.5 + 0.5 * torch.sin(u * 31 + ph + 2.0 * torch.sin(v * 19 - ph))) ** 3
        else:
            pattern = torch.zeros_like(u)
        return cover_lens, cover_frame, shade, lens_alpha, pattern


for _style in STYLES:
    register(f"glasses:{_style}", lambda s=_style: Glasses(s))
