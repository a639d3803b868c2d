"""Decision impact on a shortlist, and per-group shifts and impact ratios."""

from __future__ import annotations

import pytest

from auditkit import run_audit
from auditkit.contract.errors import ConfigError
from auditkit.core.findings import DecisionImpact, EditImpact
from auditkit.core.impact import ShortlistRule, decision_impact, group_shifts, impact_ratios
from auditkit.core.report import render_text


def test_counterfactual_shortlist_counts_entries_and_exits():
    original = {"a": 0.9, "b": 0.8, "c": 0.5, "d": 0.4}
    edited = {"up": {"a": 0.9, "b": 0.8, "c": 0.85, "d": 0.4},    # c would now beat b
              "down": {"a": 0.7, "b": 0.8, "c": 0.5, "d": 0.4}}   # a would fall below b
    out = decision_impact(original, edited, ShortlistRule(top=0.5))
    assert out.size == 2 and out.threshold == 0.8
    assert out.edits["up"] == EditImpact(4, ("c",), ())
    assert out.edits["down"] == EditImpact(4, (), ("a",))
    assert out.moved == [("up", 1, 0), ("down", 0, 1)]
    assert out.to_dict()["edits"]["up"] == {"n": 4, "entered": ["c"], "left": []}
    assert DecisionImpact.from_dict(out.to_dict()) == out


def test_impact_ratio_is_each_groups_rate_over_the_best():
    scores = {"a1": 0.9, "a2": 0.8, "b1": 0.7, "b2": 0.1, "b3": 0.2, "a3": 0.3}
    groups = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B", "b3": "B"}
    out = impact_ratios(scores, groups)   # median 0.5: A has 2 of 3 above, B 1 of 3
    assert out["A"].impact_ratio == 1.0 and out["B"].impact_ratio == pytest.approx(0.5)
    shifts = group_shifts({"a1": -0.2, "a2": -0.25, "a3": -0.22, "b1": 0.0, "b2": 0.01, "b3": -0.01}, groups)
    assert shifts.groups["A"].mean_shift == pytest.approx(-0.2233, abs=1e-3)
    assert shifts.differs_p < 0.1


def test_audit_json_carries_impact_and_groups(sample_dir, brightness_rater_path):
    result = run_audit(str(brightness_rater_path), sample_dir, ["lighting:dim", "lighting:bright"],
                       shortlist_top=0.25, shortlist_trait="openness", retest=False)
    assert result.impact["size"] == 3 and result.impact["rule"] == "top 25% by openness"
    # Brightness drives openness: dimming drops shortlisted clips, brightening lifts others in.
    assert result.impact["edits"]["lighting:dim"]["left"] and result.impact["edits"]["lighting:bright"]["entered"]
    assert set(result.groups) == {"framing"}  # subject_id is an id column, not a group
    framing = result.groups["framing"]
    assert set(framing["impact_ratio"]) == {"original", "lighting:dim", "lighting:bright"}
    assert set(framing["shift"]["lighting:dim"]["openness"]["groups"]) == {"tight", "medium", "wide"}
    (typed,) = result.group_analyses  # the same section as a named result
    assert typed.column == "framing" and typed.to_dict() == framing
    assert set(typed.shift["lighting:dim"]["openness"].groups) == {"tight", "medium", "wide"}
    assert result.decision_impact.to_dict() == result.impact
    text = render_text(result)
    assert "shortlist (top 25% by openness, 3 clips): lighting:dim: 0 enter" in text
    assert "groups by framing" in text
    with pytest.raises(ConfigError, match="unknown trait 'charm'"):
        run_audit(str(brightness_rater_path), sample_dir, ["lighting:dim"], shortlist_trait="charm")


def test_an_unmoved_score_never_changes_side_on_a_tie():
    # A constant rater: every original and edited score ties with the shortlist threshold.
    original = {f"c{i}": 0.5 for i in range(12)}
    out = decision_impact(original, {"lighting:dim": dict(original)}, ShortlistRule(top=0.25))
    assert out.size == 3
    assert out.edits["lighting:dim"].entered == () and out.edits["lighting:dim"].left == ()
