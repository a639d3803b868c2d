from __future__ import annotations

import json

import pytest

from auditkit.core.result import AuditResult, SchemaError, ShiftTest, Skipped
from auditkit.stats import paired_shift_test


def _result() -> AuditResult:
    tests = (paired_shift_test([1, 2, 3, 4], [1.1, 2.3, 3.0, 4.2], margin=0.5, perturbation="lighting:dim",
                               trait="openness"),
             paired_shift_test([1, 2, 3, 4], [1, 2, 3, 4], margin=0.5, perturbation="lighting:dim",
                               trait="neuroticism"),
             paired_shift_test([1, 2], [3, 4], margin=0.5, perturbation="lighting:gamma", trait="openness"))
    return AuditResult(rater={"spec": "x", "hash": "sha256:0"}, traits=("openness", "neuroticism"),
                       n_clips=4, config={"alpha": 0.05}, tests=tests,
                       skipped=(Skipped("c9", "lighting:gamma", "no face"),))


def test_json_round_trip_is_strict_json():
    result = _result()
    text = json.dumps(result.to_dict(), allow_nan=False)  # no NaN/inf may reach the file
    assert AuditResult.from_dict(json.loads(text)) == result


def test_slicing_by_family_perturbation_and_trait():
    result = _result()
    assert len(result.select("lighting")) == 3
    assert len(result.select("lighting:dim")) == 2
    assert [t.trait for t in result.select(trait="openness")] == ["openness", "openness"]
    assert result.test("lighting:dim", "neuroticism").verdict == "invariant"
    with pytest.raises(KeyError, match="no test for perturbation 'hats'"):
        result.test("hats", "openness")
    assert result.counts()["inconclusive"] >= 1


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.pop("tests"), "field 'tests' is missing"),
    (lambda d: d.update(schema_version=99), "newer than this auditkit reads"),
    (lambda d: d.update(schema_version="1"), "'schema_version' is missing or not an integer"),
    (lambda d: d["tests"][0].pop("verdict"), r"tests\[\] lacks field 'verdict'"),
    (lambda d: d["tests"][0].update(verdict="maybe"), "verdict must be one of"),
])
def test_malformed_audit_json_names_the_field(mutate, message):
    data = _result().to_dict()
    mutate(data)
    with pytest.raises(SchemaError, match=message):
        AuditResult.from_dict(data)


def test_shift_test_reads_like_scipy():
    t = paired_shift_test([0.0, 1, 2, 3, 4], [0.5, 1.4, 2.6, 3.5, 4.4], margin=1.0)
    assert t.pvalue == t.p_value and t.statistic == t.t_statistic
    assert t.confidence_interval() == (t.ci_low, t.ci_high)
    assert ShiftTest.from_dict(t.to_dict()) == t


def test_select_refuses_names_that_match_nothing_and_families_skip_contrasts():
    base = _result()
    contrast = base.tests[0].with_(perturbation="lighting:dim vs lighting:gamma", arm=None, base=None, family=None)
    result = AuditResult(rater=base.rater, traits=base.traits, n_clips=4, config=base.config,
                         tests=base.tests + (contrast,))
    assert len(result.select("lighting")) == 3  # the family, not the contrast
    assert result.select("lighting:dim vs lighting:gamma") == (contrast,)
    with pytest.raises(KeyError, match="no perturbation or family 'lightning'"):
        result.select("lightning")
    with pytest.raises(KeyError, match="no trait 'opennes'"):
        result.select(trait="opennes")
