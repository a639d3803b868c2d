"""Property-based tests: the statistics and the configuration parser on whatever input a
generator can think of. Each either gives a valid answer or says, in one message naming the
argument or key, what is wrong with the input; no other exception ever escapes. The example
budgets (profiles "dev", "ci", "deep") are set in conftest.py."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from auditkit.core.settings import AuditConfig
from auditkit.contract.errors import ConfigError
from auditkit.core.result import ShiftTest
from auditkit.stats import CORRECTIONS, adjust_pvalues, clips_needed, correct, paired_shift_test, verdict_of

METHODS = (*CORRECTIONS, "fdr_bh")  # adjust_pvalues also takes statsmodels' name for BH

VERDICTS = {"shift", "unstable", "invariant", "inconclusive"}

# Every float a rater could hand back, and some it never should: NaN, infinities, the largest and
# smallest finite and subnormal numbers, signed zeros.
any_float = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)
finite = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True)
score = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def pairs(draw, elements=any_float, max_size=12):
    """Paired scores: lengths 0 to 3 as often as longer ones, constant runs, ties, zero differences."""
    n = draw(st.one_of(st.integers(0, 3), st.integers(4, max_size)))
    kind = draw(st.sampled_from(["free", "constant shift", "no shift", "constant scores"]))
    before = draw(st.lists(elements, min_size=n, max_size=n))
    if kind == "free":
        after = draw(st.lists(elements, min_size=n, max_size=n))
    elif kind == "constant shift":
        c = draw(elements)
        after = [b + c for b in before]
    elif kind == "no shift":
        after = list(before)
    else:
        c = draw(elements)
        before, after = [c] * n, [draw(elements)] * n
    return before, after


margins = st.one_of(st.floats(min_value=1e-9, max_value=1e6), st.just(0.05))
alphas = st.one_of(st.sampled_from([0.05, 0.01, 0.1]), st.floats(min_value=1e-6, max_value=0.49))


def check_valid(r: ShiftTest, n: int, alpha: float) -> None:
    """What any test result must satisfy, whatever its input."""
    assert isinstance(r, ShiftTest)
    assert r.verdict in VERDICTS
    assert r.n == n  # every pair counts: non-finite pairs are refused, not dropped
    for p in (r.p_value, r.wilcoxon_p, r.equivalence_p, r.unstable_p, r.stable_p):
        assert isinstance(p, float) and 0.0 <= p <= 1.0, r  # defined, never NaN
    for share in (r.share_moved, r.share_moved_low, r.share_moved_high):
        assert share is None or 0.0 <= share <= 1.0, r
    if r.share_moved is not None:
        assert r.share_moved_low <= r.share_moved + 1e-12
    # "Not significant" is never "invariant": only shown equivalence and shown stability are.
    assert r.verdict == verdict_of(r, alpha)
    if r.verdict == "invariant":
        assert r.equivalence_p < alpha and r.stable_p < alpha and r.share_moved < r.tolerance
    if n < 3:
        assert r.verdict == "inconclusive" and "fewer than 3" in r.note
    if r.mean_shift is not None and r.ci_low is not None:
        assert r.ci_low <= r.mean_shift <= r.ci_high
    if r.sd is not None:
        assert r.sd >= 0
    if r.verdict == "inconclusive" and r.n_needed is not None:
        assert r.n_needed >= 3


@given(data=pairs(), margin=margins, alpha=alphas)
@example(data=([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]), margin=0.05, alpha=0.05)
@example(data=([1e308, -1e308, 1e308], [-1e308, 1e308, -1e308]), margin=0.05, alpha=0.05)
@example(data=([0.0, 0.0, 0.0, 0.0], [5e-324, 0.0, 5e-324, 0.0]), margin=1e-9, alpha=0.05)
def test_paired_shift_test_answers_or_names_the_bad_argument(data, margin, alpha):
    before, after = data
    usable = all(math.isfinite(x) for x in before + after)
    try:
        r = paired_shift_test(before, after, margin=margin, alpha=alpha)
    except ValueError as exc:
        assert not usable, f"refused finite input: {exc}"
        word = str(exc).split()[0]
        assert word in ("before", "after"), exc
        assert "finite" in str(exc)
        return
    assert usable, "accepted NaN or inf"
    check_valid(r, len(before), alpha)


@given(data=pairs(elements=finite), margin=margins)
def test_huge_and_tiny_magnitudes_never_give_nan(data, margin):
    before, after = data
    assume(all(math.isfinite(x) for x in after))  # "after = before + c" may itself overflow
    r = paired_shift_test(before, after, margin=margin)
    check_valid(r, len(before), 0.05)


@given(before=st.lists(score, min_size=0, max_size=10), after=st.lists(score, min_size=0, max_size=10))
def test_unpaired_lengths_are_refused_by_name(before, after):
    assume(len(before) != len(after))
    with pytest.raises(ValueError, match="before and after must have the same length"):
        paired_shift_test(before, after, margin=0.05)


@given(value=st.one_of(any_float, st.integers(-5, 5), st.booleans(), st.none(), st.text(max_size=3),
                       st.lists(st.floats(), max_size=2)))
def test_margin_and_alpha_are_checked_by_name(value):
    for name in ("margin", "alpha"):
        kwargs = {"margin": 0.05, name: value}
        try:
            r = paired_shift_test([1.0, 2.0, 3.0], [1.5, 2.0, 3.5], **kwargs)
        except ValueError as exc:
            assert str(exc).startswith(f"{name} must be"), exc
        else:
            x = float(value)
            assert not isinstance(value, bool) and math.isfinite(x) and x > 0
            assert name == "margin" or x < 0.5
            check_valid(r, 3, r.alpha)


@given(data=pairs(elements=score), margin=margins, alpha=alphas)
def test_swapping_before_and_after_mirrors_the_result(data, margin, alpha):
    before, after = data
    r = paired_shift_test(before, after, margin=margin, alpha=alpha)
    s = paired_shift_test(after, before, margin=margin, alpha=alpha)
    assert (s.mean_shift is None) == (r.mean_shift is None) and (s.ci_low is None) == (r.ci_low is None)
    if r.mean_shift is not None:
        assert s.mean_shift == -r.mean_shift
    if r.ci_low is not None:
        assert s.ci_low == pytest.approx(-r.ci_high, rel=1e-12, abs=1e-300)
        assert s.ci_high == pytest.approx(-r.ci_low, rel=1e-12, abs=1e-300)
    for field in ("p_value", "wilcoxon_p", "equivalence_p"):
        assert getattr(s, field) == pytest.approx(getattr(r, field), rel=1e-9, abs=1e-12), field
    near = [p for p in (r.p_value, r.equivalence_p) if abs(p - alpha) < 1e-9]
    if not near:  # the tail functions differ in the last bits, which only matters on the edge
        assert s.verdict == r.verdict


# Scores on a binary grid (k / 64): sums, shifts and power-of-two scalings are then exact in
# floating point, so the properties below are exact rather than "close enough".
grid = st.integers(-(2 ** 12), 2 ** 12).map(lambda k: k / 64)


@given(data=pairs(elements=grid), shift=grid, margin=st.sampled_from([0.05, 0.25, 1.0, 3.0]))
def test_adding_a_constant_to_both_changes_nothing(data, shift, margin):
    before, after = data
    r = paired_shift_test(before, after, margin=margin)
    s = paired_shift_test([b + shift for b in before], [a + shift for a in after], margin=margin)
    assert s == r


@given(data=pairs(elements=grid), power=st.integers(-8, 8), margin=st.sampled_from([0.05, 0.25, 1.0, 3.0]))
def test_scaling_scores_and_margin_together_keeps_every_p_value(data, power, margin):
    before, after = data
    c = 2.0 ** power
    r = paired_shift_test(before, after, margin=margin)
    s = paired_shift_test([b * c for b in before], [a * c for a in after], margin=margin * c)
    assert (s.p_value, s.wilcoxon_p, s.equivalence_p, s.verdict, s.n_needed) == (
        r.p_value, r.wilcoxon_p, r.equivalence_p, r.verdict, r.n_needed)
    if r.mean_shift is not None:
        assert s.mean_shift == r.mean_shift * c
        assert r.effect_size_dz == s.effect_size_dz


@given(data=pairs(elements=grid), margin=st.sampled_from([0.05, 1.0]), draw=st.data())
def test_order_of_clips_does_not_matter(data, margin, draw):
    before, after = data
    order = draw.draw(st.permutations(range(len(before))))
    r = paired_shift_test(before, after, margin=margin)
    s = paired_shift_test([before[i] for i in order], [after[i] for i in order], margin=margin)
    assert s.verdict == r.verdict
    assert s.p_value == pytest.approx(r.p_value, rel=1e-9, abs=1e-12)
    assert s.equivalence_p == pytest.approx(r.equivalence_p, rel=1e-9, abs=1e-12)


# --------------------------------------------------------------------------- corrections
pvalues = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=0, max_size=12)


@given(p=pvalues, method=st.sampled_from(METHODS))
def test_adjusted_p_values_are_p_values_no_smaller_than_the_raw_ones(p, method):
    adj = adjust_pvalues(p, method)
    assert adj.shape == (len(p),)
    assert np.all((adj >= 0) & (adj <= 1))
    assert np.all(adj >= np.asarray(p, dtype=float) - 1e-15)
    # Monotone: a smaller raw p-value never gets a larger adjusted one.
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adj[order]) >= -1e-15)


@given(p=st.lists(st.one_of(any_float, st.floats(min_value=-2, max_value=3)), min_size=1, max_size=6),
       method=st.one_of(st.sampled_from(METHODS), st.text(max_size=6)))
def test_bad_p_values_or_method_are_named(p, method):
    try:
        adj = adjust_pvalues(p, method)
    except ValueError as exc:
        assert str(exc).startswith(("pvalues must", "method must")), exc
        bad = method not in METHODS or not all(math.isfinite(x) and 0 <= x <= 1 for x in p)
        assert bad, exc
    else:
        assert method in METHODS and np.all((adj >= 0) & (adj <= 1))


@given(cells=st.lists(st.tuples(pairs(elements=score, max_size=8), margins), min_size=0, max_size=6),
       method=st.sampled_from(METHODS), alpha=alphas)
@settings(max_examples=60)
def test_correcting_a_family_keeps_every_verdict_valid(cells, method, alpha):
    raw = [paired_shift_test(b, a, margin=m, alpha=alpha) for (b, a), m in cells]
    out = correct(raw, method=method)
    assert len(out) == len(raw)
    for before, after in zip(raw, out):
        assert 0 <= after.p_adjusted <= 1 and 0 <= after.equivalence_p_adjusted <= 1
        assert after.p_adjusted >= before.p_value - 1e-15
        assert after.equivalence_p_adjusted >= before.equivalence_p - 1e-15
        assert after.verdict == verdict_of(after, alpha)
        # A correction only takes claims away: every verdict after it rests on a claim the raw
        # p-values already made (a shift proven inside the margin may lose that proof and become
        # a shift, but nothing becomes invariant or unstable that was not shown so before).
        assert after.unstable_p_adjusted >= before.unstable_p - 1e-15
        assert after.stable_p_adjusted >= before.stable_p - 1e-15
        if after.verdict == "shift":
            assert before.p_value < alpha
        if after.verdict == "unstable":
            assert before.unstable_p < alpha
        if after.verdict == "invariant":
            assert before.verdict == "invariant"
        if after.verdict == "inconclusive":
            assert after.n_needed is None or after.n_needed >= 3


@given(mean=st.one_of(st.none(), any_float), sd=st.one_of(st.none(), any_float), margin=margins,
       alpha=st.sampled_from([0.05, 0.01]), power=st.sampled_from([0.8, 0.9]))
@settings(max_examples=100)
def test_clips_needed_is_a_count_or_none(mean, sd, margin, alpha, power):
    n = clips_needed(mean, sd, margin=margin, alpha=alpha, power=power, max_n=2000)
    assert n is None or (isinstance(n, int) and 3 <= n <= 2000)


# --------------------------------------------------------------------------- configuration
KEYS = [f.name for f in dataclasses.fields(AuditConfig) if f.name != "source"]

# The values TOML can express, nested a little: what a configuration file can possibly hold.
# Numbers on the edges of every range a key has, words some keys take: a random float or string
# alone rarely lands on the one value that is accepted yet wrong.
EDGES = [0, 1, -1, 2 ** 63 - 1, 0.0, -0.0, 0.05, 0.5, 0.999, 1e-300, 5e-324, 1e308, math.inf, -math.inf, math.nan]
WORDS = ["holm", "bh", "none", "cpu", "cuda", "auto", "local", "ray", "lighting", "lighting:dim", "openness",
         "", " ", "x.pt", "../x.py:make"]
toml_scalar = st.one_of(st.sampled_from(EDGES), st.sampled_from(WORDS), st.booleans(),
                        st.integers(-(2 ** 63), 2 ** 63 - 1), st.floats(), st.text(max_size=8))
toml_value = st.recursive(toml_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.one_of(st.sampled_from(["openness", "default"]), st.text(max_size=6)), inner, max_size=3)),
    max_leaves=6)
# A few keys at a time: with many, the first bad one hides what the others would do.
config_dicts = st.tuples(
    st.lists(st.sampled_from(KEYS), max_size=3, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({k: st.one_of(st.sampled_from(EDGES), toml_value) for k in keys})),
    st.dictionaries(st.text(max_size=10), toml_value, max_size=1),
).map(lambda parts: {**parts[1], **parts[0]})


def _names_the_key(message: str, data: dict) -> bool:
    return any(key in message or repr(key) in message for key in data) or not data


@given(data=config_dicts)
@example(data={"margin": math.inf})
@example(data={"margin": {"openness": math.nan}, "alpha": 0.05})
@settings(max_examples=200)
def test_any_mapping_is_a_config_or_a_config_error_naming_the_key(data):
    try:
        config = AuditConfig.from_mapping(data, source="auditkit.toml")
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("auditkit.toml: ") and "\n" not in message
        assert _names_the_key(message, data), message
        return
    assert_usable(config)


def assert_usable(config: AuditConfig) -> None:
    assert isinstance(config, AuditConfig)
    assert AuditConfig.from_mapping(config.to_dict(), source="again") == config  # round trip
    # What the parser accepts, the statistics accept: no audit fails later on a bad margin.
    margins = config.margin.values() if isinstance(config.margin, dict) else [config.margin]
    for margin in margins:
        paired_shift_test([0.0, 1.0, 2.0], [0.5, 1.0, 2.0], margin=margin, alpha=config.alpha)
    assert all(math.isfinite(w) for w in config.shortlist_weights.values())


@given(key=st.sampled_from(["margin", "shortlist_weights"]), bad=st.sampled_from([math.inf, -math.inf, math.nan]))
def test_infinite_or_nan_numbers_are_refused(key, bad):
    value = bad if key == "margin" else {"openness": bad}
    with pytest.raises(ConfigError, match=key):
        AuditConfig.from_mapping({key: value}, source="auditkit.toml")
    with pytest.raises(ConfigError, match=key):
        AuditConfig.from_mapping({"margin": {"openness": bad}} if key == "margin" else {key: value})


def _toml_literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value == math.inf else "-inf" if value == -math.inf
                                                else repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_literal(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml_str(k)} = {_toml_literal(v)}" for k, v in value.items()) + "}"


def _toml_str(text: str) -> str:
    """A TOML basic string holding exactly ``text``, control characters escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable() and ch != "\x7f":
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


@given(data=config_dicts, junk=st.sampled_from(["", "\n[", "\nrater = ", "\n\x00", "\nalpha = 1 2"]))
@settings(max_examples=150)
def test_any_toml_file_is_a_config_or_one_line_naming_file_and_key(tmp_path_factory, data, junk):
    path = tmp_path_factory.mktemp("cfg") / "auditkit.toml"
    text = "\n".join(f"{_toml_str(k)} = {_toml_literal(v)}" for k, v in data.items()) + junk
    path.write_text(text, encoding="utf-8")
    try:
        config = AuditConfig.from_file(path)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(str(path)), message
        assert "\n" not in message.rstrip(), message
        assert "not valid TOML" in message or _names_the_key(message, data), message
        return
    assert not junk
    assert_usable(config)


@given(data=config_dicts)
@settings(max_examples=100)
def test_command_line_overrides_name_the_flag(data):
    known = {k: v for k, v in data.items() if k in KEYS and k != "source"}
    try:
        AuditConfig().override(**known)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("--"), message
        from auditkit.core.settings import PARAMS

        flag = message.split()[0].split(".")[0]
        assert any(PARAMS[k].flag == flag or "--" + k.replace("_", "-") == flag for k in known), message
