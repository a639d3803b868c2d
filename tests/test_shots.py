"""Edits that hold across cuts, fades and a person who leaves: nothing temporal reaches from one
shot into another, a background edit never changes the face, and an edit of the person never
draws where the person is not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from auditkit import perturbations
from auditkit.media.clips import discover
from auditkit.media.variants import variant_clips
from auditkit.perturbations.annotate import smooth_time
from auditkit.perturbations.background import person_alpha
from auditkit.perturbations.shots import find_shots, links

STORIES = ("hopper_title_cut", "collins_fade_out", "collins_leaves")
BACKGROUND = ["background:plain", "background:office", "background:bookshelf", "background:blurred",
              "background:sham", "bookshelf:insert"]
PERSON = ["glasses:thick", "glasses:sunglasses", "headwear:headscarf", "headwear:loose-scarf"]
FACE_LEVELS = 2.0  # the most a background edit may change the face, mean absolute 8-bit levels
ERODE = 9          # pixels the face hull is eroded by, so its edge band is left out


@pytest.fixture(scope="module")
def stories(_private_cache, annotator):
    """The three story clips read densely (16 frames over 2 s: neighbours 0.13 s apart, within
    reach of each other), with their annotations."""
    sources = {s.id: s for s in discover(variant_clips())}
    out = {}
    for name in STORIES:
        clip = sources[name].read(num_frames=16)
        out[name] = (clip, annotator.annotate_clip(clip))
    return out


def test_shots_are_found_at_the_cut_and_around_the_black(stories):
    clip, ann = stories["hopper_title_cut"]
    shot, found = ann.shot.numpy(), ann.face_found.numpy()
    first = int(np.flatnonzero(found)[0])
    assert first >= 3 and not found[:first].any() and found[first:].all()
    # One shot for the card, one for the person, split exactly where the person appears.
    assert (shot[:first] == 0).all() and (shot[first:] == 1).all()
    assert not ann.person[:first].any() and ann.person[first:].all()
    assert not ann.links[first] and ann.links[first + 1]
    clip, ann = stories["collins_fade_out"]
    black = np.flatnonzero(clip.frames.reshape(len(clip.frames), -1).max(axis=1) < 12)
    assert len(black) >= 2 and not ann.person[black].any()
    # The fade itself (a gain on the whole frame) is no cut: the darkening frames stay in the shot.
    lit = np.flatnonzero(clip.frames.reshape(len(clip.frames), -1).mean(axis=1) > 30)
    assert lit[-1] > lit[0] + 8 and (ann.shot[lit] == 0).all() and ann.person[lit].all()
    clip, ann = stories["collins_leaves"]
    assert (ann.shot == 0).all() and ann.person.all()  # the room is still the person's shot
    gone = np.flatnonzero(~ann.face_found.numpy())
    assert len(gone) >= 4 and not ann.present[gone].any()  # nothing extrapolated past the face's exit


def test_links_join_only_frames_of_one_shot_a_fraction_of_a_second_apart():
    times = np.array([0.0, 0.1, 0.2, 1.0, 1.1, 1.2])
    shots = np.array([0, 0, 1, 1, 1, 1])
    assert links(times, shots).tolist() == [False, True, False, False, True, True]
    x = np.array([0.0, 0.0, 8.0, 8.0, 4.0, 0.0], np.float32)
    smoothed = smooth_time(x, linked=links(times, shots))
    # Frame 2 is alone (another shot than 1, a long way from 3); 3, 4 and 5 are joined.
    assert smoothed[:3].tolist() == [0.0, 0.0, 8.0] and smoothed[3] == pytest.approx(20 / 3)
    assert smoothed[4] == pytest.approx(4.0) and smoothed[5] == pytest.approx(4 / 3)
    # Without links every neighbour is joined, as before shots existed.
    assert smooth_time(x)[2] == pytest.approx(6.0)


def test_a_blank_frame_is_a_shot_of_its_own():
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 255, (1, 48, 64, 3), dtype=np.uint8).repeat(5, axis=0)
    scene[2] = 0
    assert find_shots(scene).tolist() == [0, 0, 1, 2, 2]


def _face_hull(ann, i: int, shape: tuple[int, int]) -> np.ndarray:
    hull = np.zeros(shape, np.uint8)
    points = np.round(ann.landmarks[i, :, :2].numpy()).astype(np.int32)
    cv2.fillPoly(hull, [cv2.convexHull(points)], 1)
    return cv2.erode(hull, np.ones((2 * ERODE + 1, 2 * ERODE + 1), np.uint8)).astype(bool)


@pytest.mark.parametrize("name", BACKGROUND)
def test_a_background_edit_never_changes_the_face_and_leaves_shots_without_the_person(name, stories,
                                                                                       annotated_variants):
    edit = perturbations.get(name)
    clips = [*stories.values(), *(annotated_variants[k] for k in ("collins_edge", "hopper_dim_warm",
                                                                 "collins_deep_skin", "hopper_hand"))]
    for clip, ann in clips:
        result = edit(clip.frames, ann, seed=5)
        out = result.frames.numpy()
        for i in np.flatnonzero(ann.face_found.numpy()):
            hull = _face_hull(ann, i, clip.size)
            if hull.sum() < 50:
                continue
            change = np.abs(out[i].astype(int) - clip.frames[i].astype(int)).mean(-1)[hull].mean()
            assert change <= FACE_LEVELS, f"{name} on {clip.id} frame {i}: the face changed by {change:.2f} levels"
        away = np.flatnonzero(~ann.person.numpy())
        assert list(result.left_alone) == away.tolist(), clip.id
        assert np.array_equal(out[away], clip.frames[away]), f"{name} drew on {clip.id}'s frames without the person"


def test_no_ghost_of_the_person_where_they_are_not(stories):
    # The person leaves the frame (the camera pans away): on each frame without them, neither the
    # smoothed mask nor the compositing alpha keeps a trace of where they stood a moment before.
    clip, ann = stories["collins_leaves"]
    frames = torch.from_numpy(clip.frames)
    alpha = person_alpha(ann.mask, frames=frames, linked=ann.links)
    raw = perturbations.annotate.Annotator(use_cache=False)
    alone = raw.annotate(clip.frames)  # the same frames taken one by one: nothing temporal at all
    for i in range(1, len(frames)):
        if not ann.links[i]:
            continue
        was = alone.mask[i - 1].numpy() > 0.5
        # Where the person stood a frame before and is not now, away from their edge now (its
        # feathered band is the edge's, not a ghost's).
        near = cv2.dilate((alone.mask[i].numpy() > 0.05).astype(np.uint8), np.ones((21, 21), np.uint8))
        where = torch.from_numpy(was & (near == 0))
        if int(where.sum()) < 200:
            continue
        assert float(ann.mask[i][where].max()) < 0.1, f"frame {i}: the mask keeps a ghost"
        assert float(alpha[i][where].max()) < 0.02, f"frame {i}: the alpha keeps a ghost"
    # And a cut: the title card's alpha is the title card's alone.
    clip, ann = stories["hopper_title_cut"]
    alpha = person_alpha(ann.mask, frames=torch.from_numpy(clip.frames), linked=ann.links)
    card = ~ann.person.numpy()
    assert float(alpha[torch.from_numpy(card)].max()) <= float(ann.mask[torch.from_numpy(card)].max()) + 0.02


@pytest.mark.parametrize("name", PERSON)
def test_an_edit_of_the_person_never_draws_where_the_person_is_not(name, stories):
    edit = perturbations.get(name)
    for clip, ann in stories.values():
        result = edit(clip.frames, ann, seed=5)
        absent = np.flatnonzero(~ann.present.numpy())
        assert len(absent) >= 3, clip.id
        assert list(result.left_alone) == absent.tolist(), clip.id
        out = result.frames.numpy()
        assert np.array_equal(out[absent], clip.frames[absent]), f"{name} drew on {clip.id} where the face is not"
        shown = np.flatnonzero(ann.present.numpy())
        assert all((out[i] != clip.frames[i]).any() for i in shown), f"{name} missed a frame of {clip.id}"


# ------------------------------------------------------------------------- at full frame rate

FLICKER_LEVELS = 3.0  # how much more an edit may change along its edge from frame to frame than the clip does


def _band(edge: np.ndarray) -> np.ndarray:
    """The pixels within 2 px of the boundary of a bool region."""
    region = edge.astype(np.uint8)
    kernel = np.ones((5, 5), np.uint8)
    return (cv2.dilate(region, kernel) - cv2.erode(region, kernel)).astype(bool)


def flicker(frames: list[np.ndarray], bands: list[np.ndarray]) -> float:
    """Mean absolute frame-to-frame change (8-bit levels) over each pair's edge band."""
    changes = []
    for i in range(1, len(frames)):
        band = bands[i] | bands[i - 1]
        if band.sum():
            diff = np.abs(frames[i].astype(np.int16) - frames[i - 1].astype(np.int16)).mean(-1)
            changes.append(float(diff[band].mean()))
    return float(np.mean(changes))


def _full_rate(source, name: str, annotator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every frame of a clip, original and edited, as a vendor receives them."""
    from auditkit.core.recording import edited_frames
    from auditkit.media.recording import RecordingSpec, iter_frames

    original = [f for _, f in iter_frames(source.path)]
    edited = [f for _, f in edited_frames(source.path, perturbations.get(name), RecordingSpec(), clip_id=source.id,
                                          seed=0, annotator=annotator)]
    assert len(edited) == len(original) == 30
    return original, edited


@pytest.mark.parametrize("name", ["background:office", "background:plain", "bookshelf:insert"])
def test_at_full_frame_rate_the_person_s_outline_does_not_flicker(name, sample_dir, annotator):
    # Along the edit's edge (the person's outline) the edited frames change from one frame to the
    # next no more than the clip itself does there, plus FLICKER_LEVELS.
    for source in discover(sample_dir)[::5]:
        original, edited = _full_rate(source, name, annotator)
        bands = [_band((e != o).any(-1)) for e, o in zip(edited, original)]
        before, after = flicker(original, bands), flicker(edited, bands)
        assert after <= before + FLICKER_LEVELS, f"{name} on {source.id}: {after:.2f} vs the clip's {before:.2f}"


GLASSES_JITTER = 0.5  # pixels a frame the glasses may move against the eyes (the eyes move about 0.4)


@pytest.mark.parametrize("name", ["glasses:thick", "glasses:sunglasses"])
def test_at_full_frame_rate_the_glasses_stay_on_the_eyes(name, sample_dir, annotator):
    # High-contrast rims change a lot from frame to frame wherever the head moves; what must not
    # happen is that they shake against the face: the drawn frame's centre, less the point
    # between the irises, moves less than GLASSES_JITTER from one frame to the next.
    from auditkit.perturbations.annotate import LEFT_IRIS, RIGHT_IRIS

    for source in discover(sample_dir)[::5]:
        original, edited = _full_rate(source, name, annotator)
        marks = annotator.annotate(np.stack(original), times=np.arange(30) / 15).landmarks.numpy()
        eyes = 0.5 * (marks[:, RIGHT_IRIS, :2] + marks[:, LEFT_IRIS, :2])
        centres = []
        for e, o in zip(edited, original):
            ys, xs = np.nonzero((e != o).any(-1))
            centres.append((xs.mean(), ys.mean()))
        jitter = np.abs(np.diff(np.array(centres) - eyes, axis=0)).mean(axis=0)
        assert jitter.max() <= GLASSES_JITTER, f"{name} on {source.id}: {jitter.round(2).tolist()} px a frame"
