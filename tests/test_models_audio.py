"""The reference regressor's audio branch: a log-mel spectrogram from torch.stft and a mel filter
bank of its own (checked against librosa's), a small CNN, late fusion; trained by the same
script and exported with what it hears."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auditkit import run_audit
from auditkit.contract.rater import AudioSpec
from auditkit.media.clips import Timing, discover
from auditkit.models import OceanRegressor, save_checkpoint
from auditkit.models.audio import HOP, N_FFT, N_MELS, LogMel, mel_filters
from auditkit.models.checkpoint import load_checkpoint
from auditkit.raters import load_rater, save_exported

librosa = pytest.importorskip("librosa")
HEARS = AudioSpec(16000, 1, 2.0)


@pytest.mark.parametrize("rate", [8000, 16000, 22050])
def test_the_mel_filter_bank_is_librosa_s(rate):
    ours = mel_filters(rate, N_FFT, N_MELS)
    theirs = librosa.filters.mel(sr=rate, n_fft=N_FFT, n_mels=N_MELS)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)


def test_the_mel_spectrogram_is_librosa_s():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    sound = (0.4 * np.sin(2 * np.pi * 220 * t * (1 + t)) + 0.05 * rng.standard_normal(16000)).astype(np.float32)
    ours = LogMel(16000).power(torch.from_numpy(sound)[None, None])[0].numpy()
    theirs = librosa.feature.melspectrogram(y=sound, sr=16000, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS,
                                            window="hann", center=True, pad_mode="constant", power=2.0)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=2e-3, atol=1e-5 * theirs.max())


def test_a_regressor_that_listens_needs_the_sound_and_hears_it():
    torch.manual_seed(0)
    model = OceanRegressor("resnet18", size=32, frames=2, audio=HEARS).eval()
    assert model.input.audio == HEARS and model.config["audio"] == HEARS.to_dict()
    x = torch.rand(2, 2, 3, 32, 32)
    quiet, loud = torch.zeros(2, 1, 32000), 0.5 * torch.randn(2, 1, 32000).clamp(-2, 2)
    with torch.inference_mode():
        assert not torch.equal(model(x, quiet), model(x, loud))
    with pytest.raises(ValueError, match="this OceanRegressor listens: call it with \\(frames, audio\\)"):
        model(x)
    assert OceanRegressor("resnet18", size=32, frames=2).ears is None


def test_its_files_say_what_it_hears_and_audit_the_speaking_clips(tmp_path, sample_dir):
    torch.manual_seed(0)
    model = OceanRegressor("resnet18", size=32, frames=2, audio=HEARS).eval()
    checkpoint = save_checkpoint(model, tmp_path / "ears.ckpt")
    again, _ = load_checkpoint(checkpoint)
    assert again.input == model.input
    x, a = torch.rand(1, 2, 3, 32, 32), torch.rand(1, 1, 32000) - 0.5
    with torch.inference_mode():
        torch.testing.assert_close(again(x, a), model(x, a))
    exported = save_exported(model, tmp_path / "ears.pt2", trait_names=model.trait_names, input=model.input)
    clips = discover(sample_dir)[:3]
    for spec in (str(checkpoint), str(exported)):
        rater = load_rater(spec)
        assert rater.input.audio == HEARS, spec
        result = run_audit(spec, clips, ["lighting:dim"], unit="clip", retest=False)
        assert not result.skipped and result.n_clips == 3, spec


def test_the_training_script_trains_the_ears(sample_dir):
    from auditkit.media.clips import read_video
    from auditkit.models.train import Sample, TrainConfig, train

    config = TrainConfig(size=32, frames=2, epochs=2, batch_size=4, audio_seconds=2.0, seed=0)
    samples = []
    for i, source in enumerate(discover(sample_dir)[:6]):
        clip = read_video(source.path, num_frames=2, audio=config.hears, timing=Timing(2.0))
        samples.append(Sample(source.id, torch.from_numpy(clip.frames), torch.full((5,), 0.2 + 0.1 * (i % 3)),
                              audio=torch.from_numpy(clip.audio)))
    model, history = train(samples, config, progress=False)
    assert model.input.audio == AudioSpec(16000, 1, 2.0) and len(history["epochs"]) == 2
    before = {k: v.clone() for k, v in OceanRegressor("resnet18", size=32, frames=2, audio=config.hears)
              .ears.state_dict().items()}
    assert any(not torch.equal(before[k], v.cpu()) for k, v in model.ears.state_dict().items()
               if v.dtype.is_floating_point)
    bare = [Sample(s.id, s.frames, s.label) for s in samples]
    with pytest.raises(Exception, match="carry no sound"):
        train(samples[:3] + bare[3:], config, progress=False)
