"""What the camera and the room did to a clip, estimated from the clip itself, so that whatever an
edit draws — fabric, glasses, a wall — gets the same light, white balance, noise and blur as the
rest of the frame, instead of standing out by being cleaner, brighter or lit from elsewhere.

- :func:`camera_look`: the level and colour a white surface has in this clip (a white patch:
  the brightest unclipped pixels), the sensor noise (robust spread of a high-pass residual on
  flat areas) and how blurred the person and the background are (the re-blur ratio of the
  strongest edges: an edge blurred by sigma loses gradient as sqrt(sigma² + r²)/sigma when blurred
  again by r).
- :func:`face_light`: where the light comes from and how hard it is, from the shading of the
  face: skin luminance at landmarks fitted as ``c0 + c·n`` over the normals of an ellipsoid
  fitted to the face.

One estimate per clip (a few frames are enough, the light does not change within a clip), on
the frames' device; sums in float64, so the numbers do not depend on the thread count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .annotate import CHIN, FOREHEAD
from .base import per_clip
from .kernels import gaussian_blur

# Landmarks on skin of even albedo (forehead, cheeks, nose, chin, jaw; no eyes, brows or lips).
SKIN_POINTS = (10, 151, 9, 108, 337, 67, 297, 109, 338, 69, 299, 104, 333, 50, 280, 101, 330, 36, 266,
               118, 347, 123, 352, 117, 346, 205, 425, 187, 411, 147, 376, 213, 433, 1, 4, 5, 195, 197,
               45, 275, 48, 278, 152, 175, 199, 200, 171, 396, 148, 377, 208, 428, 93, 323, 132, 361,
               58, 288, 172, 397, 136, 365, 116, 345, 34, 264, 143, 372)
WHITE_ALBEDO = 0.85     # a white wall, a shirt: what the brightest surfaces of a room reflect
DEFAULT_LIGHT = (0.25, -0.55, 0.8)   # from above, a little to the side, towards the camera


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).clamp(min=0) ** 2.4)


def srgb8_to_linear(x: torch.Tensor) -> torch.Tensor:
    """uint8 sRGB → linear float32, through a table of the 256 levels: the values of
    :func:`srgb_to_linear` on ``x / 255``, at a fifth of the cost of computing them per pixel."""
    table = srgb_to_linear(torch.arange(256, dtype=torch.float32, device=x.device) / 255.0)
    return torch.take(table, x.long())


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp(min=1e-12) ** (1 / 2.4) - 0.055)


def _luma(x: torch.Tensor, dim: int) -> torch.Tensor:
    w = torch.tensor([0.2126, 0.7152, 0.0722], dtype=x.dtype, device=x.device)
    shape = [1] * x.dim()
    shape[dim] = 3
    return (x * w.view(shape)).sum(dim)


def _probe_frames(t: int) -> list[int]:
    return sorted({0, t // 2, t - 1})


@dataclass(frozen=True)
class CameraLook:
    """``white``: linear RGB of a white surface (albedo ``WHITE_ALBEDO``) in this clip — the
    exposure and the colour of the light together; ``noise``: sensor noise, std in 8-bit levels;
    ``person_blur`` and ``background_blur``: Gaussian sigma in pixels of the sharpest edges there
    (``nan`` when there are too few edges to tell)."""

    white: tuple[float, float, float]
    noise: float
    person_blur: float
    background_blur: float

    def as_dict(self) -> dict[str, object]:
        return {"white": [round(c, 4) for c in self.white], "noise": round(self.noise, 3),
                "person_blur": round(self.person_blur, 3), "background_blur": round(self.background_blur, 3)}


def edge_blur(luma: torch.Tensor, region: torch.Tensor, reblur: float = 1.2) -> float:
    """Gaussian sigma (pixels) of the strongest edges of ``luma`` ``[N, 1, H, W]`` inside
    ``region`` (bool, same shape): the median over the top 2% of gradients of
    ``r / sqrt(R² - 1)``, ``R`` the ratio of the gradient before and after a blur of ``r``."""
    def grad(y: torch.Tensor) -> torch.Tensor:
        gx = y[..., 1:-1, 2:] - y[..., 1:-1, :-2]
        gy = y[..., 2:, 1:-1] - y[..., :-2, 1:-1]
        return torch.hypot(gx, gy)

    g, g2 = grad(luma), grad(gaussian_blur(luma, reblur))
    inside = region[..., 1:-1, 1:-1]
    values = g[inside]
    if values.numel() < 200 or float(values.max()) < 0.08:
        return float("nan")
    k = max(20, values.numel() // 50)
    threshold = values.double().kthvalue(values.numel() - k + 1).values
    strong = inside & (g >= threshold) & (g > 0.08)
    ratio = (g[strong] / g2[strong].clamp(min=1e-6)).double()
    ratio = ratio[ratio > 1.02]
    if ratio.numel() < 10:
        return float("nan")
    sigma = reblur / (ratio * ratio - 1).sqrt()
    return float(sigma.median().clamp(0.2, 8.0))


def camera_look(frames: torch.Tensor, mask: torch.Tensor | None = None) -> CameraLook:
    """The clip's white, noise and blur (see :class:`CameraLook`), from three of its frames.
    ``mask``: the person mask ``[T, H, W]`` (blur is told apart for the person and the
    background only with it)."""
    t, h, w = frames.shape[:3]
    idx = _probe_frames(t)
    x = frames[idx].permute(0, 3, 1, 2).to(torch.float32) / 255.0
    lin = srgb_to_linear(x)
    # White patch: the brightest 2% of unclipped pixels (every other pixel is plenty).
    sub = lin[:, :, ::2, ::2]
    flat = sub.permute(1, 0, 2, 3).reshape(3, -1).double()
    y = _luma(flat, 0)
    ok = flat.max(0).values < 0.97
    if int(ok.sum()) < 50:
        ok = torch.ones_like(ok)
    yv = y[ok]
    k = max(1, yv.numel() // 50)
    top = ok & (y >= yv.kthvalue(yv.numel() - k + 1).values)
    rgb = flat[:, top].mean(1)
    level = float(_luma(rgb, 0))
    # The brightest things in a room are mostly neutral but not all: keep 70% of their colour.
    tint = (rgb / max(level, 1e-6)) ** 0.7
    tint = tint / float(_luma(tint, 0))
    level = min(max(level / WHITE_ALBEDO, 0.12), 1.15)
    white = tuple(float(c) for c in (tint * level).clamp(0.02, 1.3))

    luma = _luma(x, 1).unsqueeze(1)
    residual = luma - gaussian_blur(luma, 1.0)
    gy = (luma[..., 2:, 1:-1] - luma[..., :-2, 1:-1]).abs()
    gx = (luma[..., 1:-1, 2:] - luma[..., 1:-1, :-2]).abs()
    grad = _pad1(gx + gy)
    calm = grad <= grad.flatten().double().kthvalue(max(1, grad.numel() * 3 // 10)).values
    r = residual[calm].double().abs()
    # 1.4826·MAD is the std of Gaussian noise; the residual of a sigma-1 blur keeps 0.872 of it.
    noise = float(r.median()) * 1.4826 / 0.872 * 255.0 if r.numel() else 0.0

    person_blur = background_blur = float("nan")
    if mask is not None:
        m = mask[idx].unsqueeze(1)
        person_blur = edge_blur(luma, m > 0.95)
        background_blur = edge_blur(luma, m < 0.05)
    return CameraLook(white=white, noise=min(max(noise, 0.0), 12.0), person_blur=person_blur,
                      background_blur=background_blur)


def _pad1(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")


@dataclass(frozen=True)
class FaceLight:
    """Skin luminance modelled as ``c0 + c·n`` over surface normals ``n`` (image axes: x right,
    y down, z towards the camera). ``shade(n)`` is the light a surface of normal ``n`` gets,
    relative to one facing the camera."""

    c0: float
    c: tuple[float, float, float]

    @property
    def direction(self) -> tuple[float, float, float]:
        n = math.sqrt(sum(v * v for v in self.c)) or 1.0
        return tuple(v / n for v in self.c)

    @property
    def contrast(self) -> float:
        """Lit side over shadow side across the face, ``(c0 + |cx|) / (c0 - |cx|)``-like: 1 is
        flat light."""
        s = math.hypot(self.c[0], self.c[1])
        return (self.c0 + s) / max(self.c0 - s, 1e-3)

    def shade(self, n: torch.Tensor, floor: float = 0.12) -> torch.Tensor:
        """``n``: ``[3, ...]`` unit normals → relative irradiance ``[...]``."""
        frontal = self.c0 + self.c[2]
        c = torch.tensor(self.c, dtype=n.dtype, device=n.device).view(3, *([1] * (n.dim() - 1)))
        return ((self.c0 + (n * c).sum(0)) / frontal).clamp(min=floor)

    def as_dict(self) -> dict[str, object]:
        return {"direction": [round(v, 3) for v in self.direction], "contrast": round(self.contrast, 3)}


def default_light() -> FaceLight:
    d = np.array(DEFAULT_LIGHT) / np.linalg.norm(DEFAULT_LIGHT)
    return FaceLight(c0=0.45, c=tuple(float(v) * 0.55 for v in d))


def face_light(frames: torch.Tensor, landmarks: torch.Tensor) -> FaceLight:
    """The light on the face (see :class:`FaceLight`), fitted over three frames' skin points."""
    t = frames.shape[0]
    idx = _probe_frames(t)
    lm = landmarks[idx, :, :2].double()
    if not bool(torch.isfinite(lm).all()):
        return default_light()
    fh = float((lm[:, FOREHEAD] - lm[:, CHIN]).norm(dim=1).mean())
    if fh < 12:
        return default_light()
    x = srgb8_to_linear(frames[idx].permute(0, 3, 1, 2))
    luma = gaussian_blur(_luma(x, 1).unsqueeze(1), max(0.7, fh / 70)).squeeze(1)
    pts = lm[:, list(SKIN_POINTS)]
    # An ellipsoid through the face: centre between forehead and chin, half-axes from the
    # spread of the skin points; its normal at each point, then back to image axes.
    centre = 0.5 * (lm[:, FOREHEAD] + lm[:, CHIN])
    eye = lm[:, 263] - lm[:, 33]
    roll = torch.atan2(eye[:, 1], eye[:, 0]).view(-1, 1)
    d = pts - centre[:, None]
    cos, sin = torch.cos(roll), torch.sin(roll)
    u = d[..., 0] * cos + d[..., 1] * sin
    v = -d[..., 0] * sin + d[..., 1] * cos
    half_w = u.abs().amax(1, keepdim=True) * 1.08
    half_h = v.abs().amax(1, keepdim=True) * 1.08
    nu, nv = u / half_w, v / half_h
    nz = (1 - nu * nu - nv * nv).clamp(min=0.02).sqrt()
    norm = torch.sqrt(nu * nu + nv * nv + nz * nz)
    nu, nv, nz = nu / norm, nv / norm, nz / norm
    nx, ny = nu * cos - nv * sin, nu * sin + nv * cos
    # Samples pulled a little inwards: points on the oval sit on the face's very edge.
    sample = centre[:, None] + d * 0.9
    h, w = luma.shape[-2:]
    sx = sample[..., 0].clamp(0, w - 1)
    sy = sample[..., 1].clamp(0, h - 1)
    x0, y0 = sx.floor().long().clamp(max=w - 2), sy.floor().long().clamp(max=h - 2)
    fx, fy = (sx - x0).to(luma.dtype), (sy - y0).to(luma.dtype)
    vals = []
    for i in range(len(idx)):
        img = luma[i]
        a = img[y0[i], x0[i]] * (1 - fx[i]) + img[y0[i], x0[i] + 1] * fx[i]
        b = img[y0[i] + 1, x0[i]] * (1 - fx[i]) + img[y0[i] + 1, x0[i] + 1] * fx[i]
        vals.append(a * (1 - fy[i]) + b * fy[i])
    yv = torch.stack(vals).double().cpu().numpy().ravel()
    design = np.stack([np.ones_like(yv), nx.cpu().numpy().ravel(), ny.cpu().numpy().ravel(),
                       nz.cpu().numpy().ravel()], 1)
    inside = ((sample[..., 0] >= 0) & (sample[..., 0] <= w - 1) & (sample[..., 1] >= 0)
              & (sample[..., 1] <= h - 1)).cpu().numpy().ravel()
    design, yv = design[inside], yv[inside]
    if len(yv) < 30:
        return default_light()
    # Least squares twice, the second time without the worst-fitting tenth (a lock of hair, a
    # glasses rim, a hand over the chin).
    coef = np.linalg.lstsq(design, yv, rcond=None)[0]
    err = np.abs(design @ coef - yv)
    keep = err <= np.quantile(err, 0.9)
    coef = np.linalg.lstsq(design[keep], yv[keep], rcond=None)[0]
    c0, cx, cy, cz = (float(v) for v in coef)
    # The model is linear in n; a face in hard light has c0 near zero or below. Keep it usable.
    frontal = c0 + cz
    if not np.isfinite(frontal) or frontal <= 1e-3:
        return default_light()
    c0 = max(c0, 0.15 * frontal)
    return FaceLight(c0=c0, c=(cx, cy, frontal - c0))


def clip_look(frames: torch.Tensor, annotations) -> CameraLook:
    """The clip's :func:`camera_look` (with its person mask when the annotations have one),
    computed once per clip for every edit that draws into it (``per_clip``)."""
    mask = getattr(annotations, "mask", None)
    return per_clip(frames, annotations, "look", lambda: camera_look(frames, mask))


def clip_light(frames: torch.Tensor, annotations) -> FaceLight:
    """The clip's :func:`face_light`, once per clip for every edit that draws on the face."""
    return per_clip(frames, annotations, "light", lambda: face_light(frames, annotations.landmarks))
