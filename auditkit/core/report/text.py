"""The terminal table and the Markdown summary of an audit."""

from __future__ import annotations

from auditkit.core.result import VERDICTS, AuditResult
from auditkit.core.settings import AuditConfig

from .format import (attribution_lines, ci, margin_text, moved, num, p, region_lines, retest_sentence, shout,
                     unit_sentence)


def _counts_line(result: AuditResult) -> str:
    counts = result.counts()
    return (f"{len(result.fairness)} tests on {result.n_clips} clips: "
            + ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
            + f" (margin {margin_text(result)}, tolerance {result.config.get('tolerance', 'n/a')}, "
              f"alpha {result.config.get('alpha')}, {result.config.get('correction')} correction)")


def _needs_line(result: AuditResult) -> str | None:
    needs = sorted({t.n_needed for t in result.fairness if t.verdict == "inconclusive" and t.n_needed})
    if not needs:
        return None
    span = f"{needs[0]}" + ("" if len(needs) == 1 else f" to {needs[-1]}")
    return f"inconclusive tests would need about {span} {'people' if result.unit == 'person' else 'clips'} to decide"


def render_text(result: AuditResult, *, only: str | None = None) -> str:
    """A fixed-width table, one row per (perturbation, trait), then the counts, the unit of
    analysis, the rater's retest noise, decision impact and the skipped pairs."""
    alpha = AuditConfig.from_record(result.config).alpha
    agreement = result.schema_version >= 2
    header = ("perturbation", "trait", "n", "shift", f"{(1 - alpha) * 100:g}% CI", "p adj") + (
        ("moved beyond margin", "verdict") if agreement else ("equiv p adj", "verdict"))
    rows = [header]
    for t in result.fairness:
        if only and t.verdict != only:
            continue
        rows.append((t.perturbation or "", t.trait or "", str(t.n), num(t.mean_shift), ci(t), p(t.p_adjusted))
                    + ((moved(t),) if agreement else (p(t.equivalence_p_adjusted),)) + (shout(t.verdict),))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(_counts_line(result))
    lines.append(unit_sentence(result))
    for line in (retest_sentence(result), _needs_line(result)):
        if line:
            lines.append(line)
    lines += region_lines(result) + attribution_lines(result)
    lines += impact_lines(result)
    if result.skipped:
        lines.append(f"{len(result.skipped)} pair(s) skipped:")
        lines += [f"  {s.clip} / {s.perturbation}: {s.reason}" for s in result.skipped]
    return "\n".join(lines)


def impact_lines(result: AuditResult) -> list[str]:
    """Decision impact and group findings in a few sentences (text and Markdown share them)."""
    lines = []
    impact = result.decision_impact
    if impact is not None and impact.edits:
        moved_ = impact.moved
        head = f"shortlist ({impact.rule}, {impact.size} clips): "
        lines.append(head + ("; ".join(f"{e}: {i} enter, {o} leave" for e, i, o in moved_)
                             if moved_ else "no edit moves a clip in or out"))
    alpha = AuditConfig.from_record(result.config).alpha
    for group in result.group_analyses:
        worst = []
        for cond in group.impact_ratio:
            lowest = group.lowest_ratio(cond)
            if lowest is not None and lowest[0] < 0.8:
                worst.append(f"{cond}: {lowest[1]} at {lowest[0]:.2f}")
        differ = [f"{cond} / {trait} (p {s.differs_p:.3f})" for cond, traits in group.shift.items()
                  for trait, s in traits.items() if s.differs_p is not None and s.differs_p < alpha]
        over = " (compared over people)" if group.unit == "person" else (
            " (compared over clips: the column varies within a person)" if result.unit == "person" else "")
        lines.append(f"groups by {group.column}{over}: impact ratio below 0.8 — {'; '.join(worst) or 'none'}; "
                     f"shift differs between groups (uncorrected) — {'; '.join(differ) or 'none'}")
    return lines


def render_markdown(result: AuditResult) -> str:
    """A summary for a CI comment: counts, every test in one table, the skipped pairs."""
    counts = result.counts()
    agreement = result.schema_version >= 2
    lines = ["### auditkit: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS),
             "",
             f"Rater `{result.rater.get('spec')}` (`{str(result.rater.get('hash', ''))[:23]}`), "
             f"{result.n_clips} clips, margin {margin_text(result)}, "
             f"tolerance {result.config.get('tolerance', 'n/a')}, alpha {result.config.get('alpha')}, "
             f"{result.config.get('correction')} correction. Created {result.created}.",
             "",
             unit_sentence(result),
             "",
             "| perturbation | trait | n | shift | CI | p adj |" + (" moved beyond margin |" if agreement else "")
             + " verdict |",
             "| --- | --- | ---: | ---: | --- | ---: |" + (" --- |" if agreement else "") + " --- |"]
    for t in result.fairness:
        verdict = f"**{t.verdict}**" if t.verdict in ("shift", "unstable") else t.verdict
        if t.verdict == "inconclusive" and t.n_needed:
            verdict += f" (about {t.n_needed} {'people' if t.unit == 'person' else 'clips'} needed)"
        lines.append(f"| `{t.perturbation}` | {t.trait} | {t.n} | {num(t.mean_shift)} | {ci(t)} | "
                     f"{p(t.p_adjusted)} |" + (f" {moved(t)} |" if agreement else "") + f" {verdict} |")
    extra = ([line for line in (retest_sentence(result),) if line] + region_lines(result) + attribution_lines(result)
             + impact_lines(result))
    if extra:
        lines += [""] + [f"- {line}" for line in extra]
    if result.skipped:
        lines += ["", f"{len(result.skipped)} pair(s) not scored:", ""]
        lines += [f"- `{s.clip}` / `{s.perturbation}`: {s.reason}" for s in result.skipped]
    return "\n".join(lines) + "\n"
