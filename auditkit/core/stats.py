"""Paired shift tests, equivalence (TOST), multiplicity correction and sample-size planning.

One trait's scores on the same clips before and after an edit give differences
``d = after - before``. *invariant* needs a positive proof of equivalence within
``±margin`` (TOST), because a non-significant test alone only says the data were too few; a
*shift* is a significant paired t-test that is not proven smaller than the margin. Every
degenerate input (no clips, constant differences, a rater that ignores the edit) yields a
defined, conservative result instead of NaN, a warning or a crash: an audit of many cells must
never abort because one cell is odd.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import special as _sp
from scipy import stats as _st

from .result import ShiftTest

__all__ = ["paired_shift_test", "adjust_pvalues", "correct", "verdict", "clips_needed",
           "ADJUST_METHODS"]

ADJUST_METHODS = ("holm", "bh", "fdr_bh", "bonferroni", "none")
MIN_N = 3  # below this a t-test has <2 degrees of freedom: too fragile to decide anything
_SMALL_NOTE = "a detectable shift, proven smaller than the margin"
_REL_TOL = 1e-12  # differences whose sd is below this (relative) are float noise, not spread
_HUGE = 2.0 ** 480  # scores beyond this are rescaled first: their differences' squares would overflow


# --------------------------------------------------------------------------- validation
_WANTED = {"before": "a 1-D array of real numbers", "after": "a 1-D array of real numbers",
           "margin": "a finite number > 0", "alpha": "a number in (0, 0.5)", "power": "a number in (0, 1)",
           "max_n": f"an integer >= {MIN_N}"}


def _validate(before: Any = None, after: Any = None, *, margin: Any = None, alpha: Any = None,
              power: Any = None, method: Any = None, max_n: Any = None, required: Sequence[str] = ()
              ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The one place arguments are checked, so every public function words errors alike. An
    argument left ``None`` is not checked, unless it is ``required``."""
    given = {"before": before, "after": after, "margin": margin, "alpha": alpha, "power": power,
             "max_n": max_n}
    for name in required:
        if given[name] is None:
            raise ValueError(f"{name} must be {_WANTED[name]}, got None")
    arrays: list[np.ndarray | None] = []
    for name, value in (("before", before), ("after", after)):
        if value is None:
            arrays.append(None)
            continue
        raw = np.asarray(value)
        if raw.dtype.kind not in "biuf":
            raise ValueError(f"{name} must be a 1-D array of real numbers, got dtype {raw.dtype}")
        if raw.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array of real numbers, got shape {raw.shape}")
        arr = raw.astype(float)
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{name} must contain only finite numbers; {name}[{i}] is {arr[i]!r}"
                             f" ({bad.size} non-finite value(s) in total)")
        arrays.append(arr)
    b, a = arrays
    if a is not None and b is not None and a.shape != b.shape:
        raise ValueError(f"before and after must have the same length (paired clips), "
                         f"got {b.size} and {a.size}")
    for name, value, lo, hi, what in (("margin", margin, 0.0, math.inf, "a finite number > 0"),
                                      ("alpha", alpha, 0.0, 0.5, "a number in (0, 0.5)"),
                                      ("power", power, 0.0, 1.0, "a number in (0, 1)")):
        if value is None:
            continue
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be {what}, got {value!r}") from None
        if isinstance(value, bool) or not (math.isfinite(x) and lo < x < hi):
            raise ValueError(f"{name} must be {what}, got {value!r}")
    if method is not None and method not in ADJUST_METHODS:
        raise ValueError(f"method must be one of {ADJUST_METHODS}, got {method!r}")
    if max_n is not None and (isinstance(max_n, bool) or not isinstance(max_n, (int, np.integer))
                              or max_n < MIN_N):
        raise ValueError(f"max_n must be an integer >= {MIN_N}, got {max_n!r}")
    return b, a


# --------------------------------------------------------------------------- the paired test
def _with_small_note(note: str, verdict_: str, p: float, alpha: float) -> str:
    """The note says "detectable but inside the margin" exactly when that is the verdict's reason:
    recomputed from the final verdict, so a correction that changes it also changes the note."""
    parts = [x for x in note.split("; ") if x and x != _SMALL_NOTE]
    if verdict_ == "invariant" and p < alpha:
        parts.append(_SMALL_NOTE)
    return "; ".join(parts)


def verdict(p_adjusted: float, equivalence_p_adjusted: float, alpha: float) -> str:
    """Equivalence shown wins over significance: the margin is the user's statement of the
    smallest shift that matters, so a shift proven smaller than it is ``invariant`` (the raw
    p-value still shows it is detectable). Otherwise a significant shift is ``shift``, and
    neither proof is ``inconclusive`` — never ``invariant`` for lack of significance."""
    if equivalence_p_adjusted < alpha:
        return "invariant"
    if p_adjusted < alpha:
        return "shift"
    return "inconclusive"


def _wilcoxon(d: np.ndarray) -> float:
    if not np.any(d):
        return 1.0  # scipy divides 0/0 here; a rater that ignores the edit shows no evidence
    if d.size <= _EXACT_TIES_N and (np.any(d == 0) or np.unique(np.abs(d)).size < d.size):
        return _signed_rank_by_enumeration(d)
    try:
        p = float(_st.wilcoxon(d, zero_method="pratt").pvalue)
    except ValueError:
        p = math.nan
    if math.isfinite(p):
        return p
    # Only reached when every nonzero difference has one sign and equal size: the exact
    # signed-rank null puts 2 / 2**k on that outcome.
    k = int(np.count_nonzero(d))
    return min(1.0, 2.0 * 0.5 ** k) if np.all(d[d != 0] > 0) or np.all(d[d != 0] < 0) else 1.0


_EXACT_TIES_N = 13  # scipy's own limit for enumerating sign patterns when there are ties or zeros


def _signed_rank_by_enumeration(d: np.ndarray) -> float:
    """The two-sided signed-rank p-value (Pratt's zeros) from all 2**n sign patterns: what
    ``scipy.stats.wilcoxon`` computes for up to 13 differences with ties or zeros, to the same
    number, but scipy gets there through its generic permutation test at about a second a call,
    and quantised scores make ties the common case."""
    nonzero = d != 0
    ranks = _st.rankdata(np.abs(d))[nonzero]  # zeros take part in the ranking, then drop out
    observed = float(ranks[d[nonzero] > 0].sum())
    k = ranks.size
    # A zero's sign flip changes nothing, so patterns of the nonzero ones carry the same shares.
    patterns = (np.arange(2 ** k)[:, None] >> np.arange(k)) & 1
    null = patterns @ ranks
    gamma = abs(np.finfo(float).eps * 100 * observed)  # scipy's tolerance for equal sums
    less = np.count_nonzero(null <= observed + gamma) / null.size
    greater = np.count_nonzero(null >= observed - gamma) / null.size
    return float(min(1.0, 2.0 * min(less, greater)))


def paired_shift_test(before: Any, after: Any, *, margin: float, alpha: float = 0.05,
                      perturbation: str | None = None, trait: str | None = None) -> ShiftTest:
    """Test whether an edit shifts a rater's scores, and whether it provably does not.

    ``margin`` is the smallest shift that matters (in score units): equivalence is claimed only
    when the TOST rejects a shift of ``±margin``. Fewer than three clips, or constant
    differences, give defined results with a ``note`` rather than NaN.
    """
    b, a = _validate(before, after, margin=margin, alpha=alpha,
                     required=("before", "after", "margin", "alpha"))
    assert a is not None and b is not None
    margin, alpha = float(margin), float(alpha)
    # Finite scores near the float limit overflow in a - b, in the sum or in the squares, and the
    # NaN that follows would reach the verdict. Every statistic here is scale-free, so such input
    # is tested after an exact power-of-two rescaling; only the shift, sd and interval are scaled
    # back (to inf when the true shift lies beyond the float range).
    top = float(max(np.abs(a).max(), np.abs(b).max())) if a.size else 0.0
    shift_by = math.frexp(top)[1] if top > _HUGE else 0  # scale = 2 ** shift_by
    d = np.ldexp(a, -shift_by) - np.ldexp(b, -shift_by)
    m = math.ldexp(margin, -shift_by)
    n = int(d.size)
    mean = float(d.mean()) if n else None
    sd = float(d.std(ddof=1)) if n >= 2 else None
    ci_low = ci_high = dz = t = None
    note = ""
    constant = sd is not None and mean is not None and sd <= _REL_TOL * max(1.0, abs(mean))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if constant:
            assert mean is not None
            sd = 0.0
            if abs(mean) <= _REL_TOL:
                mean = 0.0
            ci_low = ci_high = mean
            dz = t = 0.0 if mean == 0.0 else None  # 0/0 read as "no shift", c/0 left undefined
        elif sd is not None and mean is not None:
            se = sd / math.sqrt(n)
            t = mean / se
            dz = mean / sd
            half = float(_st.t.ppf(1.0 - alpha / 2.0, n - 1)) * se
            ci_low, ci_high = mean - half, mean + half

        if n < MIN_N:
            p = wil = eq = 1.0
            note = "fewer than 3 paired clips"
        elif constant:
            assert mean is not None
            if mean == 0.0:
                p, wil, eq = 1.0, 1.0, 0.0
                note = ("all differences are zero" if not np.any(d)
                        else "differences are zero up to rounding")
            else:
                p, wil = 0.0, _wilcoxon(d)
                eq = 0.0 if abs(mean) < m else 1.0
                note = f"differences are constant ({float(np.ldexp(mean, shift_by)):.6g})"
        else:
            assert mean is not None and sd is not None and t is not None
            df, se = n - 1, sd / math.sqrt(n)
            p = float(2.0 * _st.t.sf(abs(t), df))
            eq = max(float(_st.t.sf((mean + m) / se, df)),
                     float(_st.t.cdf((mean - m) / se, df)))
            wil = _wilcoxon(d)
    v = verdict(p, eq, alpha)
    note = _with_small_note(note, v, p, alpha)

    def unscaled(x: float | None) -> float | None:
        with np.errstate(over="ignore"):
            return None if x is None else float(np.ldexp(x, shift_by))

    return ShiftTest(
        n=n, mean_shift=unscaled(mean), sd=unscaled(sd), ci_low=unscaled(ci_low), ci_high=unscaled(ci_high),
        effect_size_dz=dz, t_statistic=t, p_value=p, wilcoxon_p=wil, equivalence_p=eq, margin=margin,
        alpha=alpha, verdict=v, n_needed=_needed(mean, sd, m, alpha) if v == "inconclusive" else None,
        note=note, perturbation=perturbation, trait=trait)


# --------------------------------------------------------------------------- multiplicity
def adjust_pvalues(pvalues: Sequence[float] | np.ndarray, method: str = "holm") -> np.ndarray:
    """Adjusted p-values; Holm controls the family-wise error, BH the false discovery rate."""
    _validate(method=method)
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be a 1-D array, got shape {p.shape}")
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("pvalues must all be finite numbers in [0, 1]")
    m = p.size
    if m == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    order = np.argsort(p, kind="stable")
    ps = p[order]
    if method == "holm":
        adj = np.maximum.accumulate(ps * np.arange(m, 0, -1))
    else:  # bh / fdr_bh: step-up, so the running minimum is taken from the largest p down
        adj = np.minimum.accumulate((ps * m / np.arange(1, m + 1))[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def correct(tests: Iterable[ShiftTest], *, method: str = "holm",
            alpha: float | None = None) -> tuple[ShiftTest, ...]:
    """Correct a whole audit's family and re-decide each verdict on the adjusted p-values.

    Shift and equivalence p-values are corrected as two separate families, since each verdict
    is a claim of its own. ``n_needed`` of the inconclusive ones is planned at ``alpha / m``
    (the strictest level the correction may apply), so it does not promise too few clips.
    """
    _validate(method=method, alpha=alpha)
    tests = tuple(tests)
    m = len(tests)
    if m == 0:
        return ()
    p_adj = adjust_pvalues([t.p_value for t in tests], method)
    eq_adj = adjust_pvalues([t.equivalence_p for t in tests], method)
    out = []
    for t, pa, ea in zip(tests, p_adj, eq_adj):
        a = float(alpha) if alpha is not None else t.alpha
        v = verdict(float(pa), float(ea), a)
        plan_alpha = a if method == "none" else a / m
        note = _with_small_note(t.note, v, float(pa), a)
        out.append(t.with_(alpha=a, p_adjusted=float(pa), equivalence_p_adjusted=float(ea),
                           verdict=v, note=note,
                           n_needed=_needed(t.mean_shift, t.sd, t.margin, plan_alpha)
                           if v == "inconclusive" else None))
    return tuple(out)


# --------------------------------------------------------------------------- planning
def _power(n: int, mean: float, sd: float, margin: float, alpha: float, equivalence: bool
           ) -> float:
    # scipy.special, not scipy.stats: the planner evaluates this dozens of times per cell and
    # the distribution objects' argument handling would dominate an audit's run time.
    df, se = n - 1, sd / math.sqrt(n)
    if equivalence:
        tc = _sp.stdtrit(df, 1.0 - alpha)
        # Bonferroni lower bound on P(both one-sided tests reject): slightly conservative.
        pw = (_sp.nctdtr(df, (mean - margin) / se, -tc)
              - _sp.nctdtr(df, (mean + margin) / se, tc))
    else:
        tc = _sp.stdtrit(df, 1.0 - alpha / 2.0)
        ncp = abs(mean) / se
        pw = 1.0 - _sp.nctdtr(df, ncp, tc) + _sp.nctdtr(df, ncp, -tc)
    return float(pw) if math.isfinite(pw) else 0.0


def clips_needed(mean_shift: float | None, sd: float | None, *, margin: float,
                 alpha: float = 0.05, power: float = 0.8, max_n: int = 100_000) -> int | None:
    """Clips needed for a decisive verdict if the observed mean and sd were the truth.

    Inside the margin the goal is proving equivalence (TOST power); on or beyond it, detecting
    the shift (two-sided t-test power). ``None`` when the answer is undefined (no estimate)
    or not reachable with ``max_n`` clips, e.g. a mean sitting right on the margin.
    """
    _validate(margin=margin, alpha=alpha, power=power, max_n=max_n,
              required=("margin", "alpha", "power", "max_n"))
    return _needed(mean_shift, sd, float(margin), float(alpha), float(power), int(max_n))


def _needed(mean: float | None, sd: float | None, margin: float, alpha: float,
            power: float = 0.8, max_n: int = 100_000) -> int | None:
    if mean is None or sd is None or not (math.isfinite(mean) and math.isfinite(sd)) or sd < 0:
        return None
    if sd <= _REL_TOL * max(1.0, abs(mean)):
        return MIN_N  # constant differences are decided at the minimum sample size
    equivalence = abs(mean) < margin

    def ok(n: int) -> bool:
        return _power(n, mean, sd, margin, alpha, equivalence) >= power

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if ok(MIN_N):
            return MIN_N
        lo, hi = MIN_N, MIN_N * 2
        while not ok(hi):  # doubling: power is increasing in n, so the answer is bracketed
            if hi >= max_n:
                return None
            lo, hi = hi, min(hi * 2, max_n)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi
