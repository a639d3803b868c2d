"""Headwear: a headscarf (hijab-like) that covers the hair, the head and the neck and leaves the
face open.

Geometry comes from the smoothed face landmarks, in face-relative units (face heights, from
forehead landmark to chin): the head is an ellipse dome around the face, grown per clip (a
little) where the person mask shows hair or a hat reaching further; hair still outside it is
painted out with the background around it. The drape hangs from the dome past the chin, over the
neck and widening onto the shoulders, kept near the person's silhouette. The face opening is the
face oval (a polar radius table) pulled in at the forehead so the hairline is covered.

Shading is a normal field — a rounded dome and drape, a rolled edge round the face, folds along
the jaw, folds fanning from a pin under the chin, one end crossing to the other shoulder, and
hanging folds, all in face-relative coordinates so they move with the head — lit from above. It
is smooth, so it is computed on a coarse grid and upsampled; the coverage (anti-aliased edges,
the face opening) is per pixel. Everything runs for all frames at once on the frames' device,
inside one box around the head and neck; inside the face opening only a narrow shadow under the
forehead edge changes pixels.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from .annotate import CHIN, FACE_OVAL, FOREHEAD, smooth_time
from .base import Perturbation, register
from .glasses import eye_geometry
from .kernels import gaussian_blur, resize_bilinear

# sRGB colours of common scarf fabrics.
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (36, 35, 39), "navy": (38, 46, 80), "burgundy": (110, 34, 48),
    "beige": (186, 166, 138), "grey": (128, 128, 132), "olive": (98, 98, 64),
    "dusty pink": (190, 150, 150),
}
ANGLES = 128          # resolution of the face-oval radius table
RAYS, RAY_STEPS = 48, 40   # hair probes over the upper half of the head
MAX_HAIR = 0.55       # hair or a hat is followed at most this far beyond the face oval
MAX_GROWTH = 0.1      # the dome grows at most this much for big hair; hair beyond is painted out
HAIR_ZONE = 1.45      # hair is painted out up to this many dome radii from its centre
DOME_CENTRE = -0.15   # the dome's centre, about eye level (face centre = 0, forehead = -0.5)
DRAPE_BELOW = 1.2     # the drape ends this far below the chin
SHADE_GRID = 40       # shading samples per face height; the shading is smooth below that
GRAIN = 1.5 / 255     # std of the per-pixel noise added to the fabric
EDGE = 0.7            # outer edge sharpness (1: a one-pixel ramp); video edges are a little soft
SKIN_LUMA = 0.5       # the fabric's exposure follows the face's luma relative to this


def _smoothstep(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    s = ((x - lo) / (hi - lo)).clamp(0, 1)
    return s * s * (3 - 2 * s)


def _lookup(table: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Periodic linear interpolation of per-frame tables ``[T, K]`` at angles ``[T, h, w]``."""
    t, k = table.shape
    f = (theta + math.pi) * (k / (2 * math.pi))
    i0 = f.floor()
    frac = (f - i0).reshape(t, -1)
    i0 = i0.long().remainder(k).reshape(t, -1)
    a, b = table.gather(1, i0), table.gather(1, (i0 + 1).remainder(k))
    return (a + (b - a) * frac).view(theta.shape)


def _coarse_blur(x: torch.Tensor, sigma: float, step: int) -> torch.Tensor:
    """Gaussian blur of ``[N, C, h, w]`` computed on a grid ``step`` times coarser (area
    averages), upsampled back: for the wide, smooth blurs, at a fraction of the cost."""
    if step <= 1:
        return gaussian_blur(x, sigma)
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(-(-h // step), -(-w // step)), mode="area")
    return resize_bilinear(gaussian_blur(small, sigma / step), (h, w))


def head_geometry(landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per frame: face centre (mid forehead–chin), face height (pixels), roll (eye line), chin,
    and the face oval as radii over ``ANGLES`` angles from the eye line, in face heights."""
    dev = landmarks.device
    lm = landmarks[..., :2].detach().cpu().numpy().astype(np.float64)
    roll = eye_geometry(landmarks)["roll"].cpu().numpy().astype(np.float64)
    pose = smooth_time(np.concatenate([0.5 * (lm[:, FOREHEAD] + lm[:, CHIN]), lm[:, CHIN],
                                       np.linalg.norm(lm[:, FOREHEAD] - lm[:, CHIN], axis=1)[:, None]], 1))
    centre, chin, height = pose[:, :2], pose[:, 2:4], pose[:, 4]
    grid = np.linspace(-math.pi, math.pi, ANGLES + 1)[:-1]
    radius = np.empty((len(lm), ANGLES))
    for i in range(len(lm)):
        d = lm[i, list(FACE_OVAL)] - centre[i]
        c, s = math.cos(roll[i]), math.sin(roll[i])
        u, v = (d[:, 0] * c + d[:, 1] * s) / height[i], (-d[:, 0] * s + d[:, 1] * c) / height[i]
        radius[i] = np.interp(grid, np.arctan2(v, u), np.hypot(u, v), period=2 * math.pi)

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32, device=dev)

    return {"centre": t(centre), "chin": t(chin), "height": t(height), "roll": t(roll),
            "radius": t(radius)}


def _to_image(geo: Mapping[str, torch.Tensor], u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Face-relative points ``[T, ...]`` → pixel (x, y) ``[T, ..., 2]``."""
    shape = (-1,) + (1,) * (u.ndim - 1)
    h, roll = geo["height"].view(shape), geo["roll"].view(shape)
    x = geo["centre"][:, 0].view(shape) + h * (u * torch.cos(roll) - v * torch.sin(roll))
    y = geo["centre"][:, 1].view(shape) + h * (u * torch.sin(roll) + v * torch.cos(roll))
    return torch.stack([x, y], -1)


def dome(geo: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """The head's outline, one ellipse per clip: half-width ``a`` and half-height ``b`` (face
    heights) around (0, ``DOME_CENTRE``). Its base size leaves room for hair under the fabric;
    probes along rays find where the person mask (hair, a hat) ends, and the ellipse grows to
    cover it, up to a limit. One size per clip (median over frames): the scarf does not breathe."""
    r = geo["radius"]
    t, k = r.shape
    side = torch.maximum(r[:, 0], r[:, k // 2])          # oval half-width at the eye line
    a0, b0 = side + 0.15, r[:, k * 3 // 4] + 0.27 + DOME_CENTRE  # top: above the forehead
    theta = torch.linspace(-math.pi, 0.0, RAYS, device=r.device)   # the upper half (v < 0)
    face = _lookup(r, theta.expand(t, RAYS))
    steps = torch.linspace(0.0, MAX_HAIR, RAY_STEPS, device=r.device)
    rad = face.unsqueeze(-1) + steps
    u, v = rad * torch.cos(theta).view(1, -1, 1), rad * torch.sin(theta).view(1, -1, 1)
    pts = _to_image(geo, u, v)
    hh, ww = mask.shape[-2:]
    norm = torch.stack([pts[..., 0] / (ww - 1), pts[..., 1] / (hh - 1)], -1) * 2 - 1
    seen = F.grid_sample(mask.unsqueeze(1), norm, align_corners=True).squeeze(1)
    run = torch.cumprod((seen > 0.5).float(), -1).sum(-1) * (MAX_HAIR / (RAY_STEPS - 1))
    reach = face + run + 0.05                            # fabric lies a little over the hair
    pu, pv = reach * torch.cos(theta), reach * torch.sin(theta) - DOME_CENTRE
    # Widen for hair at the sides (judged against the base height), then heighten for hair on
    # top (against the new width), then scale up for anything still outside (the diagonals).
    sides = pv.abs() < 0.8 * b0[:, None]
    need_a = (pu.abs() / (1 - (pv / b0[:, None]) ** 2).clamp(min=0.1).sqrt()).where(sides, 0 * pu)
    a = torch.maximum(a0, need_a.amax(1))
    need_b = (pv.abs() / (1 - (pu / a[:, None]) ** 2).clamp(min=0.1).sqrt()).where(
        pu.abs() < 0.8 * a[:, None], 0 * pv)
    b = torch.maximum(b0, need_b.amax(1))
    scale = ((pu / a[:, None]) ** 2 + (pv / b[:, None]) ** 2).sqrt().amax(1).clamp(min=1)
    a, b = a * scale, b * scale
    size = torch.stack([a.clamp(max=a0 + MAX_GROWTH), b.clamp(max=b0 + MAX_GROWTH)], 1)
    return size.median(dim=0).values


class Headscarf(Perturbation):
    name = "headwear:headscarf"
    family = "headwear"
    description = "a headscarf covering the hair, head and neck, leaving the face open"
    requires = frozenset({"face"})

    def make_params(self, frames, annotations, rng: np.random.Generator) -> dict[str, Any]:
        colour = list(PALETTE)[int(rng.integers(len(PALETTE)))]
        return {"colour": colour,
                "rgb": [int(c) for c in PALETTE[colour]],
                "brightness": float(rng.uniform(0.92, 1.08)),
                "light_x": float(rng.uniform(-0.3, 0.3)),
                "drape_width": float(rng.uniform(1.0, 1.2)),
                "wrap_side": int(rng.choice([-1, 1])),   # which end crosses under the chin
                "fold_pitch": float(rng.uniform(0.11, 0.15)),
                "fan_folds": float(rng.uniform(5.0, 7.0)),
                "hanging_folds": float(rng.uniform(7.0, 10.0)),
                "phases": [float(p) for p in rng.uniform(0, 2 * math.pi, 8)],
                "grain_seed": int(rng.integers(2**31))}

    def transform(self, frames: torch.Tensor, params: Mapping[str, Any], annotations) -> torch.Tensor:
        t, h, w = frames.shape[:3]
        dev = frames.device
        geo = head_geometry(annotations.landmarks.to(dev))
        mask = annotations.mask.to(dev, torch.float32)
        size = dome(geo, mask)
        opening = geo["radius"] - self._inset(geo["radius"].shape[1], dev)
        box = self._box(geo, size, params, h, w)
        out = frames.clone()
        if box is None:
            return out
        x0, y0, x1, y1 = box
        region = frames[:, y0:y1, x0:x1].to(torch.float32) / 255.0
        body = mask[:, y0:y1, x0:x1]
        ys = torch.arange(y0, y1, device=dev, dtype=torch.float32) + 0.5
        xs = torch.arange(x0, x1, device=dev, dtype=torch.float32) + 0.5
        step = max(1, round(float(geo["height"].mean()) / SHADE_GRID))
        alpha, shadow, open_, hair = self._coverage(geo, size, opening, body, xs, ys, params, step)
        colour = self._shade(geo, size, opening, xs[::step], ys[::step], params)
        colour = resize_bilinear(colour, (y1 - y0, x1 - x0)).permute(0, 2, 3, 1)
        colour = colour * self._exposure(region, open_) * params["brightness"]
        # Sensor grain: without it the fabric looks cleaner than the video around it.
        gen = torch.Generator(device=dev).manual_seed(params["grain_seed"])
        grain = torch.randn((t, y1 - y0, x1 - x0, 1), generator=gen, device=dev) * GRAIN
        colour = colour + grain
        under, hair = self._paint_out(region, body, hair, float(geo["height"].mean()), step)
        a = alpha.unsqueeze(-1)
        edited = under * shadow.unsqueeze(-1) * (1 - a) + colour.clamp(0, 1) * a
        new = (edited * 255.0).round_().clamp_(0, 255).to(torch.uint8)
        touched = ((alpha > 0) | (shadow < 1) | (hair > 0)).unsqueeze(-1)
        out[:, y0:y1, x0:x1] = torch.where(touched, new, frames[:, y0:y1, x0:x1])
        return out

    @staticmethod
    def _inset(k: int, device: torch.device) -> torch.Tensor:
        """How far the opening lies inside the face oval, per angle: well in at the forehead (the
        hairline goes under the fabric), a little along the cheeks, just outside at the chin."""
        theta = torch.linspace(-math.pi, math.pi, k + 1, device=device)[:-1]
        up, down = (-torch.sin(theta)).clamp(min=0), torch.sin(theta).clamp(min=0)
        return 0.02 + 0.085 * up ** 2 - 0.04 * down ** 6

    def _box(self, geo, size, params, h: int, w: int) -> tuple[int, int, int, int] | None:
        """The region any frame's scarf (or the hair it paints out) may touch."""
        t = len(geo["height"])
        a, b = float(size[0]) * HAIR_ZONE, float(size[1]) * HAIR_ZONE
        u = torch.tensor([-a, a, -a, a], device=size.device).expand(t, 4)
        v = torch.tensor([DOME_CENTRE - b] * 2 + [DOME_CENTRE] * 2, device=size.device).expand(t, 4)
        corners = _to_image(geo, u, v)
        hgt, chin = geo["height"], geo["chin"]
        half = (params["drape_width"] + 0.05) * hgt
        xs = torch.cat([corners[..., 0], (chin[:, 0] - half)[:, None], (chin[:, 0] + half)[:, None]], 1)
        ys = torch.cat([corners[..., 1], (chin[:, 1] + DRAPE_BELOW * hgt)[:, None]], 1)
        x0, x1 = max(0, math.floor(float(xs.min())) - 2), min(w, math.ceil(float(xs.max())) + 2)
        y0, y1 = max(0, math.floor(float(ys.min())) - 2), min(h, math.ceil(float(ys.max())) + 2)
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None

    @staticmethod
    def _frames(geo, xs: torch.Tensor, ys: torch.Tensor):
        """A pixel grid in the head's frame (u across the eyes, w down from the dome centre, face
        heights) and the drape's (dx across, in image axes — fabric hangs with gravity — from the
        head's axis, which below the chin runs straight down; dy down from the chin)."""
        hpx = geo["height"].view(-1, 1, 1)
        x, y = xs.view(1, 1, -1), ys.view(1, -1, 1)
        cx, cy = geo["centre"][:, 0].view(-1, 1, 1), geo["centre"][:, 1].view(-1, 1, 1)
        cos, sin = torch.cos(geo["roll"]).view(-1, 1, 1), torch.sin(geo["roll"]).view(-1, 1, 1)
        u = ((x - cx) * cos + (y - cy) * sin) / hpx
        w = (-(x - cx) * sin + (y - cy) * cos) / hpx - DOME_CENTRE
        chin_y = geo["chin"][:, 1].view(-1, 1, 1)
        axis = cx - (torch.minimum(y, chin_y) - cy) * sin / cos.clamp(min=0.3)
        dx = (x - axis) / hpx
        dy = (y - chin_y) / hpx
        return u, w, dx, dy, hpx

    @staticmethod
    def _drape_width(size, dy: torch.Tensor, params) -> torch.Tensor:
        """Half-width of the drape: the dome's at the ears, a little in round the neck, then
        out over the shoulders."""
        a = size[0]
        neck = 1 - 0.08 * torch.exp(-((dy - 0.1) / 0.2) ** 2)
        return a * neck + (params["drape_width"] - a) * _smoothstep(dy, 0.15, 1.0)

    def _coverage(self, geo, size, opening, body, xs, ys, params, step: int):
        """Per pixel: the scarf's alpha, the shadow it casts on the forehead, the opening, and
        hair left outside the scarf (to paint out)."""
        u, w, dx, dy, hpx = self._frames(geo, xs, ys)
        a, b = size[0], size[1]
        k = torch.sqrt((u / a) ** 2 + (w / b) ** 2)
        grad = torch.sqrt((u / a ** 2) ** 2 + (w / b ** 2) ** 2).clamp(min=1e-6)
        head = ((1 - k) * k / grad * hpx * EDGE + 0.5).clamp(0, 1)
        half = self._drape_width(size, dy, params)
        hem = DRAPE_BELOW - 0.3 * (dx / half).clamp(-1, 1) ** 2 - dy
        drape = (((half - dx.abs()) * hpx * EDGE + 0.5).clamp(0, 1) * (hem * hpx * EDGE + 0.5).clamp(0, 1)
                 * (w * hpx + 0.5).clamp(0, 1))
        # The fabric rests on the shoulders: only a little off the person's silhouette.
        near = _coarse_blur(body.unsqueeze(1), 0.04 * float(hpx.mean()), step).squeeze(1)
        drape = drape * torch.maximum(((near - 0.1) * 5).clamp(0, 1), 1 - _smoothstep(dy, 0.1, 0.4))
        outer = torch.maximum(head, drape)
        v = w + DOME_CENTRE
        r, theta = torch.hypot(u, v), torch.atan2(v, u)
        depth = (_lookup(opening, theta) - r) * hpx          # pixels inside the opening
        open_ = (depth + 0.5).clamp(0, 1)
        alpha = outer * (1 - open_)
        # The fabric's edge over the forehead casts a narrow shadow on the skin below it.
        up = (-torch.sin(theta)).clamp(min=0)
        reach = 0.03 * hpx
        shadow = 1 - 0.3 * up ** 3 * torch.exp(-depth.clamp(min=0) / reach) * open_ * (depth < 3 * reach)
        # Hair (or a hat) the dome did not grow to cover: person pixels around the head, above
        # the jaw, outside the scarf.
        zone = (k < HAIR_ZONE) & (w < 0.45) & (open_ <= 0)
        # The mask is unsure (0.1-0.6) over thin hair and a hat's top: take those too.
        hair = _smoothstep(body, 0.03, 0.15) * zone * (1 - outer)
        return alpha, shadow, open_, hair

    @staticmethod
    def _paint_out(region, body, hair, hpx: float, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The region with leftover hair replaced by the background around it (normalised
        convolution: a blurred clean plate), and where that was done."""
        if not bool((hair > 0).any()):
            return region, hair
        # The mask's edge falls short of the hair's (and a hat's) by a few pixels: grow it, on
        # a coarse grid (a max keeps thin strands); the upsampling feathers the edge.
        h, w = hair.shape[-2:]
        hair = F.adaptive_max_pool2d(hair.unsqueeze(1), (-(-h // step), -(-w // step)))
        grow = max(1, math.ceil(0.06 * hpx / step))
        hair = F.max_pool2d(hair, 2 * grow + 1, 1, grow)
        hair = resize_bilinear(hair, (h, w)).squeeze(1)
        planes = region.permute(0, 3, 1, 2)
        weight = (1 - _smoothstep(body, 0.01, 0.1)).unsqueeze(1) * (1 - hair.unsqueeze(1))
        sigma = 0.08 * hpx
        num, den = _coarse_blur(planes * weight, sigma, step), _coarse_blur(weight, sigma, step)
        # Whole-image sums in float64: a float32 sum depends on how many threads split it, and
        # the same seed must give the same pixels on every machine (and every Ray actor).
        w64 = weight.double()
        mean = ((planes.double() * w64).sum((2, 3), keepdim=True)
                / w64.sum((2, 3), keepdim=True).clamp(min=1e-6)).float()
        plate = torch.where(den > 1e-3, num / den.clamp(min=1e-6), mean).permute(0, 2, 3, 1)
        a = hair.unsqueeze(-1)
        return region * (1 - a) + plate * a, hair

    def _shade(self, geo, size, opening, xs, ys, params) -> torch.Tensor:
        """Fabric colour ``[T, 3, h, w]`` on a coarse grid, before the clip's exposure."""
        u, w, dx, dy, hpx = self._frames(geo, xs, ys)
        a, b = size[0], size[1]
        ph = params["phases"]
        # Base normals: a rounded dome, then a drape that is round across and faces up a
        # little where it lies on the shoulders.
        qu, qw = u / a, w / b
        k2 = (qu * qu + qw * qw).clamp(max=0.97)
        dome_n = torch.stack([qu, qw, (1 - k2).sqrt()], 0)
        half = self._drape_width(size, dy, params)
        su = (dx / half).clamp(-0.95, 0.95) * 0.8
        drape_n = torch.stack([su, -0.25 * _smoothstep(dy, 0.4, 1.0) * su.abs(),
                               (1 - su * su).sqrt()], 0)
        blend = _smoothstep(w, -0.05, 0.2)
        n = dome_n * (1 - blend) + drape_n * blend
        # Folds as a height field (face heights), differentiated numerically on this grid. All
        # of it is in face-relative coordinates, so the folds move with the head.
        v = w + DOME_CENTRE
        r, theta = torch.hypot(u, v), torch.atan2(v, u)
        gap = (r - _lookup(opening, theta)).clamp(min=0)
        rolled = 0.022 * torch.exp(-((gap - 0.03) / 0.028) ** 2)   # the edge folded back
        # A fold or two following the face contour round the jaw, fading in and out along it.
        lower = _smoothstep(torch.sin(theta), -0.1, 0.5)
        contour = (torch.sin(2 * math.pi * gap / params["fold_pitch"] + ph[0] + 1.3 * torch.sin(2 * theta + ph[1]))
                   * (0.5 + 0.5 * torch.sin(3 * theta + ph[2])) * lower
                   * _smoothstep(gap, 0.05, 0.1) * (1 - _smoothstep(gap, 0.18, 0.3)) * 0.009)
        # The scarf is pinned under the chin on one side: folds fan out from the pin, and one
        # end crosses to the other shoulder, its edge standing proud of the layer beneath.
        side = params["wrap_side"]
        px, py = dx - side * 0.28, dy - 0.06
        rho = torch.hypot(px, py)
        fan = (torch.sin(params["fan_folds"] * torch.atan2(px, py) + ph[3] + 0.6 * torch.sin(5 * rho))
               * _smoothstep(rho, 0.03, 0.12) * torch.exp(-rho / 0.45) * _smoothstep(dy, -0.1, 0.05) * 0.012)
        across = (px * 0.8 + side * py * 0.6) * side           # signed distance to the edge
        layer = 0.02 * _smoothstep(across, -0.01, 0.03) * _smoothstep(dy, -0.05, 0.1)
        # Broad folds hanging over the chest and shoulders.
        psi = torch.atan2(dx, dy + 0.6)
        hanging = (torch.sin(params["hanging_folds"] * psi + ph[4] + 0.7 * torch.sin(2.3 * dy + ph[5]))
                   * _smoothstep(dy, 0.3, 0.9) * 0.016)
        height = (rolled + contour + fan + layer + hanging) * hpx
        gy, gx = torch.gradient(height, dim=(1, 2))
        step = float(xs[1] - xs[0]) if len(xs) > 1 else 1.0
        n = n + torch.stack([-gx, -gy, torch.zeros_like(gx)], 0) / step
        n = n / n.norm(dim=0, keepdim=True)
        light = torch.tensor([params["light_x"], -0.55, 0.8], device=u.device)
        light = (light / light.norm()).view(3, 1, 1, 1)
        ndl = (n * light).sum(0)
        shade = 0.3 + 0.8 * ((ndl + 0.3) / 1.3).clamp(min=0)   # wrapped: cloth scatters light
        # Light falls off down the drape (shaded by the head); the chin shades the neck, the
        # upper layer the one below its edge, the fabric the gap where it meets the face.
        shade = shade * (1 - 0.2 * _smoothstep(dy, 0.2, 1.3))
        shade = shade * (1 - 0.35 * torch.exp(-(dy.clamp(min=0) / 0.1)) * _smoothstep(dy, -0.08, 0.0)
                         * (1 - _smoothstep(dx.abs(), 0.25, 0.45)))
        shade = shade * (1 - 0.3 * torch.exp(-(-across).clamp(min=0) / 0.04) * (across < 0)
                         * _smoothstep(dy, -0.05, 0.1))
        shade = shade * (1 - 0.3 * torch.exp(-gap / 0.025))
        # Dyed cloth is never perfectly even: a faint, slow mottling.
        shade = shade * (1 + 0.04 * torch.sin(3.1 * u + 1.7 * w + ph[6]) * torch.sin(2.3 * u - 2.9 * w + ph[7]))
        base = (torch.tensor(params["rgb"], device=u.device, dtype=torch.float32) / 255.0) ** 2.2
        half_v = light.view(3) + torch.tensor([0.0, 0.0, 1.0], device=u.device)
        sheen = (n * (half_v / half_v.norm()).view(3, 1, 1, 1)).sum(0).clamp(min=0) ** 16 * 0.04
        lin = base.view(1, 3, 1, 1) * shade.unsqueeze(1) + sheen.unsqueeze(1)
        return lin.clamp(0, 1) ** (1 / 2.2)

    @staticmethod
    def _exposure(region: torch.Tensor, open_: torch.Tensor) -> torch.Tensor:
        """The fabric's brightness follows the light on the face (a dim clip, a dim scarf)."""
        weight = (open_ >= 1).float()
        luma = region @ torch.tensor([0.299, 0.587, 0.114], device=region.device)
        mean = (luma * weight).sum() / weight.sum().clamp(min=1)
        return (mean / SKIN_LUMA).clamp(0.6, 1.3) ** 0.5


register("headwear:headscarf", Headscarf)
