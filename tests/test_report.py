"""Renderers of a saved audit and the `auditkit report` command."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from auditkit import run_audit
from auditkit.core.report import render_html, render_junit, render_markdown


@pytest.fixture(scope="module")
def saved(tmp_path_factory, sample_dir, brightness_rater_path):
    folder = tmp_path_factory.mktemp("audit")
    result = run_audit(str(brightness_rater_path), sample_dir, ["lighting:dim", "lighting:warm"], margin=0.2,
                       unit="clip", retest=False)
    (folder / "audit.json").write_text(json.dumps(result.to_dict(), indent=2))
    return folder, result


def report(*args):
    return subprocess.run([sys.executable, "-m", "auditkit", "report", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_markdown_and_junit_carry_every_test(saved):
    _, result = saved
    md = render_markdown(result)
    assert md.count("\n| `lighting:") == len(result.tests)
    root = ET.fromstring(render_junit(result))
    cases = root.findall(".//testcase")
    assert len(cases) == len(result.tests)
    shifted = {(t.perturbation, t.trait) for t in result.tests if t.verdict == "shift"}
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    assert failed == shifted and shifted
    verdicts = {c.find("properties/property[@name='verdict']").get("value") for c in cases}
    assert verdicts <= {"shift", "unstable", "invariant", "inconclusive"}


def test_rendering_twice_gives_identical_bytes(saved, tmp_path):
    folder, _ = saved
    for fmt in ("html", "md", "junit"):
        a, b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
        assert report(folder / "audit.json", "--format", fmt, "--out", a).returncode == 0
        assert report(folder / "audit.json", "--format", fmt, "--out", b).returncode == 0
        assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 100


def test_previews_come_only_from_the_audit_folder(saved, tmp_path):
    folder, result = saved
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"\x89PNG not really")
    (folder / "previews").mkdir(exist_ok=True)
    (folder / "previews" / "lighting_dim.png").symlink_to(outside)
    proc = report(folder / "audit.json")
    assert proc.returncode == 0 and "data:image/png" not in proc.stdout
    assert render_html(result) in (proc.stdout, proc.stdout.rstrip("\n") + "\n")


@pytest.mark.parametrize("mutate,fragment", [
    (lambda d: d.update(schema_version=4), "field 'schema_version' is 4, newer than"),
    (lambda d: d.pop("traits"), "field 'traits' is missing"),
    (lambda d: d["tests"][0].pop("margin"), "tests[] lacks field 'margin'"),
])
def test_malformed_or_newer_audit_json_is_a_one_line_error(saved, tmp_path, mutate, fragment):
    data = json.loads((saved[0] / "audit.json").read_text())
    mutate(data)
    path = tmp_path / "audit.json"
    path.write_text(json.dumps(data))
    proc = report(path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and fragment in lines[0]


def test_unreadable_audit_files(tmp_path):
    assert "no such audit file" in report(tmp_path / "none.json").stderr
    (tmp_path / "x.json").write_text("{not json")
    proc = report(tmp_path / "x.json")
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr


def test_html_has_the_verdict_grid_condition_plots_data_and_limitations(saved):
    _, result = saved
    page = render_html(result)
    assert "<h2>Verdicts</h2>" in page and page.count("<th class='l'>lighting:") == 2
    assert page.count("<svg") == 2  # one CI plot per condition, against the margin band
    assert "N = 12 clips, 0 pair(s) skipped" in page
    assert "<h2>Method and limitations</h2>" in page and "12 scored" in page
    assert "Unit of analysis: clips, by choice (2 people in 12 clips)" in page
    assert "exact binomial test" in page and "ISO 16269-6" in page
    # Self-contained: nothing in it would load from anywhere.
    stripped = page.replace("http://www.w3.org/2000/svg", "").replace("http-equiv", "")
    assert "http" not in stripped and "<script" not in stripped and "src='/" not in stripped


def test_html_draws_each_clips_shift_from_the_store(sample_dir, brightness_rater_path, tmp_path):
    from auditkit.core.store import Store

    db = tmp_path / "results.sqlite"
    result = run_audit(str(brightness_rater_path), sample_dir, ["lighting:dim", "lighting:bright"],
                       contrasts=[("lighting:bright", "lighting:dim")], store=db, unit="clip", retest=False)
    with Store(db) as store:
        shifts = store.shifts(result)
    assert all(len(v) == 12 for v in shifts.values()) and len(shifts) == 15
    contrast = shifts[("lighting:bright vs lighting:dim", "openness")]
    assert min(contrast) > 0  # brighter minus dimmer: every clip's openness goes up
    page = render_html(result, shifts=shifts)
    assert page.count("r='1.6'") == 15 * 12
    assert render_html(result, shifts=shifts) == page
