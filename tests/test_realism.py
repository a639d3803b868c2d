"""Checks that catch edits a reviewer would not believe (issue 15), on the sample clips and the
clips of other framings, light and skin tones: numbers, not taste. ``realism.py`` holds the
measurements."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auditkit import perturbations
from auditkit.perturbations.background import INSIDE
from realism import border_cuts, landmark_shift, ring, ring_stats

FACE_EDITS = perturbations.available("glasses") + perturbations.available("headwear")
SCENES = ["background:plain", "background:bookshelf", "background:office", "bookshelf:insert"]
MAX_BORDER_RUN = 4      # "a few pixels"
MAX_MEDIAN_SHIFT = 3.5  # pixels: the face mesh's landmarks outside the edit stay where they were


def _all(annotated_samples, annotated_variants):
    return list(annotated_samples) + list(annotated_variants.values())


@pytest.mark.parametrize("name", FACE_EDITS)
def test_no_straight_cut_along_the_frame_border(name, annotated_samples, annotated_variants):
    # A scarf that ends in a straight line at the frame's edge, where no body leaves the frame,
    # reads as a sticker: changed pixels may run along the border only where the person does.
    edit = perturbations.get(name)
    for clip, ann in _all(annotated_samples, annotated_variants):
        runs = border_cuts(edit(clip.frames, ann, seed=3).changed, ann.mask)
        assert max(runs) <= MAX_BORDER_RUN, f"{name} on {clip.id}: a {max(runs)}-pixel run along the border"


@pytest.mark.parametrize("name", FACE_EDITS)
def test_the_face_mesh_still_finds_the_face_where_it_was(name, annotated_samples, annotated_variants, face_mesh):
    edit = perturbations.get(name)
    for clip, ann in _all(annotated_samples, annotated_variants)[::2]:
        result = edit(clip.frames, ann, seed=3)
        found = np.flatnonzero(ann.face_found.numpy())  # a title card or a fade has no face to find
        for i in (found[0], found[len(found) // 2]):
            shift = landmark_shift(face_mesh, clip.frames[i], result.frames[i].numpy(), result.changed[i].numpy())
            assert shift is not None, f"{name}: MediaPipe lost the face of {clip.id} frame {i}"
            median, _, count = shift
            assert count > 100 and median <= MAX_MEDIAN_SHIFT, \
                f"{name} on {clip.id} frame {i}: landmarks moved {median:.1f} px (median of {count})"


@pytest.mark.parametrize("name", SCENES)
def test_a_new_scene_has_the_tone_and_colour_of_the_room(name, annotated_samples):
    # Near the person the new background's mean luma and chroma lie inside the spread (5th to
    # 95th percentile) of the original background's there: not brighter, cleaner or another
    # colour than the room the person was filmed in.
    edit = perturbations.get(name)
    for clip, ann in annotated_samples:
        where = ring(ann.mask)
        before = ring_stats(clip.frames, where, (5, 95))
        after = ring_stats(edit(clip.frames, ann, seed=3).frames.numpy(), where, (5, 95))
        inside = (after["mean"] >= before["low"]) & (after["mean"] <= before["high"])
        assert inside.all(), (f"{name} on {clip.id}: mean Y'CbCr {np.round(after['mean'], 1).tolist()} outside "
                              f"{np.round(before['low'], 1).tolist()}..{np.round(before['high'], 1).tolist()}")


@pytest.mark.parametrize("name", ["headwear:headscarf", "headwear:loose-scarf"] + perturbations.available("glasses"))
def test_a_hand_in_front_of_the_face_stays_in_front(name, annotated_variants):
    # The variant clips hold synthetic hands raised to the mouth and under the chin; the hand
    # model finds them in the annotation, and an edit leaves them (and the forearm) alone.
    from auditkit.perturbations.occlusion import hand_cover

    edit = perturbations.get(name)
    for clip_id in ("collins_hand", "hopper_hand"):
        clip, ann = annotated_variants[clip_id]
        assert ann.has_hands, f"the hand of {clip_id} was not found"
        changed = edit(clip.frames, ann, seed=3).changed
        cover = hand_cover(ann, torch.from_numpy(clip.frames), (0, 0, clip.frames.shape[2], clip.frames.shape[1]))
        solid = cover >= 0.99
        touched = float((changed & solid).sum()) / max(1, int(solid.sum()))
        assert touched < 0.01, f"{name} drew over {touched:.1%} of the hand in {clip_id}"


def test_the_sham_control_still_measures_the_pipeline_alone(annotated_samples):
    # The sham goes through the same alpha (edge refined on the frame) and the same unmixing of
    # the old background as every swap; it changes pixels only where that alpha is fractional,
    # and a real swap changes all the rest of the background and nothing of the person.
    from auditkit.perturbations.background import person_alpha

    sham, plain = perturbations.get("background:sham"), perturbations.get("background:plain")
    for clip, ann in annotated_samples[::3]:
        frames = torch.from_numpy(clip.frames)
        alpha = person_alpha(ann.mask, frames=frames)
        a = sham(frames, ann, seed=0)
        b = plain(frames, ann, seed=0)
        soft = (alpha > 0) & (alpha < 1)
        assert not (a.changed & ~soft).any(), f"{clip.id}: the sham changed pixels outside the edge band"
        assert soft.any() and a.changed.any()
        assert torch.equal(b.frames[alpha >= 1], frames[alpha >= 1])
        assert bool((ann.mask >= INSIDE).le(alpha >= 1).all())
        background = alpha <= 0
        assert b.changed[background].float().mean() > 0.9, clip.id
        # The sham's changes are small: it re-composites the background that was there.
        diff = (a.frames.float() - frames.float()).abs().amax(-1)
        assert float(diff[a.changed].mean()) < 25, clip.id
