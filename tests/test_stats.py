"""auditkit.stats against scipy/statsmodels, its degenerate cases, and its verdict rules."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_paired

from auditkit.core.result import ShiftTest
from auditkit.stats import adjust_pvalues, clips_needed, correct, paired_shift_test, verdict_of

TOL = 1e-9


def _datasets():
    """Pairs (before, after, margin): normal, skewed, rounded scores with ties and zeros."""
    out = []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(5, 60))
        before = rng.normal(3.0, 0.8, n)
        after = before + rng.normal(rng.uniform(-0.4, 0.4), rng.uniform(0.1, 1.0), n)
        out.append((before, after, float(rng.uniform(0.1, 0.6))))
    for seed in range(6, 10):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(8, 40))
        before = rng.integers(1, 6, n).astype(float)
        # Rounded scores: many zero differences and tied absolute differences.
        after = np.clip(before + rng.choice([-1, 0, 0, 0, 1, 1], n), 1, 5)
        out.append((before, after, 0.5))
    rng = np.random.default_rng(10)
    before = rng.normal(size=30)
    out.append((before, before + rng.exponential(1.0, 30) - 1.0, 0.3))
    return out


DATASETS = _datasets()


@pytest.mark.parametrize("before,after,margin", DATASETS)
def test_agrees_with_scipy_and_statsmodels(before, after, margin):
    d = after - before
    assert np.count_nonzero(d) >= 3 and np.std(d) > 0
    r = paired_shift_test(before, after, margin=margin)
    ref = st.ttest_rel(after, before)
    assert r.n == before.size
    assert r.t_statistic == pytest.approx(ref.statistic, abs=TOL, rel=TOL)
    assert r.p_value == pytest.approx(ref.pvalue, abs=TOL)
    assert r.wilcoxon_p == pytest.approx(st.wilcoxon(d, zero_method="pratt").pvalue, abs=TOL)
    assert r.equivalence_p == pytest.approx(ttost_paired(after, before, -margin, margin)[0],
                                            abs=TOL)
    assert r.mean_shift == pytest.approx(d.mean(), abs=TOL)
    assert r.sd == pytest.approx(d.std(ddof=1), abs=TOL)
    assert r.effect_size_dz == pytest.approx(d.mean() / d.std(ddof=1), abs=TOL)
    for alpha in (0.05, 0.1, 0.01):
        lo, hi = paired_shift_test(before, after, margin=margin, alpha=alpha).confidence_interval()
        ci = ref.confidence_interval(1 - alpha)
        assert (lo, hi) == pytest.approx((ci.low, ci.high), abs=TOL)
    assert r.p_adjusted == r.p_value and r.equivalence_p_adjusted == r.equivalence_p
    assert r.verdict == verdict_of(r)
    assert (r.n_needed is None) == (r.verdict != "inconclusive")


def test_ties_and_zeros_dataset_exists():
    # Guard that the parametrised data really exercise the zero/tie handling of Wilcoxon.
    assert any(np.any((a - b) == 0) for b, a, _ in DATASETS)


def test_inputs_not_mutated_and_lists_accepted():
    b, a = [1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 3.5, 4.1]
    bb, aa = np.array(b), np.array(a)
    r = paired_shift_test(bb, aa, margin=1.0, perturbation="glasses:round", trait="O")
    assert np.array_equal(bb, b) and np.array_equal(aa, a)
    assert r == paired_shift_test(b, a, margin=1.0, perturbation="glasses:round", trait="O")
    assert (r.perturbation, r.trait) == ("glasses:round", "O")


def test_all_zero_differences_are_invariant():
    x = np.linspace(1, 5, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may leak to the user
        r = paired_shift_test(x, x.copy(), margin=0.1)
    assert r.verdict == "invariant"
    assert (r.p_value, r.wilcoxon_p, r.equivalence_p) == (1.0, 1.0, 0.0)
    assert (r.mean_shift, r.sd, r.ci_low, r.ci_high, r.effect_size_dz) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert "zero" in r.note and r.n_needed is None


def test_float_noise_is_not_a_giant_t():
    x = np.linspace(0.1, 0.9, 20)
    r = paired_shift_test(x, (x + 0.3) - 0.3, margin=0.05)  # differences ~1e-17, not exact 0
    assert r.verdict == "invariant" and r.p_value == 1.0 and r.mean_shift == 0.0


def test_constant_shift_beyond_margin_is_shift():
    x = np.arange(10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = paired_shift_test(x, x + 0.7, margin=0.5)
    assert r.verdict == "shift" and r.p_value == 0.0 and r.equivalence_p == 1.0
    assert r.ci_low == r.ci_high == pytest.approx(0.7)
    assert r.effect_size_dz is None and r.t_statistic is None
    assert r.wilcoxon_p == pytest.approx(2 * 0.5 ** 10)  # exact: all signs positive
    assert "constant" in r.note


def test_constant_shift_within_margin_is_invariant_because_the_margin_decides():
    # Both p-values are 0: a deterministic shift, provably smaller than the margin. The margin
    # is the smallest shift that matters, so the verdict is "invariant"; p_value shows the shift.
    x = np.arange(10.0)
    r = paired_shift_test(x, x + 0.2, margin=0.5)
    assert r.p_value == 0.0 and r.equivalence_p == 0.0
    assert r.verdict == "invariant"


def test_small_significant_shift_inside_margin_is_invariant_large_one_is_shift():
    rng = np.random.default_rng(3)
    before = rng.uniform(size=200)
    noise = rng.normal(0, 0.01, size=200)
    small = paired_shift_test(before, before + 0.01 + noise, margin=0.05)
    assert small.p_value < 1e-6 and small.equivalence_p < 1e-6 and small.verdict == "invariant"
    large = paired_shift_test(before, before + 0.08 + noise, margin=0.05)
    assert large.p_value < 1e-6 and large.equivalence_p > 0.5 and large.verdict == "shift"


@pytest.mark.parametrize("n", [0, 1, 2])
def test_fewer_than_three_clips_is_inconclusive(n):
    rng = np.random.default_rng(n)
    b = rng.normal(size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = paired_shift_test(b, b + 5.0 + rng.normal(size=n), margin=0.5)
    assert r.verdict == "inconclusive" and r.n == n
    assert (r.p_value, r.wilcoxon_p, r.equivalence_p) == (1.0, 1.0, 1.0)
    assert r.note == "fewer than 3 paired clips"
    assert (r.mean_shift is None) == (n == 0) and (r.sd is None) == (n < 2)


def test_not_significant_is_never_invariant():
    rng = np.random.default_rng(3)
    b = rng.normal(size=8)
    a = b + rng.normal(0.0, 2.0, 8)
    r = paired_shift_test(b, a, margin=0.3)
    assert r.p_value > r.alpha
    assert r.ci_low < -0.3 and r.ci_high > 0.3  # the data allow a shift larger than the margin
    # Nothing shows a systematic shift, but nearly every clip moved by more than the margin.
    assert r.verdict == "unstable" and r.share_moved >= 0.75
    quiet = paired_shift_test(b, b + rng.normal(0.0, 0.12, 8), margin=0.3)
    assert quiet.p_value > quiet.alpha and quiet.verdict == "inconclusive"
    assert quiet.n_needed is not None and quiet.n_needed > quiet.n


def test_clear_shift_and_clear_invariance():
    rng = np.random.default_rng(4)
    b = rng.normal(size=200)
    assert paired_shift_test(b, b + 1.0 + rng.normal(0, 0.5, 200), margin=0.2).verdict == "shift"
    assert paired_shift_test(b, b + rng.normal(0, 0.05, 200), margin=0.2).verdict == "invariant"
    # Mean zero, but one candidate in five moved beyond the margin: not invariant, unstable.
    assert paired_shift_test(b, b + rng.normal(0, 0.16, 200), margin=0.2).verdict == "unstable"


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("kwargs,words", [
    (dict(before=[[1.0, 2.0]], after=[[1.0, 2.0]]), ["before", "1-D"]),
    (dict(before=[1.0, 2.0, 3.0], after=[1.0, 2.0]), ["same length", "3", "2"]),
    (dict(before=[1.0, 2.0, 3.0], after=[1.0, np.nan, 3.0]), ["after[1]", "finite"]),
    (dict(before=[1.0, np.inf, 3.0], after=[1.0, 2.0, 3.0]), ["before[1]", "finite"]),
    (dict(before=["a", "b"], after=[1.0, 2.0]), ["before", "real numbers"]),
    (dict(margin=0.0), ["margin", "a positive number", "got 0.0"]),
    (dict(margin=math.inf), ["margin", "a positive number", "inf"]),
    (dict(margin="big"), ["margin"]),
    (dict(alpha=0.5), ["alpha", "between 0 and 0.5"]),
    (dict(alpha=0.0), ["alpha", "between 0 and 0.5"]),
])
def test_validation_names_the_argument(kwargs, words):
    args = dict(before=[1.0, 2.0, 3.0], after=[1.5, 2.1, 3.2], margin=0.5, alpha=0.05)
    args.update(kwargs)
    with pytest.raises(ValueError) as err:
        paired_shift_test(**args)
    for w in words:
        assert w in str(err.value)


@pytest.mark.parametrize("name,value", [("alpha", 0.7), ("alpha", True), ("tolerance", 0.0), ("tolerance", 0.5)])
def test_statistics_and_settings_refuse_a_value_in_the_same_words(name, value):
    # One rule set: the public statistics check their arguments by the settings' own rules.
    from auditkit.contract.errors import ConfigError
    from auditkit.core.settings import AuditConfig

    args = dict(before=[1.0, 2.0, 3.0], after=[1.5, 2.1, 3.2], margin=0.5, alpha=0.05, tolerance=0.05)
    args[name] = value
    with pytest.raises(ValueError) as from_stats:
        paired_shift_test(**args)
    with pytest.raises(ConfigError) as from_settings:
        AuditConfig.from_mapping({name: value}, source="")
    assert str(from_stats.value) == str(from_settings.value).removeprefix("configuration: ")


def test_other_validation():
    with pytest.raises(ValueError, match="method must be one of"):
        adjust_pvalues([0.1], method="hochberg")
    with pytest.raises(ValueError, match=r"pvalues.*\[0, 1\]"):
        adjust_pvalues([0.1, 1.2])
    with pytest.raises(ValueError, match="power"):
        clips_needed(0.1, 1.0, margin=0.5, power=1.0)
    with pytest.raises(ValueError, match="max_n"):
        clips_needed(0.1, 1.0, margin=0.5, max_n=2)
    with pytest.raises(ValueError, match="alpha"):
        correct([], alpha=0.9)


# --------------------------------------------------------------------------- multiplicity
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("method,sm", [("holm", "holm"), ("bh", "fdr_bh"),
                                       ("fdr_bh", "fdr_bh"), ("bonferroni", "bonferroni")])
def test_adjust_matches_statsmodels(seed, method, sm):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 40))
    p = rng.uniform(0, 1, m) ** 3  # some small ones
    p[: m // 4] = p[0]  # ties
    np.testing.assert_allclose(adjust_pvalues(p, method), multipletests(p, method=sm)[1],
                               atol=TOL, rtol=0)
    assert np.array_equal(adjust_pvalues(p, "none"), p)


def test_adjust_edge_cases():
    assert adjust_pvalues([]).shape == (0,)
    assert np.array_equal(adjust_pvalues([0.0, 1.0]), [0.0, 1.0])
    adj = adjust_pvalues(np.linspace(0.001, 0.2, 10))
    assert np.all(np.diff(adj) >= 0) and adj.max() <= 1.0  # monotone in the raw order


def _test_with_p(p: float, eq: float = 0.5) -> ShiftTest:
    # Candidates proven stable (and not shown unstable): the mean's claims alone decide.
    t = paired_shift_test([0.0, 1.0, 2.0, 3.0], [0.1, 1.3, 2.0, 3.2], margin=0.5).with_(
        p_value=p, p_adjusted=p, equivalence_p=eq, equivalence_p_adjusted=eq, stable_p=1e-12,
        stable_p_adjusted=1e-12, unstable_p=1.0, unstable_p_adjusted=1.0, share_moved=0.0)
    return t.with_(verdict=verdict_of(t))


def test_correct_changes_verdicts():
    family = [_test_with_p(0.03)] + [_test_with_p(0.5) for _ in range(9)]
    assert family[0].verdict == "shift"
    out = correct(family, method="holm")
    assert out[0].verdict == "inconclusive"
    assert out[0].p_adjusted == pytest.approx(0.3)
    assert out[0].p_value == 0.03  # raw value kept
    assert out[0].n_needed is not None
    assert family[0].verdict == "shift"  # inputs untouched (frozen, new objects returned)
    # A tiny p survives; equivalence is corrected as its own family.
    family[1] = _test_with_p(1e-6)
    family[2:5] = [_test_with_p(0.9, eq=e) for e in (0.006, 0.008, 0.009)]
    out = correct(family, method="holm")
    assert out[1].verdict == "shift" and out[1].n_needed is None
    assert [t.verdict for t in out[2:5]] == ["inconclusive"] * 3
    assert out[2].equivalence_p_adjusted == pytest.approx(0.06)
    bh = correct(family, method="bh")  # BH is less strict: 0.009 * 10 / 3 = 0.03 for all three
    assert [t.verdict for t in bh[2:5]] == ["invariant"] * 3
    assert bh[2].equivalence_p_adjusted == pytest.approx(0.03)
    assert correct(family, method="none")[0].verdict == "shift"
    assert correct(family, alpha=0.01)[0].alpha == 0.01
    np.testing.assert_allclose([t.p_adjusted for t in correct(family)],
                               multipletests([t.p_value for t in family], method="holm")[1])
    assert correct([]) == ()


# --------------------------------------------------------------------------- planning
def _analytic_tost_power(n, mean, sd, margin, alpha):
    df, se = n - 1, sd / math.sqrt(n)
    tc = st.t.ppf(1 - alpha, df)
    return (st.nct.cdf(-tc, df, (mean - margin) / se)
            + st.nct.sf(tc, df, (mean + margin) / se) - 1)


def _analytic_t_power(n, mean, sd, alpha):
    df, ncp = n - 1, abs(mean) / (sd / math.sqrt(n))
    tc = st.t.ppf(1 - alpha / 2, df)
    return st.nct.sf(tc, df, ncp) + st.nct.cdf(-tc, df, ncp)


def test_clips_needed_detection_power():
    n = clips_needed(0.5, 1.0, margin=0.2)
    assert n == 34  # the textbook paired-t sample size for d_z = 0.5, alpha 0.05, power 0.8
    assert _analytic_t_power(n, 0.5, 1.0, 0.05) >= 0.8 > _analytic_t_power(n - 1, 0.5, 1.0, 0.05)
    sizes = [clips_needed(m, 1.0, margin=0.1) for m in (1.0, 0.5, 0.3, 0.2)]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4  # smaller effects need more clips
    assert clips_needed(-0.5, 1.0, margin=0.2) == 34


def test_clips_needed_equivalence_power():
    n = clips_needed(0.1, 1.0, margin=0.5)
    assert _analytic_tost_power(n, 0.1, 1.0, 0.5, 0.05) >= 0.8
    assert _analytic_tost_power(n - 1, 0.1, 1.0, 0.5, 0.05) < 0.8
    sizes = [clips_needed(m, 1.0, margin=0.5) for m in (0.0, 0.2, 0.3, 0.4)]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4  # closer to the margin, more clips


def test_clips_needed_simulated_power():
    # The planned n should give roughly the requested power on data drawn from the plan.
    rng = np.random.default_rng(11)
    n = clips_needed(0.4, 1.0, margin=0.1)
    d = rng.normal(0.4, 1.0, (2000, n))
    rate = np.mean(st.ttest_1samp(d, 0.0, axis=1).pvalue < 0.05)
    assert 0.76 <= rate <= 0.86


def test_clips_needed_undefined_and_unreachable():
    assert clips_needed(None, None, margin=0.5) is None
    assert clips_needed(0.2, None, margin=0.5) is None
    assert clips_needed(0.0, 0.0, margin=0.5) == 3
    assert clips_needed(0.4999999, 1.0, margin=0.5, max_n=1000) is None
    assert clips_needed(0.01, 1.0, margin=0.001, max_n=100) is None


def test_small_shift_note_follows_the_corrected_verdict():
    z = np.random.default_rng(11).normal(size=40)
    z = (z - z.mean()) / z.std(ddof=1)
    before = np.linspace(0.2, 0.8, 40)
    t = paired_shift_test(before, before + 0.02 + 0.011 * z, margin=0.05)
    # Alone: significant, inside the margin, and every candidate provably within it → invariant.
    assert t.p_value < 1e-9 and t.equivalence_p < 1e-9 and 0.001 < t.stable_p < 0.05
    assert t.verdict == "invariant" and "proven smaller than the margin" in t.note
    # Among 41 tests, Holm lifts the stability p above alpha: no longer invariant, and the note
    # saying "proven smaller than the margin" must go with the old verdict.
    others = [paired_shift_test(before, before + 0.3 * np.roll(z, k), margin=0.05) for k in range(40)]
    corrected = correct([t] + others, method="holm")[0]
    assert corrected.verdict == "inconclusive"
    assert "proven smaller than the margin" not in corrected.note
