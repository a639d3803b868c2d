"""Reference raters shipped with auditkit. They are controls for the harness, not personality
models: ``appearance`` scores from image statistics alone (so it *should* fail a lighting
audit), ``constant`` ignores its input (so every test should come out invariant)."""

from __future__ import annotations

import torch
from torch import nn

from auditkit.contract.rater import OCEAN, InputSpec

from .torchscript import TorchRater


class AppearanceScorer(nn.Module):
    """Five fixed linear read-outs of per-clip colour statistics, squashed to [0, 1].

    Statistics (mean over frames): luminance, RMS contrast, saturation, warmth (R - B) and how
    much brighter the centre is than the border. The weights are fixed and documented: the
    point is a deterministic rater with a known, appearance-only dependence.
    """

    def __init__(self) -> None:
        super().__init__()
        #                        lum   contrast  sat   warmth  centre
        weights = torch.tensor([[1.5,  2.0,      1.0,  0.5,    0.5],    # openness
                                [2.0,  -1.0,     0.0,  -0.5,   1.0],    # conscientiousness
                                [2.5,  1.5,      1.5,  1.0,    0.0],    # extraversion
                                [1.0,  -0.5,     0.5,  1.5,    0.5],    # agreeableness
                                [-2.0, 1.0,      -0.5, -1.0,   -0.5]])  # neuroticism
        self.register_buffer("weights", weights)
        self.register_buffer("bias", torch.tensor([-1.0, -1.0, -1.5, -0.5, 1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, T, 3, H, W] in [0, 1]
        r, g, b = x[:, :, 0], x[:, :, 1], x[:, :, 2]
        lum = 0.299 * r + 0.587 * g + 0.114 * b
        mean_lum = lum.mean(dim=(2, 3))
        contrast = lum.std(dim=(2, 3))
        sat = (x.amax(dim=2) - x.amin(dim=2)).mean(dim=(2, 3))
        warmth = (r - b).mean(dim=(2, 3))
        h, w = lum.shape[-2:]
        centre = lum[:, :, h // 4: 3 * h // 4, w // 4: 3 * w // 4].mean(dim=(2, 3))
        feats = torch.stack([mean_lum, contrast, sat, warmth, centre - mean_lum], dim=-1).mean(dim=1)
        return torch.sigmoid(feats @ self.weights.T + self.bias)


class ConstantScorer(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 5), 0.5, dtype=torch.float32, device=x.device)


def appearance() -> TorchRater:
    return TorchRater(AppearanceScorer(), OCEAN, InputSpec(size=(112, 112), frames=8),
                      name="builtin:appearance")


def constant() -> TorchRater:
    return TorchRater(ConstantScorer(), OCEAN, InputSpec(size=(112, 112), frames=8),
                      name="builtin:constant")


BUILTIN = {"appearance": appearance, "constant": constant}
