from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from auditkit import perturbations
from contracts import check_edit_contract
from auditkit.perturbations.background import INSIDE, person_alpha

BACKGROUND = perturbations.available("background") + perturbations.available("bookshelf")


def test_the_promised_scenes_are_registered():
    assert {"background:plain", "background:bookshelf", "background:office", "background:blurred",
            "background:sham", "bookshelf:insert"} <= set(BACKGROUND)
    assert "background:user" in perturbations.available()
    assert "background:user" not in BACKGROUND  # needs a folder; only named explicitly


@pytest.mark.parametrize("name", BACKGROUND)
def test_the_person_is_bit_identical_and_the_background_changes(name, annotated_samples):
    edit = perturbations.get(name)
    changed_somewhere = False
    for clip, ann in annotated_samples:
        result = edit(clip.frames, ann, seed=11)
        person = ann.mask >= INSIDE
        assert torch.equal(result.frames[person], torch.from_numpy(clip.frames)[person]), \
            f"{name} touched the person in {clip.id}"
        changed_somewhere |= bool(result.changed.any())
        if name not in ("background:sham", "background:blurred"):
            # A real swap replaces most of the background (blur and sham keep it on purpose).
            background = ann.mask < 0.01
            if name == "bookshelf:insert":
                assert result.changed[background].float().mean() > 0.15, clip.id
            else:
                assert result.changed[background].float().mean() > 0.9, clip.id
    assert changed_somewhere


@pytest.mark.parametrize("name", BACKGROUND)
def test_contract(name, annotated_samples):
    clip, ann = annotated_samples[4]
    check_edit_contract(perturbations.get(name), torch.from_numpy(clip.frames), ann)


def test_sham_changes_only_the_edge_band(annotated_samples):
    for clip, ann in annotated_samples:
        result = perturbations.get("background:sham")(clip.frames, ann, seed=0)
        alpha = person_alpha(ann.mask, frames=torch.from_numpy(clip.frames))
        band = (alpha > 0) & (alpha < 1)
        assert not (result.changed & ~band).any(), clip.id
        # ...and it changes little there: the fill is the surrounding background.
        diff = (result.frames.float() - torch.from_numpy(clip.frames).float()).abs()
        assert diff[result.changed].mean() < 40


def test_blurred_background_is_smoother(annotated_samples):
    clip, ann = annotated_samples[8]  # a wide framing with a detailed background
    edited = perturbations.get("background:blurred")(clip.frames, ann, seed=0).frames.numpy()
    background = (ann.mask < 0.01).numpy()

    def detail(frames):
        return np.mean([np.abs(cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_32F))[b].mean()
                        for f, b in zip(frames, background)])

    assert detail(edited) < 0.5 * detail(clip.frames)


def test_feathered_alpha_is_one_inside_and_soft_at_the_edge():
    mask = torch.zeros(1, 40, 40)
    mask[:, 10:30, 10:30] = 1.0
    mask[:, 10:30, 9] = 0.7
    alpha = person_alpha(mask)
    assert bool((alpha[mask >= INSIDE] == 1).all())
    assert 0 < float(alpha[0, 20, 9]) < 1 and float(alpha[0, 20, 2]) == 0


def test_user_images_as_backgrounds(annotated_samples, tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        image = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / f"room{i}.png"), image)
    edit = perturbations.get("background:user", scenes_dir=tmp_path)
    clip, ann = annotated_samples[2]
    result = edit(clip.frames, ann, seed=1)
    assert result.params["image"].endswith((".png",)) and result.changed.any()
    person = ann.mask >= INSIDE
    assert torch.equal(result.frames[person], torch.from_numpy(clip.frames)[person])
    with pytest.raises(ValueError, match="needs a folder of images"):
        perturbations.get("background:user")


def test_same_seed_same_scene_other_seed_other_scene(annotated_samples):
    clip, ann = annotated_samples[5]
    edit = perturbations.get("background:bookshelf")
    a, b, c = (edit(clip.frames, ann, seed=s).frames for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_what_edits_share_per_clip_is_what_each_computes_alone(annotated_samples):
    # The refined alpha, the clean plate, the camera's look and the region near the person are
    # computed once per clip (the same frames object and annotations) and reused by the next
    # background edit: every edit must give the pixels it gives when computed alone, and frames
    # changed in place must not get the old frames' alpha.
    names = ["background:plain", "background:bookshelf", "background:sham", "bookshelf:insert"]
    clip, ann = annotated_samples[1]
    shared = torch.from_numpy(clip.frames.copy())
    together = [perturbations.get(n)(shared, ann, seed=4).frames for n in names]
    for name, got in zip(names, together):
        alone = perturbations.get(name)(torch.from_numpy(clip.frames.copy()), ann, seed=4).frames
        assert torch.equal(got, alone), name
    plain = perturbations.get("background:plain")
    plain(shared, ann, seed=4)  # what it shares is now kept for these frames
    shared[:, : shared.shape[1] // 2] //= 2  # in place: the version counter moves
    darker = plain(shared, ann, seed=4).frames
    fresh = plain(shared.clone(), ann, seed=4).frames
    assert torch.equal(darker, fresh)


def test_the_alpha_refined_in_the_edge_band_box_is_the_whole_frames_refinement(annotated_samples):
    # The guided filter runs only on the box round the edge band (with the margin its window
    # means reach across); inside the band the alpha must be that of the whole frame.
    from auditkit.perturbations import background as bg
    from auditkit.perturbations.kernels import dilate, gaussian_blur, guided_filter
    from auditkit.perturbations.shots import smooth_masks

    for clip, ann in annotated_samples[::3]:
        frames, mask = torch.from_numpy(clip.frames), ann.mask
        h, w = mask.shape[1:]
        core = ((mask - bg.EDGE_LOW) / (bg.EDGE_HIGH - bg.EDGE_LOW)).clamp(0, 1)
        soft = gaussian_blur(core.unsqueeze(1), max(0.8, bg.FEATHER * max(h, w))).squeeze(1).clamp(0, 1)
        radius = max(2, round(bg.GUIDE_RADIUS * max(h, w)))
        guide = frames.permute(0, 3, 1, 2).float() / 255.0
        snapped = gaussian_blur(guided_filter(guide, soft.unsqueeze(1), radius, bg.GUIDE_EPS), 0.6).squeeze(1)
        band = dilate(((soft > 0.002) & (soft < 0.998)).float().unsqueeze(1), radius).squeeze(1) > 0
        whole = torch.from_numpy(smooth_masks(torch.where(band, snapped.clamp(0, 1), soft).numpy(), clip.frames,
                                              ann.links.numpy()))
        whole = torch.where(mask >= INSIDE, torch.ones_like(whole), whole)
        assert torch.equal(person_alpha(mask, frames=frames, linked=ann.links), whole), clip.id
