"""Preview sheets: ``auditkit perturb --sheet`` and ``auditkit.app.sheets`` (issue 15)."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np

from auditkit import perturbations
from auditkit.app.sheets import family_sheets, layout


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditkit", *args], capture_output=True, text=True, timeout=600)


def one_line_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr and fragment in lines[0], proc.stderr


def test_a_sheet_per_family_with_a_row_per_clip(sample_dir, tmp_path):
    clips = [str(p) for p in sorted(sample_dir.glob("*.mp4"))[:2]]
    out = tmp_path / "sheets"
    proc = cli("perturb", "--clip", clips[0], "--clip", clips[1], "--perturb", "glasses:thin,lighting",
               "--sheet", "--out", str(out), "--frames", "3")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["glasses.jpg", "lighting.jpg"]
    light = cv2.imread(str(out / "lighting.jpg"))
    glasses = cv2.imread(str(out / "glasses.jpg"))
    # Lighting has six edits, glasses one here: its sheet is the wider (or the taller, wrapped).
    assert light.shape[0] * light.shape[1] > 2 * glasses.shape[0] * glasses.shape[1]
    assert "wrote" in proc.stdout and "2 clip(s)" in proc.stdout


def test_sheet_arguments_are_checked(sample_dir, tmp_path):
    clip = str(sorted(sample_dir.glob("*.mp4"))[0])
    one_line_error(cli("perturb", "--clip", clip, "--perturb", "glasses", "--sheet", "--out", str(tmp_path / "a.jpg")),
                   "with --sheet, give a folder")
    one_line_error(cli("perturb", "--clip", clip, "--clip", clip, "--perturb", "glasses", "--out",
                       str(tmp_path / "a.png")), "use --sheet for several")
    one_line_error(cli("perturb", "--clip", clip, "--clip", clip, "--perturb", "glasses", "--sheet", "--out",
                       str(tmp_path / "s")), "the same file is given twice")
    (tmp_path / "file").write_text("x")
    one_line_error(cli("perturb", "--clip", clip, "--perturb", "glasses", "--sheet", "--out", str(tmp_path / "file")),
                   "is not a folder")
    one_line_error(cli("perturb", "--clip", str(tmp_path / "missing.mp4"), "--perturb", "glasses", "--sheet",
                       "--out", str(tmp_path / "s")), "missing.mp4")


def test_an_edit_that_does_not_apply_shows_why(annotated_samples, faceless, annotator):
    from auditkit.media.clips import Clip

    frames, _ = faceless
    clip = Clip.from_frames("nobody", frames)
    sheets = family_sheets([clip], [perturbations.get("glasses:thin")], annotator=annotator, height=60)
    sheet = sheets["glasses"]
    assert sheet.ndim == 3 and sheet.shape[2] == 3
    # The edit's tile is the grey "reason" card, not a frame: its middle is flat grey.
    tile = sheet[30:70, -40:]
    assert float(np.abs(tile.astype(int) - 225).mean()) < 40


def test_narrow_rows_are_placed_side_by_side():
    rows = [[np.zeros((50, 80, 3), np.uint8)] * 2 for _ in range(6)]
    sheet = layout(rows, max_width=700)
    assert sheet.shape[1] <= 700 and sheet.shape[0] < 6 * 50
