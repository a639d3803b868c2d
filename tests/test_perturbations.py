from __future__ import annotations

import numpy as np
import pytest
import torch

from auditkit import perturbations
from contracts import check_edit_contract


# Every pixel edit a family name expands to (background:user needs a folder; it has its own tests;
# the edits of the sound: tests/test_sound_edits.py;
# control:retest samples other frames rather than editing pixels: tests/test_retest.py).
EDITS = [n for family in perturbations.families() for n in perturbations.available(family)
         if perturbations.get(n).resample is None and not perturbations.edits_sound(perturbations.get(n))]
GLOBAL = [n for n in EDITS if not perturbations.get(n).requires]
FACE = [n for n in EDITS if "face" in perturbations.get(n).requires]


@pytest.mark.parametrize("name", EDITS)
def test_every_registered_edit_keeps_the_contract_on_a_real_face(name, annotated_samples):
    clip, ann = annotated_samples[0]
    check_edit_contract(perturbations.get(name), torch.from_numpy(clip.frames), ann)


@pytest.mark.parametrize("name", GLOBAL)
def test_edits_without_annotations_keep_the_contract_on_synthetic_frames(name, frames):
    check_edit_contract(perturbations.get(name), frames)


@pytest.mark.parametrize("name", EDITS)
def test_numpy_input_is_accepted_and_left_alone(name, annotated_samples):
    clip, ann = annotated_samples[1]
    array = clip.frames.copy()
    edit = perturbations.get(name)(array, ann, seed=1)
    assert np.array_equal(array, clip.frames)
    assert torch.equal(edit.frames, perturbations.get(name)(torch.from_numpy(clip.frames), ann, seed=1).frames)


@pytest.mark.parametrize("name", EDITS)
def test_the_same_seed_gives_the_same_pixels_whatever_the_thread_count(name, annotated_samples):
    # A Ray actor or a bigger machine runs with another number of threads than the machine that
    # started the audit; an edit's pixels must not depend on it (bilinear upsampling once did).
    threads = torch.get_num_threads()
    try:
        for clip, ann in annotated_samples[:3]:
            frames = torch.from_numpy(clip.frames)
            torch.set_num_threads(1)
            one = perturbations.get(name)(frames, ann, seed=3).frames
            torch.set_num_threads(4)
            four = perturbations.get(name)(frames, ann, seed=3).frames
            assert torch.equal(one, four), f"{name} on {clip.id}"
    finally:
        torch.set_num_threads(threads)


def test_lighting_moves_brightness_the_right_way(frames):
    mean = frames.float().mean()
    assert perturbations.get("lighting:dim")(frames).frames.float().mean() < 0.7 * mean
    assert perturbations.get("lighting:bright")(frames).frames.float().mean() > 1.15 * mean
    warm = perturbations.get("lighting:warm")(frames).frames.float()
    cool = perturbations.get("lighting:cool")(frames).frames.float()
    assert (warm[..., 0] - warm[..., 2]).mean() > (cool[..., 0] - cool[..., 2]).mean()
    low = perturbations.get("lighting:low-contrast")(frames).frames.float()
    assert low.std() < 0.7 * frames.float().std()


def test_params_are_drawn_once_per_clip_and_depend_on_seed(frames):
    edit = perturbations.get("lighting:dim")
    a, b = edit(frames, seed=1), edit(frames, seed=2)
    assert a.params["factor"] != b.params["factor"]
    ratio = a.frames.float().sum(dim=(1, 2, 3)) / frames.float().sum(dim=(1, 2, 3))
    assert torch.allclose(ratio, ratio[0].expand_as(ratio), atol=0.01)  # same factor every frame


def test_registry_names_families_and_helpful_errors():
    names = perturbations.available()
    assert {"lighting:dim", "lighting:bright", "lighting:gamma", "lighting:warm"} <= set(names)
    assert [p.name for p in perturbations.resolve("lighting")] == perturbations.available("lighting")
    assert [p.name for p in perturbations.resolve("lighting:dim, lighting:dim")] == ["lighting:dim"]
    with pytest.raises(KeyError, match="did you mean lighting:dim"):
        perturbations.get("lighting:dimm")
    with pytest.raises(KeyError, match="unknown perturbation 'hats'"):
        perturbations.resolve("hats")


def test_bad_frames_are_refused():
    with pytest.raises(ValueError, match=r"uint8 \[T, H, W, 3\]"):
        perturbations.get("lighting:dim")(torch.zeros(2, 8, 8, 3))


@pytest.mark.parametrize("name", FACE)
def test_face_edits_refuse_a_mostly_faceless_clip(name, faceless):
    frames, ann = faceless
    with pytest.raises(perturbations.NotApplicable, match="no face found in 5 of 6 frames"):
        perturbations.get(name)(frames, ann)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", EDITS)
def test_cpu_and_cuda_agree_within_one_level(name, annotated_samples):
    clip, ann = annotated_samples[0]
    edit = perturbations.get(name)
    cpu = edit(torch.from_numpy(clip.frames), ann, seed=4).frames
    gpu = edit(torch.from_numpy(clip.frames).cuda(), ann.to("cuda"), seed=4).frames
    assert gpu.is_cuda
    diff = (cpu.int() - gpu.cpu().int()).abs()
    # Noise and JPEG are generated/encoded on the CPU and agree exactly; float kernels may round
    # differently on a few pixels, never by more than one level on almost all of them.
    assert float((diff > 1).float().mean()) < 1e-3, f"{name}: max diff {int(diff.max())}"
