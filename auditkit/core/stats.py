"""Paired shift tests, individual agreement, multiplicity correction and sample-size planning.

One trait's scores on the same units before and after an edit give differences
``d = after - before``. A *unit* is a person when clips carry a subject id (several clips of one
person are that person's evidence: their differences are averaged into one), else a clip.

Two questions are asked of the differences:

* **Is there a systematic shift?** A paired t-test (Wilcoxon signed-rank beside it) for the
  mean, and a TOST equivalence test of the mean against ``±margin``.
* **Are candidates moved?** The share of units whose ``|d|`` exceeds the margin. That more than
  ``tolerance`` of them move is *shown* by an exact one-sided binomial test on the count — free of
  any assumption about the shape of the differences. That fewer do is shown with a two-sided
  normal tolerance interval (ISO 16269-6): ``mean ± k·sd`` holding ``1 − tolerance`` of the
  population with confidence ``1 − alpha`` must lie inside ``±margin``; and, so that the normal
  model is used only where the data do not contradict it, the observed share must itself be below
  the tolerance. Bland–Altman 95% limits of agreement, with exact confidence intervals, describe
  the same spread.

Verdicts, on p-values corrected across the whole audit (each claim a family of its own):
``shift`` — the mean shift is significant and not proven inside the margin; ``unstable`` — more
than the tolerated share of candidates is shown to move beyond the margin (in either direction);
``invariant`` — the mean is proven inside the margin *and* the share moved is proven below the
tolerance; ``inconclusive`` — none of these. A significant shift proven smaller than the margin is
not a ``shift``: the margin is the user's statement of the smallest shift that matters.

Every degenerate input (no units, constant differences, a rater that ignores the edit) yields a
defined, conservative result instead of NaN, a warning or a crash: an audit of many cells must
never abort because one cell is odd.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np
from scipy import special as _sp
from scipy import stats as _st

from auditkit.contract.errors import ConfigError
from auditkit.contract.params import Number, OneOf, Rule, check

from .result import LimitsOfAgreement, ShiftTest
from .settings import (ALPHA, CORRECTION_ALIASES, CORRECTIONS, DEFAULT_TOLERANCE, MARGIN, TOLERANCE,
                       UNITS)

__all__ = ["paired_shift_test", "adjust_pvalues", "correct", "verdict", "verdict_of", "clips_needed",
           "unit_differences", "pool_units", "tolerance_factor", "tolerance_confidence", "limits_of_agreement",
           "LimitsOfAgreement", "CORRECTIONS", "DEFAULT_TOLERANCE", "MIN_N", "UNITS"]

MIN_N = 3  # below this a t-test has <2 degrees of freedom: too fragile to decide anything
LOA_Z = float(_st.norm.ppf(0.975))  # Bland–Altman limits: mean ± 1.96 sd
_SMALL_NOTE = "a detectable shift, proven smaller than the margin"
_REL_TOL = 1e-12  # differences whose sd is below this (relative) are float noise, not spread
_HUGE = 2.0 ** 480  # scores beyond this are rescaled first: their differences' squares would overflow


# --------------------------------------------------------------------------- validation
# The settings' own rules (auditkit.core.settings) check margin, alpha, tolerance and the
# correction, so a bad value reads the same from a file, the command line or this API.
_RULES: dict[str, Rule] = {
    "margin": MARGIN, "alpha": ALPHA, "tolerance": TOLERANCE,
    "method": OneOf((*CORRECTIONS, *CORRECTION_ALIASES)),
    "power": Number(0.0, 1.0, True, True, text="a number in (0, 1)"),
    "max_n": Number(MIN_N, None, integer=True),
}


def _check(name: str, value: Any, required: bool = False) -> None:
    """An argument through its rule (``None``: not given, fine unless ``required``); a refusal is
    a ValueError naming the argument."""
    if value is None:
        if required:
            raise ValueError(f"{name} must be {_RULES[name].what}, got None")
        return
    if isinstance(value, np.generic):  # numpy scalars are the numbers they hold
        value = value.item()
    try:
        check(name, value, _RULES[name], where="")
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def _scores(name: str, value: Any) -> np.ndarray:
    if value is None:
        raise ValueError(f"{name} must be a 1-D array of real numbers, got None")
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
    return arr


def _pair(before: Any, after: Any, groups: Any) -> tuple[np.ndarray, np.ndarray]:
    """The paired scores as float arrays of one length, and ``groups`` one id per clip."""
    b, a = _scores("before", before), _scores("after", after)
    if a.shape != b.shape:
        raise ValueError(f"before and after must have the same length (paired clips), "
                         f"got {b.size} and {a.size}")
    if groups is not None:
        if isinstance(groups, (str, bytes)) or not isinstance(groups, Sequence | np.ndarray):
            raise ValueError(f"groups must be a sequence of subject ids, one per clip, got {type(groups).__name__}")
        if len(groups) != b.size:
            raise ValueError(f"groups must have one subject id per clip: {len(groups)} ids for {b.size} clips")
        if not all(isinstance(g, Hashable) and g is not None for g in groups):
            raise ValueError("groups must hold a subject id (not None) for every clip")
    return b, a


# --------------------------------------------------------------------------- units
def pool_units(values: Iterable[tuple[Hashable, float]]) -> dict[Hashable, float]:
    """Each unit's mean of its values (a person's clips pooled into one), in order of the units'
    ids as text: the one place clips become people."""
    by: dict[Hashable, list[float]] = {}
    for unit, x in values:
        by.setdefault(unit, []).append(float(x))
    return {u: math.fsum(v) / len(v) for u, v in sorted(by.items(), key=lambda kv: str(kv[0]))}


def unit_differences(d: np.ndarray, groups: Sequence[Hashable] | None) -> np.ndarray:
    """Per-unit differences: each person's mean over their clips (in order of the ids, sorted as
    text), or the clips' own when there are no ids."""
    if groups is None:
        return np.asarray(d, dtype=float)
    return np.array(list(pool_units(zip(groups, d)).values()), dtype=float)


# --------------------------------------------------------------------------- tolerance intervals
# Gauss–Legendre nodes on u = z·√n in [0, 9]: past 9 the normal density is below 1e-17.
_U, _W = np.polynomial.legendre.leggauss(96)
_U = 4.5 * (_U + 1.0)
_W = 4.5 * _W
_PHI_W = 2.0 * _W * np.exp(-0.5 * _U ** 2) / math.sqrt(2.0 * math.pi)


def _half_width(z: np.ndarray, outside: float) -> np.ndarray:
    """r with Φ(z − r) + 1 − Φ(z + r) = outside (the interval z ± r misses that share), z ≥ 0.

    Tails are computed as tails, so a share of 1e-12 keeps its digits. Newton's method from a
    start that is never past the root (the interval centred at 0 holds the most, so
    ``−ndtri(outside / 2)`` is at most the root; so is ``z − ndtri(outside)``) and stays right of
    ``z``, where the miss is decreasing and convex: every step lands closer from the left."""
    r = np.maximum(z - _sp.ndtri(outside), -_sp.ndtri(outside / 2.0))
    root_2pi = math.sqrt(2.0 * math.pi)
    for _ in range(40):
        a, b = z + r, z - r
        g = _sp.ndtr(-a) + _sp.ndtr(b) - outside
        step = g * root_2pi / (np.exp(-0.5 * a * a) + np.exp(-0.5 * b * b))
        r = r + step
        if np.max(np.abs(step)) <= 1e-12 * np.max(r):
            break
    return r


def _miss(k: float, n: int, outside: float) -> float:
    """1 − confidence of the two-sided normal tolerance interval ``x̄ ± k·s`` (n values) for
    content ``1 − outside``: the chance that it misses more than ``outside`` of the population
    (exact, the integral of Odeh and Owen; computed as the complement to keep tiny values precise)."""
    if k <= 0:
        return 1.0
    r = _half_width(_U / math.sqrt(n), outside)
    df = n - 1
    return float(np.clip(np.dot(_PHI_W, _sp.chdtr(df, df * (r / k) ** 2)), 0.0, 1.0))


def tolerance_confidence(k: float, n: int, content: float) -> float:
    """Confidence that ``x̄ ± k·s`` from ``n`` normal values holds at least ``content`` of the
    population (ISO 16269-6, two-sided, unknown mean and sd)."""
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    return 1.0 - _miss(float(k), int(n), 1.0 - float(content))


@functools.lru_cache(maxsize=4096)  # the planner asks for the same (n, content, confidence) per cell
def tolerance_factor(n: int, content: float, confidence: float) -> float:
    """The two-sided normal tolerance factor k: ``x̄ ± k·s`` holds ``content`` of the population
    with the given confidence."""
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    from scipy.optimize import brentq

    target, outside = 1.0 - confidence, 1.0 - content
    hi = 2.0
    while _miss(hi, n, outside) > target:
        hi *= 2.0
    return float(brentq(lambda k: _miss(k, n, outside) - target, 1e-9, hi, xtol=1e-12))


def _share_upper(k_obs: float, n: int, alpha: float) -> float:
    """The normal-theory upper confidence bound on the share outside ``±margin``: the smallest
    share s for which the tolerance interval of content 1 − s fits within the margin."""
    if k_obs <= 0:
        return 1.0
    from scipy.optimize import brentq

    def excess(log_share: float) -> float:  # decreasing in the share
        return _miss(k_obs, n, math.exp(log_share)) - alpha

    # In log space: the bound spans many orders of magnitude, and 1e-5 relative is plenty for
    # a number shown as a percentage.
    low, high = math.log(1e-12), math.log(0.999)
    if excess(low) <= 0:
        return 0.0
    if excess(high) > 0:
        return 1.0
    return math.exp(brentq(excess, low, high, xtol=1e-5))


def limits_of_agreement(mean: float, sd: float, n: int, alpha: float = 0.05, z: float = LOA_Z
                        ) -> LimitsOfAgreement:
    """Bland–Altman limits ``mean ± z·sd`` and an exact (1 − alpha) confidence interval for each,
    from the noncentral t distribution of ``x̄ + k·s`` (normal differences)."""
    low, high = mean - z * sd, mean + z * sd
    if n < 2 or sd == 0:
        return LimitsOfAgreement(low, high, (low, low), (high, high))
    df, root = n - 1, math.sqrt(n)
    a, b = (float(_st.nct.ppf(q, df, z * root)) / root for q in (alpha / 2.0, 1.0 - alpha / 2.0))
    return LimitsOfAgreement(low, high, (mean - b * sd, mean - a * sd), (mean + a * sd, mean + b * sd))


# --------------------------------------------------------------------------- verdicts
def verdict(*, p_adjusted: float, equivalence_p_adjusted: float, alpha: float,
            unstable_p_adjusted: float = 1.0, stable_p_adjusted: float = 1.0,
            share_below: bool = True) -> str:
    """The verdict from the four corrected claims. A systematic shift outranks instability (a
    rater that moves everyone by +0.15 is first of all shifted); invariance needs both proofs."""
    inside = equivalence_p_adjusted < alpha
    if p_adjusted < alpha and not inside:
        return "shift"
    if unstable_p_adjusted < alpha:
        return "unstable"
    if inside and stable_p_adjusted < alpha and share_below:
        return "invariant"
    return "inconclusive"


def verdict_of(t: ShiftTest, alpha: float | None = None) -> str:
    """The verdict a test's adjusted p-values give (at ``alpha``, default the test's own)."""
    alpha = t.alpha if alpha is None else alpha
    return verdict(p_adjusted=t.p_adjusted, equivalence_p_adjusted=t.equivalence_p_adjusted, alpha=alpha,
                   unstable_p_adjusted=t.unstable_p_adjusted if t.unstable_p_adjusted is not None else 1.0,
                   stable_p_adjusted=t.stable_p_adjusted if t.stable_p_adjusted is not None else 1.0,
                   share_below=t.share_moved is None or t.tolerance is None or t.share_moved < t.tolerance)


def _with_small_note(note: str, verdict_: str, p: float, alpha: float) -> str:
    """The note says "detectable but inside the margin" exactly when that is the verdict's reason:
    recomputed from the final verdict, so a correction that changes it also changes the note."""
    parts = [x for x in note.split("; ") if x and x != _SMALL_NOTE]
    if verdict_ == "invariant" and p < alpha:
        parts.append(_SMALL_NOTE)
    return "; ".join(parts)


# --------------------------------------------------------------------------- Wilcoxon
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


# --------------------------------------------------------------------------- the paired test
def _binomial_greater(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): scipy.stats.binomtest(k, n, p, 'greater').pvalue."""
    return 1.0 if k <= 0 else float(_sp.bdtrc(k - 1, n, p))


def _clopper_pearson_lower(k: int, n: int, alpha: float) -> float:
    return 0.0 if k <= 0 else float(_sp.betaincinv(k, n - k + 1, alpha))


def paired_shift_test(before: Any, after: Any, *, margin: float, alpha: float = 0.05,
                      tolerance: float = DEFAULT_TOLERANCE, groups: Sequence[Hashable] | None = None,
                      perturbation: str | None = None, trait: str | None = None) -> ShiftTest:
    """Test whether an edit shifts a rater's scores or moves candidates, and whether it
    provably does neither.

    ``margin`` is the smallest shift that matters (in score units); ``tolerance`` the share of
    candidates allowed to move by more than that; ``groups`` a subject id per clip, which makes
    people the unit of analysis (each person's clips averaged into one difference). Fewer than
    three units, or constant differences, give defined results with a ``note`` rather than NaN.
    """
    b, a = _pair(before, after, groups)
    for name, value in (("margin", margin), ("alpha", alpha), ("tolerance", tolerance)):
        _check(name, value, required=True)
    margin, alpha, tolerance = float(margin), float(alpha), float(tolerance)
    # Finite scores near the float limit overflow in a - b, in the sum or in the squares, and the
    # NaN that follows would reach the verdict. Every statistic here is scale-free, so such input
    # is tested after an exact power-of-two rescaling; only the shift, sd and interval are scaled
    # back (to inf when the true shift lies beyond the float range).
    top = float(max(np.abs(a).max(), np.abs(b).max())) if a.size else 0.0
    shift_by = math.frexp(top)[1] if top > _HUGE else 0  # scale = 2 ** shift_by
    d = unit_differences(np.ldexp(a, -shift_by) - np.ldexp(b, -shift_by), groups)
    m = math.ldexp(margin, -shift_by)
    n = int(d.size)
    mean = float(d.mean()) if n else None
    sd = float(d.std(ddof=1)) if n >= 2 else None
    ci_low = ci_high = dz = t = None
    note = ""
    constant = sd is not None and mean is not None and sd <= _REL_TOL * max(1.0, abs(mean))
    moved = int(np.count_nonzero(np.abs(d) > m))
    share = moved / n if n else None
    unstable = 1.0 if n < MIN_N else _binomial_greater(moved, n, tolerance)
    share_low = _clopper_pearson_lower(moved, n, alpha) if n else None
    share_high = None
    stable = 1.0
    loa = LimitsOfAgreement(None, None)
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
        if sd is not None and mean is not None:
            loa = limits_of_agreement(mean, sd, n, alpha)

        if n < MIN_N:
            p = wil = eq = 1.0
            note = f"fewer than {MIN_N} paired {'people' if groups is not None else 'clips'}"
        elif constant:
            assert mean is not None
            inside = abs(mean) < m
            stable, share_high = (0.0, 0.0) if inside else (1.0, 1.0)
            if mean == 0.0:
                p, wil, eq = 1.0, 1.0, 0.0
                note = ("all differences are zero" if not np.any(d)
                        else "differences are zero up to rounding")
            else:
                p, wil = 0.0, _wilcoxon(d)
                eq = 0.0 if inside else 1.0
                note = f"differences are constant ({float(np.ldexp(mean, shift_by)):.6g})"
        else:
            assert mean is not None and sd is not None and t is not None
            df, se = n - 1, sd / math.sqrt(n)
            p = float(2.0 * _st.t.sf(abs(t), df))
            eq = max(float(_st.t.sf((mean + m) / se, df)),
                     float(_st.t.cdf((mean - m) / se, df)))
            wil = _wilcoxon(d)
            k_obs = (m - abs(mean)) / sd
            stable = _miss(k_obs, n, tolerance)
            share_high = _share_upper(k_obs, n, alpha)

    def unscaled(x: float | None) -> float | None:
        with np.errstate(over="ignore"):
            return None if x is None else float(np.ldexp(x, shift_by))

    test = ShiftTest(
        n=n, mean_shift=unscaled(mean), sd=unscaled(sd), ci_low=unscaled(ci_low), ci_high=unscaled(ci_high),
        effect_size_dz=dz, t_statistic=t, p_value=p, wilcoxon_p=wil, equivalence_p=eq, margin=margin,
        alpha=alpha, verdict="inconclusive", note=note, perturbation=perturbation, trait=trait,
        unit="person" if groups is not None else "clip", n_clips=int(b.size),
        n_subjects=n if groups is not None else None, tolerance=tolerance, share_moved=share,
        share_moved_low=share_low, share_moved_high=share_high, unstable_p=unstable, stable_p=stable,
        loa_low=unscaled(loa.low), loa_high=unscaled(loa.high),
        loa_low_ci_low=unscaled(loa.low_ci[0]), loa_low_ci_high=unscaled(loa.low_ci[1]),
        loa_high_ci_low=unscaled(loa.high_ci[0]), loa_high_ci_high=unscaled(loa.high_ci[1]))
    v = verdict_of(test, alpha)
    return test.with_(verdict=v, note=_with_small_note(note, v, p, alpha),
                      n_needed=_needed_for(test, alpha) if v == "inconclusive" else None)


# --------------------------------------------------------------------------- multiplicity
def adjust_pvalues(pvalues: Sequence[float] | np.ndarray, method: str = "holm") -> np.ndarray:
    """Adjusted p-values; Holm controls the family-wise error, BH the false discovery rate."""
    _check("method", method)
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

    The shift, equivalence, instability and stability p-values are corrected as four separate
    families, since each verdict is a claim of its own. ``n_needed`` of the inconclusive ones is
    planned at ``alpha / m`` (the strictest level the correction may apply), so it does not
    promise too few units.
    """
    _check("method", method)
    _check("alpha", alpha)
    tests = tuple(tests)
    m = len(tests)
    if m == 0:
        return ()

    def adjusted(name: str) -> list[float | None]:
        raw = [getattr(t, name) for t in tests]
        if any(v is None for v in raw):  # a schema-1 test has no agreement statistics
            return [None] * m
        return [float(v) for v in adjust_pvalues(raw, method)]

    p_adj, eq_adj = adjusted("p_value"), adjusted("equivalence_p")
    unstable_adj, stable_adj = adjusted("unstable_p"), adjusted("stable_p")
    out = []
    for t, pa, ea, ua, sa in zip(tests, p_adj, eq_adj, unstable_adj, stable_adj):
        a = float(alpha) if alpha is not None else t.alpha
        judged = t.with_(alpha=a, p_adjusted=pa, equivalence_p_adjusted=ea, unstable_p_adjusted=ua,
                         stable_p_adjusted=sa)
        v = verdict_of(judged, a)
        plan_alpha = a if method == "none" else a / m
        out.append(judged.with_(verdict=v, note=_with_small_note(t.note, v, float(pa), a),
                                n_needed=_needed_for(judged, plan_alpha) if v == "inconclusive" else None))
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


# Quantiles of the chi distribution, for the power of the tolerance-interval criterion.
_Q, _QW = np.polynomial.legendre.leggauss(48)
_Q = 0.5 * (_Q + 1.0)
_QW = 0.5 * _QW


def _stable_power(n: int, mean: float, sd: float, margin: float, alpha: float, tolerance: float) -> float:
    """P(|x̄| + k·s < margin): the chance that the tolerance interval fits inside the margin."""
    k = tolerance_factor(n, 1.0 - tolerance, 1.0 - alpha)
    s = sd * np.sqrt(_sp.chdtri(n - 1, 1.0 - _Q) / (n - 1))  # chi2 quantiles at _Q
    room = margin - k * s
    se = sd / math.sqrt(n)
    inside = np.where(room > 0, _sp.ndtr((room - mean) / se) - _sp.ndtr((-room - mean) / se), 0.0)
    return float(np.dot(_QW, inside))


def _unstable_power(n: int, share: float, alpha: float, tolerance: float) -> float:
    """P(the exact binomial test shows more than ``tolerance`` moved) when ``share`` move."""
    from scipy.stats import binom

    critical = int(binom.isf(alpha, n, tolerance)) + 1  # smallest count with P(X >= c) <= alpha
    while critical > 0 and _binomial_greater(critical - 1, n, tolerance) <= alpha:
        critical -= 1
    while _binomial_greater(critical, n, tolerance) > alpha:
        critical += 1
    return _binomial_greater(critical, n, share)


def clips_needed(mean_shift: float | None, sd: float | None, *, margin: float,
                 alpha: float = 0.05, power: float = 0.8, max_n: int = 100_000,
                 tolerance: float | None = None, share: float | None = None) -> int | None:
    """Units (people, or clips) needed for a decisive verdict if the observed values were the truth.

    Inside the margin the goal is proving equivalence of the mean (TOST power) and, with a
    ``tolerance``, that the tolerance interval fits inside the margin; on or beyond it, detecting
    the shift (two-sided t-test power). When the observed ``share`` moved exceeds the tolerance,
    detecting instability (exact binomial power) is a decision too, and the smaller n counts.
    ``None`` when the answer is undefined (no estimate) or not reachable with ``max_n``.
    """
    for name, value in (("margin", margin), ("alpha", alpha), ("power", power), ("max_n", max_n)):
        _check(name, value, required=True)
    _check("tolerance", tolerance)
    return _needed(mean_shift, sd, float(margin), float(alpha), float(power), int(max_n),
                   None if tolerance is None else float(tolerance), share)


def _needed_for(t: ShiftTest, alpha: float) -> int | None:
    # In the test's own unit: with people as the unit, mean and sd are those of the per-person
    # differences, so the answer counts people.
    return _needed(t.mean_shift, t.sd, t.margin, alpha, 0.8, 100_000, t.tolerance, t.share_moved)


def _search(ok: Any, max_n: int) -> int | None:
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


def _needed(mean: float | None, sd: float | None, margin: float, alpha: float,
            power: float = 0.8, max_n: int = 100_000, tolerance: float | None = None,
            share: float | None = None) -> int | None:
    if mean is None or sd is None or not (math.isfinite(mean) and math.isfinite(sd)) or sd < 0:
        return None
    if sd <= _REL_TOL * max(1.0, abs(mean)):
        return MIN_N  # constant differences are decided at the minimum sample size
    candidates: list[int] = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if share is not None and tolerance is not None and share > tolerance:
            found = _search(lambda n: _unstable_power(n, share, alpha, tolerance) >= power, max_n)
            if found is not None:
                candidates.append(found)
        if abs(mean) >= margin:
            found = _search(lambda n: _power(n, mean, sd, margin, alpha, False) >= power, max_n)
            if found is not None:
                candidates.append(found)
        elif share is None or tolerance is None or share <= tolerance:
            tost = _search(lambda n: _power(n, mean, sd, margin, alpha, True) >= power, max_n)
            stable = MIN_N if tolerance is None else _search(
                lambda n: _stable_power(n, mean, sd, margin, alpha, tolerance) >= power, max_n)
            if tost is not None and stable is not None:
                candidates.append(max(tost, stable))
    return min(candidates) if candidates else None


_MERGED = {"ADJUST_METHODS": ("CORRECTIONS (and 'fdr_bh', statsmodels' name for 'bh')",
                              (*CORRECTIONS, *CORRECTION_ALIASES))}


def __getattr__(name: str) -> Any:
    if name in _MERGED:
        from auditkit.contract.deprecation import merged

        return merged(__name__, name, *_MERGED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
