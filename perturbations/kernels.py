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


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of float ``[N, C, H, W]`` with reflect padding. Large sigmas are
    computed at a reduced resolution (the result is smooth anyway), keeping the cost flat."""
    if sigma <= 0:
        return x.clone()
    h, w = x.shape[-2:]
    step = int(sigma // 4) if sigma >= 8 else 1
    if step > 1 and min(h, w) // step >= 8:
        small = F.interpolate(x, size=(h // step, w // step), mode="area")
        return F.interpolate(gaussian_blur(small, sigma / step), size=(h, w), mode="bilinear",
                             align_corners=False)
    k = gaussian_kernel(sigma, x.device)
    r = k.numel() // 2
    c = x.shape[1]
    # Reflect padding needs the pad smaller than the side; replicate covers tiny images.
    mode = "reflect" if r < min(h, w) else "replicate"
    out = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1).expand(c, 1, 1, -1),
                   groups=c)
    return F.conv2d(F.pad(out, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1).expand(c, 1, -1, 1),
                    groups=c)


def frames_to_planes(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` → float ``[T, 3, H, W]`` in [0, 1]."""
    return frames.permute(0, 3, 1, 2).to(torch.float32) / 255.0


def planes_to_frames(x: torch.Tensor) -> torch.Tensor:
    """float ``[T, 3, H, W]`` in [0, 1] → uint8 ``[T, H, W, 3]`` (rounded, clamped)."""
    return (x * 255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
