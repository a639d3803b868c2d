"""``examples/retrain`` as a user gets it: the script copied into their own folder and run there."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from auditkit import load_rater, run_audit
from auditkit.raters import OCEAN

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "retrain" / "retrain_with_augmentation.py"


@pytest.fixture(scope="module")
def script():
    """The script as a module, for its argument checks and its label reader (no training)."""
    spec = importlib.util.spec_from_file_location("retrain_with_augmentation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_retraining_script_writes_a_rater_the_audit_accepts(tmp_path, sample_dir):
    project = tmp_path / "my_project"
    project.mkdir()
    shutil.copy(SCRIPT, project)
    proc = subprocess.run([sys.executable, SCRIPT.name, "--epochs", "1", "--size", "32", "--frames", "2",
                           "--batch-size", "6", "--out", "models/rater.pt"],
                          cwd=project, capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert f"12 clips from {sample_dir}" in out
    epoch = next(line for line in out.splitlines() if line.startswith("epoch 1/1: "))
    # Every edited copy got a new background from its person mask; the face and lighting edits
    # (half the clips, drawn per clip) reached some and, the samples all having a face, not none.
    assert "12/12 new background" in epoch
    edited = int(epoch.split("new background, ")[1].split("/")[0])
    assert 0 < edited <= 12
    assert "auditkit run --rater models/rater.pt" in out

    rater = load_rater(str(project / "models" / "rater.pt"))
    assert rater.trait_names == OCEAN
    assert rater.input.size == (32, 32) and rater.input.frames == 2
    scores = rater(torch.rand(3, 2, 3, 32, 32))
    assert scores.shape == (3, 5) and bool(((scores >= 0) & (scores <= 1)).all())
    result = run_audit(rater, sample_dir, ["background:plain"], unit="clip", retest=False)
    assert not result.skipped
    assert {(t.perturbation, t.trait) for t in result.tests} == {("background:plain", t) for t in OCEAN}
    assert all(t.n == 12 for t in result.tests)


def test_labels_csv_names_clips_by_id_or_file_and_leaves_unlabelled_ones_out(script, sample_dir, tmp_path):
    from auditkit import discover

    sources = discover(sample_dir)
    first, second = sources[0], sources[1]
    csv = tmp_path / "labels.csv"
    csv.write_text(f"clip_id,calm,warmth\n{first.id},0.2,0.9\n{second.path.name},1,0\n", encoding="utf-8")
    traits, labels = script.read_labels(csv, sources, sample_dir)
    assert traits == ("calm", "warmth")
    assert labels == {first.id: [0.2, 0.9], second.id: [1.0, 0.0]}


@pytest.mark.parametrize("rows, message", [
    ("clip_id,openness\nnobody,0.5\n", "labels.csv, line 2: clip_id 'nobody' matches no video"),
    ("clip_id,openness\n{clip},1.5\n", "labels.csv, line 2: scores must be in [0, 1], got [1.5]"),
    ("clip_id,openness\n{clip},high\n", "labels.csv, line 2: every trait needs a number"),
    ("clip_id,openness\n{clip},0.1\n{clip},0.2\n", "labels.csv, line 3: clip_id '{clip}' appears twice"),
    ("name,openness\n{clip},0.1\n", "labels.csv: needs a clip_id column (found: name, openness)"),
    ("clip_id\n{clip}\n", "labels.csv: needs one named column per trait after clip_id"),
])
def test_bad_labels_file_is_one_line_naming_file_and_line(script, sample_dir, tmp_path, capsys, rows, message):
    from auditkit import discover

    clip = discover(sample_dir)[0].id
    (tmp_path / "labels.csv").write_text(rows.format(clip=clip), encoding="utf-8")
    code = script.main(["--clips", str(sample_dir), "--labels", str(tmp_path / "labels.csv"),
                        "--out", str(tmp_path / "r.pt")])
    err = capsys.readouterr().err
    assert code == 2 and message.format(clip=clip) in err and err.count("\n") == 1, err
    assert not (tmp_path / "r.pt").exists()


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["--size", "8"], "--size must be >= 16, got 8"),
    (["--lr", "nan"], "--lr must be a positive number, got nan"),
    (["--consistency", "-1"], "--consistency must be a number >= 0, got -1.0"),
    (["--clips", "somewhere"], "--clips and --labels go together"),
    (["--clips", ".", "--labels", "missing.csv"], "--labels missing.csv: no such file"),
    (["--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
])
def test_bad_arguments_stop_before_any_work(script, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        script.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_edit_empty_scenes_and_missing_clip_folder_are_one_line_errors(script, sample_dir, capsys, tmp_path):
    assert script.main(["--edits", "glasses:monocle", "--out", str(tmp_path / "r.pt")]) == 2
    err = capsys.readouterr().err
    assert "--edits glasses:monocle:" in err and "glasses:thick" in err and err.count("\n") == 1, err
    (tmp_path / "rooms").mkdir()
    assert script.main(["--scenes", str(tmp_path / "rooms"), "--out", str(tmp_path / "r.pt")]) == 2
    err = capsys.readouterr().err
    assert f"--scenes {tmp_path / 'rooms'}: " in err and "holds no images" in err and err.count("\n") == 1, err
    labels = tmp_path / "labels.csv"
    labels.write_text("clip_id,openness\n", encoding="utf-8")
    assert script.main(["--clips", str(tmp_path / "nowhere"), "--labels", str(labels)]) == 2
    err = capsys.readouterr().err
    assert "nowhere: clip folder does not exist" in err and err.count("\n") == 1, err
