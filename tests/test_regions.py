from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from auditkit import perturbations
from auditkit.perturbations.annotate import CHIN, FOREHEAD
from auditkit.perturbations.regions import GREY, REGIONS, fill, region_masks, region_weight
from contracts import check_edit_contract

FAMILY = [f"region:{r}" for r in REGIONS]
# Eye corners, irises, nose tip, mouth corners: well inside the face oval.
FACE_CORE = (33, 133, 362, 263, 468, 473, 1, 61, 291)


def _at(weights: torch.Tensor, frame: int, xy: torch.Tensor) -> torch.Tensor:
    """Weights ``[T, H, W]`` at pixel positions ``xy`` (``[N, 2]``, x and y) of one frame."""
    h, w = weights.shape[-2:]
    x = xy[:, 0].long().clamp(0, w - 1)
    y = xy[:, 1].long().clamp(0, h - 1)
    return weights[frame, y, x]


def test_the_family_and_the_control_are_registered():
    assert perturbations.available("region") == sorted(FAMILY)
    assert "region:all" in perturbations.available() and "region:all" not in perturbations.available("region")
    assert perturbations.get("region:background").requires == frozenset({"mask"})
    assert perturbations.get("region:face").requires == frozenset({"face", "mask"})
    assert perturbations.get("region:all").requires == frozenset()


def test_the_regions_partition_every_frame(annotated_samples):
    for clip, ann in annotated_samples:
        masks = region_masks(ann)
        assert masks.shape == (clip.num_frames, 4, *clip.size)
        assert float(masks.min()) >= 0 and float(masks.max()) <= 1
        assert float((masks.sum(dim=1) - 1).abs().max()) < 1e-5, clip.id
        for r, region in enumerate(REGIONS):
            assert torch.equal(masks[:, r], region_weight(ann, region))
            assert float(masks[:, r].mean()) > 0.01, f"{region} is empty in {clip.id}"


def test_each_region_lies_where_it_should(annotated_samples):
    for clip, ann in annotated_samples:
        masks = region_masks(ann)
        face, hair, body, background = masks.unbind(1)
        lm = ann.landmarks[..., :2]
        height = (lm[:, CHIN] - lm[:, FOREHEAD]).norm(dim=1)
        for i in range(clip.num_frames):
            # The inner face is all face, whatever the person mask says there.
            assert bool((_at(face, i, lm[i, list(FACE_CORE)]) == 1).all()), f"{clip.id} frame {i}"
            # A little above the forehead is the head (hair or a hat), when the person is there.
            above = lm[i, FOREHEAD] - torch.tensor([0.0, 0.12]) * height[i]
            person = float(_at(ann.mask, i, above[None]))
            assert float(_at(hair, i, above[None])) == pytest.approx(person, abs=0.02), clip.id
            # Well below the chin is body or background, never head or face.
            below = lm[i, CHIN] + torch.tensor([0.0, 0.3]) * height[i]
            if below[1] < clip.size[0]:
                assert float(_at(face + hair, i, below[None])) == 0, clip.id
        # The background is what the person mask leaves: nothing of the person, most of the rest.
        assert float(background[ann.mask == 1].max()) == 0
        assert bool((background <= 1 - ann.mask + 1e-6).all())
        outside = (ann.mask == 0) & (face == 0)
        assert bool((background[outside] == 1).all())


def test_an_ablation_greys_its_region_and_nothing_else(annotated_samples):
    clip, ann = annotated_samples[3]
    frames = torch.from_numpy(clip.frames)
    for region in REGIONS:
        weight = region_weight(ann, region)
        edit = perturbations.get(f"region:{region}")(frames, ann)
        assert not bool(edit.changed[weight == 0].any()), region
        assert bool((edit.frames[weight == 1] == GREY).all()), region
        # Soft edge pixels move toward the grey by their weight, no further.
        soft = (weight > 0.2) & (weight < 0.8)
        if soft.any():
            before = frames[soft].float()
            moved = (edit.frames[soft].float() - before).abs()
            assert bool((moved <= (GREY - before).abs() + 0.5).all()), region


def test_the_whole_frame_control(annotated_samples, frames):
    clip, ann = annotated_samples[0]
    edit = perturbations.get("region:all")
    check_edit_contract(edit, torch.from_numpy(clip.frames), ann)
    check_edit_contract(edit, frames)  # needs no annotations
    assert bool((edit(frames).frames == GREY).all())


def test_fill_blends_by_weight():
    frames = torch.tensor([0, 100, 200, 255], dtype=torch.uint8).view(1, 1, 4, 1).expand(1, 1, 4, 3)
    weight = torch.tensor([[[0.0, 0.5, 1.0, 0.25]]])
    out = fill(frames.contiguous(), weight)[0, 0, :, 0].tolist()
    assert out == [0, round(100 * 0.5 + GREY * 0.5), GREY, round(255 * 0.75 + GREY * 0.25)]


def test_without_a_face_only_the_background_can_be_ablated(faceless):
    frames, ann = faceless
    for name in ("region:face", "region:hair", "region:body"):
        with pytest.raises(perturbations.NotApplicable, match="no face found in 5 of 6 frames"):
            perturbations.get(name)(frames, ann)
    check_edit_contract(perturbations.get("region:background"), torch.from_numpy(frames), ann)


def test_a_clip_with_no_landmarks_at_all_is_person_and_background(annotated_samples):
    clip, ann = annotated_samples[0]
    blind = dataclasses.replace(ann, landmarks=torch.full_like(ann.landmarks, float("nan")),
                                face_found=torch.zeros_like(ann.face_found))
    masks = region_masks(blind)
    assert float(masks[:, :2].abs().max()) == 0  # no face, no hair
    assert torch.equal(masks[:, 2], ann.mask) and torch.allclose(masks[:, 3], 1 - ann.mask)
    with pytest.raises(perturbations.NotApplicable):
        perturbations.get("region:face")(clip.frames, blind)
    np.testing.assert_array_equal(
        perturbations.get("region:background")(clip.frames, blind).frames.numpy(),
        fill(torch.from_numpy(clip.frames), 1 - ann.mask).numpy())


def test_unknown_region_is_refused(annotated_samples):
    with pytest.raises(ValueError, match="region must be one of face, hair, body, background, got 'hat'"):
        region_weight(annotated_samples[0][1], "hat")
