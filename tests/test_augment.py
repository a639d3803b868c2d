"""Training-time augmentation built on the audit's edits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from auditkit.perturbations.augment import (BackgroundBank, CounterfactualAugment, RandomBackgroundSwap,
                                   consistency_loss)


@pytest.fixture(scope="module")
def batch(annotated_samples):
    """Three same-size sample clips as a Video batch [B, T, C, H, W], with masks and annotations."""
    same = [(c, a) for c, a in annotated_samples if c.size == (240, 320)][:3]
    video = tv_tensors.Video(torch.stack([torch.from_numpy(c.frames).permute(0, 3, 1, 2) for c, _ in same]))
    mask = tv_tensors.Mask(torch.stack([a.mask for _, a in same]))
    return video, mask, [a for _, a in same]


def test_swap_keeps_the_person_and_draws_one_background_per_clip(batch):
    video, mask, _ = batch
    swap = RandomBackgroundSwap(BackgroundBank(per_scene=3), generator=torch.Generator().manual_seed(3))
    out, mask_out = swap(video, mask)
    assert isinstance(out, tv_tensors.Video) and out.shape == video.shape and out.dtype == torch.uint8
    assert torch.equal(mask_out, mask)
    person = (mask >= 0.99).unsqueeze(2).expand_as(video)
    assert torch.equal(out[person], video[person])
    background = (mask < 0.01).unsqueeze(2).expand_as(video)
    assert (out != video)[background].float().mean() > 0.9
    # One background per clip: the same scene behind every frame of a clip...
    bg_pixels = [out[i, :, :, 0:8, 0:8].float() for i in range(len(video))]
    for clip in bg_pixels:
        assert (clip - clip[0]).abs().max() <= 1
    # ...and same generator seed, same pixels.
    same_seed = RandomBackgroundSwap(BackgroundBank(per_scene=3), generator=torch.Generator().manual_seed(3))
    again, _ = same_seed(video, mask)
    assert torch.equal(again, out)


def test_swap_on_float_video_single_clip_and_probability(batch):
    video, mask, _ = batch
    as_float = tv_tensors.Video(video.float() / 255)
    out, _ = RandomBackgroundSwap()(as_float, mask)
    assert out.dtype == torch.float32 and 0 <= float(out.min()) and float(out.max()) <= 1
    one, _ = RandomBackgroundSwap()(tv_tensors.Video(video[0]), tv_tensors.Mask(mask[0]))
    assert one.shape == video[0].shape
    never, _ = RandomBackgroundSwap(p=0.0)(video, mask)
    assert torch.equal(never, video)
    composed = v2.Compose([RandomBackgroundSwap(), v2.RandomHorizontalFlip(p=1.0)])
    flipped, _ = composed(video, mask)
    assert flipped.shape == video.shape


def test_swap_computes_masks_when_none_are_given(batch, annotator):
    video, mask, _ = batch
    out = RandomBackgroundSwap(annotator=annotator)(tv_tensors.Video(video[:1]))
    person = (mask[:1] >= 0.99).unsqueeze(2).expand_as(video[:1])
    assert torch.equal(out[person], video[:1][person])


def test_counterfactual_augment_edits_per_clip_with_annotations(batch):
    video, _, annotations = batch
    out, anns = CounterfactualAugment("glasses", p=1.0)(video, annotations)
    assert isinstance(out, tv_tensors.Video) and out.dtype == video.dtype
    assert anns is annotations or all(a is b for a, b in zip(anns, annotations))
    for i in range(len(video)):
        assert (out[i] != video[i]).any()
    with pytest.raises(ValueError, match="need annotations"):
        CounterfactualAugment("glasses", p=1.0)(video)
    untouched, _ = CounterfactualAugment("glasses", p=0.0)(video, annotations)
    assert torch.equal(untouched, video)
    lit = CounterfactualAugment("lighting:dim", p=1.0)(tv_tensors.Video(video.float() / 255))
    assert lit.dtype == torch.float32 and float(lit.mean()) < float(video.float().mean() / 255)


def test_consistency_loss():
    a = torch.tensor([[0.5, 0.2]])
    assert float(consistency_loss(a, a)) == 0.0
    assert float(consistency_loss(a, a + 0.1)) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="differ"):
        consistency_loss(a, torch.zeros(2, 2))


def test_bank_validates_scenes_and_caches_renders(tmp_path):
    with pytest.raises(ValueError, match="unknown scene"):
        BackgroundBank(("moon",))
    bank = BackgroundBank(("plain",), per_scene=2)
    first = bank.render(32, 48)
    assert first.shape == (2, 32, 48, 3) and bank.render(32, 48) is first
    import cv2

    cv2.imwrite(str(tmp_path / "room.png"), np.full((20, 30, 3), 90, np.uint8))
    assert len(BackgroundBank(("plain",), per_scene=1, images_dir=tmp_path)) == 2
