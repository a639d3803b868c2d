"""Renderers of an :class:`AuditResult`: a terminal table and a self-contained HTML page.

The HTML embeds its images as data URIs and loads nothing from anywhere, so it can be mailed,
archived or opened offline. Rendering is a pure function of its inputs (same input, same bytes).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Mapping

from .result import AuditResult, ShiftTest


def _num(value: float | None, fmt: str = "+.3f") -> str:
    return "n/a" if value is None else format(value, fmt)


def _p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _ci(t: ShiftTest) -> str:
    return f"[{_num(t.ci_low)}, {_num(t.ci_high)}]"


def render_text(result: AuditResult, *, only: str | None = None) -> str:
    """A fixed-width table, one row per (perturbation, trait), then the counts and skipped pairs."""
    alpha = float(result.config.get("alpha", 0.05))
    header = ("perturbation", "trait", "n", "shift", f"{(1 - alpha) * 100:g}% CI", "p adj",
              "equiv p adj", "verdict")
    rows = [header]
    for t in result.tests:
        if only and t.verdict != only:
            continue
        rows.append((t.perturbation or "", t.trait or "", str(t.n), _num(t.mean_shift), _ci(t),
                     _p(t.p_adjusted), _p(t.equivalence_p_adjusted),
                     t.verdict.upper() if t.verdict == "shift" else t.verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    counts = result.counts()
    lines.append("")
    lines.append(f"{len(result.tests)} tests on {result.n_clips} clips: {counts['shift']} shift, "
                 f"{counts['invariant']} invariant, {counts['inconclusive']} inconclusive "
                 f"(margin {_margin_text(result)}, alpha {result.config.get('alpha')}, "
                 f"{result.config.get('correction')} correction)")
    lines += impact_lines(result)
    needs = sorted({t.n_needed for t in result.tests if t.verdict == "inconclusive" and t.n_needed})
    if needs:
        lines.append(f"inconclusive tests would need about {needs[0]}"
                     f"{'' if len(needs) == 1 else f' to {needs[-1]}'} clips to decide")
    if result.skipped:
        lines.append(f"{len(result.skipped)} pair(s) skipped:")
        lines += [f"  {s.clip} / {s.perturbation}: {s.reason}" for s in result.skipped]
    return "\n".join(lines)


def impact_lines(result: AuditResult) -> list[str]:
    """Decision impact and group findings in a few sentences (text and Markdown share them)."""
    lines = []
    impact = result.impact or {}
    moved = [(edit, len(v["entered"]), len(v["left"])) for edit, v in impact.get("edits", {}).items()
             if v["entered"] or v["left"]]
    if impact.get("edits"):
        head = f"shortlist ({impact['rule']}, {impact['size']} clips): "
        lines.append(head + ("; ".join(f"{e}: {i} enter, {o} leave" for e, i, o in moved)
                             if moved else "no edit moves a clip in or out"))
    alpha = float(result.config.get("alpha", 0.05))
    for column, info in sorted((result.groups or {}).items()):
        worst = []
        for cond, rates in info.get("impact_ratio", {}).items():
            ratios = [(v["impact_ratio"], g) for g, v in rates.items() if v.get("impact_ratio") is not None]
            if ratios and min(ratios)[0] < 0.8:
                worst.append(f"{cond}: {min(ratios)[1]} at {min(ratios)[0]:.2f}")
        differ = [f"{cond} / {trait} (p {v['differs_p']:.3f})" for cond, traits in info.get("shift", {}).items()
                  for trait, v in traits.items() if v.get("differs_p") is not None and v["differs_p"] < alpha]
        lines.append(f"groups by {column}: impact ratio below 0.8 — {'; '.join(worst) or 'none'}; "
                     f"shift differs between groups (uncorrected) — {'; '.join(differ) or 'none'}")
    return lines


def _margin_text(result: AuditResult) -> str:
    margin = result.config.get("margin")
    if isinstance(margin, Mapping):
        values = set(margin.values())
        return f"{values.pop():g}" if len(values) == 1 else ", ".join(f"{k} {v:g}" for k, v in margin.items())
    return str(margin)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left}
.shift{background:#f8d0cc;font-weight:600}.invariant{background:#d5f0d5}.inconclusive{background:#f6efc9}
figure{display:inline-block;margin:.5rem;vertical-align:top}figure img{max-width:560px;border:1px solid #ccc}
code{background:#f3f3f3;padding:0 .2rem}
"""


def preview_files(folder: Path) -> dict[str, Path]:
    """The preview images an audit wrote (``previews/<family>_<variant>.png``) by edit name.
    Only plain files directly inside that folder: a link there could point anywhere."""
    if not folder.is_dir():
        return {}
    return {p.stem.replace("_", ":", 1): p for p in sorted(folder.glob("*.png"))
            if p.is_file() and not p.is_symlink()}


def comparison_rows(result: AuditResult, baseline: AuditResult) -> list[tuple[ShiftTest, ShiftTest]]:
    """(baseline test, this test) for every cell both runs have, in this run's order."""
    index = {(t.perturbation, t.trait): t for t in baseline.tests}
    return [(index[(t.perturbation, t.trait)], t) for t in result.tests
            if (t.perturbation, t.trait) in index]


def render_html(result: AuditResult, previews: Mapping[str, Path] | None = None, *,
                baseline: AuditResult | None = None, baseline_label: str = "before") -> str:
    esc = html.escape
    counts = result.counts()
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        f"<title>auditkit report: {esc(str(result.rater.get('spec', '')))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Counterfactual fairness audit</h1>",
        f"<p>Rater <code>{esc(str(result.rater.get('spec')))}</code> "
        f"(<code>{esc(str(result.rater.get('hash', ''))[:23])}</code>), {result.n_clips} clips, "
        f"{len(result.tests)} tests: <b>{counts['shift']} shift</b>, {counts['invariant']} invariant, "
        f"{counts['inconclusive']} inconclusive. Created {esc(result.created)}.</p>",
        "<p>Each test pairs a clip's score with the score of its edited copy. <em>shift</em>: the "
        "mean difference is significant after correction; <em>invariant</em>: equivalence within "
        "the margin is shown (TOST) after correction; <em>inconclusive</em>: neither — not a pass.</p>",
        "<table><tr><th class='l'>perturbation</th><th class='l'>trait</th><th>n</th><th>mean shift</th>"
        "<th>CI</th><th>d<sub>z</sub></th><th>p (t)</th><th>p adj</th><th>p (Wilcoxon)</th>"
        "<th>equiv p adj</th><th>margin</th><th class='l'>verdict</th><th class='l'>note</th></tr>",
    ]
    for t in result.tests:
        note = t.note
        if t.verdict == "inconclusive" and t.n_needed:
            note = (note + "; " if note else "") + f"about {t.n_needed} clips needed"
        parts.append(
            f"<tr><td class='l'>{esc(t.perturbation or '')}</td><td class='l'>{esc(t.trait or '')}</td>"
            f"<td>{t.n}</td><td>{_num(t.mean_shift)}</td><td>{_ci(t)}</td><td>{_num(t.effect_size_dz, '.2f')}</td>"
            f"<td>{_p(t.p_value)}</td><td>{_p(t.p_adjusted)}</td><td>{_p(t.wilcoxon_p)}</td>"
            f"<td>{_p(t.equivalence_p_adjusted)}</td><td>{t.margin:g}</td>"
            f"<td class='l {t.verdict}'>{t.verdict}</td><td class='l'>{esc(note)}</td></tr>")
    parts.append("</table>")
    if baseline is not None:
        rows = comparison_rows(result, baseline)
        flipped = sum(b.verdict != a.verdict for b, a in rows)
        parts.append(f"<h2>Compared with {esc(baseline_label)} ({flipped} verdict(s) changed)</h2>"
                     f"<p>{esc(baseline_label)}: rater <code>{esc(str(baseline.rater.get('spec')))}</code>, "
                     f"created {esc(baseline.created)}.</p>")
        parts.append(f"<table><tr><th class='l'>perturbation</th><th class='l'>trait</th>"
                     f"<th>{esc(baseline_label)}: shift</th><th class='l'>verdict</th>"
                     "<th>now: shift</th><th class='l'>verdict</th></tr>")
        parts += [f"<tr><td class='l'>{esc(a.perturbation or '')}</td><td class='l'>{esc(a.trait or '')}</td>"
                  f"<td>{_num(b.mean_shift)}</td><td class='l {b.verdict}'>{b.verdict}</td>"
                  f"<td>{_num(a.mean_shift)}</td><td class='l {a.verdict}'>{a.verdict}</td></tr>"
                  for b, a in rows]
        parts.append("</table>")
    if previews:
        parts.append("<h2>Edits (original | edited)</h2>")
        for name, path in sorted(previews.items()):
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{esc(name)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{esc(name)}</figcaption></figure>")
    extra = impact_lines(result)
    if extra:
        parts.append("<h2>Decision impact and groups</h2><ul>")
        parts += [f"<li>{esc(line)}</li>" for line in extra]
        parts.append("</ul>")
    if result.skipped:
        parts.append(f"<h2>Skipped pairs ({len(result.skipped)})</h2><table><tr><th class='l'>clip</th>"
                     "<th class='l'>perturbation</th><th class='l'>reason</th></tr>")
        parts += [f"<tr><td class='l'>{esc(s.clip)}</td><td class='l'>{esc(s.perturbation)}</td>"
                  f"<td class='l'>{esc(s.reason)}</td></tr>" for s in result.skipped]
        parts.append("</table>")
    parts.append("<h2>Configuration</h2><table>")
    parts += [f"<tr><th class='l'>{esc(str(k))}</th><td class='l'>{esc(str(v))}</td></tr>"
              for k, v in sorted(result.config.items())]
    parts.append("</table></body></html>\n")
    return "\n".join(parts)


def render_markdown(result: AuditResult) -> str:
    """A summary for a CI comment: counts, every test in one table, the skipped pairs."""
    counts = result.counts()
    lines = [f"### auditkit: {counts['shift']} shift, {counts['invariant']} invariant, "
             f"{counts['inconclusive']} inconclusive",
             "",
             f"Rater `{result.rater.get('spec')}` (`{str(result.rater.get('hash', ''))[:23]}`), "
             f"{result.n_clips} clips, margin {_margin_text(result)}, alpha {result.config.get('alpha')}, "
             f"{result.config.get('correction')} correction. Created {result.created}.",
             "",
             "| perturbation | trait | n | shift | CI | p adj | verdict |",
             "| --- | --- | ---: | ---: | --- | ---: | --- |"]
    for t in result.tests:
        verdict = f"**{t.verdict}**" if t.verdict == "shift" else t.verdict
        if t.verdict == "inconclusive" and t.n_needed:
            verdict += f" (about {t.n_needed} clips needed)"
        lines.append(f"| `{t.perturbation}` | {t.trait} | {t.n} | {_num(t.mean_shift)} | {_ci(t)} | "
                     f"{_p(t.p_adjusted)} | {verdict} |")
    extra = impact_lines(result)
    if extra:
        lines += [""] + [f"- {line}" for line in extra]
    if result.skipped:
        lines += ["", f"{len(result.skipped)} pair(s) not scored:", ""]
        lines += [f"- `{s.clip}` / `{s.perturbation}`: {s.reason}" for s in result.skipped]
    return "\n".join(lines) + "\n"


def render_junit(result: AuditResult) -> str:
    """JUnit XML: one test case per (perturbation, trait); a ``shift`` is a failure, the
    statistics ride along as properties so CI dashboards can show them."""
    from xml.sax.saxutils import quoteattr

    counts = result.counts()
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           f'<testsuites name="auditkit" tests="{len(result.tests)}" failures="{counts["shift"]}">',
           f'  <testsuite name={quoteattr("auditkit: " + str(result.rater.get("spec")))} '
           f'tests="{len(result.tests)}" failures="{counts["shift"]}" errors="0" skipped="0" '
           f'timestamp={quoteattr(result.created)}>']
    for t in result.tests:
        props = {"verdict": t.verdict, "n": t.n, "mean_shift": t.mean_shift, "ci_low": t.ci_low,
                 "ci_high": t.ci_high, "p_adjusted": t.p_adjusted,
                 "equivalence_p_adjusted": t.equivalence_p_adjusted, "margin": t.margin}
        out.append(f'    <testcase classname={quoteattr(t.perturbation or "")} name={quoteattr(t.trait or "")}>')
        out.append("      <properties>")
        out += [f'        <property name="{k}" value={quoteattr("" if v is None else str(v))}/>'
                for k, v in props.items()]
        out.append("      </properties>")
        if t.verdict == "shift":
            message = (f"{t.perturbation} shifts {t.trait} by {_num(t.mean_shift)} "
                       f"(CI {_ci(t)}, p adj {_p(t.p_adjusted)})")
            out.append(f"      <failure message={quoteattr(message)} type=\"shift\"/>")
        out.append("    </testcase>")
    out += ["  </testsuite>", "</testsuites>", ""]
    return "\n".join(out)
