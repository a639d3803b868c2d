"""Headwear: headscarves that cover the hair and leave the face open — a wrapped hijab that also
covers the neck and falls onto the shoulders (``headwear:headscarf``), and a scarf laid loosely
over the head, the hairline and the throat left showing and the ends hanging down the front
(``headwear:loose-scarf``).

The scarf is a shape, a surface and a material, each drawn per clip and followed every frame:

- **Shape**, in face heights (forehead landmark to chin) around the smoothed face landmarks: a
  crown (an ellipse grown, a little, to the hair or hat the person mask shows; hair still outside
  is painted out with the background around it), sides that come down past the ears and hug the
  jaw, a drape that widens over the shoulders and ends in a hem at the chest. The drape lies on
  the body: it follows the person mask's silhouette, so where the body leaves the frame the
  cloth does, and nowhere else does it reach the frame border. The face opening is the face oval,
  pulled in at the forehead. Its outline wavers with the folds; volume, length, width and hem are
  drawn per clip, so no two clips get the same outline.
- **Surface**: base normals (a dome over the head, a column round the neck, the drape over the
  shoulders and chest) bent by a height field of folds — the edge rolled back round the face,
  swags hanging under the chin between the pins, folds fanning from the pin, one end crossing to
  the other shoulder, folds hanging down the chest — with ambient occlusion in the valleys. All
  in face-relative coordinates, so the folds move with the head.
- **Light and camera**: lit by the clip's own light, fitted to the shading of the face
  (direction and hardness, :func:`look.face_light`), exposed and white-balanced as the clip
  (:func:`look.camera_look`: a white surface's level and colour), with the clip's sensor noise
  and edge softness, so the cloth is neither cleaner nor brighter than the person wearing it.
- **Material**: a palette of common scarf colours (solid dark and muted ones; a colour close to
  the wearer's skin is not drawn), solid or with a simple print (a border, small dots, fine
  stripes, a heathered knit), a faint weave, matte or with a little sheen.

Hands (and the forearm) in front of the head stay in front (:mod:`occlusion`). Shading is
smooth, so it is computed on a coarse grid and upsampled; coverage, prints and grain are per
pixel. Everything runs for all frames at once on the frames' device, inside one box around the
head and the drape.
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
from .kernels import coarse_blur, dilate, gaussian_blur, normalised_fill, resize_bilinear
from .look import clip_light, clip_look, linear_to_srgb, srgb_to_linear
from .occlusion import hand_cover

# sRGB colours of common scarf fabrics, as they look in daylight: mostly dark and muted.
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (40, 39, 43), "charcoal": (62, 62, 66), "navy": (36, 44, 74), "burgundy": (104, 32, 46),
    "plum": (86, 48, 74), "olive": (96, 94, 60), "forest green": (42, 70, 54), "teal": (38, 90, 98),
    "taupe": (140, 124, 110), "camel": (172, 138, 98), "sand": (200, 182, 156), "dusty blue": (106, 126, 150),
    "mauve": (150, 108, 122), "grey": (124, 124, 128), "ivory": (226, 220, 206), "rust": (150, 74, 48),
}
# Print colours, chosen to contrast with the ground (light on dark, dark on light).
ACCENTS = ((232, 226, 210), (196, 170, 112), (150, 40, 46), (40, 44, 70), (24, 24, 26), (120, 140, 160))
PATTERNS = ("solid", "solid", "solid", "border", "dots", "stripes", "heather")
STYLES = ("wrapped", "loose")

ANGLES = 128          # resolution of the face-oval radius table
RAYS, RAY_STEPS = 48, 40   # hair probes over the upper half of the head
MAX_HAIR = 0.55       # hair or a hat is followed at most this far beyond the face oval
MAX_GROWTH = 0.12     # the crown grows at most this much for big hair; hair beyond is painted out
HAIR_ZONE = 1.45      # hair is painted out up to this many crown radii from its centre
DOME_CENTRE = -0.15   # the crown's centre, about eye level (face centre = 0, forehead = -0.5)
SHADE_GRID = 48       # shading samples per face height; the shading is smooth below that
STANDOFF = 0.03       # the drape may stand this far (face heights) off the body's silhouette
BORDER = 0.1          # within this much of the frame border the scarf only lies on the person
WEAVE = 0.025         # relative amplitude of the weave texture


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


def _texture(tex: torch.Tensor, u: torch.Tensor, w: torch.Tensor, scale: float) -> torch.Tensor:
    """Bilinear, wrapping lookup of a ``[K, K]`` texture at cloth coordinates (face heights,
    ``scale`` texels per face height). Gathers, not ``grid_sample``: the same value on every
    device and thread count."""
    k = tex.shape[-1]
    assert k & (k - 1) == 0, "texture sides are powers of two (wrapping is a bit mask)"
    x, y = u * scale, w * scale
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0
    x0, y0 = x0.long() & (k - 1), y0.long() & (k - 1)
    x1, y1 = (x0 + 1) & (k - 1), (y0 + 1) & (k - 1)
    tex = tex.contiguous()

    def at(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return torch.take(tex, yy * k + xx)

    top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx
    bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx
    return top * (1 - fy) + bottom * fy


def head_geometry(landmarks: torch.Tensor, linked: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per frame: face centre (mid forehead–chin), face height (pixels), roll (eye line), chin,
    and the face oval as radii over ``ANGLES`` angles from the eye line, in face heights."""
    dev = landmarks.device
    lm = landmarks[..., :2].detach().cpu().numpy().astype(np.float64)
    roll = eye_geometry(landmarks, linked)["roll"].cpu().numpy().astype(np.float64)
    pose = smooth_time(np.concatenate([0.5 * (lm[:, FOREHEAD] + lm[:, CHIN]), lm[:, CHIN],
                                       np.linalg.norm(lm[:, FOREHEAD] - lm[:, CHIN], axis=1)[:, None]], 1),
                       linked=linked)
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
    """The crown's outline, one ellipse per clip: half-width ``a`` and half-height ``b`` (face
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


def skin_colour(frames: torch.Tensor, landmarks: torch.Tensor) -> np.ndarray:
    """Mean sRGB (0-255) of the cheeks and forehead in the middle frame."""
    i = frames.shape[0] // 2
    pts = landmarks[i, [50, 280, 101, 330, 151, 9], :2].round().long().cpu()
    h, w = frames.shape[1:3]
    xs, ys = pts[:, 0].clamp(0, w - 1), pts[:, 1].clamp(0, h - 1)
    return frames[i, ys, xs].to(torch.float64).mean(0).cpu().numpy()


def _lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.float32(rgb).reshape(1, 1, 3) / 255.0, cv2.COLOR_RGB2LAB).reshape(3)


class Headscarf(Perturbation):
    requires = frozenset({"face"})

    def __init__(self, style: str = "wrapped") -> None:
        if style not in STYLES:
            raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
        self.style = style
        self.name = "headwear:headscarf" if style == "wrapped" else "headwear:loose-scarf"
        self.description = ("a headscarf wrapped over the hair, the head and the neck, falling onto "
                            "the shoulders, the face left open" if style == "wrapped" else
                            "a scarf laid loosely over the head, the hairline and the throat showing, "
                            "its ends hanging down the front")

    # ------------------------------------------------------------------ parameters

    def make_params(self, frames, annotations, rng: np.random.Generator) -> dict[str, Any]:
        skin = _lab(skin_colour(frames, annotations.landmarks))
        names = list(PALETTE)
        # A scarf in the wearer's own skin tone reads as a bald cap, not as cloth: redraw.
        for _ in range(8):
            colour = names[int(rng.integers(len(names)))]
            if np.linalg.norm(_lab(PALETTE[colour]) - skin) > 22:
                break
        base = np.array(PALETTE[colour], np.float64)
        base = np.clip(base * rng.uniform(0.92, 1.08) + rng.normal(0, 4, 3), 8, 245)
        pattern = str(PATTERNS[int(rng.integers(len(PATTERNS)))])
        light_ground = float(base.mean()) > 140
        accents = [a for a in ACCENTS if (np.mean(a) > 140) != light_ground] or list(ACCENTS)
        accent = accents[int(rng.integers(len(accents)))]
        loose = self.style == "loose"
        return {"colour": colour,
                "rgb": [int(round(c)) for c in base],
                "pattern": pattern,
                "accent": [int(c) for c in accent],
                "pattern_scale": float(rng.uniform(0.8, 1.25)),
                "pattern_angle": float(rng.uniform(-0.6, 0.6)),
                "sheen": float(rng.uniform(0.02, 0.06)),
                "gloss": float(rng.choice([6.0, 6.0, 12.0, 24.0])),
                "volume": float(rng.uniform(1.0, 1.07)),
                "crown_power": float(rng.uniform(2.0, 2.7)),
                "asymmetry": float(rng.uniform(-0.08, 0.08)),
                "drape_width": float(rng.uniform(1.1, 1.45)),
                "drape_length": float(rng.uniform(1.1, 1.6) if not loose else rng.uniform(1.3, 1.8)),
                "hem_curve": float(rng.uniform(0.15, 0.45)),
                "hem_tilt": float(rng.uniform(-0.15, 0.15)),
                "wrap_side": int(rng.choice([-1, 1])),   # which end crosses under the chin
                "swag_pitch": float(rng.uniform(0.11, 0.16)),
                "hanging_folds": float(rng.uniform(14.0, 22.0)),
                "fold_depth": float(rng.uniform(0.8, 1.25)),
                "outline": [float(a) for a in rng.normal(0, 0.01, 6) / np.arange(1, 7) ** 0.5],
                "phases": [float(p) for p in rng.uniform(0, 2 * math.pi, 12)],
                "noise_seed": int(rng.integers(2**31))}

    # ------------------------------------------------------------------ drawing

    def transform(self, frames: torch.Tensor, params: Mapping[str, Any], annotations) -> torch.Tensor:
        t, h, w = frames.shape[:3]
        dev = frames.device
        geo = head_geometry(annotations.landmarks.to(dev), annotations.links)
        mask = annotations.mask.to(dev, torch.float32)
        size = dome(geo, mask) * params["volume"]
        box = self._box(geo, size, params, h, w)
        out = frames.clone()
        if box is None:
            return out
        x0, y0, x1, y1 = box
        look = clip_look(frames, annotations)
        light = clip_light(frames, annotations)
        region = frames[:, y0:y1, x0:x1].to(torch.float32) / 255.0
        body = mask[:, y0:y1, x0:x1]
        ys = torch.arange(y0, y1, device=dev, dtype=torch.float32) + 0.5
        xs = torch.arange(x0, x1, device=dev, dtype=torch.float32) + 0.5
        hpx_mean = float(geo["height"].mean())
        step = max(1, round(hpx_mean / SHADE_GRID))
        blur = look.person_blur if math.isfinite(look.person_blur) else 0.8
        cov = self._coverage(geo, size, body, xs, ys, params, step, blur, (h, w))
        alpha, skin_shadow, hair = cov["alpha"], cov["shadow"], cov["hair"]
        hands = hand_cover(annotations, frames, box)
        if hands is not None:
            alpha = alpha * (1 - hands)
            skin_shadow = 1 - (1 - skin_shadow) * (1 - hands)
            hair = hair * (1 - hands)
        shade = self._shade(geo, size, xs[::step], ys[::step], params, light)
        shade = resize_bilinear(shade, (y1 - y0, x1 - x0))          # [T, 2, h, w]: diffuse, sheen
        albedo = self._albedo(cov["u"], cov["w"], cov["gap"], shade[:, 2], params, dev)   # [T, h, w, 3] linear
        white = torch.tensor(look.white, device=dev, dtype=torch.float32)
        lin = albedo * shade[:, 0, ..., None] * white + shade[:, 1, ..., None] * white
        colour = linear_to_srgb(lin)
        # Sensor noise as the clip has it, fresh every frame (drawn on the CPU: the same numbers
        # on every device).
        sigma = max(look.noise, 0.6) / 255.0
        gen = torch.Generator().manual_seed(params["noise_seed"] + 1)
        grain = torch.randn((t, y1 - y0, x1 - x0, 1), generator=gen).to(dev) * sigma
        colour = colour + grain
        painted = torch.zeros_like(hair)
        under = region
        if bool((hair > 0).any()):
            under, painted = self._paint_out(region, body, hair, hpx_mean, step, params)
            # Painting grows the hair's area a little: not out to the border either.
            painted = painted * cov["gate"]
            under = region + (under - region) * cov["gate"].unsqueeze(-1)
        under = under * skin_shadow.unsqueeze(-1)
        a = alpha.unsqueeze(-1)
        edited = under * (1 - a) + colour.clamp(0, 1) * a
        new = (edited * 255.0).round_().clamp_(0, 255).to(torch.uint8)
        touched = ((alpha > 0) | (skin_shadow < 1) | (painted > 0)).unsqueeze(-1)
        out[:, y0:y1, x0:x1] = torch.where(touched, new, frames[:, y0:y1, x0:x1])
        return out

    def _box(self, geo, size, params, h: int, w: int) -> tuple[int, int, int, int] | None:
        """The region any frame's scarf (or the hair it paints out) may touch."""
        t = len(geo["height"])
        a, b = float(size[0]) * HAIR_ZONE, float(size[1]) * HAIR_ZONE
        u = torch.tensor([-a, a, -a, a], device=size.device).expand(t, 4)
        v = torch.tensor([DOME_CENTRE - b] * 2 + [DOME_CENTRE] * 2, device=size.device).expand(t, 4)
        corners = _to_image(geo, u, v)
        hgt, chin = geo["height"], geo["chin"]
        half = (params["drape_width"] + 0.1) * hgt
        xs = torch.cat([corners[..., 0], (chin[:, 0] - half)[:, None], (chin[:, 0] + half)[:, None]], 1)
        ys = torch.cat([corners[..., 1], (chin[:, 1] + (params["drape_length"] + 0.1) * hgt)[:, None]], 1)
        x0, x1 = max(0, math.floor(float(xs.min())) - 2), min(w, math.ceil(float(xs.max())) + 2)
        y0, y1 = max(0, math.floor(float(ys.min())) - 2), min(h, math.ceil(float(ys.max())) + 2)
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None

    @staticmethod
    def _frames(geo, xs: torch.Tensor, ys: torch.Tensor):
        """A pixel grid in the head's frame (u across the eyes, w down from the crown's centre,
        face heights) and the drape's (dx across, in image axes — fabric hangs with gravity —
        from the head's axis, which below the chin runs straight down; dy down from the chin)."""
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

    def _drape_half(self, size, dy: torch.Tensor, params) -> torch.Tensor:
        """Half-width of the drape below the crown: the crown's at the ears, in a little round
        the neck, then out over the shoulders."""
        a = size[0]
        neck = 1 - 0.03 * torch.exp(-((dy - 0.08) / 0.18) ** 2)
        if self.style == "loose":
            neck = 1 - 0.04 * torch.exp(-((dy - 0.05) / 0.2) ** 2)
        # An ease-out flare: the cloth falls from the head over the shoulder in a curve.
        flare = 1 - (1 - ((dy - 0.05) / 0.8).clamp(0, 1)) ** 2
        return a * neck + (params["drape_width"] - a) * flare

    def _opening(self, geo, u, w, dx, dy, params):
        """Signed distance (face heights, positive inside) to the edge of the face opening."""
        v = w + DOME_CENTRE
        r, theta = torch.hypot(u, v), torch.atan2(v, u)
        k = geo["radius"].shape[1]
        th = torch.linspace(-math.pi, math.pi, k + 1, device=u.device)[:-1]
        up, down = (-torch.sin(th)).clamp(min=0), torch.sin(th).clamp(min=0)
        if self.style == "wrapped":
            # Well in at the forehead (the hairline goes under), a little along the cheeks, just
            # outside the chin (the cloth wraps under it).
            inset = 0.02 + 0.09 * up ** 2 - 0.045 * down ** 6
        else:
            # The scarf sits back on the head: the hairline shows, the cheeks are framed loosely.
            inset = -0.03 * up ** 2 - 0.025 - 0.05 * down ** 4
        radius = geo["radius"] - inset
        inside = _lookup(radius, theta) - r
        if self.style == "loose":
            # The two front edges hang from the jaw down and apart: the throat shows between them.
            gap = 0.22 + 0.28 * dy.clamp(min=0) + 0.04 * torch.sin(5 * dy + params["phases"][9])
            front = (gap - dx.abs()) * (dy > -0.2).float() + 1e3 * (dy <= -0.2).float() * -1
            inside = torch.maximum(inside, torch.minimum(front, dy + 0.25))
        return inside

    def _outline(self, size, u, w, dx, dy, params):
        """Signed distance (face heights, positive inside) of the scarf's outer outline: the
        crown ellipse (its radius wavering a little) and the drape."""
        a, b = size[0], size[1]
        ang = torch.atan2(w, u)
        wobble = 1 + sum(c * torch.sin((j + 3) * ang + params["phases"][j % 12])
                         for j, c in enumerate(params["outline"]))
        # Over the top a superellipse (a scarf is flatter on the crown than a skull), below the
        # eye line an ellipse that runs into the drape.
        p = torch.where(w < 0, torch.full_like(w, params["crown_power"]), torch.full_like(w, 2.0))
        k = ((u / a).abs() ** p + (w / b).abs() ** p) ** (1 / p) / wobble
        crown = (1 - k) * torch.minimum(a, b) * 0.9
        half = self._drape_half(size, dy, params) * (1 + params["asymmetry"] * torch.sign(dx))
        ph = params["phases"]
        # The hem: lower at the front, rising to the sides, tilted, waving with the folds.
        q = (dx / half.clamp(min=0.1)).clamp(-1.2, 1.2)
        psi = torch.atan2(dx, dy + 0.6)
        nf = params["hanging_folds"]
        wave = 0.03 * (torch.sin(nf * psi + ph[4]) + 0.5 * torch.sin(1.7 * nf * psi + ph[7])).abs()
        hem = (params["drape_length"] - params["hem_curve"] * q * q + params["hem_tilt"] * q + wave) - dy
        side = half * (1 + 0.02 * torch.sin(7 * dy + ph[5])) - dx.abs()
        drape = torch.minimum(torch.minimum(side, hem), w)
        return torch.maximum(crown, drape), half, crown

    def _coverage(self, geo, size, body, xs, ys, params, step: int, blur: float, frame_size):
        """Per pixel: the scarf's alpha, the shadow it casts on the skin at the opening, hair left
        outside it (to paint out), and cloth coordinates for the print."""
        u, w, dx, dy, hpx = self._frames(geo, xs, ys)
        outline, half, cov_crown = self._outline(size, u, w, dx, dy, params)
        opening = self._opening(geo, u, w, dx, dy, params)
        # Anti-aliased edges as soft as the clip's own (a sharper edge than the video's reads as
        # a cut-out).
        ramp = max(1.0, 1.6 * blur)
        outer = (outline * hpx / ramp + 0.5).clamp(0, 1)
        open_ = (opening * hpx / ramp + 0.5).clamp(0, 1)
        # The drape hangs from what holds it up: below the head and on the body. A pixel can be
        # cloth if the person is at or above it in its column (the gap between the head and a
        # shoulder is bridged, the air beside a shoulder is not); so where the body's outline
        # runs, or leaves the frame, the cloth does too, standing off it a little.
        lies = coarse_blur(body.unsqueeze(1), STANDOFF * float(hpx.mean()), step).squeeze(1)
        crown = (cov_crown * hpx / ramp + 0.5).clamp(0, 1)
        held = torch.cummax(torch.maximum(((lies - 0.3) * 10).clamp(0, 1), crown), dim=1).values
        below = _smoothstep(dy, -0.05, 0.35)
        outer = outer * torch.maximum(held, 1 - below)
        # At the frame border the scarf reaches the edge only where the person does.
        th, tw = frame_size
        x, y = xs.view(1, 1, -1), ys.view(1, -1, 1)
        edge = torch.minimum(torch.minimum(x, tw - x), torch.minimum(y, th - y)) / (BORDER * hpx)
        # (The person counts where the mask passes one half; a lower bar let the cloth follow a
        # doubtful mask, such as a hat the segmentation half missed, out to the border.)
        there = _smoothstep(body, 0.5, 0.65)
        gate = torch.maximum(_smoothstep(edge, 0.3, 1.0), there)
        outer = outer * gate
        alpha = outer * (1 - open_)
        # The cloth's edge casts a narrow shadow on the skin just inside the opening, deepest
        # under the forehead.
        depth = opening.clamp(min=0)
        v = w + DOME_CENTRE
        top = _smoothstep(-v / torch.hypot(u, v).clamp(min=1e-3), -0.2, 0.8)
        reach = 0.015 + 0.02 * top
        # (only in a band: the rest of the face keeps its exact pixels)
        band = (1 - depth / (2 * reach)).clamp(min=0)
        shadow = 1 - (0.08 + 0.26 * top) * torch.exp(-depth / reach) * band * open_ * outer
        # Hair (or a hat) the crown did not grow to cover: person pixels around the head, above
        # the jaw, outside the scarf and outside the face opening.
        k = torch.sqrt((u / size[0]) ** 2 + (w / size[1]) ** 2)
        zone = (k < HAIR_ZONE) & (w < 0.2) & (open_ <= 0)
        hair = _smoothstep(body, 0.03, 0.15) * zone * (1 - outer) * gate
        return {"alpha": alpha, "shadow": shadow, "hair": hair, "u": u, "w": w,
                "gap": (-opening).clamp(min=0), "gate": gate}

    # ------------------------------------------------------------------ material

    def _albedo(self, u, w, gap, height, params, dev) -> torch.Tensor:
        """Linear-light albedo ``[T, h, w, 3]`` of the cloth: ground colour, print, weave. The
        print is shifted by the fold height, so it waves with the folds like printed cloth."""
        base = srgb_to_linear(torch.tensor(params["rgb"], device=dev, dtype=torch.float32) / 255.0)
        accent = srgb_to_linear(torch.tensor(params["accent"], device=dev, dtype=torch.float32) / 255.0)
        s = params["pattern_scale"]
        ang = params["pattern_angle"]
        u = u + 1.5 * height
        pu = u * math.cos(ang) + w * math.sin(ang)
        pw = -u * math.sin(ang) + w * math.cos(ang)
        pattern = params["pattern"]
        mix = torch.zeros_like(u)
        if pattern == "dots":
            pitch = 0.05 * s
            row = torch.floor(pw / pitch)
            cu = pu / pitch + 0.5 * (row.remainder(2))
            du = cu - torch.round(cu)
            dw = pw / pitch - row - 0.5
            mix = (0.5 - (torch.hypot(du, dw) - 0.12) * pitch * 70).clamp(0, 1) * 0.5
        elif pattern == "stripes":
            pitch = 0.045 * s
            f = (pu / pitch).remainder(1.0)
            mix = ((0.5 - (f - 0.5).abs()) * 8 - 3.0).clamp(0, 1) * 0.3
        elif pattern == "border":
            # A printed band along the edge round the face, the way many scarves are finished.
            mix = _smoothstep(gap, 0.004, 0.01) * (1 - _smoothstep(gap, 0.035 * s, 0.045 * s))
        gen = torch.Generator().manual_seed(params["noise_seed"])
        tex = torch.rand((64, 64), generator=gen).to(dev)
        weave = (_texture(tex, pu, pw, 900.0) - 0.5) * 2 * WEAVE
        if pattern == "heather":
            slub = _texture(tex, pu * 0.3, pw * 2.5, 140.0)
            weave = weave + (slub - 0.5) * 0.22
        colour = base * (1 - mix[..., None]) + accent * mix[..., None]
        return colour * (1 + weave)[..., None]

    # ------------------------------------------------------------------ shading

    def _shade(self, geo, size, xs, ys, params, light) -> torch.Tensor:
        """``[T, 2, h, w]`` on the coarse grid: diffuse light (times ambient occlusion) and sheen."""
        u, w, dx, dy, hpx = self._frames(geo, xs, ys)
        a, b = size[0], size[1]
        ph = params["phases"]
        depth = params["fold_depth"]
        # Base normals (head frame for the crown, then to image axes; the drape in image axes).
        qu, qw = u / a, w / b
        k2 = (qu * qu + qw * qw).clamp(max=0.97)
        cos, sin = torch.cos(geo["roll"]).view(-1, 1, 1), torch.sin(geo["roll"]).view(-1, 1, 1)
        crown = torch.stack([qu * cos - qw * sin, qu * sin + qw * cos, (1 - k2).sqrt()], 0)
        half = self._drape_half(size, dy, params)
        su = (dx / half.clamp(min=0.1)).clamp(-0.95, 0.95)
        # Round the neck a column; over the shoulders the cloth turns up and out.
        shoulder = _smoothstep(su.abs(), 0.45, 1.0) * _smoothstep(dy, 0.15, 0.6)
        drape = torch.stack([su * (0.75 + 0.2 * shoulder), -0.12 - 0.45 * shoulder,
                             (1 - (su * 0.85) ** 2).sqrt()], 0)
        blend = _smoothstep(w, 0.05, 0.35)
        n = crown * (1 - blend) + drape * blend
        # Folds as a height field (face heights), in face-relative coordinates. Each family is a
        # sum of a few waves of random frequency and slant (no two folds alike), creased: the
        # valleys sharp and the ridges round, as cloth folds.
        frng = np.random.default_rng(params["noise_seed"] + 3)

        def waves(x: torch.Tensor, y: torch.Tensor, count: int, lo: float, hi: float, bend: float) -> torch.Tensor:
            # One direction for all the waves of a family (crossing directions make a quilt),
            # bent slowly along ``y`` so the folds are not straight.
            x = x + bend * torch.sin(frng.uniform(2.0, 4.0) * y + frng.uniform(0, 2 * math.pi))
            total = torch.zeros_like(x)
            weight = 0.0
            for _ in range(count):
                f = lo * (hi / lo) ** frng.random()
                amp = (lo / f) ** 0.6
                total = total + amp * torch.sin(f * x + frng.uniform(0, 2 * math.pi))
                weight += amp
            n = total / weight * 1.6
            return n - 0.7 * n.abs()

        opening = self._opening(geo, u, w, dx, dy, params)
        gap = (-opening).clamp(min=0)
        height = 0.016 * torch.exp(-((gap - 0.02) / 0.018) ** 2)                # edge folded back
        # Soft creases round the face at the temples and the cheeks, where the cloth is pulled
        # towards the pin, and broad soft bumps (hair and pins under the cloth) over the crown.
        temples = _smoothstep(gap, 0.04, 0.08) * (1 - _smoothstep(gap, 0.14, 0.22)) * _smoothstep(u.abs(), 0.3, 0.5)
        height = height + 0.008 * torch.sin(2 * math.pi * gap / 0.13 + ph[0]).clamp(max=0.3) * temples * depth
        height = height + waves(u + 0.6 * w, w - 0.4 * u, 2, 2 * math.pi / 1.2, 2 * math.pi / 0.7, 0.1) * 0.008
        # Small irregular wrinkles everywhere: without them the cloth looks moulded.
        gen = torch.Generator().manual_seed(params["noise_seed"] + 4)
        crinkle = torch.rand((32, 32), generator=gen).to(u.device)
        height = height + (_texture(crinkle, u + 0.3 * w, w, 14.0) - 0.5) * 0.006
        side = params["wrap_side"]
        if self.style == "wrapped":
            # Swags: the cloth hangs in nested curves under the chin between the pins, lower on
            # the side of the pin.
            sag = 0.15 * (1 - ((dx - side * 0.06) / 0.5).clamp(-1, 1) ** 2) + side * 0.06 * dx
            q = dy + 0.1 - sag
            fade = _smoothstep(dy, -0.12, 0.0) * (1 - _smoothstep(dy, 0.3, 0.55))
            fade = fade * (1 - _smoothstep(dx.abs(), 0.25, 0.5)) * (0.7 + 0.3 * torch.sin(2.5 * dx + ph[2]))
            pitch = params["swag_pitch"]
            swags = waves(q, dx, 3, 2 * math.pi / (pitch * 1.5), 2 * math.pi / (pitch * 0.9), 0.015)
            # Folds fanning from the pin under the jaw on one side.
            px, py = dx - side * 0.3, dy - 0.05
            rho = torch.hypot(px, py)
            fan = (waves(torch.atan2(px, py), rho, 3, 4.0, 9.0, 0.15)
                   * _smoothstep(rho, 0.03, 0.12) * torch.exp(-rho / 0.35) * _smoothstep(dy, -0.1, 0.05))
            # One end crosses to the other shoulder, its edge standing proud of the layer below.
            across = (px * 0.8 + side * py * 0.6) * side
            layer = 0.018 * _smoothstep(across, -0.01, 0.03) * _smoothstep(dy, -0.05, 0.1)
            height = height + (swags * fade * 0.02 + fan * 0.014) * depth + layer
        else:
            across = torch.full_like(dx, 1.0)
            # A loose scarf: its front edges roll a little as they hang down beside the throat.
            height = height + 0.01 * torch.exp(-((gap - 0.02) / 0.02) ** 2) * _smoothstep(dy, -0.1, 0.1)
        # Folds hanging from the shoulders down the chest, deeper towards the hem.
        psi = torch.atan2(dx, dy + 0.6)
        nf = params["hanging_folds"]
        # Long folds falling from the crown down the sides of the face to the shoulders.
        sides = (_smoothstep(u.abs(), 0.38, 0.5) * _smoothstep(w, -0.15, 0.05) * (1 - _smoothstep(w, 0.7, 1.0))
                 * _smoothstep(gap, 0.03, 0.07))
        height = height + waves(u.abs(), w, 3, 2 * math.pi / 0.16, 2 * math.pi / 0.09, 0.03) * 0.008 * sides * depth
        hang = waves(psi, dy, 5, 0.6 * nf, 1.5 * nf, 0.04)
        hang = hang * _smoothstep(dy, 0.1, 0.45) * (0.016 + 0.02 * _smoothstep(dy, 0.4, 1.2)) * depth
        height = height + hang * blend
        hpx_mean = hpx.mean()
        gy, gx = torch.gradient(height, dim=(1, 2))
        spacing = float(xs[1] - xs[0]) / float(hpx_mean) if len(xs) > 1 else 1.0
        bump = torch.stack([-gx, -gy, torch.zeros_like(gx)], 0) / spacing
        n = n + bump
        # (the norm over the leading axis written out: torch's reduction over it is ten times slower)
        n = n / torch.sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2])
        # Ambient occlusion: fold valleys (below their surroundings) and the crevices at the face
        # and under the chin get less of the room's light.
        sigma = max(1.0, 0.04 / spacing)
        around = gaussian_blur(height.unsqueeze(1), sigma).squeeze(1)
        ao = (1 - 18.0 * (around - height).clamp(min=0)).clamp(0.4, 1)
        ao = ao * (1 - 0.25 * torch.exp(-gap / 0.03))
        if self.style == "wrapped":
            # The chin shades the cloth under it; the crossing layer shades the one below.
            ao = ao * (1 - 0.35 * torch.exp(-(dy.clamp(min=0) / 0.1)) * _smoothstep(dy, -0.08, 0.0)
                       * (1 - _smoothstep(dx.abs(), 0.2, 0.4)))
            ao = ao * (1 - 0.25 * torch.exp(-(-across).clamp(min=0) / 0.04) * (across < 0)
                       * _smoothstep(dy, -0.05, 0.1))
        # Light falls off down the drape (the head and shoulders shade it from above).
        ao = ao * (1 - 0.15 * _smoothstep(dy, 0.2, 1.3))
        # Dyed cloth is never perfectly even: a faint, slow mottling.
        ao = ao * (1 + 0.03 * torch.sin(3.1 * u + 1.7 * w + ph[8]) * torch.sin(2.3 * u - 2.9 * w + ph[10]))
        # Cloth scatters light: a softer terminator than skin's.
        diffuse = light.shade(n, floor=0.18) ** 0.85 * ao
        lv = torch.tensor(light.direction, device=u.device, dtype=torch.float32)
        half_v = lv + torch.tensor([0.0, 0.0, 1.0], device=u.device)
        half_v = half_v / half_v.norm()
        # Cloth's sheen is a broad lobe: the crests of the folds that face the light shine.
        sheen = (n * half_v.view(3, 1, 1, 1)).sum(0).clamp(min=0) ** params["gloss"] * params["sheen"] * ao
        return torch.stack([diffuse, sheen, height], 1)

    # ------------------------------------------------------------------ hair

    @staticmethod
    def _paint_out(region, body, hair, hpx: float, step: int, params) -> tuple[torch.Tensor, torch.Tensor]:
        """The region with leftover hair replaced by the background around it (normalised
        convolution: a blurred clean plate, with noise so it is not cleaner than the rest), and
        how much of each pixel was painted."""
        h, w = hair.shape[-2:]
        planes = region.permute(0, 3, 1, 2)
        weight = (1 - _smoothstep(body, 0.01, 0.1)).unsqueeze(1) * (hair <= 0).unsqueeze(1).float()
        sigma = 0.08 * hpx
        # A wide, smooth fill: on a grid as coarse as the blur allows (two pixels of sigma there).
        plate = normalised_fill(planes, weight, sigma, max(step, int(sigma // 2)))
        plate = plate.permute(0, 2, 3, 1)
        # The mask's edge falls short of the hair's by a few pixels: grow the painted area on a
        # coarse grid (a max keeps thin strands); the upsampling feathers its edge.
        grown = F.adaptive_max_pool2d(hair.unsqueeze(1), (-(-h // step), -(-w // step)))
        g = max(1, math.ceil(0.05 * hpx / step))
        grown = resize_bilinear(dilate(grown, g), (h, w)).squeeze(1)
        grown = torch.minimum(grown, (hair > 0).float() + _smoothstep(body, 0.0, 0.05))
        gen = torch.Generator().manual_seed(params["noise_seed"] + 2)
        plate = plate + torch.randn((hair.shape[0], h, w, 1), generator=gen).to(region.device) * (1.0 / 255)
        a = grown.unsqueeze(-1)
        return region * (1 - a) + plate * a, grown


register("headwear:headscarf", Headscarf)
register("headwear:loose-scarf", lambda: Headscarf("loose"))
