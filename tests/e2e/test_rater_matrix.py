"""Every kind of rater the README lists, through every executor: the same audit everywhere.

Ray workers never receive a loaded model: they load the rater again from its source (the spec,
and the bytes of the file it names). A rater that exists only in memory travels in the form that
works for it, or is refused with one line before anything is scored.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from auditkit import run_audit
from auditkit.contract.errors import RaterError
from auditkit.media.clips import discover
from auditkit.raters import InputSpec, TorchRater, load_rater, save_torchscript
from auditkit.raters.torchscript import save_exported
from conftest import LISTENER_TRAITS, LISTENING, SMALL, BrightnessRater, Listener, save_listener_onnx
from test_http_rater import Vendor, describe
from test_vendor_video import VideoVendor
from test_vendor_video import describe as describe_video

# One Ray at a time on this machine: every Ray test runs on the same xdist worker, in turn.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]
EDITS = ["lighting:dim", "background:plain"]
EXECUTORS = {"local, in process": {"executor": "local", "workers": 0},
             "local, 2 workers": {"executor": "local", "workers": 2},
             "ray": {"executor": "ray", "workers": 2}}
KINDS = ("torchscript .pt", "torchscript .ts", "export .pt2", "checkpoint", "onnx", "factory file.py:name",
         "factory package.module:name", "http", "http video (recordings)", "builtin",
         # Raters that watch and listen: called rater(frames, audio) wherever they run.
         "listening torchscript", "listening export .pt2", "listening onnx", "listening factory",
         # Frames by rate (every frame at 5 fps over a second), retested 0.2 s later.
         "motion export .pt2")


class Scores(nn.Module):
    """Brightness and colour read-outs; scriptable and exportable to ONNX alike."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 3, 4))
        return torch.sigmoid(torch.stack([m[:, 0], m[:, 1] - m[:, 2], m.mean(dim=1), m[:, 2], -m[:, 0]], dim=1) * 3)


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    import logging

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             logging_level=logging.ERROR)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def vendor():
    server = Vendor()
    yield server
    server.close()


@pytest.fixture(scope="module")
def video_vendor():
    server = VideoVendor()
    yield server
    server.close()


@pytest.fixture(scope="module")
def specs(tmp_path_factory, vendor, video_vendor) -> dict[str, str]:
    import onnx

    folder = tmp_path_factory.mktemp("kinds")
    out = {"torchscript .pt": str(save_torchscript(Scores(), folder / "r.pt", input=SMALL)),
           "torchscript .ts": str(save_torchscript(BrightnessRater(), folder / "r.ts", input=SMALL)),
           "builtin": "builtin:appearance",
           "factory package.module:name": "auditkit.raters.builtin:constant"}
    from auditkit.models import OceanRegressor, save_checkpoint

    torch.manual_seed(0)
    out["checkpoint"] = str(save_checkpoint(OceanRegressor("resnet18", size=32, frames=2), folder / "r.ckpt"))
    path = folder / "r.onnx"
    torch.onnx.export(Scores(), torch.rand(1, 4, 3, 64, 64), str(path), input_names=["video"],
                      dynamic_axes={"video": {0: "batch"}}, dynamo=False)
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "auditkit", json.dumps({"frames": 4, "size": [64, 64]})
    onnx.save(model, str(path))
    out["onnx"] = str(path)
    (folder / "factory.py").write_text(textwrap.dedent("""
        import torch
        from auditkit.raters import InputSpec, TorchRater


        class Tint(torch.nn.Module):
            def forward(self, x):
                m = x.mean(dim=(1, 3, 4))
                return torch.stack([m[:, 0], m[:, 1], m[:, 2], 1 - m[:, 0], 1 - m[:, 2]], dim=1)


        def make():
            return TorchRater(Tint(), input=InputSpec(size=(48, 48), frames=3), name="tint")
    """))
    out["factory file.py:name"] = f"{folder / 'factory.py'}:make"
    out["export .pt2"] = str(save_exported(Scores(), folder / "r.pt2", input=SMALL))
    out["listening torchscript"] = str(save_torchscript(Listener(), folder / "l.pt", trait_names=LISTENER_TRAITS,
                                                        input=LISTENING))
    out["listening export .pt2"] = str(save_exported(Listener(), folder / "l.pt2", trait_names=LISTENER_TRAITS,
                                                     input=LISTENING))
    out["listening onnx"] = str(save_listener_onnx(folder / "l.onnx"))
    out["motion export .pt2"] = str(save_exported(Scores(), folder / "motion.pt2",
                                                  input=InputSpec(size=(48, 48), fps=5, seconds=1.0)))
    (folder / "hears.py").write_text(textwrap.dedent("""
        import torch
        from auditkit.raters import AudioSpec, InputSpec, TorchRater


        class Hears(torch.nn.Module):
            def forward(self, x, audio):
                loud = audio.pow(2).mean(dim=(1, 2)).sqrt()
                m = x.mean(dim=(1, 3, 4))
                return torch.stack([loud, m[:, 0], m[:, 1], m[:, 2], loud * m[:, 0]], dim=1)


        def make():
            spec = InputSpec(size=(48, 48), frames=3, audio=AudioSpec(sample_rate=8000, channels=2, seconds=1.5))
            return TorchRater(Hears(), input=spec, name="hears")
    """))
    out["listening factory"] = f"{folder / 'hears.py'}:make"
    out["http"] = f"http:{describe(folder, vendor.url, token_env='MATRIX_TOKEN')}"
    (folder / "video").mkdir()
    out["http video (recordings)"] = describe_video(folder / "video", video_vendor.url)
    return out


@pytest.fixture(scope="module")
def clips(sample_dir):
    return discover(sample_dir)[:4]


@pytest.mark.parametrize("kind", KINDS)
def test_every_rater_kind_gives_the_same_audit_through_every_executor(kind, specs, clips, ray_cluster,
                                                                      monkeypatch):
    monkeypatch.setenv("MATRIX_TOKEN", "matrix-s3cret")
    results = {name: run_audit(specs[kind], clips, EDITS, unit="clip", batch_size=2, **options)
               for name, options in EXECUTORS.items()}
    reference = results["local, in process"]
    assert len(reference.tests) == 3 * len(reference.traits) and not reference.skipped
    for name, result in results.items():
        assert result.tests == reference.tests, f"{kind} through {name}"
        assert result.rater == reference.rater


def test_the_command_line_sends_a_torchscript_rater_to_ray(tmp_path, specs, sample_dir):
    # The failure this test was written for: the loaded TorchScript module was pickled for Ray.
    base = ["run", "--rater", specs["torchscript .pt"], "--clips", str(sample_dir), "--perturb",
            "lighting:dim,background:plain", "--quiet", "--unit", "clip", "--no-retest"]
    runs = {}
    for name, extra in (("local", []), ("ray", ["--executor", "ray", "--workers", "2"])):
        proc = subprocess.run([sys.executable, "-m", "auditkit", *base, "--out", str(tmp_path / name), *extra],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode in (0, 1), proc.stderr
        assert "internal error" not in proc.stderr
        runs[name] = json.loads((tmp_path / name / "audit.json").read_text())["tests"]
    assert runs["ray"] == runs["local"]


def test_raters_that_live_only_in_memory(clips, ray_cluster):
    local = run_audit(BrightnessRater(), clips, ["lighting:dim"], unit="clip", retest=False)
    # An eager module travels by value; a scripted one as its TorchScript archive.
    eager = run_audit(BrightnessRater(), clips, ["lighting:dim"], unit="clip", retest=False, executor="ray")
    assert eager.tests == local.tests
    with_input = TorchRater(torch.jit.script(BrightnessRater()), input=SMALL, name="scripted in memory")
    scripted = run_audit(with_input, clips, ["lighting:dim"], unit="clip", retest=False, executor="ray")
    assert scripted.tests == run_audit(with_input, clips, ["lighting:dim"], unit="clip", retest=False).tests
    assert scripted.rater["spec"] == "scripted in memory"


class _Unpicklable:
    trait_names = ("openness",)
    input = InputSpec(size=(32, 32), frames=2)
    name = "holds a lock"

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()
        self.calls = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.zeros(x.shape[0], 1)


def test_a_rater_that_cannot_travel_is_refused_before_any_work(clips, ray_cluster, tmp_path):
    rater = _Unpicklable()
    with pytest.raises(RaterError, match="rater holds a lock lives only in this process and cannot be sent to Ray"):
        run_audit(rater, clips, ["lighting:dim"], unit="clip", retest=False, executor="ray",
                  store=tmp_path / "results.sqlite")
    assert rater.calls == 0


def test_a_rater_loaded_from_a_spec_remembers_it(specs):
    for kind in ("torchscript .pt", "onnx", "checkpoint", "builtin"):
        assert load_rater(specs[kind]).source == specs[kind]
    assert Path(specs["onnx"]).is_file()
