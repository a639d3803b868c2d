"""The rater under audit. Replace ``make_rater`` with loading your model, e.g.::

    from auditkit import load_rater
    def make_rater():
        return load_rater("models/rater.pt")

or return your ``torch.nn.Module`` wrapped in a ``TorchRater`` that says what input it wants.
"""

import torch
from torch import nn

from auditkit.raters import OCEAN, InputSpec, TorchRater


class Placeholder(nn.Module):
    """Stands in for your model: 0.5 on every trait for every clip, so every edit is invariant."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, T, 3, H, W], RGB in [0, 1]
        return torch.full((x.shape[0], len(OCEAN)), 0.5, device=x.device)


def make_rater() -> TorchRater:
    # InputSpec: the frame size and number of frames your model wants from each clip.
    return TorchRater(Placeholder(), OCEAN, InputSpec(size=(112, 112), frames=4),
                      name="placeholder")
