"""The image kernels the edits share: the values of the textbook operation, and the same bits
whatever the number of threads (an edit's pixels must not depend on the machine or the Ray actor)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from auditkit.perturbations.kernels import SLICED_BOX, box_mean, dilate, gaussian_blur, normalised_fill, resize_bilinear


def _threads(n: int, fn):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def _box_reference(x: np.ndarray, r: int) -> np.ndarray:
    """The clipped-window mean, pixel by pixel, in float64."""
    n, c, h, w = x.shape
    out = np.empty_like(x, dtype=np.float64)
    for i in range(h):
        for j in range(w):
            win = x[:, :, max(0, i - r):i + r + 1, max(0, j - r):j + r + 1]
            out[:, :, i, j] = win.mean(axis=(2, 3))
    return out


@pytest.mark.parametrize("radius", [1, 3, SLICED_BOX, SLICED_BOX + 3])
def test_box_mean_is_the_clipped_window_mean_on_both_paths(radius):
    x = torch.rand(2, 3, 23, 31, generator=torch.Generator().manual_seed(radius))
    got = box_mean(x, radius)
    assert got.dtype == x.dtype
    np.testing.assert_allclose(got.numpy(), _box_reference(x.double().numpy(), radius), atol=2e-6)


@pytest.mark.parametrize("radius", [3, SLICED_BOX + 4])
def test_box_mean_and_resize_do_not_depend_on_the_thread_count(radius):
    x = torch.rand(4, 13, 120, 160, generator=torch.Generator().manual_seed(1))
    assert torch.equal(_threads(1, lambda: box_mean(x, radius)), _threads(2, lambda: box_mean(x, radius)))
    up = lambda: resize_bilinear(x, (241, 333))  # noqa: E731
    assert torch.equal(_threads(1, up), _threads(2, up))


def test_resize_is_torch_bilinear_with_half_pixel_centres():
    x = torch.rand(2, 3, 17, 29, generator=torch.Generator().manual_seed(2))
    for size in ((34, 58), (40, 23), (9, 64)):
        got = resize_bilinear(x, size)
        assert got.shape == (2, 3, *size) and got.is_contiguous()
        ref = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)  # float32 rounding: same values


@pytest.mark.parametrize("radius", [1, 4, 11])
def test_dilate_is_the_square_window_maximum_and_erodes_by_negation(radius):
    x = (torch.rand(3, 2, 40, 57, generator=torch.Generator().manual_seed(radius)) > 0.97).float()
    k = 2 * radius + 1
    assert torch.equal(dilate(x, radius), F.max_pool2d(x, k, 1, radius))
    assert torch.equal(-dilate(-x, radius), -F.max_pool2d(-x, k, 1, radius))


def test_the_srgb_table_gives_the_computed_values_for_every_level():
    from auditkit.perturbations.look import srgb8_to_linear, srgb_to_linear

    levels = torch.arange(256, dtype=torch.uint8).view(16, 16)
    torch.testing.assert_close(srgb8_to_linear(levels), srgb_to_linear(levels.float() / 255.0), atol=1e-7, rtol=0)
    frames = torch.randint(0, 256, (3, 7, 9, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    out = srgb8_to_linear(frames)
    assert out.shape == frames.shape and out.dtype == torch.float32


@pytest.mark.parametrize("step", [1, 3])
def test_normalised_fill_fills_a_hole_from_around_it(step):
    # A background of one colour per frame with a person-shaped hole of other pixels: the fill is
    # that colour everywhere, the hole's own pixels count for nothing, on an odd-sized frame.
    h, w = 37, 53
    colour = torch.tensor([[0.2, 0.5, 0.7], [0.9, 0.1, 0.3]]).view(2, 3, 1, 1)
    planes = colour.expand(2, 3, h, w).clone()
    weight = torch.ones(2, 1, h, w)
    weight[:, :, 10:30, 15:35] = 0
    planes[:, :, 10:30, 15:35] = torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(step))
    fill = normalised_fill(planes, weight, sigma=6.0, step=step)
    assert fill.shape == planes.shape
    np.testing.assert_allclose(fill.numpy(), colour.expand(2, 3, h, w).numpy(), atol=1e-5)


def test_normalised_fill_is_the_weighted_gaussian_mean_and_the_frames_mean_where_nothing_is_near():
    g = torch.Generator().manual_seed(0)
    planes = torch.rand(1, 3, 40, 40, generator=g)
    weight = torch.zeros(1, 1, 40, 40)
    weight[:, :, :6, :6] = torch.rand(1, 1, 6, 6, generator=g) + 0.5
    fill = normalised_fill(planes, weight, sigma=1.5, step=1)
    # Near the weighted corner: blur(planes * weight) / blur(weight).
    expect = gaussian_blur(planes * weight, 1.5) / gaussian_blur(weight, 1.5)
    np.testing.assert_allclose(fill[..., :8, :8].numpy(), expect[..., :8, :8].numpy(), rtol=1e-5)
    # Far from it (no weight within the blur): the corner's weighted mean.
    corner = (planes * weight).double().sum((2, 3)) / weight.double().sum((2, 3))
    np.testing.assert_allclose(fill[0, :, -1, -1].numpy(), corner[0].float().numpy(), rtol=1e-6)
    assert _threads(1, lambda: normalised_fill(planes, weight, 1.5, 2)).equal(
        _threads(2, lambda: normalised_fill(planes, weight, 1.5, 2)))
