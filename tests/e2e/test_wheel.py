"""auditkit as a user installs it: a wheel, non-editable, in a fresh virtual environment, used
from a project folder that has its own ``models/``, ``perturbations/`` and ``dashboard/`` packages
(most ML repositories have a ``models/``). Only ``auditkit`` may reach site-packages, so none of
those names can shadow ours, nor ours theirs.

The fresh environment gets the wheel alone (``--no-deps``); its third-party dependencies (torch,
MediaPipe, ...) are made visible from the test's own environment through a ``.pth`` line, which
adds their folder to ``sys.path`` without running that environment's editable-install hook. So
every ``auditkit`` module the runs import comes from the wheel (checked), while the test does not
spend minutes reinstalling torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

from auditkit.raters import InputSpec, save_torchscript

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with auditkit installed from a freshly built wheel; returns its python."""
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist), str(ROOT)], check=True, capture_output=True, text=True)
    wheel = next(dist.glob("auditkit-*.whl"))
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    # Only auditkit and its metadata reach site-packages: no top-level models/perturbations/dashboard.
    assert {t for t in tops if not t.endswith(".dist-info")} == {"auditkit"}, tops
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, text=True)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    """A user's ML project: packages named like ours, a TorchScript rater, a few clips."""
    folder = tmp_path_factory.mktemp("project")
    for name in ("models", "perturbations", "dashboard"):
        (folder / name).mkdir()
        owner = "the user's own " + name
        (folder / name / "__init__.py").write_text(f"WHOSE = {owner!r}\n")
    (folder / "models" / "checkpoint.py").write_text("raise ImportError('the user models.checkpoint was imported')\n")
    (folder / "perturbations" / "base.py").write_text("raise ImportError('the user perturbations.base was imported')\n")
    clips = folder / "clips"
    clips.mkdir()
    for path in sorted(sample_dir.glob("*.mp4"))[:4]:
        (clips / path.name).symlink_to(path)
    import torch
    from torch import nn

    class Brightness(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            m = x.mean(dim=(1, 2, 3, 4))
            return torch.stack([m, 1.0 - m, 0.5 * m, m, 0.5 * (1.0 - m)], dim=1)

    save_torchscript(Brightness(), folder / "rater.pt", input=InputSpec(size=(64, 64), frames=4))
    return folder


def _run(python: Path, cwd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_wheel_is_what_runs(fresh, project):
    out = _run(fresh, project, "-c", "import auditkit, auditkit.models, auditkit.perturbations, models; "
                                     "print(auditkit.__file__); print(auditkit.models.__file__); "
                                     "print(auditkit.perturbations.__file__); print(models.WHOSE)")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    venv = fresh.parents[1]
    assert all(Path(p).is_relative_to(venv) for p in lines[:3]), lines
    assert lines[3] == "the user's own models"


def test_cli_run_with_a_torchscript_rater(fresh, project):
    out = _run(fresh, project, "-m", "auditkit", "run", "--rater", "rater.pt", "--clips", "clips",
               "--perturb", "lighting:dim,background:plain", "--out", "runs/cli", "--quiet")
    assert out.returncode == 1, out.stderr  # the brightness rater shifts under dim light
    assert (project / "runs" / "cli" / "audit.json").is_file()
    assert "lighting:dim" in out.stdout and "internal error" not in out.stderr


def test_run_audit_from_a_script(fresh, project):
    (project / "audit_script.py").write_text(textwrap.dedent("""
        from auditkit import run_audit

        result = run_audit("rater.pt", "clips", ["lighting:bright"], margin=0.05)
        print(result.test("lighting:bright", "openness").verdict)
    """))
    out = _run(fresh, project, "audit_script.py")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "shift"


def test_the_pytest_plugin(fresh, project):
    (project / "auditkit.toml").write_text('rater = "rater.pt"\nclips = "clips"\n'
                                           'perturbations = ["lighting:dim"]\n')
    (project / "test_fairness.py").write_text(textwrap.dedent("""
        from auditkit import assert_no_shift

        def test_dim_light_shifts(audit_result):
            assert audit_result.test("lighting:dim", "openness").verdict == "shift"
    """))
    out = _run(fresh, project, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_fairness.py")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout and "auditkit" in out.stdout
