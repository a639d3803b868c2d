"""The fixed-width tables a failing audit assertion prints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from auditkit.core.result import AuditResult, ShiftTest


def table(tests: Sequence["ShiftTest"], failed: Sequence["ShiftTest"] = ()) -> str:
    """One row per trait (a perturbation column when several are shown): the mean shift, its
    interval, the share of candidates moved beyond the margin with its bounds, the limits of
    agreement and the verdict; rows in ``failed`` are marked."""
    from auditkit.core.report.format import ci, loa, moved, num, p, shout

    several = len({t.perturbation for t in tests}) > 1
    alpha = tests[0].alpha if tests else 0.05
    header = (["perturbation"] if several else []) + [
        "trait", "n", "shift", f"{100 * (1 - alpha):g}% CI", "p adj", "moved beyond margin", "limits of agreement",
        "margin", "verdict", ""]
    bad = {id(t) for t in failed}
    rows = [header]
    for t in tests:
        note = ("<- fails" if id(t) in bad else "")
        if t.verdict == "inconclusive" and t.n_needed:
            note = f"{note}  (about {t.n_needed} {'people' if t.unit == 'person' else 'clips'} would decide)".strip()
        rows.append(([t.perturbation or ""] if several else []) + [
            t.trait or "", str(t.n), num(t.mean_shift), ci(t), p(t.p_adjusted), moved(t), loa(t),
            f"±{t.margin:g}", shout(t.verdict), note])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths[:-1]))
    return "\n".join(lines)


def about(result: "AuditResult") -> str:
    unit = "people" if result.unit == "person" else "clips"
    count = result.n_subjects if result.unit == "person" else result.n_clips
    return (f"{count} {unit}, alpha {result.config.get('alpha', 'n/a')}, tolerance "
            f"{result.config.get('tolerance', 'n/a')}, {result.config.get('correction', 'holm')} correction, "
            f"rater {result.rater.get('spec')}")


def failure_message(helper: str, result: "AuditResult", tests: Sequence["ShiftTest"],
                    failed: Sequence["ShiftTest"], what: str, which: str) -> str:
    from auditkit.core.report.format import VERDICT_MEANING

    return (f"{helper}: {len(failed)} of {len(tests)} tests {what} for {which} ({about(result)})\n"
            f"{table(tests, failed)}\n"
            + "; ".join(f"{v}: {VERDICT_MEANING[v]}" for v in ("shift", "unstable", "invariant", "inconclusive")))


def junit_number(value: Any) -> str:
    return "n/a" if value is None else f"{value:.6g}"
