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


# ------------------------------------------------------------------------- the sound's twins

class _Spoken(torch.utils.data.Dataset):
    """Four copies of the sample clips' spoken answer at 16 kHz, augmented as a DataLoader would."""

    def __init__(self, augment) -> None:
        from importlib.resources import files

        from auditkit.media.audio import read_wav
        from auditkit.perturbations.sound import resample

        voice, rate = read_wav(files("auditkit.media") / "speech" / "hopper.wav")
        self.voice = torch.from_numpy(resample(voice, rate, 16000))
        self.augment = augment

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.augment(self.voice)


def test_sound_augmentations_change_every_clip_alike_in_shape_and_by_their_generator():
    from auditkit.perturbations.augment import RandomMic, RandomNoise, RandomRoom

    voice = _Spoken(None).voice
    batch = voice.expand(3, -1, -1).contiguous()
    for make in (RandomRoom, RandomNoise, RandomMic):
        out = make(16000, generator=torch.Generator().manual_seed(5))(batch)
        assert out.shape == batch.shape and out.dtype == batch.dtype and out.device == batch.device
        assert all(not torch.equal(o, batch[0]) for o in out), make.__name__
        again = make(16000, generator=torch.Generator().manual_seed(5))(batch)
        assert torch.equal(out, again), f"{make.__name__}: same generator, other sound"
        assert torch.equal(make(16000, p=0.0)(batch), batch)
        assert make(16000)(voice).shape == voice.shape  # one clip [C, S]
    # A batch draws its rooms independently: not every clip in the same room.
    rooms = RandomRoom(16000, generator=torch.Generator().manual_seed(1)).draw(16)
    assert len({e.name for e, _ in rooms}) > 1


def test_random_noise_draws_its_snr_in_the_range():
    from auditkit.perturbations.augment import RandomNoise
    from test_sound_edits import measured_snr

    voice = _Spoken(None).voice.numpy()
    augment = RandomNoise(16000, snr=(5.0, 25.0), generator=torch.Generator().manual_seed(2))
    drawn = augment.draw(8)
    assert {e.kind for e, _ in drawn} <= {"hvac", "street", "babble", "keyboard"}
    for edit, seed in drawn:
        assert 5.0 <= edit.snr <= 25.0
        heard = edit.hear(voice, 16000, seed=seed)
        assert measured_snr(voice, heard, 16000) == pytest.approx(edit.snr, abs=0.5)
    silent = torch.zeros(1, 16000)
    assert torch.equal(augment(silent), silent)  # nothing to set a noise against: left as it is


def test_sound_augmentations_run_in_dataloader_workers_and_refuse_picture_edits():
    from auditkit.perturbations.augment import RandomRoom, SoundAugment

    loader = torch.utils.data.DataLoader(_Spoken(RandomRoom(16000)), batch_size=2, num_workers=2)
    batches = list(loader)
    assert [tuple(b.shape) for b in batches] == [(2, 1, batches[0].shape[-1])] * 2
    with pytest.raises(ValueError, match="glasses:thick edit the picture, not the sound"):
        SoundAugment(["glasses:thick"], 16000)
    with pytest.raises(ValueError, match="takes float sound"):
        RandomRoom(16000)(torch.zeros(16000))
