"""The audit plan (one Arm per test), the tests' identity in audit.json (schema 3) and the older
schemas, and two bugs that killed whole audits."""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np
import pytest
import torch

from auditkit import run_audit
from auditkit.cli import main
from auditkit.contract.arms import ORIGINAL, Arm
from auditkit.core.engine import rejudge
from auditkit.core.plan import AuditPlan, Units
from auditkit.core.report import render_html, render_junit, render_markdown, render_text
from auditkit.core.result import AuditResult
from auditkit.core.settings import AuditConfig
from auditkit.core.store import Store
from auditkit.media.clips import Clip, discover
from auditkit.perturbations import Perturbation, arm_of, contrast_arm, get

PLAIN = {"unit": "clip", "retest": False}


class Breaks(Perturbation):
    """An edit with a bug: on some clips it raises an exception that carries no message at all."""

    name = "lighting:broken"
    description = "fails on every clip with an exception that says nothing"

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def transform(self, frames: torch.Tensor, params: Mapping[str, Any], annotations: Any) -> torch.Tensor:
        raise self.exc


def _clips(n: int = 4) -> list[Clip]:
    rng = np.random.default_rng(1)
    return [Clip.from_frames(f"c{i}", rng.integers(0, 255, (4, 40, 50, 3), dtype=np.uint8)) for i in range(n)]


@pytest.mark.parametrize("exc", [ValueError(), AssertionError(), RuntimeError("\n\n")])
def test_an_edit_raising_a_bare_exception_skips_its_pairs_and_the_audit_stands(brightness_rater_path, exc):
    clips = _clips()
    result = run_audit(str(brightness_rater_path), clips, [get("lighting:dim"), Breaks(exc)], **PLAIN)
    kind = type(exc).__name__
    assert [(s.clip, s.perturbation) for s in result.skipped] == [(c.id, "lighting:broken") for c in clips]
    assert all(s.reason == f"lighting:broken failed on this clip: {kind}" for s in result.skipped)
    dim = result.select("lighting:dim")  # the rest of the audit stands
    assert all(t.n == len(clips) for t in dim) and result.test("lighting:dim", "openness").mean_shift < 0
    assert all(t.n == 0 for t in result.select("lighting:broken"))


def test_perturb_previews_the_retest_control_on_one_clip(sample_dir, tmp_path, capsys):
    clip = sorted(discover(sample_dir), key=lambda s: s.id)[0].path
    out = tmp_path / "p.png"
    assert main(["perturb", "--clip", str(clip), "--perturb", "control:retest", "--out", str(out)]) == 0
    assert out.is_file() and out.stat().st_size > 0
    assert "original | control:retest" in capsys.readouterr().out


def test_the_plan_has_one_arm_per_test_without_a_rater():
    settings = AuditConfig(perturbations=("glasses:thick", "background"), contrasts=(
        ("background:bookshelf", "background:plain"),), retest=True)
    plan = AuditPlan.build(settings)  # what the pytest plugin knows at collection: no rater, no clips
    names = plan.names
    assert names[0] == "glasses:thick" and "control:retest" in names and names[-1] == (
        "background:bookshelf vs background:plain")
    assert plan.arms[0] == Arm("glasses:thick", "glasses:thick", ORIGINAL, "glasses", "fairness")
    assert plan.arms[-1] == Arm("background:bookshelf vs background:plain", "background:bookshelf",
                                "background:plain", "contrast", "fairness")
    assert all(a.family == e.family for a, e in zip(plan.arms, plan.edits))
    assert plan.conditions == [ORIGINAL, *[e.name for e in plan.edits]] and not plan.margins
    bound = plan.for_traits(("openness", "grit"))
    assert bound.margins == {"openness": 0.05, "grit": 0.05}
    assert bound.margin(bound.arms[0], "grit") == 0.05


def test_a_region_contrast_is_an_attribution_test_and_the_registry_agrees_with_instances():
    assert contrast_arm("region:face", "region:background").role == "attribution"
    assert contrast_arm("region:face", "lighting:dim").role == "fairness"
    assert arm_of("region:face") == get("region:face").arm
    assert arm_of("a:b vs c:d", "attribution") == Arm("a:b vs c:d", "a:b", "c:d", "contrast", "attribution")
    for name in ("glasses:thick", "background:sham", "control:retest", "bookshelf:insert"):
        assert get(name).family == name.split(":")[0] and get(name).arm == arm_of(name)


def test_units_pool_clips_into_people_once():
    metadata = {"a1": {"subject_id": "ann"}, "a2": {"subject_id": "ann"}, "b1": {"subject_id": "bob"}, "x": {}}
    units = Units.of("auto", "subject_id", metadata)
    assert units.unit == "person" and units.unnamed == frozenset({"x"})
    assert units.pool({"a1": 1.0, "a2": 3.0, "b1": 5.0, "x": 7.0}) == {"(clip x)": 7.0, "ann": 2.0, "bob": 5.0}
    assert Units.of("auto", "subject_id", {"c": {}}).unit == "clip"


def _downgrade(data: dict, version: int) -> dict:
    """An audit.json as an older auditkit wrote it: no arm, base or family (schema 2); no
    per-candidate statistics, unit or role either (schema 1)."""
    old = json.loads(json.dumps(data))
    old["schema_version"] = version
    schema2 = {"arm", "base", "family"}
    schema1 = {"n_clips", "n_subjects", "unit", "tolerance", "share_moved", "share_moved_low", "share_moved_high",
               "unstable_p", "unstable_p_adjusted", "stable_p", "stable_p_adjusted", "loa_low", "loa_high",
               "loa_low_ci_low", "loa_low_ci_high", "loa_high_ci_low", "loa_high_ci_high", "retest_share_moved",
               "role"}
    for t in old["tests"]:
        for key in schema2 | (schema1 if version == 1 else set()):
            t.pop(key, None)
    if version == 1:
        for key in ("impact", "groups", "unit", "cluster", "n_subjects", "attribution"):
            old.pop(key, None)
    return old


@pytest.mark.parametrize("version", [1, 2])
def test_older_audit_json_files_load_render_and_keep_their_verdicts(sample_dir, brightness_rater_path, tmp_path,
                                                                     version):
    store = tmp_path / "results.sqlite"
    result = run_audit(str(brightness_rater_path), sample_dir, ["lighting:dim", "lighting:bright"],
                       contrasts=[("lighting:dim", "lighting:bright")], store=store, **PLAIN)
    old = AuditResult.from_dict(_downgrade(result.to_dict(), version))
    assert old.schema_version == version
    assert [(t.perturbation, t.trait, t.verdict) for t in old.tests] == [
        (t.perturbation, t.trait, t.verdict) for t in result.tests]
    # The identity the file did not carry comes from the registry, the same as a new file's.
    assert [(t.arm, t.base, t.family) for t in old.tests] == [(t.arm, t.base, t.family) for t in result.tests]
    contrast = old.test("lighting:dim vs lighting:bright", "openness")
    assert (contrast.arm, contrast.base, contrast.family) == ("lighting:dim", "lighting:bright", "contrast")
    assert len(old.select("lighting")) == 10  # the family, not the contrast
    with Store(store) as db:
        shifts = db.shifts(old)
        assert shifts == db.shifts(result)
        again = rejudge(db, old, {})
    assert [t.verdict for t in again.tests] == [t.verdict for t in result.tests]
    html = render_html(old, shifts=shifts)
    assert "lighting:dim vs lighting:bright" in html and "shift" in html
    for text in (render_text(old), render_markdown(old), render_junit(old)):
        assert "lighting:bright" in text


@pytest.mark.parametrize("text", ["lighting:dim versus lighting:bright", "lighting:dim vs ", "a vs b vs c"])
def test_a_contrast_that_is_not_two_edits_is_one_line(tmp_path, capsys, text):
    code = main(["run", "--rater", "builtin:constant", "--perturb", "lighting:dim", "--contrast", text,
                 "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == f"auditkit: error: --contrast {text!r}: write two edits as 'A vs B'"
    assert not (tmp_path / "o").exists()


def test_region_lines_name_a_contrast_of_two_regions_by_both():
    from auditkit.core.report.format import region_lines
    from auditkit.stats import paired_shift_test

    tests = tuple(paired_shift_test([0.5, 0.6, 0.7], [0.4, 0.5, 0.65], margin=0.05, perturbation=name,
                                    trait="openness").with_(role="attribution")
                  for name in ("region:face", "region:background", "region:face vs region:background"))
    result = AuditResult(rater={"spec": "x"}, traits=("openness",), n_clips=3, config={}, tests=tests)
    (line,) = region_lines(result)[1:]
    assert line.startswith("  openness: face ") and ", background " in line and ", face−background " in line


@pytest.mark.parametrize("argv,message", [
    (["demo", "--method", "shap"], "auditkit: error: demo: argument --method: invalid choice: 'shap'"),
    (["run", "--alpha", "abc"], "auditkit: error: run: argument --alpha: invalid float value: 'abc'"),
    (["report", "x.json", "--format", "text"], "auditkit: error: report: argument --format: invalid choice"),
    ([], "auditkit: error: the following arguments are required: COMMAND"),
])
def test_a_malformed_command_line_is_one_line_not_the_usage_block(capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and err.startswith(message), err
