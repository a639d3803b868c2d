"""How numbers, verdicts and the unit of analysis are written: one wording for the terminal, the
HTML report, Markdown, JUnit, the pytest plugin and the dashboard."""

from __future__ import annotations

import math
from typing import Any, Mapping

from auditkit.contract.arms import ORIGINAL, RETEST

VERDICT_COLOUR = {"shift": "#c0392b", "unstable": "#8e44ad", "invariant": "#27ae60", "inconclusive": "#b7950b"}
VERDICT_MARK = {"shift": "⚠ shift", "unstable": "≋ unstable", "invariant": "✓ invariant",
                "inconclusive": "? inconclusive"}
VERDICT_LETTER = {"shift": "S", "unstable": "U", "invariant": "I", "inconclusive": "?"}
VERDICT_MEANING = {
    "shift": "the mean shift is significant after correction and not proven smaller than the margin",
    "unstable": "more than the tolerated share of candidates is shown to move beyond the margin, in either "
                "direction",
    "invariant": "the mean is proven inside the margin and the share of candidates moved beyond it is proven "
                 "below the tolerance",
    "inconclusive": "neither: not a pass",
}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def num(value: Any, fmt: str = "+.3f") -> str:
    return "n/a" if _missing(value) else format(value, fmt)


def p(value: Any) -> str:
    if _missing(value):
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def pct(value: Any) -> str:
    if _missing(value):
        return "n/a"
    return f"{100 * value:.0f}%" if value == 0 or value >= 0.01 else f"{100 * value:.1g}%"


def ci(t: Any) -> str:
    return f"[{num(t.ci_low)}, {num(t.ci_high)}]"


def shout(verdict: str) -> str:
    """A failing verdict in capitals, so it stands out in a fixed-width table."""
    return verdict.upper() if verdict in ("shift", "unstable") else verdict


def moved(t: Any) -> str:
    """The share of candidates moved beyond the margin, with its bounds: ``62% [30%, 89%]``."""
    share = t.moved
    if _missing(share.share):
        return "n/a"
    return f"{pct(share.share)} [{pct(share.low)}, {pct(share.high)}]"


def loa(t: Any) -> str:
    """Bland–Altman limits of agreement: ``[-0.12, +0.10]``."""
    limits = t.limits
    if _missing(limits.low):
        return "n/a"
    return f"[{num(limits.low)}, {num(limits.high)}]"


def margin_text(result: Any) -> str:
    """``±0.05``, or each distinct margin when traits have their own."""
    margins = sorted({t.margin for t in result.tests})
    if margins:
        return ", ".join(f"±{m:g}" for m in margins)
    margin = result.config.get("margin")
    if isinstance(margin, Mapping):
        return ", ".join(f"±{v:g}" for v in sorted(set(margin.values())))
    return f"±{margin}" if margin is not None else "n/a"


def unit_word(result: Any, n: int | None = None) -> str:
    word = "people" if result.unit == "person" else "clips"
    return word if n != 1 else word[:-1] if word == "clips" else "person"


def unit_sentence(result: Any) -> str:
    """One line saying who the unit of analysis is and what the conclusions hold for."""
    column = result.cluster or str(result.config.get("cluster") or "subject_id")
    people = result.n_subjects
    if result.schema_version < 2:
        return ("Unit of analysis: clips (an audit of schema 1, before people were the unit and "
                "before per-candidate statistics).")
    if result.unit == "person":
        return (f"Unit of analysis: people ({column}): {people} people in {result.n_clips} clips; each person's "
                "clips are averaged into one difference, so several clips of one person are one person's evidence.")
    if people is not None:
        why = result.config.get("unit_why") or f"by choice ({people} people in {result.n_clips} clips)"
        return (f"Unit of analysis: clips, {why}: conclusions hold for the people in this set, not for people "
                "in general.")
    return (f"Unit of analysis: clips (the clips carry no {column} column): several clips of one person would "
            f"count as independent evidence; add a {column} column to metadata.csv if anyone appears twice.")


def retest_sentence(result: Any) -> str | None:
    """The rater's own noise, from the retest control, when the audit has one."""
    shares = [t.share_moved for t in result.tests if t.arm == RETEST and t.share_moved is not None]
    if not shares:
        return None
    low, high = min(shares), max(shares)
    span = pct(low) if low == high else f"{pct(low)}–{pct(high)}"
    rater = result.rater if isinstance(result.rater, dict) else {}
    later = (rater.get("input") or {}).get("fps") or "recording" in rater  # watches motion, or takes recordings
    when = "0.2 s later" if later else "half a sampling interval later"
    return (f"The rater's own retest (the same clips, {when}) moves {span} of "
            "candidates beyond the margin, per trait: the baseline for every edit's share moved.")


def attribution_lines(result: Any) -> list[str]:
    """Where the rater looks, one line per trait: each region's share of the attribution (and its
    density: share over area share, above 1 where it looks more than the area explains)."""
    looks = result.where_it_looks
    if looks is None:
        return []
    head = (f"where the rater looks ({looks.method.replace('_', ' ')}, {looks.n_clips} "
            f"clips that moved most; share of attribution, density = share / area share):")
    lines = [head]
    for trait, entry in looks.traits.items():
        parts = [f"{region} {pct(r.share)} (x{r.density:.1f})" for region, r in entry.regions.items()]
        note = f" — {entry.note}" if entry.note else ""
        lines.append(f"  {trait}: " + ", ".join(parts) + note)
    return lines


def _region_label(t: Any) -> str:
    """``face`` for ``region:face``; ``face−background`` for a contrast of two regions."""
    from auditkit.perturbations import variant_of

    label = variant_of(t.arm or "")
    return label if t.base == ORIGINAL else f"{label}−{variant_of(t.base or '')}"


def region_lines(result: Any) -> list[str]:
    """The region:* ablation tests, one line per trait: how far greying each region moves the score."""
    tests = [t for t in result.tests if t.role == "attribution"]
    if not tests:
        return []
    lines = ["region ablation (each region greyed; a rater is expected to move, so these are not fairness "
             "verdicts): mean shift per region"]
    for trait in result.traits:
        row = [t for t in tests if t.trait == trait]
        if row:
            lines.append(f"  {trait}: " + ", ".join(f"{_region_label(t)} {num(t.mean_shift)}"
                                                    for t in row))
    return lines
