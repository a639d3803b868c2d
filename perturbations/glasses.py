"""Glasses drawn onto the face: rims, bridge, temples and lenses you see the eyes through.

Every frame the glasses are anchored on the eye corners and irises (lens centres), the nose
bridge and the temples, scaled by the distance between the eyes and rotated with the head's
roll; the pose is smoothed over time so they sit still on the face instead of jittering.

Drawing is a signed-distance rendering in the glasses' own coordinate frame (units of the eye
distance), evaluated for all frames at once on the clip's device. What makes them read as glasses
rather than a sticker:

- lenses are see-through: what is behind is multiplied by the lens's transmission and tint
  (clear lenses pass almost everything, sunglasses a quarter of it, so the eyes stay faintly
  visible), plus a reflection of the room, brighter towards the top, and a soft highlight placed
  by the light's direction;
- rims, bridge and temples have thickness: a round profile across them, shaded by the clip's own
  light (fitted to the face, :func:`look.face_light`) with a highlight, plastic or metal;
- temples run from the hinges back to the ears, as far as the face's outline;
- the frame casts a faint soft shadow on the skin, away from the light, and sunglasses a tinted
  one below the lenses;
- edges are as soft as the clip's, the clip's sensor noise is added, and a hand in front of the
  face stays in front (:mod:`occlusion`).

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
from .look import clip_light, clip_look, linear_to_srgb, srgb8_to_linear, srgb_to_linear
from .occlusion import hand_cover
from .base import Perturbation, register


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
    transmission: float        # share of the light behind that passes the lens
    reflection: float          # share of the room the lens mirrors
    metal: bool                # metal (a sharp, coloured highlight) or plastic
    frame_colours: tuple[tuple[int, int, int], ...]
    tints: tuple[tuple[int, int, int], ...]
    mottled: bool = False      # tortoiseshell-like pattern in the frame
    description: str = ""


STYLES: dict[str, Style] = {
    "thin": Style(0.39, 0.25, 0.29, 2.3, 0.0, 0.022, 0.02, 0.018, 0.05, 0.93, 0.05, True,
                  ((196, 164, 96), (190, 190, 196), (92, 94, 100)), ((236, 242, 255),),
                  description="thin metal frames with clear lenses"),
    "thick": Style(0.43, 0.26, 0.25, 4.0, 0.12, 0.07, 0.06, 0.05, 0.06, 0.92, 0.05, False,
                   ((22, 20, 20), (92, 56, 30), (110, 28, 32), (28, 34, 62)), ((240, 244, 255),),
                   mottled=True, description="thick plastic frames with clear lenses"),
    "sunglasses": Style(0.45, 0.29, 0.35, 2.8, 0.05, 0.042, 0.04, 0.038, 0.07, 0.2, 0.06, False,
                        ((20, 20, 22), (60, 42, 28), (170, 140, 80)),
                        ((70, 62, 56), (96, 74, 48), (60, 78, 64)),
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


def eye_geometry(landmarks: torch.Tensor, linked: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-frame anchors in pixels: lens centres (eye corners blended with the irises), the
    centre between them, eye distance and roll, smoothed over time between ``linked`` frames."""
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
    pose = torch.from_numpy(smooth_time(pose, linked=linked)).to(landmarks.device)
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
                "pattern_phase": float(rng.uniform(0, 2 * math.pi)),
                "noise_seed": int(rng.integers(2**31))}

    def transform(self, frames: torch.Tensor, params: Mapping[str, Any], annotations) -> torch.Tensor:
        geo = eye_geometry(annotations.landmarks, annotations.links)
        t, h, w = frames.shape[:3]
        box = eye_box(geo)
        x0 = int(max(0, math.floor(float(box[:, 0].min()))))
        y0 = int(max(0, math.floor(float(box[:, 1].min()))))
        x1 = int(min(w, math.ceil(float(box[:, 2].max()))))
        y1 = int(min(h, math.ceil(float(box[:, 3].max()))))
        out = frames.clone()
        if x1 <= x0 or y1 <= y0:
            return out
        dev = frames.device
        s = self.style
        look = clip_look(frames, annotations)
        light = clip_light(frames, annotations)
        blur = look.person_blur if math.isfinite(look.person_blur) else 0.8
        parts = self._render(geo, params, x0, y0, x1, y1, light, max(1.0, 1.4 * blur),
                             outline=self._outline(annotations.landmarks))
        white = torch.tensor(look.white, device=dev, dtype=torch.float32)
        behind = srgb8_to_linear(frames[:, y0:y1, x0:x1])
        # The frame's shadow on the skin (seen through the lens too).
        behind = behind * (1 - parts["shadow"]).unsqueeze(-1)
        tint = srgb_to_linear(torch.tensor(params["tint"], dtype=torch.float32, device=dev) / 255.0)
        tint = tint / tint.max()
        through = behind * (s.transmission * tint)
        lens = through + white * parts["reflection"].unsqueeze(-1)
        a_lens = parts["lens"].unsqueeze(-1)
        lensed = behind * (1 - a_lens) + lens * a_lens
        colour = srgb_to_linear(torch.tensor(params["frame_colour"], dtype=torch.float32, device=dev) / 255.0)
        albedo = colour * (1 - 0.55 * parts["pattern"]).unsqueeze(-1)
        spec_colour = colour / colour.max().clamp(min=1e-3) if s.metal else torch.ones_like(colour)
        frame_lin = (albedo * parts["diffuse"].unsqueeze(-1) + spec_colour * parts["specular"].unsqueeze(-1)) * white
        a_frame = parts["frame"].unsqueeze(-1)
        edited = linear_to_srgb(lensed * (1 - a_frame) + frame_lin * a_frame)
        # Sensor noise over what was drawn (drawn on the CPU: the same numbers on every device).
        gen = torch.Generator().manual_seed(int(params.get("noise_seed", 0)))
        grain = torch.randn((t, y1 - y0, x1 - x0, 1), generator=gen).to(dev) * (max(look.noise, 0.6) / 255.0)
        drawn = torch.maximum(parts["lens"], parts["frame"]).unsqueeze(-1)
        edited = edited + grain * drawn
        cover = hand_cover(annotations, frames, (x0, y0, x1, y1))
        region = frames[:, y0:y1, x0:x1].to(torch.float32) / 255.0
        if cover is not None:
            c = cover.unsqueeze(-1)
            edited = edited * (1 - c) + region * c
        new = (edited * 255.0).round_().clamp_(0, 255).to(torch.uint8)
        out[:, y0:y1, x0:x1] = new
        return out

    @staticmethod
    def _outline(landmarks: torch.Tensor) -> torch.Tensor:
        """The two ends of the face oval at eye level, ``[T, 2, 2]``: where a temple disappears
        behind the hair or the ear."""
        return torch.stack([landmarks[:, RIGHT_TEMPLE, :2], landmarks[:, LEFT_TEMPLE, :2]], 1)

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
        geo = eye_geometry(annotations.landmarks, annotations.links)
        u, v, _, _ = self._local(geo, params, 0, 0, size[1], size[0])
        masks = [self._lens_sdf(u, v, side) < 0 for side in (-0.5, 0.5)]
        return tuple(masks) if separate else masks[0] | masks[1]

    def _render(self, geo, params, x0, y0, x1, y1, light, ramp: float, outline: torch.Tensor):
        """Per pixel of the box, per frame: lens and frame coverage, the frame's diffuse light
        and highlight, the lens's reflection, the shadow on the skin, the frame's pattern."""
        s = self.style
        u, v, d, (cx, cy, cos, sin) = self._local(geo, params, x0, y0, x1, y1)
        px = d  # pixels per unit, per frame
        lens_sdf = torch.minimum(self._lens_sdf(u, v, -0.5), self._lens_sdf(u, v, 0.5))
        lens_px = lens_sdf * px
        cover_lens = (0.5 - lens_px / ramp).clamp(0, 1)

        def band(dist_px: torch.Tensor, half_px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """Coverage of a band of half-width ``half_px`` round a centre line at signed distance
            ``dist_px``, and its normal: a round profile across the band, tilted along the
            distance's gradient (image axes), facing the camera on the centre line."""
            cover = ((half_px - dist_px.abs()) / ramp + 0.5).clamp(0, 1)
            gy, gx = torch.gradient(dist_px, dim=(1, 2))
            g = torch.hypot(gx, gy).clamp(min=1e-6)
            t = (dist_px / half_px.clamp(min=0.5)).clamp(-0.97, 0.97)
            n = torch.stack([gx / g * t, gy / g * t, (1 - t * t).sqrt()], 0)
            return cover, n

        rim_cover, rim_n = band(lens_px, s.rim * px / 2 + 0.3)
        # Bridge: two segments meeting above the lens centres, over the nose.
        inner = 0.5 - s.half_width * 0.92
        ytop = s.drop - s.top * 0.55
        mid = (torch.zeros_like(cx), torch.full_like(cx, s.drop - s.top * 0.8))
        bridge_d = torch.minimum(
            _capsule(u, v, (torch.full_like(cx, -inner), torch.full_like(cx, ytop)), mid),
            _capsule(u, v, mid, (torch.full_like(cx, inner), torch.full_like(cx, ytop))))
        bridge_cover, bridge_n = band(bridge_d * px, s.bridge * px / 2 + 0.3)
        # Temples: from each hinge at the lens's outer top corner back towards the ear, as far as
        # the face's outline (beyond it they go behind the hair or the ear), fading out there.
        temple_cover = torch.zeros_like(u)
        temple_d = torch.full_like(u, 1e3)
        for k, side in enumerate((-1.0, 1.0)):
            tx = outline[:, k, 0].view(-1, 1, 1)
            ty = outline[:, k, 1].view(-1, 1, 1)
            tu = ((tx - cx) * cos + (ty - cy) * sin) / d
            tv = (-(tx - cx) * sin + (ty - cy) * cos) / d
            tu_side = torch.where(tu * side > 0, tu, -tu)     # landmark order is the subject's
            start = (torch.full_like(cx, side * (0.5 + s.half_width * 0.95)), torch.full_like(cx, s.drop - s.top * 0.5))
            end = (tu_side, tv.clamp(max=s.drop))
            dist = _capsule(u, v, start, end)
            # Along the temple, 0 at the hinge and 1 at the face's outline: fade the last part.
            along = ((u - start[0]) * (end[0] - start[0]) + (v - start[1]) * (end[1] - start[1])) / (
                (end[0] - start[0]) ** 2 + (end[1] - start[1]) ** 2).clamp(min=1e-6)
            fade = 1 - ((along - 0.85) / 0.15).clamp(0, 1)
            temple_d = torch.minimum(temple_d, dist)
            along_cover = ((s.temple * px / 2 + 0.3 - dist * px) / ramp + 0.5).clamp(0, 1) * fade
            temple_cover = torch.maximum(temple_cover, along_cover)
        _, temple_n = band(temple_d * px, s.temple * px / 2 + 0.3)
        cover_frame = torch.maximum(torch.maximum(rim_cover, bridge_cover), temple_cover)
        n = torch.where((rim_cover >= bridge_cover).unsqueeze(0), rim_n, bridge_n)
        n = torch.where((temple_cover > torch.maximum(rim_cover, bridge_cover)).unsqueeze(0), temple_n, n)
        # Rotate the profile's tilt from image axes as computed (the distances are in the
        # glasses' frame, whose axes are the image's turned by the roll).
        n = torch.stack([n[0] * cos - n[1] * sin, n[0] * sin + n[1] * cos, n[2]], 0)
        diffuse = light.shade(n, floor=0.25)
        # Light from above: the top of the frame a little brighter (the brow shades the bottom).
        diffuse = diffuse * (1.08 - 0.16 * ((v - s.drop + s.top) / (s.top + s.bottom)).clamp(0, 1))
        lv = torch.tensor(light.direction, device=u.device, dtype=torch.float32)
        half_v = lv + torch.tensor([0.0, 0.0, 1.0], device=u.device)
        half_v = half_v / half_v.norm()
        shine = (n * half_v.view(3, 1, 1, 1)).sum(0).clamp(min=0)
        # A thin rim shows less of the highlight (it is narrower than the highlight's lobe).
        thin = (s.rim * px / 4).clamp(0.25, 1.0)
        specular = shine ** (60 if s.metal else 40) * (0.6 if s.metal else 0.12) * thin
        # The lens: the room mirrored, brighter towards the top, and a soft highlight on the
        # side the light comes from (both lenses alike).
        lu = (u.abs() - 0.5) * torch.sign(u)
        lv_ = (v - s.drop) / (s.top + s.bottom)
        sky = s.reflection * (0.1 + 1.8 * (0.45 - lv_).clamp(0, 1) ** 2)
        hx = -0.18 * float(light.direction[0]) * s.half_width
        hy = -0.25 * (s.top + s.bottom) + 0.1 * float(light.direction[1])
        spot = torch.exp(-(((lu - hx) / (0.3 * s.half_width)) ** 2 + ((lv_ - hy / (s.top + s.bottom)) / 0.18) ** 2))
        reflection = sky + spot * (0.02 + 0.6 * s.reflection)
        # Shadows on the skin: the frame's outline moved away from the light and blurred, and
        # for tinted lenses the lens's too, faint.
        sdx = -float(light.direction[0]) * 0.035
        sdy = 0.03 + max(0.0, -float(light.direction[1])) * 0.03
        soft = ramp + 0.025 * px
        lens_shift = torch.minimum(self._lens_sdf(u - sdx, v - sdy, -0.5), self._lens_sdf(u - sdx, v - sdy, 0.5)) * px
        rim_shadow = ((s.rim * px / 2 + 0.3 - lens_shift.abs()) / soft + 0.5).clamp(0, 1)
        lens_shadow = (0.5 - lens_shift / soft).clamp(0, 1) * (1 - s.transmission) * 0.25
        shadow = (torch.maximum(rim_shadow * 0.28, lens_shadow)) * (1 - cover_frame)
        if s.mottled:
            ph = params["pattern_phase"]
            pattern = (0.5 + 0.5 * torch.sin(u * 31 + ph + 2.0 * torch.sin(v * 19 - ph))) ** 3
        else:
            pattern = torch.zeros_like(u)
        return {"lens": cover_lens, "frame": cover_frame, "diffuse": diffuse, "specular": specular,
                "reflection": reflection, "shadow": shadow, "pattern": pattern}


for _style in STYLES:
    register(f"glasses:{_style}", lambda s=_style: Glasses(s))
