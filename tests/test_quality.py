from __future__ import annotations

import numpy as np
import pytest
import torch

from auditkit import perturbations
import auditkit.perturbations.quality  # noqa: F401  (registers the quality family)
from contracts import check_edit_contract
from auditkit.perturbations.quality import JpegCompression, gaussian_blur

QUALITY = ["quality:jpeg", "quality:blur", "quality:lowres", "quality:noise"]


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    """A real 512x512 portrait as a 3-frame clip."""
    skimage_data = pytest.importorskip("skimage.data")
    return torch.from_numpy(skimage_data.astronaut()).unsqueeze(0).repeat(3, 1, 1, 1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.double() - b.double()).pow(2).mean()
    return float(10 * torch.log10(255.0 ** 2 / mse))


def high_freq_energy(frames: torch.Tensor) -> float:
    """Mean squared discrete Laplacian of the grey image: what blur and downscaling remove."""
    g = frames.double().mean(dim=-1)
    lap = (4 * g[:, 1:-1, 1:-1] - g[:, :-2, 1:-1] - g[:, 2:, 1:-1]
           - g[:, 1:-1, :-2] - g[:, 1:-1, 2:])
    return float(lap.pow(2).mean())


def blockiness(frames: torch.Tensor) -> float:
    """Mean |step| across 8x8 block boundaries over mean |step| elsewhere (1.0: no grid)."""
    g = frames.double().mean(dim=-1)
    dx = (g[:, :, 1:] - g[:, :, :-1]).abs()  # dx[..., i] is the step from column i to i + 1
    dy = (g[:, 1:, :] - g[:, :-1, :]).abs()
    on_x = torch.arange(dx.shape[-1]) % 8 == 7
    on_y = torch.arange(dy.shape[-2]) % 8 == 7
    boundary = torch.cat([dx[..., on_x].flatten(), dy[:, on_y, :].flatten()]).mean()
    inside = torch.cat([dx[..., ~on_x].flatten(), dy[:, ~on_y, :].flatten()]).mean()
    return float(boundary / inside)


def test_family_is_registered_with_descriptions():
    assert perturbations.available("quality") == sorted(QUALITY)
    assert "quality" in perturbations.families()
    for name in QUALITY:
        edit = perturbations.get(name)
        assert edit.name == name and edit.family == "quality"
        assert edit.requires == frozenset()
        assert edit.description and "\n" not in edit.description
    assert [p.name for p in perturbations.resolve("quality")] == sorted(QUALITY)


@pytest.mark.parametrize("name", QUALITY)
def test_contract(name, frames):
    check_edit_contract(perturbations.get(name), frames)


@pytest.mark.parametrize("name", QUALITY)
def test_contract_on_a_real_portrait(name, astronaut):
    check_edit_contract(perturbations.get(name), astronaut)


@pytest.mark.parametrize("name", QUALITY)
def test_odd_sizes_and_a_single_frame(name, frames):
    odd = frames[:1, :37, :53].contiguous()
    out = perturbations.get(name)(odd, seed=3)
    assert out.frames.shape == odd.shape and out.frames.dtype == torch.uint8
    assert out.changed.any()


@pytest.mark.parametrize("name", QUALITY)
def test_params_depend_on_seed_and_are_drawn_once_per_clip(name, astronaut):
    edit = perturbations.get(name)
    drawn = [edit.make_params(astronaut, None, np.random.default_rng(s)) for s in range(8)]
    assert len({tuple(sorted(p.items())) for p in drawn}) > 1
    assert edit(astronaut, seed=5).params == edit(astronaut, seed=5).params
    # A clip of identical frames gets one edit, so the deterministic edits give identical frames.
    out = edit(astronaut, seed=5).frames
    if name == "quality:noise":
        # Sensor noise is fresh in every frame, but at the one strength drawn for the clip.
        residual = out.float() - astronaut.float()
        assert not torch.equal(out[0], out[1])
        stds = residual.flatten(1).std(dim=1)
        assert float(stds.max() - stds.min()) < 0.1
    else:
        assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])


def test_jpeg_is_close_but_lossy_and_blocky(frames, astronaut):
    jpeg = perturbations.get("quality:jpeg")
    for clip in (frames, astronaut):
        out = jpeg(clip, seed=0).frames
        assert 25.0 < psnr(out, clip) < 40.0
    out = jpeg(astronaut, seed=0).frames
    assert blockiness(astronaut) < 1.1  # the source has no 8x8 grid ...
    assert blockiness(out) > 1.3  # ... the compressed frames do
    # Lower quality is further from the source.
    worse = jpeg.transform(astronaut, {"quality": 5}, None)
    better = jpeg.transform(astronaut, {"quality": 60}, None)
    assert psnr(worse, astronaut) < psnr(out, astronaut) < psnr(better, astronaut)


def test_jpeg_draws_quality_in_range():
    jpeg = perturbations.get("quality:jpeg")
    qs = {jpeg.make_params(None, None, np.random.default_rng(s))["quality"] for s in range(200)}
    assert qs == set(range(12, 21))


def test_jpeg_validates_its_arguments():
    with pytest.raises(ValueError, match="codec must be 'cpu' or 'native'"):
        JpegCompression(codec="gpu")
    with pytest.raises(ValueError, match="JPEG quality range"):
        JpegCompression(low=0)


def test_blur_removes_high_frequencies_more_with_larger_sigma(frames, astronaut):
    blur = perturbations.get("quality:blur")
    for clip in (frames, astronaut):
        assert high_freq_energy(blur(clip, seed=0).frames) < 0.5 * high_freq_energy(clip)
    energies = [high_freq_energy(gaussian_blur(astronaut, s)) for s in (0.8, 1.6, 3.2, 6.4)]
    assert energies == sorted(energies, reverse=True) and energies[-1] < 0.1 * energies[0]
    # Blur keeps the colour: a normalised kernel and reflect padding move no mass.
    out = blur(astronaut, seed=0).frames.double()
    assert torch.allclose(out.mean(dim=(0, 1, 2)), astronaut.double().mean(dim=(0, 1, 2)), atol=0.5)


def test_blur_sigma_scales_with_the_frame(astronaut):
    blur = perturbations.get("quality:blur")
    rng = lambda: np.random.default_rng(11)  # noqa: E731
    big = blur.make_params(astronaut, None, rng())
    small = blur.make_params(astronaut[:, ::2, ::2], None, rng())
    assert big["fraction"] == small["fraction"]
    assert big["sigma"] == pytest.approx(2 * small["sigma"])
    assert 0.004 * 512 <= big["sigma"] <= 0.006 * 512


def test_blur_of_a_flat_frame_is_the_identity():
    flat = torch.full((2, 40, 30, 3), 97, dtype=torch.uint8)
    assert torch.equal(gaussian_blur(flat, 3.0), flat)


def test_lowres_loses_detail_but_keeps_colour(frames, astronaut):
    lowres = perturbations.get("quality:lowres")
    for clip in (frames, astronaut):
        edit = lowres(clip, seed=0)
        assert high_freq_energy(edit.frames) < 0.5 * high_freq_energy(clip)
        means = edit.frames.double().mean(dim=(0, 1, 2))
        assert torch.allclose(means, clip.double().mean(dim=(0, 1, 2)), atol=0.5)
    params = lowres(astronaut, seed=0).params
    assert 96 <= params["height"] <= 128 and params["width"] == params["height"]  # square source


def test_lowres_keeps_aspect_and_always_downscales(frames):
    params = perturbations.get("quality:lowres")(frames, seed=0).params
    h, w = frames.shape[1:3]
    assert params["height"] < h and params["width"] < w
    assert params["width"] / params["height"] == pytest.approx(w / h, rel=0.1)


def test_noise_has_the_drawn_strength_and_no_bias(astronaut):
    # Mid-grey, so that clamping at 0 and 255 does not shrink the noise.
    grey = torch.full((3, 128, 128, 3), 128, dtype=torch.uint8)
    edit = perturbations.get("quality:noise")(grey, seed=4)
    sigma = edit.params["sigma"]
    assert 4.0 <= sigma <= 7.0
    residual = edit.frames.double() - 128.0
    assert abs(float(residual.mean())) < 0.1
    assert float(residual.std()) == pytest.approx((sigma ** 2 + 1 / 12) ** 0.5, rel=0.03)  # + rounding
    # Independent channels and frames, as a sensor's read noise is.
    r = residual.flatten(0, 2)
    assert abs(float(torch.corrcoef(r.T)[0, 1])) < 0.05
    # Noise barely moves detail-free statistics of a real image.
    out = perturbations.get("quality:noise")(astronaut, seed=4).frames
    assert 30.0 < psnr(out, astronaut) < 38.0


def test_chunked_processing_gives_the_same_pixels(astronaut, monkeypatch):
    whole = {n: perturbations.get(n)(astronaut, seed=2).frames for n in QUALITY}
    # Force one frame per chunk: the edit must not depend on how the clip was split.
    monkeypatch.setattr(perturbations.quality, "_CHUNK_VALUES", 1)
    for name in ("quality:blur", "quality:lowres"):
        assert torch.equal(perturbations.get(name)(astronaut, seed=2).frames, whole[name])
    # Noise is drawn chunk by chunk from one generator: reproducible for a given chunk size (which
    # depends only on the frame size), fresh in every chunk, and of the same strength.
    noise = perturbations.get("quality:noise")
    split = noise(astronaut, seed=2)
    assert torch.equal(split.frames, noise(astronaut, seed=2).frames)
    residual = split.frames.double() - astronaut.double()
    assert not torch.equal(residual[0], residual[1])
    whole_std = float((whole["quality:noise"].double() - astronaut.double()).std())
    assert float(residual.std()) == pytest.approx(whole_std, rel=0.02)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
@pytest.mark.parametrize("name", QUALITY)
def test_cpu_and_cuda_agree(name, astronaut):
    edit = perturbations.get(name)
    cpu = edit(astronaut, seed=9)
    gpu = edit(astronaut.cuda(), seed=9)
    check_edit_contract(edit, astronaut.cuda())
    assert gpu.frames.device.type == "cuda" and gpu.params == cpu.params
    diff = (gpu.frames.cpu().int() - cpu.frames.int()).abs()
    if name in ("quality:jpeg", "quality:noise"):
        # JPEG runs libjpeg on the CPU either way; noise is drawn on the CPU and moved.
        assert torch.equal(gpu.frames.cpu(), cpu.frames)
    else:
        # Float convolution / interpolation order differs: off by one level at most, rarely.
        assert int(diff.max()) <= 1
        assert float((diff > 0).double().mean()) < 0.01


@cuda
def test_native_nvjpeg_path_stays_close_to_libjpeg(astronaut):
    # nvjpeg uses 4:4:4 chroma and another DCT: a similar edit, not the same pixels.
    native = JpegCompression(codec="native")
    gpu = native.transform(astronaut.cuda(), {"quality": 16}, None)
    cpu = JpegCompression().transform(astronaut, {"quality": 16}, None)
    assert gpu.device.type == "cuda" and gpu.shape == astronaut.shape and gpu.dtype == torch.uint8
    assert 25.0 < psnr(gpu.cpu(), astronaut) < 40.0
    assert psnr(gpu.cpu(), cpu) > 28.0
