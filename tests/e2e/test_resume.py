"""``kill -9`` an audit at random points, start it again with the same output folder, and get
exactly the audit an uninterrupted run gives: nothing scored twice, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

EDITS = "lighting:dim,lighting:bright,glasses:thick,background:plain"

# A rater that appends the number of rows of every call to $COUNT_LOG before it returns, so the
# test can count how many inputs each process really sent to the rater.
COUNTING = '''
import os
import torch
from auditkit.raters import InputSpec, TorchRater


class Brightness(torch.nn.Module):
    def forward(self, x):
        m = x.mean(dim=(1, 2, 3, 4))
        return torch.stack([m, 1 - m, 0.5 * m, m * m, 1 - m * m], dim=1)


class Counting(TorchRater):
    def __call__(self, x):
        out = super().__call__(x)
        with open(os.environ["COUNT_LOG"], "a") as fh:
            fh.write(f"{len(x)}\\n")
        return out


def make():
    return Counting(Brightness(), input=InputSpec(size=(64, 64), frames=4), name="counting",
                    identity="counting-brightness-v1")
'''


def _audit(path: Path) -> dict:
    data = json.loads((path / "audit.json").read_text())
    data.pop("created")  # the only field that is the time of the run, not its result
    return data


def _committed(out: Path) -> dict[tuple[str, str, str], float]:
    db = out / "results.sqlite"
    if not db.exists():
        return {}
    with sqlite3.connect(db) as con:
        return {(c, k, t): v for c, k, t, v in con.execute("SELECT clip_id, condition, trait, value FROM scores")}


def _rows_logged(log: Path) -> int:
    return sum(int(n) for n in log.read_text().split()) if log.exists() else 0


def test_sigkill_at_random_points_then_resume_gives_the_uninterrupted_audit(sample_dir, tmp_path):
    factory = tmp_path / "counting.py"
    factory.write_text(COUNTING)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "auditkit.cli", "run", "--rater", f"{factory}:make", "--clips",
                str(sample_dir), "--perturb", EDITS, "--out", str(out), "--batch-size", "1", "--quiet"]

    reference = tmp_path / "reference"
    env["COUNT_LOG"] = str(tmp_path / "reference.log")
    start = time.monotonic()
    done = subprocess.run(command(reference), env=env, capture_output=True, text=True, timeout=600)
    took = time.monotonic() - start
    assert done.returncode in (0, 1), done.stderr
    pairs = 12 * (1 + len(EDITS.split(",")) + 1)  # the original, each edit and the retest control
    assert _rows_logged(tmp_path / "reference.log") == pairs
    expected = _audit(reference)

    out = tmp_path / "killed"
    rng = np.random.default_rng(20261125)
    kills = 0
    for attempt in range(5):
        before = _committed(out)
        log = tmp_path / f"run{attempt}.log"
        env["COUNT_LOG"] = str(log)
        proc = subprocess.Popen(command(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=float(rng.uniform(0.2, 1.0)) * took)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        after = _committed(out)
        # What was committed stays, unchanged; nothing scored before is scored again.
        assert {k: after[k] for k in before} == before
        scored_rows = _rows_logged(log)
        new_pairs = len(after) // 5 - len(before) // 5
        assert scored_rows >= new_pairs  # every committed pair went through the rater once here
        assert scored_rows <= pairs - len(before) // 5  # and nothing already in the store did
    assert kills >= 3, "the random delays should interrupt most attempts"

    before = _committed(out)
    env["COUNT_LOG"] = str(tmp_path / "final.log")
    final = subprocess.run(command(out), env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == done.returncode, final.stderr
    # The last run scores exactly what was missing: no pair twice, none lost.
    assert _rows_logged(tmp_path / "final.log") == pairs - len(before) // 5
    assert len(_committed(out)) == pairs * 5
    assert _committed(out) == _committed(reference)
    assert _audit(out) == expected
