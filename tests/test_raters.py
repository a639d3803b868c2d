from __future__ import annotations

import json
import textwrap

import pytest
import torch

from auditkit.contract.errors import RaterError
from auditkit.raters import (OCEAN, InputSpec, TorchRater, check_scores, load_rater, rater_identity,
                             save_torchscript)
from conftest import SMALL, BrightnessRater


def _batch(b=2, level=0.25):
    return torch.full((b, SMALL.frames, 3, *SMALL.size), level)


def test_torchscript_round_trip_keeps_metadata(brightness_rater_path):
    rater = load_rater(str(brightness_rater_path))
    assert rater.trait_names == OCEAN and rater.input == SMALL
    out = rater(_batch(level=0.25))
    torch.testing.assert_close(out[0], torch.tensor([0.25, 0.75, 0.125, 0.25, 0.375]))
    ident = rater_identity(rater)
    assert ident["hash"].startswith("sha256:") and ident["input"]["frames"] == SMALL.frames


def test_onnx_rater_agrees_with_torch(tmp_path):
    onnx = pytest.importorskip("onnx")
    module = BrightnessRater()
    path = tmp_path / "brightness.onnx"
    torch.onnx.export(module, (_batch(1),), str(path), input_names=["video"], output_names=["scores"],
                      dynamic_axes={"video": {0: "batch"}, "scores": {0: "batch"}}, dynamo=False)
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "auditkit", json.dumps({"trait_names": list(OCEAN)})
    onnx.save(model, str(path))
    rater = load_rater(str(path))
    assert rater.input.frames == SMALL.frames and rater.input.size == SMALL.size
    x = torch.rand(3, SMALL.frames, 3, *SMALL.size)
    torch.testing.assert_close(rater(x), module(x), atol=1e-6, rtol=1e-5)


def test_factory_from_file_and_from_module(tmp_path, monkeypatch):
    (tmp_path / "my_rater.py").write_text(textwrap.dedent("""
        import torch
        from auditkit.raters import InputSpec, TorchRater

        class Half(torch.nn.Module):
            def forward(self, x):
                return torch.full((x.shape[0], 2), 0.5)

        def make_rater():
            return TorchRater(Half(), ("calm", "warm"), InputSpec(size=32, frames=2))

        module_only = Half
    """))
    rater = load_rater(f"{tmp_path / 'my_rater.py'}:make_rater")
    assert rater.trait_names == ("calm", "warm") and rater.input.size == (32, 32)
    monkeypatch.syspath_prepend(str(tmp_path))
    wrapped = load_rater("my_rater:module_only")  # a module class: called, then wrapped
    assert isinstance(wrapped, TorchRater) and wrapped.trait_names == OCEAN


def test_a_rater_sent_to_a_worker_leaves_no_copy_of_its_file_behind(tmp_path, monkeypatch, brightness_rater_path):
    # A worker loads the rater from bytes written to a temporary file; the file must go once
    # loaded (a leak there left a copy of the user's weights per audit per worker).
    import tempfile

    from auditkit.raters.travel import source_of

    (tmp_path / "factory.py").write_text(textwrap.dedent("""
        from auditkit.raters import load_rater

        def make():
            return load_rater(%r)
    """ % str(brightness_rater_path)))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    for spec in (str(brightness_rater_path), f"{tmp_path / 'factory.py'}:make"):
        source = source_of(spec, load_rater(spec))
        assert source.payload is not None, spec
        loaded = source.load()
        assert loaded.name == spec
        torch.testing.assert_close(loaded(_batch(level=0.25))[0], torch.tensor([0.25, 0.75, 0.125, 0.25, 0.375]))
        assert list(scratch.iterdir()) == [], spec


@pytest.mark.parametrize("spec,message", [
    ("missing.pt", "file does not exist"),
    ("nonsense", "does not resolve"),
    ("builtin:oracle", "unknown built-in"),
    ("no_such_module_xyz:make", "cannot import module"),
    ("auditkit.raters:nothing_here", "has no attribute"),
])
def test_bad_specs_name_the_problem(spec, message):
    with pytest.raises(RaterError, match=message):
        load_rater(spec)


def test_file_that_is_not_torchscript(tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(b"\x00\x01 not a model")
    with pytest.raises(RaterError, match=r"weights.pt: not a readable checkpoint"):
        load_rater(str(path))


def test_factory_errors_are_reported(tmp_path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(RaterError, match="importing .*broken.py failed: RuntimeError: boom"):
        load_rater(f"{tmp_path / 'broken.py'}:make")
    (tmp_path / "nota.py").write_text("make = 42\n")
    with pytest.raises(RaterError, match="not a rater"):
        load_rater(f"{tmp_path / 'nota.py'}:make")


def test_check_scores_names_rater_and_clips():
    rater = TorchRater(BrightnessRater(), name="r1")
    good = check_scores(torch.zeros(2, 5), rater, ["a", "b"])
    assert good.shape == (2, 5)
    with pytest.raises(RaterError, match=r"rater r1 returned shape \(2, 4\) for clip\(s\) a, b"):
        check_scores(torch.zeros(2, 4), rater, ["a", "b"])
    bad = torch.zeros(2, 5)
    bad[1, 3] = float("nan")
    with pytest.raises(RaterError, match=r"rater r1 returned NaN or inf for clip\(s\) b$"):
        check_scores(bad, rater, ["a", "b"])


def test_input_spec_validation():
    assert InputSpec(size=96).size == (96, 96)
    with pytest.raises(RaterError, match="frames"):
        InputSpec(frames=0)
    assert InputSpec(crop="face").crop == "face"
    with pytest.raises(RaterError, match="crop 'body' is not supported; use one of full, face"):
        InputSpec(crop="body")
    with pytest.raises(RaterError, match="crop_margin must be a number"):
        InputSpec(crop="face", crop_margin=9)


def test_torchscript_with_bad_metadata(tmp_path):
    path = save_torchscript(BrightnessRater(), tmp_path / "m.pt")
    extra = {"auditkit.json": json.dumps({"frames": 0})}
    torch.jit.save(torch.jit.load(str(path)), str(path), _extra_files=extra)
    with pytest.raises(RaterError, match="m.pt: bad input metadata"):
        load_rater(str(path))
