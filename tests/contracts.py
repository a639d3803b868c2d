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
    # Pixels outside the changed mask are bit-identical; pixels inside it really differ.
    outside = ~first.changed
    assert torch.equal(first.frames[outside], frames[outside]), f"{edit.name}: change outside mask"
    assert (first.frames[first.changed] != frames[first.changed]).any(dim=-1).all()
    again = edit(frames, annotations, seed=123)
    assert torch.equal(first.frames, again.frames), f"{edit.name}: same seed gave other pixels"
    assert first.params == again.params
    assert first.changed.any(), f"{edit.name} changed nothing"
