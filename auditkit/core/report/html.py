"""Renderers of an :class:`AuditResult`: a terminal table and a self-contained HTML page.

The HTML embeds its images as data URIs and loads nothing from anywhere, so it can be mailed,
archived or opened offline. Rendering is a pure function of its inputs (same input, same bytes).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Mapping, Sequence

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
th{background:#f3f3f3} td.l,th.l{text-align:left} td:not(.l){white-space:nowrap}
.shift{background:#f8d0cc;font-weight:600}.invariant{background:#d5f0d5}.inconclusive{background:#f6efc9}
table.grid td{text-align:center;min-width:6rem}.cond{display:inline-block;vertical-align:top;margin:.5rem 1rem}
figure{display:inline-block;margin:.5rem;vertical-align:top}figure img{max-width:560px;border:1px solid #ccc}
code{background:#f3f3f3;padding:0 .2rem}
"""


def preview_files(folder: Path) -> dict[str, Path]:
    """The preview images an audit wrote (``previews/<family>_<variant>.png``) by edit name.
    Only plain files directly inside that folder, and only when the folder is no link: a link
    could point anywhere, and a report is read from a run folder that may come from anyone."""
    if folder.is_symlink() or not folder.is_dir():
        return {}
    real = folder.resolve()
    return {p.stem.replace("_", ":", 1): p for p in sorted(folder.glob("*.png"))
            if p.is_file() and not p.is_symlink() and p.resolve().parent == real}


def comparison_rows(result: AuditResult, baseline: AuditResult) -> list[tuple[ShiftTest, ShiftTest]]:
    """(baseline test, this test) for every cell both runs have, in this run's order."""
    index = {(t.perturbation, t.trait): t for t in baseline.tests}
    return [(index[(t.perturbation, t.trait)], t) for t in result.tests
            if (t.perturbation, t.trait) in index]


_SHORT = {"shift": "S", "invariant": "I", "inconclusive": "?"}


def _grid(result: AuditResult) -> list[str]:
    """Verdict grid: an edit per row, a trait per column, coloured by verdict, with the shift."""
    edits = result.perturbations
    esc = html.escape
    out = ["<h2>Verdicts</h2><table class='grid'><tr><th class='l'>edit</th>"
           + "".join(f"<th>{esc(t)}</th>" for t in result.traits) + "</tr>"]
    index = {(t.perturbation, t.trait): t for t in result.tests}
    for edit in edits:
        cells = []
        for trait in result.traits:
            t = index.get((edit, trait))
            cells.append("<td></td>" if t is None else
                         f"<td class='{t.verdict}' title='{esc(t.verdict)}'>{_num(t.mean_shift)} "
                         f"<small>{_SHORT[t.verdict]}</small></td>")
        out.append(f"<tr><th class='l'>{esc(edit)}</th>{''.join(cells)}</tr>")
    out.append("</table><p><small>S shift, I invariant, ? inconclusive; the number is the mean "
               "shift (edited − original).</small></p>")
    return out


Shifts = Mapping[tuple[str, str], Sequence[float]]


def _reach(tests: Sequence[ShiftTest], shifts: Shifts) -> float:
    """Half-width of the plots' axis: one scale for the whole report, so plots compare."""
    rows = [t for t in tests if t.ci_low is not None and t.ci_high is not None]
    values = [abs(v) for vs in shifts.values() for v in vs]
    return max([t.margin * 1.5 for t in tests] + [abs(t.ci_low) for t in rows]
               + [abs(t.ci_high) for t in rows] + values + [1e-6])


def _forest(tests: list[ShiftTest], reach: float, shifts: Shifts) -> str:
    """An inline SVG: each trait's CI of the mean shift against the ±margin band."""
    rows = [t for t in tests if t.ci_low is not None and t.ci_high is not None]
    if not rows:
        return ""
    width, left, row_h = 420, 140, 18
    height = row_h * len(rows) + 24
    scale = (width - left - 10) / (2 * reach)

    def x(v: float) -> float:
        return round(left + (v + reach) * scale, 2)

    colours = {"shift": "#c0392b", "invariant": "#27ae60", "inconclusive": "#b7950b"}
    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img'>"]
    margin = rows[0].margin
    svg.append(f"<rect x='{x(-margin)}' y='0' width='{round(x(margin) - x(-margin), 2)}' "
               f"height='{height - 20}' fill='#e8f5e9'/>")
    svg.append(f"<line x1='{x(0)}' y1='0' x2='{x(0)}' y2='{height - 20}' stroke='#888'/>")
    for i, t in enumerate(rows):
        y = row_h * i + 10
        svg.append(f"<text x='4' y='{y + 4}' font-size='11'>{html.escape(t.trait or '')}</text>")
        # Each clip's own shift, spread over three lanes so that equal values stay visible.
        for k, d in enumerate(shifts.get((t.perturbation, t.trait), ())):
            svg.append(f"<circle cx='{x(d)}' cy='{y + (k % 3 - 1) * 4}' r='1.6' fill='#777' "
                       "fill-opacity='0.55'/>")
        svg.append(f"<line x1='{x(t.ci_low)}' y1='{y}' x2='{x(t.ci_high)}' y2='{y}' "
                   f"stroke='{colours[t.verdict]}' stroke-width='2'/>")
        svg.append(f"<circle cx='{x(t.mean_shift or 0.0)}' cy='{y}' r='3' fill='{colours[t.verdict]}'/>")
    svg.append(f"<text x='{x(-margin)}' y='{height - 6}' font-size='10' text-anchor='middle'>−{margin:g}</text>")
    svg.append(f"<text x='{x(margin)}' y='{height - 6}' font-size='10' text-anchor='middle'>+{margin:g}</text>")
    svg.append("</svg>")
    return "".join(svg)


def _conditions(result: AuditResult, shifts: Shifts) -> list[str]:
    """Per edit: N, skipped pairs, the clips' shifts and the CIs against the margin band."""
    esc = html.escape
    out = ["<h2>Conditions</h2><p>Each line is a trait's confidence interval of the mean shift "
           "(grey dots: the clips' own shifts); the green band is ±margin. A line inside the band "
           "is what <em>invariant</em> needs.</p>"]
    reach = _reach(result.tests, shifts)
    for edit in result.perturbations:
        tests = [t for t in result.tests if t.perturbation == edit]
        skipped = sum(s.perturbation == edit for s in result.skipped)
        needs = sorted({t.n_needed for t in tests if t.verdict == "inconclusive" and t.n_needed})
        need = (f"; inconclusive traits would need about {needs[-1]} clips" if needs else "")
        out.append(f"<div class='cond'><h3>{esc(edit)}</h3><p>N = {max((t.n for t in tests), default=0)} "
                   f"paired clips, {skipped} pair(s) skipped{esc(need)}.</p>{_forest(tests, reach, shifts)}</div>")
    return out


def _data_and_limits(result: AuditResult) -> list[str]:
    esc = html.escape
    cfg = result.config
    return [
        "<h2>Data</h2>",
        f"<p>Clips: <code>{esc(str(cfg.get('clips', 'given in Python')))}</code>; "
        f"{cfg.get('n_clips_found', result.n_clips)} found, {result.n_clips} scored; "
        f"{len(result.skipped)} (clip, edit) pair(s) not scored (listed below). Rater input: "
        f"<code>{esc(json.dumps(result.rater.get('input', {}), sort_keys=True))}</code>.</p>",
        "<h2>Method and limitations</h2><ul>",
        "<li>Each clip is its own control: the same rater scores the original and the edited copy; "
        "the edit is applied before the rater's own preprocessing.</li>",
        f"<li>Paired t-test and TOST at alpha {cfg.get('alpha')}, {esc(str(cfg.get('correction')))} "
        "correction across every (edit, trait) test; Wilcoxon signed-rank reported beside them.</li>",
        "<li>The edits are synthetic: drawn glasses, composited backgrounds, simulated light. They "
        "approximate, not reproduce, a person filmed twice; the sham control measures what "
        "compositing alone does.</li>",
        "<li>Results hold for these clips and this rater version (hash above); a different population, "
        "camera or rater release needs its own audit. Verdicts about groups are exploratory (uncorrected).</li>",
        "</ul>",
    ]


def render_html(result: AuditResult, previews: Mapping[str, Path] | None = None, *,
                baseline: AuditResult | None = None, baseline_label: str = "before",
                shifts: Shifts | None = None) -> str:
    """The offline report. ``shifts``: each test's per-clip shifts (``Store.shifts``), drawn
    behind its confidence interval when given."""
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
        "<p>Each test pairs a clip's score with the score of its edited copy. <em>invariant</em>: "
        "equivalence within the margin is shown (TOST) after correction — a detectable shift proven "
        "smaller than the margin counts here; <em>shift</em>: the mean difference is significant "
        "after correction and not proven smaller than the margin; <em>inconclusive</em>: neither — "
        "not a pass.</p>",
    ]
    parts += _grid(result)
    parts += _conditions(result, shifts or {})
    parts += ["<h2>All tests</h2>",
              "<table><tr><th class='l'>perturbation</th><th class='l'>trait</th><th>n</th><th>mean shift</th>"
              "<th>CI</th><th>d<sub>z</sub></th><th>p (t)</th><th>p adj</th><th>p (Wilcoxon)</th>"
              "<th>equiv p adj</th><th>margin</th><th class='l'>verdict</th><th class='l'>note</th></tr>"]
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
    parts += _data_and_limits(result)
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
