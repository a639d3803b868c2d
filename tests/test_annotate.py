from __future__ import annotations

import numpy as np
import torch

from auditkit.media.clips import Clip
from auditkit.perturbations.annotate import (Annotator, LEFT_IRIS, NUM_LANDMARKS, RIGHT_IRIS, bridge_gaps,
                                    smooth_time)


def test_annotations_of_real_faces(annotated_samples):
    for clip, ann in annotated_samples:
        t, h, w = clip.frames.shape[:3]
        assert ann.mask.shape == (t, h, w) and ann.mask.dtype == torch.float32
        assert ann.landmarks.shape == (t, NUM_LANDMARKS, 3)
        assert bool(ann.face_found.all()), clip.id
        x0, y0, x1, y1 = ann.face_box[0].tolist()
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        # The person covers the face: the mask is high at the irises, low in a top corner.
        for idx in (RIGHT_IRIS, LEFT_IRIS):
            x, y = ann.landmarks[0, idx, :2].round().long().tolist()
            assert ann.mask[0, y, x] > 0.9
        assert 0.1 < float(ann.mask.mean()) < 0.9


def test_cache_hit_returns_identical_annotations_and_does_no_work(annotated_samples, tmp_path):
    clip, _ = annotated_samples[0]
    first = Annotator(tmp_path)
    a = first.annotate_clip(clip)
    assert first.stats["frames_annotated"] == clip.num_frames
    second = Annotator(tmp_path)  # a new process would start like this
    b = second.annotate_clip(clip)
    assert second.stats == {"frames_annotated": 0, "clips_annotated": 0, "clips_cached": 1,
                            "frames_hand_searched": 0}
    for name in ("mask", "landmarks", "face_found", "face_box", "shot", "links", "present", "person"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert torch.equal(a.hands.isnan(), b.hands.isnan())
    # A damaged cache file is recomputed, not trusted.
    for path in tmp_path.glob("*.npz"):
        path.write_bytes(b"garbage")
    third = Annotator(tmp_path)
    assert torch.equal(third.annotate_clip(clip).mask, a.mask)
    assert third.stats["clips_annotated"] == 1


def test_frames_without_a_face_are_recorded_and_gaps_bridged(annotated_samples, tmp_path):
    clip, reference = annotated_samples[3]
    frames = clip.frames.copy()
    frames[2] = 128  # a frame with nobody in it (a camera glitch, a turn away)
    ann = Annotator(tmp_path).annotate(frames)
    assert ann.face_found.tolist() == [True, True, False, True, True, True]
    assert ann.missing_faces == 1 and ann.face_problem(0.5) is None
    assert bool(torch.isfinite(ann.landmarks).all())
    # The bridged frame sits between its neighbours.
    bridged = ann.landmarks[2, :, :2]
    lo = torch.minimum(ann.landmarks[1, :, :2], ann.landmarks[3, :, :2]) - 3
    hi = torch.maximum(ann.landmarks[1, :, :2], ann.landmarks[3, :, :2]) + 3
    assert bool(((bridged >= lo) & (bridged <= hi)).all())


def test_mostly_faceless_clip_reports_the_count(annotated_samples, tmp_path):
    clip, _ = annotated_samples[0]
    frames = clip.frames.copy()
    frames[1:] = 90
    ann = Annotator(tmp_path).annotate(frames)
    assert ann.face_problem(0.5) == "no face found in 5 of 6 frames (the person is on screen in 1 of them)"
    nobody = Annotator(tmp_path).annotate(np.full((3, 64, 64, 3), 200, np.uint8))
    assert nobody.face_problem(0.9) == "no face found in 3 of 3 frames"
    assert not nobody.has_landmarks


def test_bridge_and_smooth_helpers():
    pts = np.array([[0.0], [0.0], [10.0], [0.0]], np.float32)
    found = np.array([False, True, False, True])
    assert bridge_gaps(np.array([[5.0], [1.0], [9.0], [3.0]], np.float32), found)[:, 0].tolist() == [1, 1, 2, 3]
    sm = smooth_time(pts)
    assert sm[2, 0] == 5.0 and sm[0, 0] == 0.0  # edges renormalised, not pulled towards zero
    assert np.isnan(bridge_gaps(pts, np.zeros(4, bool))).all()


def test_clip_from_frames_has_a_stable_content_hash(annotated_samples):
    clip, _ = annotated_samples[0]
    again = Clip.from_frames("x", clip.frames.copy())
    assert again.content_hash == Clip.from_frames("y", clip.frames.copy()).content_hash
