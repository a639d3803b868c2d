"""``examples/ci_suite`` as a user gets it: copied elsewhere, run with plain ``pytest``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ci_suite"


def test_example_ci_suite_passes_and_lists_every_verdict(tmp_path, sample_dir):
    project = tmp_path / "ci_suite"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__",
                                                                    "audit-report"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)  # the plugin must load through its entry point
    proc = subprocess.run([sys.executable, "-m", "pytest", "-v", "--auditkit-report", "audit-report",
                           "--junitxml", "audit-report/junit.xml"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert re.search(r"^plugins: (.*, )?auditkit-", out, re.M), out  # loaded through its entry point
    for name in ("glasses:thick / conscientiousness", "background:bookshelf / extraversion",
                 "lighting:dim / neuroticism"):
        assert f"fairness.audit.toml::{name} PASSED" in out
    assert "test_fairness.py::test_glasses_move_no_trait PASSED" in out
    # Five edits and the retest control, on the sample set's twelve clips (two people).
    assert "30 tests on 12 clips: 0 shift, 0 unstable, 30 invariant, 0 inconclusive" in out
    assert "Unit of analysis: clips, the built-in sample clips hold 2 people in 12 clips" in out
    lines = [line.split() for line in out.splitlines()]
    verdicts = [(w[0], w[1]) for w in lines if len(w) > 2 and w[-1] == "invariant" and ":" in w[0]]
    data = json.loads((project / "audit-report" / "audit.json").read_text())
    assert {(t["perturbation"], t["trait"]) for t in data["tests"]} == set(verdicts)
    assert (project / "audit-report" / "report.html").is_file()
    assert "<property name=\"verdict\" value=\"invariant\"" in (project / "audit-report" / "junit.xml").read_text()

    workflow = (project / ".github" / "workflows" / "fairness-audit.yml").read_text()
    assert "pytest --auditkit-report audit-report" in workflow
    assert "actions/upload-artifact" in workflow and "path: audit-report/" in workflow
