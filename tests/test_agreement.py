"""Per-candidate agreement and people as the unit: each number against an independent computation
(scipy, statsmodels, simulation), and the verdicts the issue's scenarios call for."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from auditkit.core.result import AuditResult, ShiftTest
from auditkit.stats import (clips_needed, correct, limits_of_agreement, paired_shift_test,
                            tolerance_confidence, tolerance_factor, unit_differences, verdict, verdict_of)

MARGIN = 0.05


def _pair(d: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    before = np.random.default_rng(seed).uniform(0.2, 0.8, d.size)
    return before, before + d


# --------------------------------------------------------------------------- independent checks
@pytest.mark.parametrize("seed", range(4))
def test_share_moved_and_its_bounds_match_scipy_and_statsmodels(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 300))
    d = rng.normal(rng.uniform(-0.02, 0.02), rng.uniform(0.01, 0.1), n)
    b, a = _pair(d, seed)
    r = paired_shift_test(b, a, margin=MARGIN, tolerance=0.1)
    k = int(np.count_nonzero(np.abs(a - b) > MARGIN))
    assert r.share_moved == pytest.approx(k / n)
    assert r.unstable_p == pytest.approx(st.binomtest(k, n, 0.1, alternative="greater").pvalue, rel=1e-9)
    # The one-sided (1 - alpha) lower bound is the lower end of the two-sided (1 - 2 alpha) interval.
    assert r.share_moved_low == pytest.approx(proportion_confint(k, n, alpha=0.1, method="beta")[0], abs=1e-12)


def test_people_are_the_unit_as_in_a_cluster_robust_regression():
    # 10 people x 20 clips, equal cluster sizes: the t-test on per-person means is the OLS
    # intercept test with cluster-robust (CR1) errors and G - 1 degrees of freedom.
    rng = np.random.default_rng(5)
    people = np.repeat(np.arange(10), 20)
    d = np.repeat(rng.normal(0.01, 0.1, 10), 20) + rng.normal(0, 0.025, 200)
    b, a = _pair(d)
    r = paired_shift_test(b, a, margin=MARGIN, groups=[f"p{i}" for i in people])
    fit = sm.OLS(a - b, np.ones(200)).fit(cov_type="cluster", cov_kwds={"groups": people}, use_t=True)
    assert (r.unit, r.n, r.n_clips, r.n_subjects) == ("person", 10, 200, 10)
    assert r.t_statistic == pytest.approx(float(fit.tvalues[0]), rel=1e-9)
    assert r.p_value == pytest.approx(float(fit.pvalues[0]), rel=1e-9)
    assert r.mean_shift == pytest.approx(float(fit.params[0]), abs=1e-12)
    # Unequal numbers of clips: each person counts once, by the mean of their own clips.
    ids = ["a"] * 5 + ["b"] * 1 + ["c"] * 3 + ["d"] * 2
    d2 = rng.normal(0, 0.05, len(ids))
    means = unit_differences(d2, ids)
    assert means == pytest.approx([d2[:5].mean(), d2[5], d2[6:9].mean(), d2[9:].mean()])
    r2 = paired_shift_test(*_pair(d2), margin=MARGIN, groups=ids)
    assert r2.p_value == pytest.approx(st.ttest_1samp(means, 0).pvalue, rel=1e-9)
    assert (r2.n, r2.n_clips) == (4, 11)


@pytest.mark.parametrize("n,content", [(10, 0.90), (30, 0.95), (200, 0.95)])
def test_tolerance_factor_matches_simulation_and_howe(n, content):
    k = tolerance_factor(n, content, 0.95)
    rng = np.random.default_rng(n)
    x = rng.normal(size=(200_000, n))
    m, s = x.mean(axis=1), x.std(axis=1, ddof=1)
    covered = st.norm.cdf(m + k * s) - st.norm.cdf(m - k * s)
    assert np.mean(covered >= content) == pytest.approx(0.95, abs=0.002)
    # Howe's approximation is within a few tenths of a percent of the exact factor.
    z, chi = st.norm.ppf((1 + content) / 2), st.chi2.ppf(0.05, n - 1)
    howe = math.sqrt((n - 1) * (1 + 1 / n) * z ** 2 / chi)
    assert k == pytest.approx(howe, rel=0.01)
    assert tolerance_confidence(k, n, content) == pytest.approx(0.95, abs=1e-9)


def test_limits_of_agreement_and_their_coverage():
    rng = np.random.default_rng(2)
    n, mu, sigma, alpha = 20, 0.01, 0.03, 0.05
    true_high = mu + 1.959964 * sigma
    hits = 0
    for _ in range(3000):
        d = rng.normal(mu, sigma, n)
        low, high, low_ci, high_ci = limits_of_agreement(float(d.mean()), float(d.std(ddof=1)), n, alpha)
        assert low == pytest.approx(d.mean() - 1.959964 * d.std(ddof=1))
        assert low_ci[0] < low < low_ci[1] and high_ci[0] < high < high_ci[1]
        hits += high_ci[0] <= true_high <= high_ci[1]
    assert hits / 3000 == pytest.approx(1 - alpha, abs=0.015)  # exact, not the approximate SE
    # Bland & Altman's approximate interval (SE^2 = s^2/n + z^2 s^2 / 2(n-1)) is close to it.
    s = 0.03
    _, high, _, (hi_low, hi_high) = limits_of_agreement(0.0, s, 60, 0.05)
    se = math.sqrt(s ** 2 / 60 + 1.96 ** 2 * s ** 2 / (2 * 59))
    t = st.t.ppf(0.975, 59)
    assert (hi_low, hi_high) == pytest.approx((high - t * se, high + t * se), rel=0.05)


def test_correct_adjusts_the_four_claims_as_four_families():
    rng = np.random.default_rng(8)
    family = [paired_shift_test(*_pair(rng.normal(rng.uniform(-0.03, 0.03), rng.uniform(0.005, 0.06), 40), k),
                                margin=MARGIN) for k in range(12)]
    out = correct(family, method="holm")
    for name in ("p_value", "equivalence_p", "unstable_p", "stable_p"):
        raw = [getattr(t, name) for t in family]
        adj = [getattr(t, name.replace("_value", "") + "_adjusted" if name == "p_value" else name + "_adjusted")
               for t in out]
        assert adj == pytest.approx(list(multipletests(raw, method="holm")[1]), abs=1e-12)
    assert all(t.verdict == verdict_of(t) for t in out)


# --------------------------------------------------------------------------- the scenarios
def test_candidates_moved_both_ways_are_unstable_never_invariant():
    # The first finding: shifts N(0, 0.2^2) against a 0.05 margin were certified invariant.
    rng = np.random.default_rng(0)
    for n in (200, 1000):
        r = paired_shift_test(*_pair(rng.normal(0, 0.2, n)), margin=MARGIN)
        assert r.verdict == "unstable", r
        assert r.share_moved > 0.7 and r.share_moved_low > 0.7
        assert r.loa_low < -MARGIN and r.loa_high > MARGIN


def test_a_genuinely_stable_rater_is_invariant():
    r = paired_shift_test(*_pair(np.random.default_rng(1).normal(0, MARGIN / 5, 30)), margin=MARGIN)
    assert r.verdict == "invariant"
    assert r.share_moved == 0.0 and r.share_moved_high < 0.05 and r.stable_p < 0.05


def test_people_who_each_move_are_unstable_not_a_false_shift():
    # 10 people x 20 clips: each person reacts (sd 2 x margin), nobody on average.
    rng = np.random.default_rng(3)
    people = np.repeat(np.arange(10), 20)
    d = np.repeat(rng.normal(0, 2 * MARGIN, 10), 20) + rng.normal(0, MARGIN / 2, 200)
    by_person = paired_shift_test(*_pair(d), margin=MARGIN, groups=list(people))
    assert by_person.verdict == "unstable" and by_person.n == 10
    by_clip = paired_shift_test(*_pair(d), margin=MARGIN)
    assert by_clip.p_value < by_person.p_value  # clips counted as independent overstate the evidence


def test_the_verdict_rules():
    ok = dict(p_adjusted=0.5, equivalence_p_adjusted=0.001, alpha=0.05, unstable_p_adjusted=1.0,
              stable_p_adjusted=0.001)
    assert verdict(**ok) == "invariant"
    assert verdict(**{**ok, "share_below": False}) == "inconclusive"  # the count contradicts the model
    assert verdict(**{**ok, "stable_p_adjusted": 0.2}) == "inconclusive"
    assert verdict(**{**ok, "unstable_p_adjusted": 0.01}) == "unstable"
    assert verdict(**{**ok, "p_adjusted": 0.001}) == "invariant"  # significant, but inside the margin
    assert verdict(**{**ok, "p_adjusted": 0.001, "equivalence_p_adjusted": 0.3,
                      "unstable_p_adjusted": 0.001}) == "shift"  # systematic shift outranks instability
    assert verdict(**{**ok, "equivalence_p_adjusted": 0.3}) == "inconclusive"


def test_clips_needed_covers_the_stability_criterion():
    # Mean 0, sd margin/3: TOST alone decides with few units; the tolerance interval needs more.
    plain = clips_needed(0.0, MARGIN / 3, margin=MARGIN)
    both = clips_needed(0.0, MARGIN / 3, margin=MARGIN, tolerance=0.05, share=0.0)
    assert both > plain
    rng = np.random.default_rng(4)
    wins = sum(paired_shift_test(*_pair(rng.normal(0, MARGIN / 3, both)), margin=MARGIN).verdict == "invariant"
               for _ in range(300))
    assert wins / 300 >= 0.72  # planned for 80%; the two criteria are positively correlated
    # Beyond the tolerance, the plan is for showing instability (exact binomial power).
    n = clips_needed(0.0, 0.1, margin=MARGIN, tolerance=0.05, share=0.3)
    assert n is not None and st.binom.sf(st.binom.isf(0.05, n, 0.05), n, 0.3) >= 0.8


def test_schema_1_tests_keep_their_verdict_and_have_no_agreement():
    old = {"n": 12, "mean_shift": 0.01, "sd": 0.02, "ci_low": 0.0, "ci_high": 0.02, "effect_size_dz": 0.5,
           "t_statistic": 1.7, "p_value": 0.1, "wilcoxon_p": 0.1, "equivalence_p": 0.001, "margin": 0.05,
           "alpha": 0.05, "verdict": "invariant", "perturbation": "glasses:thin", "trait": "openness"}
    t = ShiftTest.from_dict(old)
    assert t.verdict == "invariant" and t.share_moved is None and t.unstable_p is None and t.n_clips == 12
    doc = {"schema_version": 1, "rater": {"spec": "x"}, "traits": ["openness"], "n_clips": 12,
           "config": {}, "tests": [old], "skipped": []}
    result = AuditResult.from_dict(doc)
    assert result.schema_version == 1 and result.counts()["invariant"] == 1 and result.unit == "clip"
