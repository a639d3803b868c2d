"""Lighting: brightness, contrast, gamma and colour temperature, as a webcam in another room
would see the same person. Global photometric edits: every pixel may change."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from .base import Perturbation, register, to_float, to_uint8

# Channel gains (R, G, B) that approximate a white-balance shift of about ±1500 K from daylight.
_WARM = (1.12, 1.0, 0.82)
_COOL = (0.86, 0.98, 1.12)


class Brightness(Perturbation):
    requires = frozenset()

    def __init__(self, name: str, low: float, high: float, description: str) -> None:
        self.name, self.low, self.high, self.description = name, low, high, description

    def make_params(self, frames, annotations, rng: np.random.Generator) -> dict[str, Any]:
        return {"factor": float(rng.uniform(self.low, self.high))}

    def transform(self, frames: torch.Tensor, params: Mapping[str, Any], annotations) -> torch.Tensor:
        return to_uint8(to_float(frames) * params["factor"])


class Gamma(Perturbation):
    name = "lighting:gamma"
    description = "darker mid-tones (gamma about 1.7), as an under-exposed webcam"

    def make_params(self, frames, annotations, rng):
        return {"gamma": float(rng.uniform(1.6, 1.8))}

    def transform(self, frames, params, annotations):
        return to_uint8(to_float(frames).pow(params["gamma"]))


class Contrast(Perturbation):
    name = "lighting:low-contrast"
    description = "contrast reduced to about 60% around each frame's mean grey"

    def make_params(self, frames, annotations, rng):
        return {"factor": float(rng.uniform(0.55, 0.65))}

    def transform(self, frames, params, annotations):
        x = to_float(frames)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return to_uint8(mean + (x - mean) * params["factor"])


class ColourTemperature(Perturbation):

    def __init__(self, name: str, gains: tuple[float, float, float], description: str) -> None:
        self.name, self.gains, self.description = name, gains, description

    def make_params(self, frames, annotations, rng):
        # A mild per-clip strength so that clips do not all get the identical cast.
        return {"strength": float(rng.uniform(0.85, 1.15))}

    def transform(self, frames, params, annotations):
        gains = torch.tensor(self.gains, dtype=torch.float32, device=frames.device)
        gains = 1.0 + (gains - 1.0) * params["strength"]
        return to_uint8(to_float(frames) * gains)


register("lighting:dim", lambda: Brightness("lighting:dim", 0.55, 0.65,
                                            "brightness scaled to about 60%, a dimmer room"))
register("lighting:bright", lambda: Brightness("lighting:bright", 1.3, 1.4,
                                               "brightness scaled to about 135%, a brighter room"))
register("lighting:gamma", Gamma)
register("lighting:low-contrast", Contrast)
register("lighting:warm", lambda: ColourTemperature("lighting:warm", _WARM,
                                                    "warmer white balance (tungsten-like light)"))
register("lighting:cool", lambda: ColourTemperature("lighting:cool", _COOL,
                                                    "cooler white balance (overcast daylight)"))
