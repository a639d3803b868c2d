"""Face-crop raters: the edit happens on the full frame, the rater sees a square around the face."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from auditkit import run_audit
from auditkit.core.store import Store
from auditkit.media.clips import Clip
from auditkit.models.data import face_crop
from auditkit.perturbations.annotate import face_crop_box
from auditkit.raters import InputSpec, TorchRater, load_rater, save_torchscript
from auditkit.contract.errors import RaterError

BACKGROUNDS = ["background:plain", "background:bookshelf", "background:office", "background:blurred"]
# A square of 0.4 of the face box's side around its middle: cheeks, eyes, nose, mouth — no background.
INNER_FACE = InputSpec(size=(48, 48), frames=4, crop="face", crop_margin=-0.3)


class Looks(nn.Module):
    """Channel means and a brightness ratio of the upper and lower halves of what it is shown."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 3, 4))
        h = x.shape[-2] // 2
        ratio = x[..., :h, :].mean(dim=(1, 2, 3, 4)) / (x[..., h:, :].mean(dim=(1, 2, 3, 4)) + 0.1)
        return torch.stack([m[:, 0], m[:, 1], m[:, 2], ratio, m.mean(dim=1)], dim=1)


@pytest.fixture(scope="module")
def inner_face_rater(tmp_path_factory) -> str:
    return str(save_torchscript(Looks(), tmp_path_factory.mktemp("crop") / "inner.pt", input=INNER_FACE))


def test_background_edits_cannot_reach_a_rater_that_sees_only_the_face(sample_dir, inner_face_rater, tmp_path):
    store = tmp_path / "results.sqlite"
    result = run_audit(inner_face_rater, sample_dir, BACKGROUNDS + ["glasses:sunglasses"], unit="clip",
                       retest=False, store=store)
    assert result.rater["input"]["crop"] == "face" and not result.skipped
    with Store(store) as db:
        shifts = db.shifts(result)
    for edit in BACKGROUNDS:
        for trait in result.traits:
            assert shifts[(edit, trait)] == [0.0] * 12, (edit, trait)  # exactly: not one pixel it sees changed
            assert result.test(edit, trait).verdict == "invariant"
    glasses = [result.test("glasses:sunglasses", t) for t in result.traits]
    assert any(t.verdict == "shift" for t in glasses), glasses
    assert result.test("glasses:sunglasses", "openness").mean_shift < 0  # dark lenses, darker face


def test_the_audit_crops_as_training_does(annotated_samples):
    for clip, ann in annotated_samples[:4]:
        top, left, side = face_crop_box(ann, *clip.size, 0.6)
        assert np.array_equal(face_crop(clip, ann), clip.frames[:, top:top + side, left:left + side])
        x0, y0 = float(ann.face_box[:, 0].min()), float(ann.face_box[:, 1].min())
        x1, y1 = float(ann.face_box[:, 2].max()), float(ann.face_box[:, 3].max())
        # The face is inside the square, unless the frame's own edge cut it.
        assert left <= max(x0, 0) and top <= max(y0, 0)
        assert left + side >= min(x1, clip.size[1] - 1) and top + side >= min(y1, clip.size[0] - 1)


def test_a_clip_without_a_face_is_skipped_with_the_reason(inner_face_rater):
    rng = np.random.default_rng(0)
    wall = Clip.from_frames("wall", rng.integers(90, 110, (4, 96, 128, 3), dtype=np.uint8))
    noise = Clip.from_frames("noise", rng.integers(0, 255, (4, 96, 128, 3), dtype=np.uint8))
    result = run_audit(inner_face_rater, [wall, noise], ["lighting:dim"], unit="clip", retest=False)
    assert result.n_clips == 0
    assert {(s.clip, s.perturbation) for s in result.skipped} == {("wall", "lighting:dim"), ("noise", "lighting:dim")}
    assert all(s.reason.startswith("a face-crop rater needs a face: no face found in 4 of 4 frames")
               for s in result.skipped)


def test_face_crop_reaches_the_rater_from_every_kind_of_file(tmp_path):
    from auditkit.models import OceanRegressor, save_checkpoint

    checkpoint = save_checkpoint(OceanRegressor("resnet18", size=32, frames=2, crop="face"), tmp_path / "r.ckpt")
    assert load_rater(str(checkpoint)).input == InputSpec(size=(32, 32), frames=2, crop="face")
    scripted = save_torchscript(Looks(), tmp_path / "s.ts", input=INNER_FACE)
    assert load_rater(str(scripted)).input.to_dict() == {"size": [48, 48], "frames": 4, "crop": "face",
                                                         "crop_margin": -0.3}
    import onnx

    path = tmp_path / "m.onnx"
    torch.onnx.export(Looks(), torch.rand(1, 4, 3, 48, 48), str(path), input_names=["x"],
                      dynamic_axes={"x": {0: "b"}}, dynamo=False)
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "auditkit", json.dumps({"crop": "face", "crop_margin": 0.2})
    onnx.save(model, str(path))
    assert load_rater(str(path)).input == InputSpec(size=(48, 48), frames=4, crop="face", crop_margin=0.2)
    with pytest.raises(RaterError, match="crop_margin must be a number in"):
        InputSpec(crop="face", crop_margin=-0.9)


def test_full_frame_raters_are_not_annotated_for_nothing(sample_dir, tmp_path):
    from auditkit.perturbations.annotate import Annotator

    annotator = Annotator(tmp_path / "cache")
    run_audit(TorchRater(Looks(), input=InputSpec(size=(48, 48), frames=4)), sample_dir, ["lighting:dim"],
              unit="clip", retest=False, annotator=annotator)
    assert annotator.stats["clips_annotated"] == 0
    crop = Annotator(tmp_path / "cache2")
    run_audit(TorchRater(Looks(), input=INNER_FACE), sample_dir, ["lighting:dim"], unit="clip", retest=False,
              annotator=crop)
    assert crop.stats["clips_annotated"] == 12
