from __future__ import annotations

import pytest
import torch

from auditkit import perturbations
from contracts import check_edit_contract
from auditkit.perturbations.annotate import LEFT_IRIS, RIGHT_IRIS
from auditkit.perturbations.glasses import STYLES, eye_box, eye_geometry

GLASSES = [f"glasses:{s}" for s in STYLES]


def test_three_styles_are_registered():
    assert set(GLASSES) <= set(perturbations.available("glasses")) and len(GLASSES) >= 3


@pytest.mark.parametrize("name", GLASSES)
def test_contract_on_a_real_face(name, annotated_samples):
    clip, ann = annotated_samples[0]
    check_edit_contract(perturbations.get(name), torch.from_numpy(clip.frames), ann)


@pytest.mark.parametrize("name", GLASSES)
def test_glasses_sit_on_the_eyes_and_the_face_stays_detectable(name, annotated_samples, face_mesh):
    edit = perturbations.get(name)
    for clip, ann in annotated_samples:
        result = edit(clip.frames, ann, seed=5)
        geo = eye_geometry(ann.landmarks)
        box = eye_box(geo)
        t, h, w = clip.frames.shape[:3]
        ys = torch.arange(h).view(1, -1, 1)
        xs = torch.arange(w).view(1, 1, -1)
        inside = ((xs >= box[:, 0, None, None].floor()) & (xs <= box[:, 2, None, None].ceil())
                  & (ys >= box[:, 1, None, None].floor()) & (ys <= box[:, 3, None, None].ceil()))
        assert result.changed.any()
        assert not (result.changed & ~inside).any(), f"{name} changed pixels away from the eyes of {clip.id}"
        lenses = edit.lens_mask(ann, result.params, (h, w))
        for i in range(t):
            for iris in (RIGHT_IRIS, LEFT_IRIS):
                x, y = ann.landmarks[i, iris, :2].round().long().tolist()
                assert lenses[i, y, x], f"{name}: iris {iris} of {clip.id} frame {i} is outside the lens"
            found = face_mesh.process(result.frames[i].numpy()).multi_face_landmarks
            assert found, f"{name}: MediaPipe lost the face of {clip.id} frame {i}"


def test_each_lens_holds_its_own_eye(annotated_samples):
    clip, ann = annotated_samples[6]
    edit = perturbations.get("glasses:thick")
    params = edit(clip.frames, ann, seed=0).params
    h, w = clip.frames.shape[1:3]
    left_lens, right_lens = edit.lens_mask(ann, params, (h, w), separate=True)
    rx, ry = ann.landmarks[0, RIGHT_IRIS, :2].round().long().tolist()
    lx, ly = ann.landmarks[0, LEFT_IRIS, :2].round().long().tolist()
    # One lens holds one iris and not the other.
    assert left_lens[0, ry, rx] != left_lens[0, ly, lx]
    assert right_lens[0, ry, rx] != right_lens[0, ly, lx]


def test_glasses_follow_head_roll(annotated_samples):
    clip, ann = annotated_samples[0]
    frames = torch.from_numpy(clip.frames)
    rotated = ann.landmarks.clone()
    c = rotated[:, :, :2].mean(dim=1, keepdim=True)
    angle = torch.tensor(0.2)
    rot = torch.tensor([[torch.cos(angle), -torch.sin(angle)], [torch.sin(angle), torch.cos(angle)]])
    rotated[:, :, :2] = (rotated[:, :, :2] - c) @ rot.T + c
    geo_a, geo_b = eye_geometry(ann.landmarks), eye_geometry(rotated)
    assert torch.allclose(geo_b["roll"] - geo_a["roll"], angle.expand(len(frames)), atol=1e-3)
    assert torch.allclose(geo_b["dist"], geo_a["dist"], rtol=1e-3)


def test_bridged_landmarks_carry_the_glasses_under_a_looser_threshold(faceless):
    frames, ann = faceless
    assert perturbations.get("glasses:thin")(frames, ann, max_missing_face=0.9).changed.any()


def test_glasses_need_annotations(frames):
    with pytest.raises(ValueError, match="needs annotations"):
        perturbations.get("glasses:thin")(frames)
