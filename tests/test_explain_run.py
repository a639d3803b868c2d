"""``auditkit explain`` and the region tests' place in an audit: a family of their own that never
fails a run, the attribution written into the run (audit.json, overlays, report), kept in its store
so that a second call computes nothing, and one-line errors for the user's mistakes."""

from __future__ import annotations

import json
from xml.etree import ElementTree
from pathlib import Path

import pytest

from auditkit import run_audit
from auditkit.app.explain import explain_run, overlay_name
from auditkit.cli import main
from auditkit.core.explain import ExplainSettings
from auditkit.core.report import render_junit, render_markdown, render_text
from auditkit.core.result import VERDICTS, AuditResult, SchemaError, ShiftTest
from auditkit.contract.errors import AuditkitError
from auditkit.raters import InputSpec, TorchRater, load_rater, save_torchscript
from conftest import ConstantRater
from test_explain import CORNER_TRAIT, EYES_TRAIT, SPEC, Counting, CornerAndEyes, bands


@pytest.fixture(scope="module")
def corner_rater(tmp_path_factory) -> Path:
    return save_torchscript(CornerAndEyes(), tmp_path_factory.mktemp("raters") / "corner.pt", input=SPEC)


@pytest.fixture(scope="module")
def explained(corner_rater, sample_dir, tmp_path_factory):
    """A CLI run of the region family and one lighting edit, then ``auditkit explain`` on it."""
    out = tmp_path_factory.mktemp("explained") / "run"
    code = main(["run", "--rater", str(corner_rater), "--clips", str(sample_dir), "--perturb",
                 "region,lighting:dim", "--out", str(out), "--quiet", "--no-retest"])
    assert code in (0, 1)
    before = json.loads((out / "audit.json").read_text())
    assert main(["explain", str(out), "--clips", "3", "--frames", "1", "--steps", "4", "--quiet"]) == 0
    return out, before, code


def test_region_tests_are_a_family_of_their_own(sample_dir, annotator):
    alone = run_audit(bands(), sample_dir, ["lighting:dim", "lighting:bright"], annotator=annotator,
                      retest=False)
    both = run_audit(bands(), sample_dir, ["lighting:dim", "lighting:bright", "region"], annotator=annotator,
                     retest=False)
    regions = [t for t in both.tests if (t.perturbation or "").startswith("region:")]
    assert regions and {t.role for t in regions} == {"attribution"} == {t.role for t in both.attribution_tests}
    assert {t.role for t in both.fairness} == {"fairness"}
    # The lighting tests are corrected among themselves: adding twenty region tests changes nothing.
    key = lambda t: (t.perturbation, t.trait)  # noqa: E731
    assert sorted(((key(t), t.p_adjusted, t.verdict) for t in alone.tests), key=str) == \
        sorted(((key(t), t.p_adjusted, t.verdict) for t in both.fairness), key=str)
    # The greyed background moves the corner trait (not invariant), yet no region test is ever a
    # failure or a count, whatever verdicts fail the run.
    assert both.select("region:background", CORNER_TRAIT)[0].verdict != "invariant"
    assert set(both.failing(VERDICTS)) == set(both.fairness)
    assert both.counts() == alone.counts() and both.any_shift == alone.any_shift
    cases = ElementTree.fromstring(render_junit(both)).iter("testcase")
    assert not [c for c in cases if c.get("classname", "").startswith("region:") and c.find("failure") is not None]
    text = render_text(both)
    assert "region ablation" in text and "background" in text
    table = text.split("region ablation")[0]
    assert "region:" not in table
    assert "`region:" not in render_markdown(both)


def test_a_test_with_an_unknown_role_is_refused(explained):
    out, _, _ = explained
    test = json.loads((out / "audit.json").read_text())["tests"][0]
    with pytest.raises(SchemaError, match="role must be one of"):
        ShiftTest.from_dict({**test, "role": "decoration"})


def test_explain_writes_attribution_overlays_and_the_report_section(explained):
    out, before, code = explained
    data = json.loads((out / "audit.json").read_text())
    section = data["attribution"]
    assert section["method"] == "integrated_gradients" and section["n_clips"] == 3
    assert section["traits"][CORNER_TRAIT]["regions"]["background"]["share"] >= 0.8
    assert section["traits"][EYES_TRAIT]["regions"]["face"]["share"] >= 0.8
    # The audit's findings are untouched: explain adds a section, it does not re-judge.
    assert data["tests"] == before["tests"] and not before.get("attribution")
    # Overlays of the clips that moved most, one per trait, where audit.json says.
    overlays = section["overlays"]
    assert len(overlays) == 3
    for clip, traits in overlays.items():
        assert set(traits) == set(data["traits"])
        for trait, name in traits.items():
            assert name == overlay_name(clip, trait)
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert "id='where-the-rater-looks'" in html and html.count("class='overlay'") == 3 * len(data["traits"])
    # The report reads the section again from a saved run.
    again = out.parent / "again.html"
    assert main(["report", str(out / "audit.json"), "--out", str(again)]) == 0
    assert again.read_text().count("class='overlay'") == 3 * len(data["traits"])
    # The run's exit code is the fairness verdicts': lighting:dim alone decides it.
    result = AuditResult.from_dict(data)
    assert code == (1 if result.failing(tuple(data["config"]["fail_on"])) else 0)


def test_the_clips_explained_are_those_that_moved_most(explained):
    from auditkit.app.explain import moved_most
    from auditkit.core.store import Store

    out, _, _ = explained
    result = AuditResult.from_dict(json.loads((out / "audit.json").read_text()))
    with Store(out / "results.sqlite") as store:
        ranked = moved_most(store, result, 10)
    assert set(result.attribution["overlays"]) == set(ranked[:3])


def test_a_second_explain_computes_nothing(explained, corner_rater):
    out, _, _ = explained
    first = json.loads((out / "audit.json").read_text())["attribution"]
    Counting.calls = 0
    inner = load_rater(str(corner_rater))
    rater = Counting(inner.module, input=inner.input, name=inner.name, identity=inner.identity)
    explain_run(out, ExplainSettings(clips=3, frames=1, steps=4), rater=rater, quiet=True)
    assert Counting.calls == 0
    second = json.loads((out / "audit.json").read_text())["attribution"]
    assert second["traits"] == first["traits"]


def test_explain_refuses_another_rater(explained, sample_dir, tmp_path):
    out, _, _ = explained
    other = save_torchscript(CornerAndEyes(), tmp_path / "other.pt", input=InputSpec(size=(48, 48), frames=6))
    with pytest.raises(AuditkitError, match="not the rater this run audited"):
        explain_run(out, ExplainSettings(clips=1), rater=load_rater(str(other)), quiet=True)


@pytest.mark.parametrize("argv, message", [
    (["--clips", "0"], "--clips must be an integer >= 1"),
    (["--steps", "1"], "--steps must be an integer >= 2"),
    (["--trait", "grit"], "auditkit: error: --trait must be distinct names among openness, "),
])
def test_bad_explain_options_are_one_line(explained, capsys, argv, message):
    out, _, _ = explained
    assert main(["explain", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_explain_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["explain", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no audit.json" in err and str(tmp_path) in err and len(err.splitlines()) == 1


def test_a_rater_that_ignores_its_input_has_nothing_to_explain(sample_dir, tmp_path, annotator):
    from auditkit.app.run import write_run

    constant = TorchRater(ConstantRater(), input=SPEC, name="constant")
    result = run_audit(constant, sample_dir, ["region:face"], annotator=annotator, retest=False,
                       store=tmp_path / "results.sqlite")
    write_run(result, tmp_path, store=tmp_path / "results.sqlite")
    attribution = explain_run(tmp_path, ExplainSettings("ablation", 2, 1), rater=constant, quiet=True)
    assert all(attribution.share(t, r) == 0 for t in attribution.traits for r in ("face", "background"))
    data = json.loads((tmp_path / "audit.json").read_text())
    assert data["attribution"]["traits"]
