"""Image kernels the edits share. Video kernels run the image kernel over the leading dimension
(as torchvision's v2 kernels do), on whatever device the frames live."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SLICED_BOX = 8   # box means up to this radius are sums of slices; wider ones running sums


def gaussian_kernel(sigma: float, device: torch.device | str = "cpu") -> torch.Tensor:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _lerp_axis(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    n = x.shape[dim]
    if dim == x.dim() - 1:
        # Gathering along the last axis picks single floats; along rows it copies whole rows.
        # Resampling columns as rows of the transpose is three times faster, the same values.
        return _lerp_axis(x.transpose(-1, -2).contiguous(), size, dim - 1).transpose(-1, -2)
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
    return _lerp_axis(_lerp_axis(x, h, x.dim() - 2), w, x.dim() - 1).contiguous()


def coarse_step(sigma: float, h: int, w: int) -> int:
    """How much coarser a grid a Gaussian blur of ``sigma`` may run on (at least 3 pixels of
    sigma there, and 8 pixels a side): 1 for a narrow blur or a tiny frame."""
    step = int(sigma // 3) if sigma >= 6 else 1
    return step if step > 1 and min(h, w) // step >= 8 else 1


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of float ``[N, C, H, W]`` with reflect padding. Large sigmas are
    computed at a reduced resolution (at least 3 pixels of sigma there: the result is smooth
    anyway), keeping the cost flat."""
    if sigma <= 0:
        return x.clone()
    h, w = x.shape[-2:]
    step = coarse_step(sigma, h, w)
    if step > 1:
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


def coarse_blur(x: torch.Tensor, sigma: float, step: int) -> torch.Tensor:
    """Gaussian blur of ``[N, C, H, W]`` computed on a grid ``step`` times coarser (area
    averages), upsampled back: for the wide, smooth blurs, at a fraction of the cost."""
    if step <= 1:
        return gaussian_blur(x, sigma)
    h, w = x.shape[-2:]
    return resize_bilinear(gaussian_blur(_area(x, step), sigma / step), (h, w))


def _area(x: torch.Tensor, step: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(-(-h // step), -(-w // step)), mode="area")


def normalised_fill(planes: torch.Tensor, weight: torch.Tensor, sigma: float, step: int) -> torch.Tensor:
    """Every pixel of ``planes`` ``[N, C, H, W]`` as the Gaussian-weighted mean of the pixels
    around it, each counted by ``weight`` ``[N, 1, H, W]`` (normalised convolution): what lies
    behind a region of weight 0, filled from around it. Numerator and weight are blurred together
    on a grid ``step`` times coarser and divided there; where no weighted pixel is near, the
    frame's weighted mean, summed in float64 (a float32 sum depends on how many threads split
    it, and the same edit must give the same pixels on every machine)."""
    h, w = planes.shape[-2:]
    c = planes.shape[1]
    both = torch.cat([planes * weight, weight], 1)
    both = gaussian_blur(_area(both, step) if step > 1 else both, sigma / max(step, 1))
    num, den = both[:, :c], both[:, c:]
    fill = num / den.clamp_min(1e-6)
    far = den <= 1e-3
    if bool(far.any()):
        w64 = weight.double()
        mean = ((planes.double() * w64).sum((2, 3), keepdim=True)
                / w64.sum((2, 3), keepdim=True).clamp_min(1e-6)).float()
        fill = torch.where(far, mean, fill)
    return resize_bilinear(fill, (h, w)) if step > 1 else fill


def frames_to_planes(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` → float ``[T, 3, H, W]`` in [0, 1]."""
    return frames.permute(0, 3, 1, 2).to(torch.float32) / 255.0


def planes_to_frames(x: torch.Tensor) -> torch.Tensor:
    """float ``[T, 3, H, W]`` in [0, 1] → uint8 ``[T, H, W, 3]`` (rounded, clamped)."""
    return (x * 255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _shifted(x: torch.Tensor, radius: int, dim: int, value: float = 0.0) -> list[torch.Tensor]:
    """The ``2r+1`` views of ``x`` shifted by ``-r..r`` along ``dim`` (-1 or -2), padded with
    ``value``: a window operation along one axis is a fold over them in a fixed order."""
    size = x.shape[dim]
    padded = F.pad(x, (radius, radius, 0, 0) if dim == -1 else (0, 0, radius, radius), value=value)
    return [padded.narrow(dim, i, size) for i in range(2 * radius + 1)]


def dilate(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Maximum of float ``[N, C, H, W]`` over a ``(2r+1)²`` window (padding ignored): a row pass
    and a column pass, each the running maximum of shifted slices (on the CPU four times faster
    than ``max_pool2d``, the same values). ``-dilate(-x, r)`` erodes."""
    if radius < 1:
        return x.clone()
    for dim in (-1, -2):
        views = _shifted(x, radius, dim, float("-inf"))
        x = views[0].clone()
        for view in views[1:]:
            torch.maximum(x, view, out=x)
    return x


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean of ``[N, C, H, W]`` over a ``(2r+1)²`` window (clipped at the borders, divided by
    the pixels inside), the same to the last bit whatever the number of threads. Small windows
    are sums of shifted slices in a fixed order (no running sum, so float32 is exact enough for
    the variances the guided filter takes from it); wide ones, whose cost would grow with the
    radius, are running sums in float64."""
    if radius < 1:
        return x.clone()
    h, w = x.shape[-2:]

    def slices(y: torch.Tensor, dim: int, size: int) -> torch.Tensor:
        views = _shifted(y, radius, dim)
        out = views[0] + views[1]
        for view in views[2:]:
            out.add_(view)
        return out

    def running(y: torch.Tensor, dim: int, size: int) -> torch.Tensor:
        # Running sums with r + 1 zeros before and the total repeated r times after: window i is
        # then the difference of two slices, entries i + 2r + 1 and i (no gather).
        c = torch.cumsum(y, dim)
        zeros = torch.zeros_like(c.narrow(dim, 0, 1)).expand(*[radius + 1 if d == c.ndim + dim else n
                                                              for d, n in enumerate(c.shape)])
        total = c.narrow(dim, size - 1, 1).expand(*[radius if d == c.ndim + dim else n
                                                    for d, n in enumerate(c.shape)])
        c = torch.cat([zeros, c, total], dim)
        return c.narrow(dim, 2 * radius + 1, size) - c.narrow(dim, 0, size)

    along, dtype = (slices, x.dtype) if radius <= SLICED_BOX else (running, torch.float64)
    ones = torch.ones((1, 1, h, w), dtype=dtype, device=x.device)
    count = along(along(ones, -1, w), -2, h)
    return (along(along(x.to(dtype), -1, w), -2, h) / count).to(x.dtype)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float,
                  step: int = 1) -> torch.Tensor:
    """He et al.'s guided filter with a colour guide: ``src`` ``[N, 1, H, W]`` (a mask) made to
    follow the edges of ``guide`` ``[N, 3, H, W]`` (the frame, in [0, 1]) within ``radius``
    pixels; ``eps`` is how strong an edge must be to be followed. ``step`` > 1 fits the local
    linear models on a grid that much coarser (the "fast" guided filter) and applies them at
    full resolution, so the edge stays sharp at a fraction of the cost."""
    if guide.device.type == "cpu" and guide.shape[0] > 1:
        # Frame by frame on the CPU: the 13 window means of one frame stay in cache between the
        # passes (three to four times faster than the whole clip at once; the same numbers).
        return torch.cat([guided_filter(guide[i:i + 1], src[i:i + 1], radius, eps, step)
                          for i in range(guide.shape[0])])
    h, w = src.shape[-2:]
    if step > 1 and min(h, w) // step >= 8:
        size = (-(-h // step), -(-w // step))
        g, p = F.interpolate(guide, size=size, mode="area"), F.interpolate(src, size=size, mode="area")
        r = max(1, round(radius / step))
    else:
        g, p, r, size = guide, src, radius, (h, w)
    pairs = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
    # Every window mean the local models need, in one pass: I, p, I·p and the six products I_a·I_b.
    means = box_mean(torch.cat([g, p, g * p] + [g[:, a:a + 1] * g[:, b:b + 1] for a, b in pairs], 1), r)
    mean_i, mean_p = means[:, 0:3], means[:, 3:4]
    cov_ip = means[:, 4:7] - mean_i * mean_p
    var = {}
    for k, (a, b) in enumerate(pairs):
        var[a, b] = means[:, 7 + k:8 + k] - mean_i[:, a:a + 1] * mean_i[:, b:b + 1]
    s00, s01, s02 = var[0, 0] + eps, var[0, 1], var[0, 2]
    s11, s12, s22 = var[1, 1] + eps, var[1, 2], var[2, 2] + eps
    # The 3x3 inverse by cofactors, per pixel (symmetric).
    c00, c01, c02 = s11 * s22 - s12 * s12, s02 * s12 - s01 * s22, s01 * s12 - s02 * s11
    c11, c12, c22 = s00 * s22 - s02 * s02, s01 * s02 - s00 * s12, s00 * s11 - s01 * s01
    det = s00 * c00 + s01 * c01 + s02 * c02
    cr, cg, cb = cov_ip[:, 0:1], cov_ip[:, 1:2], cov_ip[:, 2:3]
    a0 = (c00 * cr + c01 * cg + c02 * cb) / det
    a1 = (c01 * cr + c11 * cg + c12 * cb) / det
    a2 = (c02 * cr + c12 * cg + c22 * cb) / det
    b = mean_p - a0 * mean_i[:, 0:1] - a1 * mean_i[:, 1:2] - a2 * mean_i[:, 2:3]
    coeffs = box_mean(torch.cat([a0, a1, a2, b], 1), r)
    if size != (h, w):
        coeffs = resize_bilinear(coeffs, (h, w))
    return (coeffs[:, :3] * guide).sum(1, keepdim=True) + coeffs[:, 3:]
