"""Image kernels the edits share. Video kernels run the image kernel over the leading dimension
(as torchvision's v2 kernels do), on whatever device the frames live."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel(sigma: float, device: torch.device | str = "cpu") -> torch.Tensor:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _lerp_axis(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    n = x.shape[dim]
    # Half-pixel centres (align_corners=False), clamped at the borders as torch does.
    src = ((torch.arange(size, dtype=torch.float64, device=x.device) + 0.5) * (n / size) - 0.5).clamp_(min=0)
    i0 = src.floor().long().clamp_(max=n - 1)
    i1 = (i0 + 1).clamp_(max=n - 1)
    shape = [1] * x.dim()
    shape[dim] = size
    t = (src - i0).to(x.dtype).view(shape)
    a, b = x.index_select(dim, i0), x.index_select(dim, i1)
    return a + (b - a) * t


def resize_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of float ``[N, C, H, W]`` (half-pixel centres, no antialias), the same to
    the last bit whatever the number of threads. ``F.interpolate``'s CPU kernel is not: its
    vectorised and scalar paths round differently, so an edit's pixels would depend on the core
    count, and a Ray actor would disagree with the machine that started the audit."""
    h, w = size
    return _lerp_axis(_lerp_axis(x, h, x.dim() - 2), w, x.dim() - 1)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of float ``[N, C, H, W]`` with reflect padding. Large sigmas are
    computed at a reduced resolution (the result is smooth anyway), keeping the cost flat."""
    if sigma <= 0:
        return x.clone()
    h, w = x.shape[-2:]
    step = int(sigma // 4) if sigma >= 8 else 1
    if step > 1 and min(h, w) // step >= 8:
        small = F.interpolate(x, size=(h // step, w // step), mode="area")
        return resize_bilinear(gaussian_blur(small, sigma / step), (h, w))
    # 3 sigma holds 99.7% of the mass; reflect padding needs the radius below the frame size.
    radius = max(1, min(math.ceil(3.0 * sigma), h - 1, w - 1))
    taps = gaussian_kernel(sigma, "cpu")
    centre = taps.numel() // 2
    taps = taps[centre - radius: centre + radius + 1]
    taps = (taps / taps.sum()).tolist()

    def along(y: torch.Tensor, dim: int) -> torch.Tensor:
        # A sum of shifted slices rather than conv2d: on the CPU, conv2d with a one-channel 1xk
        # kernel ran about 8x slower than this on 360p clips; on CUDA both are memory-bound.
        size = y.shape[dim]
        pad = (radius, radius, 0, 0) if dim == -1 else (0, 0, radius, radius)
        # Reflect padding needs the pad below the side; a tiny frame falls back to replicate.
        padded = F.pad(y, pad, mode="reflect" if radius < size else "replicate")
        out = padded.narrow(dim, 0, size) * taps[0]
        for i in range(1, len(taps)):
            out.add_(padded.narrow(dim, i, size), alpha=taps[i])
        return out

    return along(along(x, -1), -2)


def frames_to_planes(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` → float ``[T, 3, H, W]`` in [0, 1]."""
    return frames.permute(0, 3, 1, 2).to(torch.float32) / 255.0


def planes_to_frames(x: torch.Tensor) -> torch.Tensor:
    """float ``[T, 3, H, W]`` in [0, 1] → uint8 ``[T, H, W, 3]`` (rounded, clamped)."""
    return (x * 255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
