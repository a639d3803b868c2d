"""Image quality: how a cheap webcam or a bad connection degrades a video call — JPEG blocking,
defocus blur, a low-resolution stream scaled back up, sensor noise. Global edits: every pixel
may change. Strengths are drawn once per clip and scale with the frame where that is what the
camera would do (blur), or are absolute where the channel sets them (stream height, JPEG quality).

Every edit runs batched on the frames' device, in chunks of frames so that a long HD clip does not
need a float copy of the whole clip at once; JPEG is the exception (see ``JpegCompression``).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.io import decode_jpeg, encode_jpeg

from .base import Perturbation, register
from .kernels import gaussian_blur as blur_planes
from .kernels import resize_bilinear

# Float working copies are [chunk, 3, H, W] float32: about 4 * 2**25 bytes = 128 MiB per chunk.
_CHUNK_VALUES = 2 ** 25


def _chunked(frames: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Apply ``fn`` (uint8 [t, H, W, 3] -> same) to runs of frames and stitch the results."""
    per_frame = max(1, frames[0].numel())
    step = max(1, _CHUNK_VALUES // per_frame)
    if step >= frames.shape[0]:
        return fn(frames)
    return torch.cat([fn(frames[i:i + step]) for i in range(0, frames.shape[0], step)])


def _to_planes(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> float32 [T, 3, H, W] in 0..255 (levels, not 0..1: rounding stays exact)."""
    return frames.permute(0, 3, 1, 2).to(torch.float32)


def _from_planes(x: torch.Tensor) -> torch.Tensor:
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


class JpegCompression(Perturbation):
    """JPEG at a low quality, per frame, as a webcam stream squeezed through a thin connection.

    The codec runs on the CPU (libjpeg, 4:2:0 chroma subsampling as real webcam and video-call
    streams use) whatever the frames' device, and the result is moved back. torchvision's CUDA
    encoder (nvjpeg) is hard-wired to 4:4:4 subsampling and uses another DCT, so a GPU run would
    get a visibly different edit from a CPU run with the same seed, and the audit's result would
    depend on the hardware. ``codec="native"`` uses nvjpeg for CUDA frames anyway, for speed, at
    that price. The per-frame loop is the codec's, not ours: both libraries take one image at a time.
    """

    name = "quality:jpeg"
    description = "JPEG compression at quality 12-20 (blocky, smeared colour), a starved video stream"
    requires = frozenset()

    def __init__(self, low: int = 12, high: int = 20, codec: str = "cpu") -> None:
        if codec not in ("cpu", "native"):
            raise ValueError(f"codec must be 'cpu' or 'native', got {codec!r}")
        if not 1 <= low <= high <= 100:
            raise ValueError(f"JPEG quality range must satisfy 1 <= low <= high <= 100, got {low}, {high}")
        self.low, self.high, self.codec = low, high, codec

    def make_params(self, frames, annotations, rng: np.random.Generator) -> dict[str, Any]:
        return {"quality": int(rng.integers(self.low, self.high + 1))}

    def transform(self, frames: torch.Tensor, params: Mapping[str, Any], annotations) -> torch.Tensor:
        device = frames.device
        on_gpu = self.codec == "native" and device.type == "cuda"
        source = frames if on_gpu else frames.cpu()
        planes = [f.permute(2, 0, 1).contiguous() for f in source]
        with warnings.catch_warnings():
            # torchvision 0.29 deprecates its image codecs in favour of TorchCodec; they still work.
            warnings.filterwarnings("ignore", category=DeprecationWarning,
                                    message=".*decoding and encoding capabilities.*")
            encoded = encode_jpeg(planes, quality=int(params["quality"]))
            # nvjpeg returns the bitstream on the GPU; the decoder wants it on the CPU.
            encoded = [e.cpu() for e in encoded]
            decoded = decode_jpeg(encoded, device=device if on_gpu else "cpu")
        return torch.stack(decoded).permute(0, 2, 3, 1).contiguous().to(device)


def gaussian_blur(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of uint8 [T, H, W, 3] frames, reflect-padded, sigma in pixels."""
    return _chunked(frames, lambda chunk: _from_planes(blur_planes(_to_planes(chunk), sigma)))


class DefocusBlur(Perturbation):
    name = "quality:blur"
    description = "out-of-focus webcam: Gaussian blur, sigma about 0.5% of the frame's shorter side"
    requires = frozenset()

    def __init__(self, low: float = 0.004, high: float = 0.006, min_sigma: float = 0.6) -> None:
        self.low, self.high, self.min_sigma = low, high, min_sigma

    def make_params(self, frames, annotations, rng):
        fraction = float(rng.uniform(self.low, self.high))
        # Relative to the frame so that the edit means the same at 360p and at 1080p: 1.4-2.2 px
        # at 360 lines, soft but with the eyes and mouth still readable. 1% (3.6 px at 360p) was
        # tried and wiped out the facial features, which is no longer a webcam out of focus.
        # Below about half a pixel a Gaussian changes almost nothing, so thumbnails and test clips
        # get a floor that keeps the edit an edit.
        sigma = max(self.min_sigma, fraction * min(frames.shape[1:3]))
        return {"fraction": fraction, "sigma": sigma}

    def transform(self, frames, params, annotations):
        return gaussian_blur(frames, float(params["sigma"]))


class LowResolution(Perturbation):
    """A low-bandwidth stream: sent at ~96-128 lines, shown scaled back up to the frame size.

    The height is absolute, as a call's bitrate ladder sets it, but never more than 40% of the
    frame's own height, so that small clips (the test fixtures, thumbnails) are degraded too.
    """

    name = "quality:lowres"
    description = "low-bandwidth stream: sent at about 96-128 lines, scaled back up (soft, pixelated edges)"
    requires = frozenset()

    def __init__(self, low: int = 96, high: int = 128, max_fraction: float = 0.4) -> None:
        self.low, self.high, self.max_fraction = low, high, max_fraction

    def make_params(self, frames, annotations, rng):
        h, w = frames.shape[1:3]
        lines = int(rng.integers(self.low, self.high + 1))
        height = max(2, min(lines, round(h * self.max_fraction)))
        width = max(2, round(w * height / h))
        return {"lines": lines, "height": height, "width": width}

    def transform(self, frames, params, annotations):
        h, w = frames.shape[1:3]
        size = (int(params["height"]), int(params["width"]))

        def degrade(chunk: torch.Tensor) -> torch.Tensor:
            # Antialiased downscale (what a scaler on the sender does), plain bilinear back up
            # (what the receiving player does).
            small = F.interpolate(_to_planes(chunk), size=size, mode="bilinear",
                                  align_corners=False, antialias=True)
            return _from_planes(resize_bilinear(small, (h, w)))

        return _chunked(frames, degrade)


class SensorNoise(Perturbation):
    """Gaussian sensor noise, fresh in every frame (as a sensor's is), strength drawn per clip.

    The noise is drawn on the CPU from a ``torch.Generator`` seeded from the clip's numpy rng and
    then moved to the frames' device, so the same seed gives the same pixels on CPU and CUDA.
    """

    name = "quality:noise"
    description = "grainy low-light sensor: Gaussian noise of 4-7 grey levels in every frame"
    requires = frozenset()

    def __init__(self, low: float = 4.0, high: float = 7.0) -> None:
        self.low, self.high = low, high

    def make_params(self, frames, annotations, rng):
        return {"sigma": float(rng.uniform(self.low, self.high)),
                "noise_seed": int(rng.integers(0, 2 ** 63 - 1))}

    def transform(self, frames, params, annotations):
        gen = torch.Generator(device="cpu").manual_seed(int(params["noise_seed"]))
        sigma = float(params["sigma"])

        def add(chunk: torch.Tensor) -> torch.Tensor:
            # Chunks are drawn in order from one generator, so the pixels depend only on the seed
            # and the clip's shape.
            noise = torch.randn(chunk.shape, generator=gen, dtype=torch.float32).mul_(sigma)
            x = chunk.to(torch.float32) + noise.to(chunk.device)
            return x.round_().clamp_(0, 255).to(torch.uint8)

        return _chunked(frames, add)


register("quality:jpeg", JpegCompression)
register("quality:blur", DefocusBlur)
register("quality:lowres", LowResolution)
register("quality:noise", SensorNoise)
