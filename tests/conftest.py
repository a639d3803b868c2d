"""Shared fixtures: the real sample clips, and small raters saved the way users save theirs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from auditkit.raters import InputSpec, save_torchscript

SMALL = InputSpec(size=(64, 64), frames=4)

# Under pytest-xdist (`-n 2`, as .ci/run runs the suite) two workers share the machine's cores:
# each computes on one thread, and so do the processes its tests start (two processes of two
# OpenMP threads each on two cores spin against each other and run many times slower).
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if XDIST_WORKER:
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_var] = "1"
    torch.set_num_threads(1)

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # a dev extra; only the property tests need it
    pass
else:
    # CI runs the same examples every time (a failure there reproduces from the blob the log
    # prints); a developer's run keeps exploring new ones; `--hypothesis-profile=deep` searches long.
    _common = {"deadline": None, "print_blob": True, "suppress_health_check": [HealthCheck.too_slow]}
    settings.register_profile("ci", derandomize=True, max_examples=150, **_common)
    settings.register_profile("dev", max_examples=150, **_common)
    settings.register_profile("deep", max_examples=5000, **_common)
    settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev")


class BrightnessRater(nn.Module):
    """Scores that follow mean frame brightness: any lighting edit must register as a shift."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3, 4))
        return torch.stack([m, 1.0 - m, 0.5 * m, m, 0.5 * (1.0 - m)], dim=1)


class JitterRater(nn.Module):
    """Scores that jump by ±0.2 with any change of the input, in no direction: the mean shift of an
    edit is about zero while every candidate moves — the rater auditkit must call unstable."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # float64 sums: the same frames give the same sign whatever the thread split.
        sign = torch.sign(torch.sin(x.double().sum(dim=(1, 2, 3, 4)) * 37.0)).float()
        base = 0.5 + 0.2 * sign
        return torch.stack([base, 1.0 - base, base, 0.5 + 0.1 * sign, 0.5 - 0.1 * sign], dim=1)


LISTENER_TRAITS = ("loudness", "corners", "red", "green", "blue")
LISTENING = InputSpec(size=(64, 64), frames=4, audio={"sample_rate": 16000, "channels": 1, "seconds": 2.0})


class Listener(nn.Module):
    """A rater that watches and listens: the loudness (RMS) of the sound it hears, the brightness
    of the frame's two top corners (the wall behind the person), and the mean colour."""

    def forward(self, frames: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        loud = audio.pow(2).mean(dim=(1, 2)).sqrt()
        h, w = frames.shape[-2], frames.shape[-1]
        top = frames[:, :, :, : h // 4]
        corners = torch.cat([top[..., : w // 4], top[..., w - w // 4:]], -1).mean(dim=(1, 2, 3, 4))
        m = frames.mean(dim=(1, 3, 4))
        return torch.stack([loud, corners, m[:, 0], m[:, 1], m[:, 2]], 1)


EARS_TRAITS = ("loudness", "treble", "corners", "mean", "fixed")
TREBLE_HZ = 3400.0


class Ears(nn.Module):
    """A rater of the sound's channels: its loudness (RMS), the share of its energy above 3.4 kHz
    (what a telephone band removes), the brightness of the frame's top corners, the mean pixel, and
    a constant."""

    rate = 16000

    def forward(self, frames: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        loud = audio.pow(2).mean(dim=(1, 2)).sqrt()
        power = torch.fft.rfft(audio, dim=-1).abs().pow(2).sum(dim=1)
        hz = torch.fft.rfftfreq(audio.shape[-1], 1 / self.rate)
        treble = power[:, hz > TREBLE_HZ].sum(-1) / power.sum(-1).clamp_min(1e-12)
        h, w = frames.shape[-2], frames.shape[-1]
        top = frames[:, :, :, : h // 4]
        corners = torch.cat([top[..., : w // 4], top[..., w - w // 4:]], -1).mean(dim=(1, 2, 3, 4))
        return torch.stack([loud, treble, corners, frames.mean(dim=(1, 2, 3, 4)), torch.full_like(loud, 0.5)], 1)


def save_listener_onnx(path: Path, spec: InputSpec = LISTENING) -> Path:
    """The Listener as an ONNX file with two inputs, ``frames`` and ``audio``."""
    import json

    import onnx

    samples = spec.audio.samples(spec.audio.seconds)
    torch.onnx.export(Listener(), (torch.rand(1, spec.frames, 3, *spec.size), torch.rand(1, 1, samples)), str(path),
                      input_names=["frames", "audio"], dynamic_axes={"frames": {0: "batch"}, "audio": {0: "batch"}},
                      dynamo=False)
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key = "auditkit"
    entry.value = json.dumps({"frames": spec.frames, "size": list(spec.size), "trait_names": list(LISTENER_TRAITS),
                              "audio": {"sample_rate": spec.audio.sample_rate}})
    onnx.save(model, str(path))
    return path


class ConstantRater(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 5), 0.5)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The slow end-to-end tests first (stable order otherwise): on two workers the minutes-long
    # ones then run side by side at the start, and the many short ones fill in behind them,
    # instead of one long test starting last and running alone.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _shared_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder of this test run that every xdist worker shares (their base folders are
    siblings): what one worker builds or annotates, the other finds. Writers into it replace
    whole files atomically, so workers may race."""
    base = tmp_path_factory.getbasetemp()
    path = (base.parent if XDIST_WORKER else base) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Tests never read or write the user's cache; subprocesses inherit the variable.
    os.environ["AUDITKIT_CACHE"] = str(_shared_dir(tmp_path_factory, "auditkit-cache"))


@pytest.fixture(scope="session")
def sample_dir(_private_cache) -> Path:
    from auditkit.media.samples import sample_clips

    return sample_clips()


@pytest.fixture(scope="session")
def brightness_rater_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_torchscript(BrightnessRater(), tmp_path_factory.mktemp("raters") / "brightness.pt",
                            input=SMALL)


@pytest.fixture(scope="session")
def jitter_rater_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_torchscript(JitterRater(), tmp_path_factory.mktemp("raters") / "jitter.pt", input=SMALL)


@pytest.fixture(scope="session")
def constant_rater_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_torchscript(ConstantRater(), tmp_path_factory.mktemp("raters") / "constant.pt",
                            input=SMALL)


@pytest.fixture
def frames() -> torch.Tensor:
    """A small clip with structure (gradients and a bright square), uint8 [T, H, W, 3]."""
    rng = np.random.default_rng(7)
    t, h, w = 4, 48, 64
    base = np.linspace(0, 255, w, dtype=np.float32)[None, None, :, None].repeat(h, 1).repeat(3, 3)
    clip = np.repeat(base, t, axis=0) * np.array([1.0, 0.8, 0.6], np.float32)
    clip[:, 10:30, 20:40] = 230
    clip += rng.normal(0, 6, clip.shape).astype(np.float32)
    return torch.from_numpy(np.clip(clip, 0, 255).astype(np.uint8))


@pytest.fixture(scope="session")
def annotator(tmp_path_factory: pytest.TempPathFactory):
    from auditkit.perturbations.annotate import Annotator

    return Annotator(_shared_dir(tmp_path_factory, "annotations"))


@pytest.fixture(scope="session")
def annotated_samples(sample_dir, annotator):
    """(clip, annotations) for every sample clip at 6 frames: real faces, real MediaPipe."""
    from auditkit.media.clips import discover

    clips = [s.read(num_frames=6) for s in discover(sample_dir)]
    return [(c, annotator.annotate_clip(c)) for c in clips]


@pytest.fixture(scope="session")
def face_mesh():
    import mediapipe as mp

    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                         refine_landmarks=True) as mesh:
        yield mesh


@pytest.fixture(scope="session")
def faceless(annotated_samples, annotator):
    """A sample clip whose face is in one frame of six (the rest is a grey wall)."""
    clip, _ = annotated_samples[0]
    frames = clip.frames.copy()
    frames[1:] = 77
    return frames, annotator.annotate(frames)


@pytest.fixture(scope="session")
def annotated_variants(_private_cache, annotator):
    """(clip, annotations) for the clips of other framings, light and skin tones
    (``auditkit.media.variants``: a face at the frame's edge, a phone framing, a far shot, dim
    warm light, a side light, a synthetic darker skin, synthetic hands raised to the face)."""
    from auditkit.media.clips import discover
    from auditkit.media.variants import variant_clips

    clips = [s.read(num_frames=6) for s in discover(variant_clips())]
    return {c.id: (c, annotator.annotate_clip(c)) for c in clips}
