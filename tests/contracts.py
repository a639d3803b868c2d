"""Contract checkers every perturbation test shares (see DESIGN.md, "Style to follow")."""

from __future__ import annotations

import torch

from auditkit.perturbations import Perturbation


def check_edit_contract(edit: Perturbation, frames: torch.Tensor, annotations=None) -> None:
    before = frames.clone()
    first = edit(frames, annotations, seed=123)
    assert torch.equal(frames, before), f"{edit.name} mutated its input"
    assert first.frames.dtype == torch.uint8 and first.frames.shape == frames.shape
    assert first.frames.device == frames.device
    assert first.changed.shape == frames.shape[:3] and first.changed.dtype == torch.bool
    # The changed-pixel mask is what differs from the input as it was before the call — computed
    # here from a copy, not from the Edit's own record of the original, which could be wrong.
    assert torch.equal(first.original, before), f"{edit.name}: Edit.original is not the input"
    assert torch.equal(first.changed, (first.frames != before).any(dim=-1)), f"{edit.name}: changed mask"
    again = edit(frames, annotations, seed=123)
    assert torch.equal(first.frames, again.frames), f"{edit.name}: same seed gave other pixels"
    assert first.params == again.params
    assert first.changed.any(), f"{edit.name} changed nothing"
