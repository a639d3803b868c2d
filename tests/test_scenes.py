"""Scenes for background swaps: generated rooms, user images, the blurred original."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from auditkit.perturbations.scenes import (SCENES, WALL_PAINTS, bookshelf_unit, load_user_scenes,
                                  make_scene, user_scene)

SIZES = [(224, 224), (480, 640), (216, 384)]


def scene(name: str, h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    return make_scene(name, h, w, rng=np.random.default_rng(seed))


def grey(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32).mean(axis=-1)


def strong_vertical_edges(img: np.ndarray) -> float:
    """Fraction of pixels with a step of more than 25 grey levels to their right neighbour:
    the sides of book spines, door frames, window frames."""
    return float((np.abs(np.diff(grey(img), axis=1)) > 25).mean())


def hue_clusters(img: np.ndarray) -> int:
    """How many of twelve hue sectors hold at least 0.5% of the pixels, among clearly coloured
    pixels (saturation above ~25%)."""
    hsv = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2HSV)
    coloured = hsv[..., 1] > 60
    counts = np.bincount((hsv[..., 0][coloured] // 15).ravel(), minlength=12)
    return int((counts > 0.005 * img.shape[0] * img.shape[1]).sum())


def horizontal_gradient_energy(img: np.ndarray) -> float:
    """Mean squared left-right step after a 3×3 box filter, which takes out the per-pixel
    sensor noise every scene carries and keeps edges and texture."""
    return float((np.diff(cv2.blur(grey(img), (3, 3)), axis=1) ** 2).mean())


# ---------------------------------------------------------------------------------- generated


def test_scene_names_are_the_documented_ones():
    assert SCENES == ("plain", "plain-white", "plain-grey", "plain-blue", "plain-green",
                      "plain-beige", "bookshelf", "office")


@pytest.mark.parametrize("h, w", SIZES)
@pytest.mark.parametrize("name", SCENES)
def test_every_scene_fills_the_frame_as_uint8_rgb(name, h, w):
    img = make_scene(name, h, w, rng=np.random.default_rng(3))
    assert img.shape == (h, w, 3) and img.dtype == np.uint8
    assert img.std() > 0.5, f"{name} is a flat fill"


@pytest.mark.parametrize("h, w", SIZES + [(1, 1), (7, 3), (40, 17)])
def test_bookshelf_unit_has_the_requested_size(h, w):
    img = bookshelf_unit(h, w, rng=np.random.default_rng(0))
    assert img.shape == (h, w, 3) and img.dtype == np.uint8


@pytest.mark.parametrize("name", SCENES)
def test_tiny_frames_do_not_break_generation(name):
    for h, w in [(1, 1), (2, 5), (9, 4), (33, 17)]:
        assert make_scene(name, h, w, rng=np.random.default_rng(1)).shape == (h, w, 3)


@pytest.mark.parametrize("name", SCENES)
def test_same_seed_same_pixels_other_seed_other_pixels(name):
    a = scene(name, seed=11)
    assert np.array_equal(a, scene(name, seed=11))
    assert not np.array_equal(a, scene(name, seed=12))


def test_the_generator_state_is_what_counts_and_it_is_consumed():
    rng = np.random.default_rng(5)
    first = make_scene("bookshelf", 120, 160, rng=rng)
    second = make_scene("bookshelf", 120, 160, rng=rng)  # the state moved on: a new shelf
    assert not np.array_equal(first, second)
    rng = np.random.default_rng(5)
    assert np.array_equal(first, make_scene("bookshelf", 120, 160, rng=rng))
    assert np.array_equal(second, make_scene("bookshelf", 120, 160, rng=rng))


def test_scenes_do_not_depend_on_the_thread_count():
    threads = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        one = {name: scene(name, 480, 640, seed=4) for name in SCENES}
        cv2.setNumThreads(max(2, threads))
        for name in SCENES:
            assert np.array_equal(one[name], scene(name, 480, 640, seed=4)), name
    finally:
        cv2.setNumThreads(threads)


def test_unknown_scene_is_a_key_error_that_lists_the_names():
    with pytest.raises(KeyError, match="unknown scene 'beach'") as info:
        scene("beach")
    for name in SCENES:
        assert name in str(info.value)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="height"):
        make_scene("plain", 0, 10, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="width"):
        make_scene("plain", 10, 2.5, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        make_scene("plain", 10, 10, rng=0)
    with pytest.raises(TypeError, match="rng"):
        bookshelf_unit(10, 10, rng=None)


@pytest.mark.parametrize("h, w", SIZES)
@pytest.mark.parametrize("seed", range(3))
def test_bookshelf_has_many_colours_and_strong_vertical_edges(h, w, seed):
    shelf = make_scene("bookshelf", h, w, rng=np.random.default_rng(seed))
    wall = make_scene("plain", h, w, rng=np.random.default_rng(seed))
    # (Seen in a room, in perspective and lit, a few of the frame's pixels are wall and floor.)
    assert hue_clusters(shelf) >= 5 and hue_clusters(wall) <= 1
    assert strong_vertical_edges(shelf) > 0.005 and strong_vertical_edges(wall) == 0
    assert horizontal_gradient_energy(shelf) > 20 * horizontal_gradient_energy(wall)


def test_bookshelf_unit_is_a_bookshelf_too():
    unit = bookshelf_unit(300, 200, rng=np.random.default_rng(2))
    assert hue_clusters(unit) >= 5
    assert strong_vertical_edges(unit) > 0.005
    # Its outer frame is wood: the side panels are brownish (red above blue).
    sides = np.concatenate([unit[:, :3], unit[:, -3:]], axis=1).reshape(-1, 3).astype(float)
    assert sides[:, 0].mean() > sides[:, 2].mean() + 10


@pytest.mark.parametrize("name", [n for n in SCENES if n.startswith("plain")])
@pytest.mark.parametrize("seed", range(4))
def test_plain_wall_is_low_variance_but_not_constant(name, seed):
    img = scene(name, 480, 640, seed=seed)
    assert (img.reshape(-1, 3).std(axis=0) < 20).all()
    assert np.unique(img.reshape(-1, 3), axis=0).shape[0] > 50
    # Fine texture: neighbouring pixels differ a little, everywhere.
    step = np.abs(np.diff(grey(img), axis=1))
    assert 0.3 < step.mean() < 4 and np.percentile(step, 99.9) < 25
    # Light falls off: the frame's brightness varies smoothly by a visible amount.
    smooth = cv2.GaussianBlur(grey(img)[: int(0.9 * 480)], (0, 0), 20)
    assert smooth.max() - smooth.min() > 4


@pytest.mark.parametrize("colour", sorted(WALL_PAINTS))
def test_named_walls_have_their_colour(colour):
    img = scene(f"plain-{colour}", seed=7).reshape(-1, 3).astype(float)
    mean = img.mean(axis=0)
    assert np.abs(mean - np.array(WALL_PAINTS[colour])).max() < 30
    r, g, b = mean
    if colour == "blue":
        assert b > r + 10
    elif colour == "green":
        assert g > r and g > b
    elif colour == "beige":
        assert r > b + 20
    else:
        assert max(r, g, b) - min(r, g, b) < 15


def test_plain_draws_its_paint_from_a_palette():
    means = {tuple((scene("plain", 60, 80, seed=s).reshape(-1, 3).mean(axis=0) / 8).round())
             for s in range(30)}
    assert len(means) >= 4


def test_office_has_a_bright_window_and_structure():
    windows = 0
    for seed in range(6):
        office = scene("office", seed=seed)
        wall = scene("plain", seed=seed)
        # Daylight through the window (the camera turns towards it; now and then it falls at
        # the frame's edge).
        windows += (grey(office) > 225).mean() > 0.02
        # Window frame, furniture, the room's corner (softened by depth of field: few, but there).
        assert strong_vertical_edges(office) > 0.0005 and strong_vertical_edges(wall) == 0
        assert horizontal_gradient_energy(office) > 3 * horizontal_gradient_energy(wall)
    assert windows >= 4


# ---------------------------------------------------------------------------------- user images


def test_user_scenes_are_listed_sorted_and_only_images(tmp_path):
    cv2.imwrite(str(tmp_path / "b_room.png"), np.full((20, 30, 3), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "a_room.png"), np.full((20, 30, 3), 160, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub.png").mkdir()
    assert load_user_scenes(tmp_path) == [tmp_path / "a_room.png", tmp_path / "b_room.png"]
    assert load_user_scenes(str(tmp_path)) == [tmp_path / "a_room.png", tmp_path / "b_room.png"]


def test_user_scene_covers_the_frame_by_centre_crop_in_rgb(tmp_path):
    # A wide image in thirds: red | green | blue (written as BGR, as cv2 does).
    rgb = np.zeros((100, 300, 3), np.uint8)
    rgb[:, :100] = (255, 0, 0)
    rgb[:, 100:200] = (0, 255, 0)
    rgb[:, 200:] = (0, 0, 255)
    path = tmp_path / "thirds.png"
    cv2.imwrite(str(path), rgb[..., ::-1])
    square = user_scene(path, 224, 224)
    assert square.shape == (224, 224, 3) and square.dtype == np.uint8
    # Covering a square from a 3:1 image keeps only the middle third: all green, not squashed.
    assert (square[:, 4:-4, 1] > 240).all() and (square[:, 4:-4, [0, 2]] < 15).all()
    wide = user_scene(path, 90, 400)  # wider than the image's aspect: crops top and bottom
    assert wide.shape == (90, 400, 3)
    assert wide[:, :120, 0].mean() > 240 and wide[:, -120:, 2].mean() > 240
    small = user_scene(path, 10, 10)
    assert small.shape == (10, 10, 3)


def test_missing_or_empty_scene_folder_errors_name_it(tmp_path):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(ValueError, match="no-such-folder"):
        load_user_scenes(missing)
    empty = tmp_path / "empty-scenes"
    empty.mkdir()
    (empty / "readme.md").write_text("#")
    with pytest.raises(ValueError, match="empty-scenes"):
        load_user_scenes(empty)
    a_file = tmp_path / "file.png"
    a_file.write_bytes(b"x")
    with pytest.raises(ValueError, match="file.png"):
        load_user_scenes(a_file)


def test_unreadable_scene_image_error_names_the_file(tmp_path):
    bad = tmp_path / "broken-room.png"
    bad.write_bytes(b"this is not a png at all")
    with pytest.raises(ValueError, match="broken-room.png"):
        user_scene(bad, 64, 64)
    empty = tmp_path / "zero-bytes.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="zero-bytes.jpg"):
        user_scene(empty, 64, 64)
    with pytest.raises(ValueError, match="gone.png"):
        user_scene(tmp_path / "gone.png", 64, 64)
