from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from auditkit import perturbations
import auditkit.perturbations.headwear  # noqa: F401  (registers headwear:headscarf)
from contracts import check_edit_contract
from auditkit.perturbations.annotate import CHIN, FOREHEAD

NAME = "headwear:headscarf"
# Eye corners and lids, cheeks, nose tip, mouth corners, chin centre: their hull is the face
# a headscarf must leave alone.
FACE_CORE = (33, 27, 159, 263, 257, 386, 50, 280, 1, 61, 291, 200)


def _face_height(ann) -> torch.Tensor:
    return (ann.landmarks[:, FOREHEAD, :2] - ann.landmarks[:, CHIN, :2]).norm(dim=1)


def _fraction_changed(changed: torch.Tensor, boxes: list[tuple[int, int, int, int]]) -> float:
    """Mean over frames of the changed fraction inside each frame's box (x0, y0, x1, y1)."""
    fractions = [changed[i, y0:y1, x0:x1].float().mean().item()
                 for i, (x0, y0, x1, y1) in enumerate(boxes) if y1 > y0 and x1 > x0]
    assert fractions, "every box fell outside the frame"
    return float(np.mean(fractions))


def test_registered():
    assert {NAME, "headwear:loose-scarf"} <= set(perturbations.available("headwear"))
    edit = perturbations.get(NAME)
    assert edit.family == "headwear" and edit.requires == frozenset({"face"})


def test_contract_on_every_clip(annotated_samples):
    edit = perturbations.get(NAME)
    for clip, ann in annotated_samples:
        check_edit_contract(edit, torch.from_numpy(clip.frames), ann)


def test_face_untouched_and_still_detected(annotated_samples, face_mesh):
    edit = perturbations.get(NAME)
    for clip, ann in annotated_samples:
        result = edit(clip.frames, ann, seed=3)
        for i in range(len(clip.frames)):
            hull = cv2.convexHull(ann.landmarks[i, list(FACE_CORE), :2].numpy().round().astype(np.int32))
            core = np.zeros(clip.frames.shape[1:3], np.uint8)
            cv2.fillConvexPoly(core, hull, 1)
            core = torch.from_numpy(core.astype(bool))
            assert core.sum() > 500
            assert torch.equal(result.frames[i][core], torch.from_numpy(clip.frames[i])[core]), \
                f"the face of {clip.id} frame {i} changed"
            found = face_mesh.process(result.frames[i].numpy()).multi_face_landmarks
            assert found, f"MediaPipe lost the face of {clip.id} frame {i}"


def test_hair_and_neck_are_covered(annotated_samples):
    edit = perturbations.get(NAME)
    for clip, ann in annotated_samples:
        result = edit(clip.frames, ann, seed=4)
        h, w = clip.frames.shape[1:3]
        fh = _face_height(ann)
        hair, neck = [], []
        for i in range(len(clip.frames)):
            fx, fy = ann.landmarks[i, FOREHEAD, :2].tolist()
            cx, cy = ann.landmarks[i, CHIN, :2].tolist()
            s = float(fh[i])
            # The band above the forehead landmark (hairline and hair) and the throat below the
            # chin.
            hair.append((max(0, int(fx - 0.25 * s)), max(0, int(fy - 0.3 * s)),
                         min(w, int(fx + 0.25 * s)), max(0, int(fy))))
            neck.append((max(0, int(cx - 0.15 * s)), min(h, int(cy + 0.08 * s)),
                         min(w, int(cx + 0.15 * s)), min(h, int(cy + 0.4 * s))))
        if any(y1 - y0 >= 3 for _, y0, _, y1 in hair):
            assert _fraction_changed(result.changed, hair) > 0.9, f"hair of {clip.id} not covered"
        assert _fraction_changed(result.changed, neck) > 0.9, f"neck of {clip.id} not covered"


def test_nothing_changes_far_away(annotated_samples):
    edit = perturbations.get(NAME)
    for clip, ann in annotated_samples:
        result = edit(clip.frames, ann, seed=5)
        t, h, w = clip.frames.shape[:3]
        lm = ann.landmarks[..., :2]
        x0, y0 = lm.min(dim=1).values.unbind(-1)
        x1, y1 = lm.max(dim=1).values.unbind(-1)
        fw = (x1 - x0).view(-1, 1, 1)
        ys, xs = torch.arange(h).view(1, -1, 1), torch.arange(w).view(1, 1, -1)
        # The drape falls onto the shoulders and the chest (issue 15): wider and longer than the
        # face, not across the frame.
        near = ((xs >= x0.view(-1, 1, 1) - 1.6 * fw) & (xs <= x1.view(-1, 1, 1) + 1.6 * fw)
                & (ys >= y0.view(-1, 1, 1) - 1.0 * fw) & (ys <= y1.view(-1, 1, 1) + 2.3 * fw))
        assert not (result.changed & ~near).any(), f"{clip.id} changed pixels far from the face"
        # Fabric may stand off the person's silhouette a little, not far.
        reach = max(1, int(0.25 * float(_face_height(ann).mean())))
        person = F.max_pool2d((ann.mask > 0.5).float().unsqueeze(1), 2 * reach + 1, 1, reach).squeeze(1)
        stray = (result.changed & (person == 0)).sum() / result.changed.sum()
        assert stray < 0.02, f"{clip.id}: {float(stray):.1%} of the change is off the person"


def test_same_seed_same_pixels_and_seeds_vary_the_scarf(annotated_samples):
    edit = perturbations.get(NAME)
    clip, ann = annotated_samples[0]
    a, b = edit(clip.frames, ann, seed=9), edit(clip.frames, ann, seed=9)
    assert torch.equal(a.frames, b.frames) and a.params == b.params
    colours = {edit(clip.frames, ann, seed=s).params["colour"] for s in range(12)}
    assert len(colours) >= 3


def test_scarf_is_steady_over_the_clip(annotated_samples):
    # One shape per clip: the covered area follows the head, it does not pulse between frames.
    edit = perturbations.get(NAME)
    for clip, ann in annotated_samples:
        area = edit(clip.frames, ann, seed=6).changed.flatten(1).sum(1).float()
        assert (area.max() - area.min()) / area.mean() < 0.15, f"{clip.id}: area {area.tolist()}"


def test_needs_annotations(frames):
    with pytest.raises(ValueError, match="needs annotations"):
        perturbations.get(NAME)(frames)
