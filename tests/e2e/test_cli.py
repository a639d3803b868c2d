"""The command line as a user meets it: real processes, real files, exit codes, one-line errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

AUDITKIT = Path(sys.executable).with_name("auditkit")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [str(AUDITKIT)] if AUDITKIT.exists() else [sys.executable, "-m", "auditkit"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=cwd, timeout=600)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("auditkit: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_run_writes_everything_and_exits_1_on_shift(tmp_path, sample_dir, brightness_rater_path):
    out = tmp_path / "run"
    proc = run("run", "--rater", str(brightness_rater_path), "--clips", str(sample_dir),
               "--perturb", "lighting:dim,lighting:bright", "--out", str(out), "--quiet", "--unit", "clip",
               "--no-retest")
    assert proc.returncode == 1, proc.stderr
    assert "SHIFT" in proc.stdout and "10 tests on 12 clips: 10 shift" in proc.stdout
    data = json.loads((out / "audit.json").read_text())
    assert data["schema_version"] == 3 and len(data["tests"]) == 10 and data["skipped"] == []
    assert {t["verdict"] for t in data["tests"]} == {"shift"}
    assert (out / "results.sqlite").stat().st_size > 0
    assert sorted(p.name for p in (out / "previews").iterdir()) == ["lighting_bright.png", "lighting_dim.png"]
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "lighting:bright" in html and "src='http" not in html


def test_run_exits_0_when_nothing_shifts_and_progress_goes_to_stderr(tmp_path, sample_dir,
                                                                     constant_rater_path):
    proc = run("run", "--rater", str(constant_rater_path), "--clips", str(sample_dir),
               "--perturb", "lighting", "--out", str(tmp_path / "c"), "--unit", "clip")
    assert proc.returncode == 0, proc.stderr
    assert "35 tests on 12 clips: 0 shift, 0 unstable, 35 invariant" in proc.stdout  # 6 edits and the retest
    assert "auditing" in proc.stderr and "12/12" in proc.stderr  # the progress bar


def test_config_file_supplies_arguments(tmp_path, sample_dir, constant_rater_path):
    (tmp_path / "auditkit.toml").write_text(textwrap.dedent(f"""
        rater = "{constant_rater_path}"
        clips = "{sample_dir}"
        perturbations = ["lighting:warm"]
        out = "results"
        margin = 0.02
        retest = false
    """))
    proc = run("run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "results" / "audit.json").read_text())
    assert {t["margin"] for t in data["tests"]} == {0.02}
    assert {t["perturbation"] for t in data["tests"]} == {"lighting:warm"}


def test_corrupt_video_is_listed_in_skipped(tmp_path, sample_dir, constant_rater_path):
    clips = tmp_path / "clips"
    shutil.copytree(sample_dir, clips)
    (clips / "broken.mp4").write_bytes(b"not a video" * 100)
    (clips / "metadata.csv").unlink()
    proc = run("run", "--rater", str(constant_rater_path), "--clips", str(clips),
               "--perturb", "lighting:dim", "--out", str(tmp_path / "o"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "o" / "audit.json").read_text())
    reason = "cannot be opened as a video (corrupt file or unsupported codec)"
    assert data["skipped"] == [{"clip": "broken", "perturbation": edit, "reason": reason}
                               for edit in ("control:retest", "lighting:dim")]
    assert "broken / lighting:dim: cannot be opened" in proc.stdout
    assert data["unit"] == "clip" and data["n_subjects"] is None
    assert "Unit of analysis: clips (the clips carry no subject_id column)" in proc.stdout


def _factory(tmp_path: Path, body: str) -> str:
    path = tmp_path / "bad_rater.py"
    path.write_text(textwrap.dedent("""
        import torch
        from auditkit.raters import InputSpec, TorchRater

        class Bad(torch.nn.Module):
            def forward(self, x):
    """) + textwrap.indent(textwrap.dedent(body), " " * 8) + textwrap.dedent("""
        def make():
            return TorchRater(Bad(), input=InputSpec(size=32, frames=2), name="bad-rater")
    """))
    return f"{path}:make"


@pytest.mark.parametrize("body,fragments", [
    ("return torch.zeros(x.shape[0], 3)\n", ["rater bad-rater returned shape", "expected", "clip(s)"]),
    ("return torch.full((x.shape[0], 5), float('nan'))\n", ["rater bad-rater returned NaN or inf for clip(s) "]),
])
def test_misbehaving_rater_is_a_one_line_error_and_keeps_nothing_lost(tmp_path, sample_dir, body,
                                                                        fragments):
    proc = run("run", "--rater", _factory(tmp_path, body), "--clips", str(sample_dir),
               "--perturb", "lighting:dim", "--out", str(tmp_path / "o"), "--quiet")
    assert_one_line_error(proc, *fragments)
    assert (tmp_path / "o" / "results.sqlite").exists()


def test_usage_errors_are_one_line(tmp_path, sample_dir, constant_rater_path):
    rater = str(constant_rater_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    folder_pt = tmp_path / "model.pt"
    folder_pt.mkdir()
    cases = [
        (["--rater", rater, "--clips", str(tmp_path / "missing"), "--perturb", "lighting:dim"],
         [str(tmp_path / "missing"), "clip folder does not exist"]),
        (["--rater", rater, "--clips", str(empty), "--perturb", "lighting:dim"],
         [str(empty), "no video files found"]),
        (["--rater", str(tmp_path / "nope.onnx"), "--clips", str(sample_dir)],
         ["nope.onnx", "file does not exist"]),
        (["--rater", "my.module.without.colon", "--clips", str(sample_dir)], ["does not resolve"]),
        (["--rater", rater, "--clips", str(sample_dir), "--perturb", "lighting:dimm"],
         ["--perturb", "did you mean lighting:dim"]),
        (["--rater", rater, "--clips", str(sample_dir), "--perturb", "lighting:dim", "--config",
          str(tmp_path / "none.toml")], ["none.toml", "does not exist"]),
        (["--rater", rater, "--clips", str(sample_dir), "--margin", "-1"], ["--margin must be a positive"]),
        (["--rater", str(folder_pt), "--clips", str(sample_dir)], ["is a folder, not a model file"]),
    ]
    for args, fragments in cases:
        assert_one_line_error(run("run", *args, "--out", str(tmp_path / "o"), "--quiet"), *fragments)


def test_the_unit_of_analysis_is_the_person_and_the_output_says_so(tmp_path, sample_dir, brightness_rater_path):
    # The sample clips name 2 people: with people as the unit nothing can be decided yet.
    proc = run("run", "--rater", str(brightness_rater_path), "--clips", str(sample_dir), "--perturb",
               "lighting:dim", "--out", str(tmp_path / "people"), "--quiet", "--no-retest")
    assert proc.returncode == 0, proc.stderr  # inconclusive is not a failure
    assert "Unit of analysis: people (subject_id): 2 people in 12 clips" in proc.stdout
    assert "would need about 3 people to decide" in proc.stdout
    data = json.loads((tmp_path / "people" / "audit.json").read_text())
    people = {line.split(",")[1] for line in (sample_dir / "metadata.csv").read_text().splitlines()[1:]}
    assert data["unit"] == "person" and data["n_subjects"] == len(people) == 2
    assert {(t["n"], t["n_clips"], t["n_subjects"], t["verdict"]) for t in data["tests"]} == {
        (2, 12, 2, "inconclusive")}
    # Without a --clips folder the built-in sample set is audited clip by clip, and says why.
    proc = run("run", "--rater", str(brightness_rater_path), "--perturb", "lighting:dim",
               "--out", str(tmp_path / "samples"), "--quiet", "--no-retest")
    assert proc.returncode == 1, proc.stderr
    assert "the built-in sample clips hold 2 people in 12 clips" in proc.stdout
    data = json.loads((tmp_path / "samples" / "audit.json").read_text())
    assert data["unit"] == "clip" and data["n_subjects"] == 2 and {t["n"] for t in data["tests"]} == {12}


def test_unstable_fails_the_run_unless_fail_on_says_otherwise(tmp_path, sample_dir, jitter_rater_path):
    args = ["run", "--rater", str(jitter_rater_path), "--clips", str(sample_dir), "--perturb", "lighting:bright",
            "--quiet", "--unit", "clip", "--no-retest"]
    proc = run(*args, "--out", str(tmp_path / "a"))
    assert proc.returncode == 1, proc.stderr
    assert "UNSTABLE" in proc.stdout and "0 shift, 5 unstable" in proc.stdout
    assert run(*args, "--out", str(tmp_path / "b"), "--fail-on", "shift").returncode == 0
    assert run(*args, "--out", str(tmp_path / "c"), "--fail-on", "shift,unstable,inconclusive").returncode == 1
    junit = run("report", str(tmp_path / "a" / "audit.json"), "--format", "junit").stdout
    assert junit.count('type="unstable"') == 5


def test_new_settings_are_checked_like_the_others(tmp_path, sample_dir, constant_rater_path):
    base = ["run", "--rater", str(constant_rater_path), "--perturb", "lighting:dim", "--out", str(tmp_path / "o"),
            "--quiet"]
    clips = tmp_path / "clips"
    shutil.copytree(sample_dir, clips)
    (clips / "metadata.csv").unlink()
    assert_one_line_error(run(*base, "--clips", str(clips), "--unit", "person"),
                          "--unit person: the clips carry no 'subject_id' column")
    assert_one_line_error(run(*base, "--tolerance", "0"), "--tolerance must be a share between 0 and 0.5, got 0.0")
    assert_one_line_error(run(*base, "--fail-on", "never"), "--fail-on must be a non-empty list of names from")
    (tmp_path / "auditkit.toml").write_text("retest = 'yes'\n")
    assert_one_line_error(run(*base, cwd=tmp_path), "auditkit.toml: retest must be true or false, got 'yes'")


def test_missing_rater_argument(tmp_path):
    assert_one_line_error(run("run", "--out", str(tmp_path / "o")), "--rater is required")


def test_demo_runs_the_whole_loop(tmp_path):
    # One epoch: the loop's mechanics here; that the recipe learns the planted effect is
    # tests/test_demo.py's job, and the full demo's figures are in the README.
    proc = run("demo", "--out", str(tmp_path / "demo"), "--epochs", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "planted-bias control rater (not a personality model)" in proc.stdout
    assert "edit" in proc.stdout and "planted" in proc.stdout and "background:bookshelf" in proc.stdout
    assert "held-out mean accuracy (1 - MAE) against the planted-free target" in proc.stdout
    for stage in ("before", "after"):
        folder = tmp_path / "demo" / stage
        assert (folder / "rater.pt").is_file() and (folder / "report.html").is_file()
        data = json.loads((folder / "audit.json").read_text())
        assert "background:bookshelf vs background:plain" in {t["perturbation"] for t in data["tests"]}
    assert "Compared with before retraining" in (tmp_path / "demo" / "after" / "report.html").read_text()
    assert json.loads((tmp_path / "demo" / "summary.json").read_text())["cells"]
    # The README's table has the rows this prints: every planted cell, with its planted shift
    # (which rows fail besides depends on training, here one epoch), and the total time.
    from test_readme import planted_rows, readme_demo_output

    assert planted_rows(proc.stdout) == planted_rows(readme_demo_output())
    assert re.search(r"^total time: \d+ s$", proc.stdout, re.M)


def test_perturb_writes_png_and_mp4_previews(tmp_path, sample_dir):
    import cv2

    clip = sorted(sample_dir.glob("*.mp4"))[0]
    png = tmp_path / "preview.png"
    proc = run("perturb", "--clip", str(clip), "--perturb", "glasses:thick,background:bookshelf",
               "--out", str(png), "--frames", "4")
    assert proc.returncode == 0, proc.stderr
    image = cv2.imread(str(png))
    original = cv2.VideoCapture(str(clip))
    ok, first = original.read()
    assert image.shape[0] == 2 * first.shape[0] + 4 and image.shape[1] == 2 * first.shape[1] + 4
    mp4 = tmp_path / "preview.mp4"
    proc = run("perturb", "--clip", str(clip), "--perturb", "lighting:dim", "--out", str(mp4))
    assert proc.returncode == 0, proc.stderr
    from auditkit.media.audio import read_audio
    from auditkit.media.clips import read_video

    # Every frame at the clip's own rate, original | edit, with the clip's sound.
    video = read_video(mp4, num_frames=6, max_side=2000)
    assert video.source_frames == 30 and video.fps == 15 and video.size[1] == 2 * first.shape[1] + 4
    heard, _ = read_audio(mp4)
    said, _ = read_audio(clip)
    assert heard.shape == said.shape and np.array_equal(heard, said)
    assert_one_line_error(run("perturb", "--clip", str(clip), "--perturb", "control:retest", "--out", str(mp4)),
                          "control:retest", "preview it as a .png")


def test_perturb_errors(tmp_path, sample_dir):
    clip = sorted(sample_dir.glob("*.mp4"))[0]
    assert_one_line_error(run("perturb", "--clip", str(tmp_path / "x.mp4"), "--perturb", "lighting:dim",
                              "--out", str(tmp_path / "p.png")), "x.mp4", "no such file")
    assert_one_line_error(run("perturb", "--clip", str(clip), "--perturb", "lighting:dim",
                              "--out", str(tmp_path / "p.gif")), "give a .png")
    assert_one_line_error(run("perturb", "--clip", str(clip), "--perturb", "background:user",
                              "--out", str(tmp_path / "p.png")), "needs a folder of images")


def test_a_folder_where_no_clip_can_be_read_is_an_error(tmp_path, constant_rater_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "a.mp4").write_bytes(b"junk" * 100)
    (clips / "b.mp4").write_bytes(b"")
    proc = run("run", "--rater", str(constant_rater_path), "--clips", str(clips), "--perturb",
               "lighting:dim", "--out", str(tmp_path / "o"), "--quiet")
    assert_one_line_error(proc, "no clip could be scored")
