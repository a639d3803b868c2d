"""The self-contained HTML report of an audit.

It embeds its images as data URIs and loads nothing from anywhere, so it can be mailed, archived
or opened offline. Rendering is a pure function of its inputs (same input, same bytes).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Mapping, Sequence

from auditkit.core.result import VERDICTS, AuditResult, ShiftTest

from .format import (VERDICT_COLOUR, VERDICT_LETTER, VERDICT_MEANING, ci, loa, margin_text, moved, num, p, pct,
                     retest_sentence, unit_sentence)
from .text import impact_lines

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left} td:not(.l){white-space:nowrap}
.shift{background:#f8d0cc;font-weight:600}.unstable{background:#e6d4ef;font-weight:600}
.invariant{background:#d5f0d5}.inconclusive{background:#f6efc9}
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


def _grid(result: AuditResult) -> list[str]:
    """Verdict grid: an edit per row, a trait per column, coloured by verdict, with the shift."""
    esc = html.escape
    out = ["<h2>Verdicts</h2><table class='grid'><tr><th class='l'>edit</th>"
           + "".join(f"<th>{esc(t)}</th>" for t in result.traits) + "</tr>"]
    index = {(t.perturbation, t.trait): t for t in result.tests}
    for edit in dict.fromkeys(t.perturbation or "" for t in result.fairness):
        cells = []
        for trait in result.traits:
            t = index.get((edit, trait))
            if t is None:
                cells.append("<td></td>")
                continue
            share = f" · {pct(t.share_moved)} moved" if t.share_moved is not None else ""
            cells.append(f"<td class='{t.verdict}' title='{esc(t.verdict)}{esc(share)}'>{num(t.mean_shift)} "
                         f"<small>{VERDICT_LETTER[t.verdict]}{esc(share)}</small></td>")
        out.append(f"<tr><th class='l'>{esc(edit)}</th>{''.join(cells)}</tr>")
    out.append("</table>")
    out.append("<p><small>" + ", ".join(f"{VERDICT_LETTER[v]} {v}" for v in VERDICTS)
               + "; the number is the mean shift (edited − original), then the share of candidates moved "
                 "beyond the margin.</small></p>")
    return out


Shifts = Mapping[tuple[str, str], Sequence[float]]


def _reach(tests: Sequence[ShiftTest], shifts: Shifts) -> float:
    """Half-width of the plots' axis: one scale for the whole report, so plots compare."""
    rows = [t for t in tests if t.ci_low is not None and t.ci_high is not None]
    values = [abs(v) for vs in shifts.values() for v in vs]
    limits = [abs(x) for t in tests for x in (t.limits.low, t.limits.high) if x is not None]
    return max([t.margin * 1.5 for t in tests] + [abs(t.ci_low) for t in rows]
               + [abs(t.ci_high) for t in rows] + values + limits + [1e-6])


def _forest(tests: list[ShiftTest], reach: float, shifts: Shifts) -> str:
    """An inline SVG per edit: each trait's candidates (grey dots), their limits of agreement
    (thin brackets) and the confidence interval of the mean shift, against the ±margin band."""
    rows = [t for t in tests if t.ci_low is not None and t.ci_high is not None]
    if not rows:
        return ""
    width, left, row_h = 420, 140, 18
    height = row_h * len(rows) + 24
    scale = (width - left - 10) / (2 * reach)

    def x(v: float) -> float:
        return round(left + (v + reach) * scale, 2)

    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img'>"]
    margin = rows[0].margin
    svg.append(f"<rect x='{x(-margin)}' y='0' width='{round(x(margin) - x(-margin), 2)}' "
               f"height='{height - 20}' fill='#e8f5e9'/>")
    svg.append(f"<line x1='{x(0)}' y1='0' x2='{x(0)}' y2='{height - 20}' stroke='#888'/>")
    for i, t in enumerate(rows):
        y = row_h * i + 10
        colour = VERDICT_COLOUR[t.verdict]
        svg.append(f"<text x='4' y='{y + 4}' font-size='11'>{html.escape(t.trait or '')}</text>")
        # Each candidate's own shift, spread over three lanes so that equal values stay visible.
        for k, d in enumerate(shifts.get((t.perturbation, t.trait), ())):
            svg.append(f"<circle cx='{x(d)}' cy='{y + (k % 3 - 1) * 4}' r='1.6' fill='#777' "
                       "fill-opacity='0.55'/>")
        if t.limits.low is not None and t.limits.high is not None:
            for end in (t.limits.low, t.limits.high):
                svg.append(f"<line x1='{x(end)}' y1='{y - 6}' x2='{x(end)}' y2='{y + 6}' stroke='{colour}' "
                           "stroke-width='1' stroke-dasharray='2,1'/>")
        svg.append(f"<line x1='{x(t.ci_low)}' y1='{y}' x2='{x(t.ci_high)}' y2='{y}' "
                   f"stroke='{colour}' stroke-width='2'/>")
        svg.append(f"<circle cx='{x(t.mean_shift or 0.0)}' cy='{y}' r='3' fill='{colour}'/>")
    svg.append(f"<text x='{x(-margin)}' y='{height - 6}' font-size='10' text-anchor='middle'>−{margin:g}</text>")
    svg.append(f"<text x='{x(margin)}' y='{height - 6}' font-size='10' text-anchor='middle'>+{margin:g}</text>")
    svg.append("</svg>")
    return "".join(svg)


def _conditions(result: AuditResult, shifts: Shifts) -> list[str]:
    """Per edit: N, skipped pairs, the candidates' shifts, limits and CIs against the margin band."""
    esc = html.escape
    who = "person" if result.unit == "person" else "clip"
    out = ["<h2>Conditions</h2><p>Each row is a trait: grey dots are the candidates' own shifts (one per "
           f"{who}), dashed ticks the 95% limits of agreement, the coloured line the confidence interval of the "
           "mean shift; the green band is ±margin. <em>Invariant</em> needs the line inside the band and the "
           "candidates, with confidence, inside it too (all but the tolerated share).</p>"]
    reach = _reach(result.fairness, shifts)
    for edit in dict.fromkeys(t.perturbation or "" for t in result.fairness):
        tests = [t for t in result.tests if t.perturbation == edit]
        skipped = sum(s.perturbation == edit for s in result.skipped)
        needs = sorted({t.n_needed for t in tests if t.verdict == "inconclusive" and t.n_needed})
        unit = "people" if result.unit == "person" else "clips"
        need = (f"; inconclusive traits would need about {needs[-1]} {unit}" if needs else "")
        out.append(f"<div class='cond'><h3>{esc(edit)}</h3><p>N = {max((t.n for t in tests), default=0)} "
                   f"{unit}, {skipped} pair(s) skipped{esc(need)}.</p>{_forest(tests, reach, shifts)}</div>")
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
        f"<p>{esc(unit_sentence(result))}</p>",
        "<h2>Method and limitations</h2><ul>",
        "<li>Each clip is its own control: the same rater scores the original and the edited copy; "
        "the edit is applied before the rater's own preprocessing.</li>",
        f"<li>The mean shift: paired t-test and TOST at alpha {cfg.get('alpha')}, Wilcoxon signed-rank beside "
        "them. The candidates: the share whose shift exceeds the margin, shown above the tolerance by an exact "
        "binomial test (no assumption about the shifts' shape) and below it by a normal tolerance interval "
        "(ISO 16269-6) inside ±margin, used only when the observed share is itself below the tolerance. "
        f"{esc(str(cfg.get('correction')))} correction across every (edit, trait) test, each claim a family of "
        "its own.</li>",
        "<li>The normal model behind the proof of stability can be optimistic when a few candidates move just "
        "past the margin and the rest not at all; the observed share guards against the worst of it.</li>",
        "<li>The edits are synthetic: drawn glasses, composited backgrounds, simulated light. They "
        "approximate, not reproduce, a person filmed twice; the sham control measures what "
        "compositing alone does, the retest control what the rater does on its own.</li>",
        "<li>Results hold for these clips and this rater version (hash above); a different population, "
        "camera or rater release needs its own audit. Verdicts about groups are exploratory (uncorrected).</li>",
        "</ul>",
    ]


def explain_files(folder: Path, result: AuditResult) -> dict[tuple[str, str], Path]:
    """The overlays ``auditkit explain`` wrote for this run, by (clip, trait): only plain files
    inside ``folder/explain`` that the run's ``attribution`` names (no links, nothing outside)."""
    root = folder / "explain"
    if root.is_symlink() or not root.is_dir():
        return {}
    real = root.resolve()
    out = {}
    looks = result.where_it_looks
    for clip, traits in (looks.overlays if looks is not None else {}).items():
        for trait, name in traits.items():
            path = folder / str(name)
            try:
                inside = path.resolve().is_relative_to(real)
            except OSError:
                continue
            if inside and path.is_file() and not path.is_symlink() and path.suffix == ".png":
                out[(clip, trait)] = path
    return out


def _where_it_looks(result: AuditResult, overlays: Mapping[tuple[str, str], Path]) -> list[str]:
    """Region ablation tests and ``auditkit explain``'s attribution: a bar per trait and region,
    densities, and the overlays of the clips that moved most."""
    esc = html.escape
    tests = result.attribution_tests
    section = result.where_it_looks
    if not tests and section is None:
        return []
    out = ["<h2 id='where-the-rater-looks'>Where the rater looks</h2>"]
    if tests:
        regions = list(dict.fromkeys(t.perturbation or "" for t in tests))
        out.append("<p>Each region replaced by flat grey (<code>region:*</code>): how far the score moves. A rater "
                   "is expected to move here, so these tests are a family of their own and never fail an "
                   "audit.</p><table><tr><th class='l'>trait</th>"
                   + "".join(f"<th>{esc(r)}</th>" for r in regions) + "</tr>")
        index = {(t.perturbation, t.trait): t for t in tests}
        for trait in result.traits:
            cells = "".join(f"<td class='{index[(r, trait)].verdict}'>{num(index[(r, trait)].mean_shift)}</td>"
                            if (r, trait) in index else "<td></td>" for r in regions)
            out.append(f"<tr><th class='l'>{esc(trait)}</th>{cells}</tr>")
        out.append("</table>")
    if section is not None:
        colours = {"face": "#e67e22", "hair": "#8e6c4a", "body": "#2e86c1", "background": "#7f8c8d"}
        out.append(f"<p>Attribution by {esc(section.method.replace('_', ' '))} on the "
                   f"{section.n_clips} clips that moved most ({esc(section.baseline)}; "
                   f"{esc(section.interval)}). Bars: each region's share of the attribution; "
                   "density: that share over the region's share of the picture (above 1: it looks there more "
                   "than the area explains).</p>")
        out.append("<table class='attribution'><tr><th class='l'>trait</th><th class='l'>share of attribution</th>"
                   + "".join(f"<th>density: {esc(r)}</th>" for r in section.regions) + "</tr>")
        for trait, entry in section.traits.items():
            regions = entry.regions
            bar = "".join(f"<span title='{esc(r)} {pct(v.share)}' style='display:inline-block;height:12px;"
                          f"width:{round(240 * v.share, 1)}px;background:{colours.get(r, '#999')}'>"
                          "</span>" for r, v in regions.items())
            legend = ", ".join(f"{esc(r)} {pct(v.share)}" for r, v in regions.items())
            cells = "".join(f"<td>{v.density:.2f}</td>" for v in regions.values())
            note = f"<br><small>{esc(entry.note)}</small>" if entry.note else ""
            out.append(f"<tr><th class='l'>{esc(trait)}</th><td class='l'>{bar}<br><small>{legend}</small>{note}</td>"
                       f"{cells}</tr>")
        out.append("</table>")
    if overlays:
        out.append("<p>Original frame | where the rater's attribution falls (brighter: more), per clip and trait.</p>")
        for (clip, trait), path in sorted(overlays.items()):
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            out.append(f"<figure class='overlay'><img alt='{esc(clip)} / {esc(trait)} attribution' "
                       f"src='data:image/png;base64,{data}'>"
                       f"<figcaption>{esc(clip)} · {esc(trait)}</figcaption></figure>")
    return out


def render_html(result: AuditResult, previews: Mapping[str, Path] | None = None, *,
                baseline: AuditResult | None = None, baseline_label: str = "before",
                shifts: Shifts | None = None, overlays: Mapping[tuple[str, str], Path] | None = None) -> str:
    """The offline report. ``shifts``: each test's per-candidate shifts (``Store.shifts``), drawn
    behind its confidence interval when given; ``overlays``: ``explain_files`` of the run."""
    esc = html.escape
    counts = result.counts()
    agreement = result.schema_version >= 2
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        f"<title>auditkit report: {esc(str(result.rater.get('spec', '')))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Counterfactual fairness audit</h1>",
        f"<p>Rater <code>{esc(str(result.rater.get('spec')))}</code> "
        f"(<code>{esc(str(result.rater.get('hash', ''))[:23])}</code>), {result.n_clips} clips, "
        f"{len(result.fairness)} tests: <b>{counts['shift']} shift</b>, <b>{counts['unstable']} unstable</b>, "
        f"{counts['invariant']} invariant, {counts['inconclusive']} inconclusive"
        + (f" (and {len(result.attribution_tests)} region ablation tests, "
           "<a href='#where-the-rater-looks'>below</a>)" if result.attribution_tests else "")
        + f". Margin {esc(margin_text(result))}, "
        f"tolerance {esc(str(result.config.get('tolerance', 'n/a')))}. Created {esc(result.created)}.</p>",
        f"<p>{esc(unit_sentence(result))}</p>",
        "<p>Each test pairs a candidate's score with the score of their edited copy. "
        + " ".join(f"<em>{v}</em>: {esc(VERDICT_MEANING[v])}." for v in VERDICTS) + "</p>",
    ]
    sentence = retest_sentence(result)
    if sentence:
        parts.append(f"<p>{esc(sentence)}</p>")
    parts += _grid(result)
    parts += _conditions(result, shifts or {})
    parts += _where_it_looks(result, overlays or {})
    parts += ["<h2>All tests</h2>",
              "<table><tr><th class='l'>perturbation</th><th class='l'>trait</th><th>n</th><th>clips</th>"
              "<th>mean shift</th><th>CI</th><th>d<sub>z</sub></th><th>p (t)</th><th>p adj</th><th>p (Wilcoxon)</th>"
              "<th>equiv p adj</th>"
              + ("<th>moved beyond margin [bounds]</th><th>retest moved</th><th>limits of agreement</th>"
                 "<th>unstable p adj</th><th>stable p adj</th>" if agreement else "")
              + "<th>margin</th><th class='l'>verdict</th><th class='l'>note</th></tr>"]
    for t in result.tests:
        note = t.note
        if t.verdict == "inconclusive" and t.n_needed:
            unit = "people" if t.unit == "person" else "clips"
            note = (note + "; " if note else "") + f"about {t.n_needed} {unit} needed"
        extra = (f"<td>{moved(t)}</td><td>{pct(t.retest_share_moved) if t.retest_share_moved is not None else ''}</td>"
                 f"<td>{loa(t)}</td><td>{p(t.unstable_p_adjusted)}</td><td>{p(t.stable_p_adjusted)}</td>"
                 if agreement else "")
        parts.append(
            f"<tr><td class='l'>{esc(t.perturbation or '')}</td><td class='l'>{esc(t.trait or '')}</td>"
            f"<td>{t.n}</td><td>{t.n_clips}</td><td>{num(t.mean_shift)}</td><td>{ci(t)}</td>"
            f"<td>{num(t.effect_size_dz, '.2f')}</td><td>{p(t.p_value)}</td><td>{p(t.p_adjusted)}</td>"
            f"<td>{p(t.wilcoxon_p)}</td><td>{p(t.equivalence_p_adjusted)}</td>{extra}<td>{t.margin:g}</td>"
            f"<td class='l {t.verdict}'>{t.verdict}</td><td class='l'>{esc(note)}</td></tr>")
    parts.append("</table>")
    if baseline is not None:
        rows = comparison_rows(result, baseline)
        flipped = sum(b.verdict != a.verdict for b, a in rows)
        parts.append(f"<h2>Compared with {esc(baseline_label)} ({flipped} verdict(s) changed)</h2>"
                     f"<p>{esc(baseline_label)}: rater <code>{esc(str(baseline.rater.get('spec')))}</code>, "
                     f"created {esc(baseline.created)}.</p>")
        parts.append(f"<table><tr><th class='l'>perturbation</th><th class='l'>trait</th>"
                     f"<th>{esc(baseline_label)}: shift</th><th>moved</th><th class='l'>verdict</th>"
                     "<th>now: shift</th><th>moved</th><th class='l'>verdict</th></tr>")
        parts += [f"<tr><td class='l'>{esc(a.perturbation or '')}</td><td class='l'>{esc(a.trait or '')}</td>"
                  + "".join(f"<td>{num(t.mean_shift)}</td><td>{pct(t.share_moved)}</td>"
                            f"<td class='l {t.verdict}'>{t.verdict}</td>" for t in (b, a)) + "</tr>"
                  for b, a in rows]
        parts.append("</table>")
    if previews:
        parts.append("<h2>Edits (original | edited)</h2>")
        for name, path in sorted(previews.items()):
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{esc(name)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{esc(name)}</figcaption></figure>")
    extra_lines = impact_lines(result)
    if extra_lines:
        parts.append("<h2>Decision impact and groups</h2><ul>")
        parts += [f"<li>{esc(line)}</li>" for line in extra_lines]
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
