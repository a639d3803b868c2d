"""The dashboard's pages. Each draws what a saved run holds; none computes a statistic.

Every widget has a key (``page``, ``run``, ``family``, ``trait``, ``condition``, ``sort_trait``,
``sort``, ``clip``, ``compare_run``), so ``AppTest`` and the URL can drive it: a widget whose state
is missing or no longer valid takes its value from the query parameter of the same name, else a
default (:func:`seed`).
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import urlencode

import streamlit as st

if TYPE_CHECKING:  # imported where used: the Overview opens without paying for pandas
    import pandas as pd

from auditkit.contract.errors import AuditkitError
from auditkit.core.report.format import (VERDICT_COLOUR, VERDICT_MARK, loa, margin_text, moved, pct,
                                         retest_sentence, unit_sentence)
from auditkit.core.report.format import num as fnum
from auditkit.core.report.format import p as fp
from auditkit.core.result import VERDICTS, AuditResult
from auditkit.core.stats import MIN_N

from . import data

PAGES = ("Runs", "Overview", "Condition", "Clips", "Compare")
MARK = VERDICT_MARK
SORTS = ("largest |shift| first", "most negative first", "most positive first", "clip id")
# Diverging scale of the mean shift: blue down, red up, near-white near zero.
_NEG, _MID, _POS = (33, 102, 172), (247, 247, 247), (178, 24, 43)


@dataclass
class Ctx:
    """What every page gets: the folder, its runs, and the selected run (or why it cannot load)."""

    root: Path
    runs: list[data.RunEntry]
    name: str | None
    result: AuditResult | None
    error: str | None

    @property
    def label(self) -> str:
        return data.display_name(self.root, self.name or "")


# --------------------------------------------------------------------------- helpers
def seed(key: str, options: Sequence[Any], default: Any) -> None:
    """Give widget ``key`` a valid value before it is drawn: its own, else the URL's, else
    ``default``. Widgets are never also given ``index``, so Streamlit sees one source of truth."""
    options = list(options)
    if st.session_state.get(key) in options:
        return
    wanted = st.query_params.get(key)
    st.session_state[key] = wanted if wanted in options else default


def colour(value: Any, reach: float) -> tuple[str, str]:
    """(background, text colour) of a mean shift on a scale symmetric around zero."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "#ffffff", "#555555"
    t = max(-1.0, min(1.0, value / reach)) if reach > 0 else 0.0
    end = _POS if t >= 0 else _NEG
    rgb = [round(m + (e - m) * abs(t)) for m, e in zip(_MID, end)]
    return "#{:02x}{:02x}{:02x}".format(*rgb), ("#ffffff" if abs(t) > 0.55 else "#222222")


def reach_of(result: AuditResult) -> float:
    """Half-width of the colour scale: the largest mean shift, and never less than the margin,
    so a run whose shifts all sit inside the margin stays pale."""
    values = [abs(t.mean_shift) for t in result.fairness if t.mean_shift is not None]
    return max(values + [t.margin for t in result.fairness] + [1e-9])


def link(**params: str) -> str:
    return "?" + urlencode(params)


def image_html(data_bytes: bytes, mime: str, alt: str, caption: str = "") -> str:
    """An image inlined as a data URI. Not ``st.image``: that serves the bytes from the server's
    /media route, which fails (HTTP 500) for images under Streamlit 1.60 with Starlette 1.10."""
    src = f"data:{mime};base64,{base64.b64encode(data_bytes).decode('ascii')}"
    cap = f"<figcaption style='font-size:0.8rem;color:#555'>{html.escape(caption)}</figcaption>" if caption else ""
    return (f"<figure style='margin:0'><img src='{src}' alt='{html.escape(alt)}' "
            f"style='max-width:100%;border:1px solid #ccc'>{cap}</figure>")


def need_result(ctx: Ctx) -> AuditResult | None:
    """The selected run, or a message on the page saying why it cannot be shown."""
    if ctx.result is None:
        st.error(ctx.error or "No run selected.")
        st.caption("Pick another run in the sidebar; the Runs page lists every run and what is wrong with it.")
        return None
    if not ctx.result.tests:
        st.info(f"{ctx.label}: this run holds no tests (no clip was paired with an edit), so there is nothing "
                "to show here.")
        return None
    return ctx.result


def condition_select(result: AuditResult) -> str:
    # One definition for the Condition and Clips pages, so both draw the same widget and the
    # choice survives a page switch.
    options = list(result.perturbations)
    seed("condition", options, options[0])
    counts = {c: sum(t.verdict in ("shift", "unstable") for t in result.tests if t.perturbation == c)
              for c in options}
    return st.selectbox("Condition (edit)", options, key="condition", on_change=_reset_clip,
                        format_func=lambda c: f"{c}  ({counts.get(c, 0)} shift or unstable)")


def _reset_clip() -> None:
    # A new condition or order starts at the top of the list, not at the clip seen before.
    st.session_state.pop("clip", None)
    st.query_params.pop("clip", None)


# --------------------------------------------------------------------------- Runs
def page_runs(ctx: Ctx) -> None:
    import pandas as pd

    st.header("Runs")
    st.caption(f"RUNS_DIR: {ctx.root}")
    if not ctx.runs:
        st.info("No runs here yet. `auditkit run --out DIR` or `auditkit demo` writes one.")
        return
    frame = pd.DataFrame([{
        "run": data.display_name(ctx.root, e.name), "date (UTC)": e.date, "rater": e.rater,
        "clips": e.n_clips, "tests": e.n_tests, "shift verdicts": e.n_shift,
        "status": "ok" if e.ok else e.error} for e in ctx.runs])
    st.dataframe(frame, hide_index=True, width="stretch",
                 column_config={"clips": st.column_config.NumberColumn(format="%d"),
                                "tests": st.column_config.NumberColumn(format="%d"),
                                "shift verdicts": st.column_config.NumberColumn(format="%d")})
    for e in ctx.runs:
        if not e.ok:
            shown = data.display_name(ctx.root, e.name)
            st.warning(e.error if (e.error or "").startswith(shown) else f"{shown}: {e.error}")


# --------------------------------------------------------------------------- Overview
def grid_html(result: AuditResult, run: str, *, edits: Sequence[str], traits: Sequence[str]) -> str:
    """Edits down, traits across; each cell coloured by its mean shift, its verdict in words, and
    a link to that condition (a plain link, so a cell can be opened in a new tab or shared)."""
    esc = html.escape
    reach = reach_of(result)
    index = {(t.perturbation, t.trait): t for t in result.tests}
    th = "padding:6px 10px;text-align:left;font-weight:600;border-bottom:1px solid #ccc"
    out = ["<table class='ak-grid' style='border-collapse:separate;border-spacing:3px;font-size:0.9rem'>",
           f"<tr><th style='{th}'>edit</th>" + "".join(f"<th style='{th}'>{esc(t)}</th>" for t in traits) + "</tr>"]
    for edit in edits:
        cells = []
        for trait in traits:
            t = index.get((edit, trait))
            if t is None:
                cells.append("<td></td>")
                continue
            bg, fg = colour(t.mean_shift, reach)
            tip = (f"{edit} / {trait}: mean shift {fnum(t.mean_shift)}, CI [{fnum(t.ci_low)}, {fnum(t.ci_high)}], "
                   f"p adj {fp(t.p_adjusted)}, equiv p adj {fp(t.equivalence_p_adjusted)}, n {t.n}, "
                   f"moved beyond the margin {moved(t)}, margin ±{t.margin:g}: {t.verdict}")
            href = link(page="Condition", run=run, condition=edit, sort_trait=trait)
            weight = "700" if t.verdict in ("shift", "unstable") else "400"
            share = f" · {pct(t.share_moved)}" if t.share_moved is not None else ""
            cells.append(
                f"<td data-verdict='{t.verdict}' style='background:{bg};padding:0;min-width:7.5rem;"
                f"text-align:center;border-radius:4px'>"
                f"<a href='{esc(href)}' title='{esc(tip)}' style='display:block;padding:6px 8px;color:{fg};"
                f"text-decoration:none'><span style='font-weight:{weight}'>{fnum(t.mean_shift)}</span><br>"
                f"<small>{MARK[t.verdict]}{share}</small></a></td>")
        out.append(f"<tr><th style='{th}'>{esc(edit)}</th>{''.join(cells)}</tr>")
    out.append("</table>")
    return "".join(out)


def legend_html(reach: float) -> str:
    stops = [colour(reach * k / 4, reach)[0] for k in range(-4, 5)]
    bar = "".join(f"<span style='display:inline-block;width:22px;height:12px;background:{c}'></span>"
                  for c in stops)
    return (f"<div style='font-size:0.8rem;color:#444'>mean shift (edited − original): "
            f"{fnum(-reach)} {bar} {fnum(reach)}, then the share of candidates moved beyond the margin "
            f"&nbsp;·&nbsp; ⚠ shift: a systematic shift, significant after correction "
            f"&nbsp;·&nbsp; ≋ unstable: more than the tolerated share of candidates moved beyond ±margin "
            f"&nbsp;·&nbsp; ✓ invariant: the mean and the candidates proven within ±margin "
            f"&nbsp;·&nbsp; ? inconclusive: none of these, not a pass "
            f"&nbsp;·&nbsp; click a cell for its evidence</div>")


def page_overview(ctx: Ctx) -> None:
    result = need_result(ctx)
    if result is None:
        return
    st.header(f"Overview: {ctx.label}")
    counts = result.counts()
    cfg = result.config
    st.caption(f"Rater `{result.rater.get('spec')}` ({str(result.rater.get('hash', ''))[:23]}), "
               f"created {result.created or 'unknown'}; margin {margin_text(result)}, tolerance "
               f"{cfg.get('tolerance', 'n/a')}, alpha {cfg.get('alpha')}, {cfg.get('correction')} correction")
    st.caption(unit_sentence(result) + (" " + retest_sentence(result) if retest_sentence(result) else ""))
    cols = st.columns(6)
    cols[0].metric("people" if result.unit == "person" else "clips",
                   result.n_subjects if result.unit == "person" else result.n_clips)
    cols[1].metric("shift", counts["shift"])
    cols[2].metric("unstable", counts["unstable"])
    cols[3].metric("invariant", counts["invariant"])
    cols[4].metric("inconclusive", counts["inconclusive"])
    cols[5].metric("skipped pairs", len(result.skipped))

    family_of = {t.perturbation or "": data.family(t) for t in result.fairness}
    edits_all = list(family_of)
    families = list(dict.fromkeys(family_of.values()))
    traits_all = list(result.traits)
    _seed_multi("family", families)
    _seed_multi("trait", traits_all)
    left, right = st.columns(2)
    chosen_families = left.multiselect("Edit family", families, key="family")
    chosen_traits = right.multiselect("Trait", traits_all, key="trait")
    edits = [e for e in edits_all if family_of[e] in chosen_families]
    traits = [t for t in traits_all if t in chosen_traits]
    if not edits or not traits:
        st.info("No cell matches the filters: pick at least one edit family and one trait.")
    else:
        st.html(grid_html(result, ctx.name or ".", edits=edits, traits=traits))
        st.html(legend_html(reach_of(result)))
    from auditkit.core.report import impact_lines
    from auditkit.core.report.format import attribution_lines, region_lines

    looks = region_lines(result) + attribution_lines(result)
    if looks:
        st.subheader("Where the rater looks")
        st.caption("Region ablation and attribution answer where the rater's scores come from; a rater is "
                   "expected to react to them, so they are never counted as shifts above. Heatmaps: Clip page.")
        st.code("\n".join(looks), language=None)
    lines = impact_lines(result)
    if lines:
        st.subheader("Decision impact and groups")
        st.markdown("\n".join(f"- {line}" for line in lines))


def _seed_multi(key: str, options: Sequence[str]) -> None:
    current = st.session_state.get(key)
    if current is None or any(v not in options for v in current):
        st.session_state[key] = list(options)


# --------------------------------------------------------------------------- Condition
def _tests_table(tests: Sequence[Any]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([{
        "trait": t.trait, "n": t.n, "mean shift": fnum(t.mean_shift),
        "CI": f"[{fnum(t.ci_low)}, {fnum(t.ci_high)}]", "moved beyond margin": moved(t),
        "retest moved": pct(t.retest_share_moved) if t.retest_share_moved is not None else "",
        "limits of agreement": loa(t), "d_z": fnum(t.effect_size_dz, ".2f"),
        "p (t)": fp(t.p_value), "p adj": fp(t.p_adjusted), "p (Wilcoxon)": fp(t.wilcoxon_p),
        "equiv p adj": fp(t.equivalence_p_adjusted), "unstable p adj": fp(t.unstable_p_adjusted),
        "stable p adj": fp(t.stable_p_adjusted), "margin": f"±{t.margin:g}", "verdict": MARK[t.verdict],
        "note": t.note} for t in tests])


def needs_text(t: Any) -> str:
    """What would decide an inconclusive test, from the fields audit.json already holds."""
    unit = "people" if t.unit == "person" else "clips"
    ci = f"[{fnum(t.ci_low)}, {fnum(t.ci_high)}]"
    inside = t.mean_shift is not None and abs(t.mean_shift) < t.margin
    spread = t.share_moved is not None and t.tolerance is not None and t.share_moved > t.tolerance
    if spread:
        goal = (f"{pct(t.share_moved)} of candidates moved beyond ±{t.margin:g}, more than the tolerated "
                f"{pct(t.tolerance)}: more {unit} would show whether that holds (unstable)")
    elif inside:
        goal = (f"its CI {ci} must shrink inside ±{t.margin:g}, and the candidates' spread must be shown to stay "
                f"inside it (all but {pct(t.tolerance)}), to show invariance")
    else:
        goal = f"its shift of {fnum(t.mean_shift)} must become significant"
    if t.n < MIN_N:
        return (f"**{t.trait}**: only {t.n} paired {unit}; at least {MIN_N} are needed before anything can be decided"
                + (f" (about {t.n_needed} would decide it with 80% power)." if t.n_needed else "."))
    if t.n_needed:
        more = max(t.n_needed - t.n, 0)
        return (f"**{t.trait}**: {goal}; about **{t.n_needed} {unit}** would decide it with 80% power "
                f"(this run has {t.n}, so about {more} more).")
    return (f"**{t.trait}**: {goal}; no sample size up to 100,000 {unit} is expected to decide it "
            "(the mean shift sits about on the margin), so the margin or the edit needs a second look.")


def strip_chart(tests: Sequence[Any], clip_shifts: pd.DataFrame, traits: Sequence[str]) -> Any:
    """Each clip's shift as a tick, the CI of the mean as a bar, the ±margin band behind them."""
    import altair as alt  # here, not at the top: it costs the first page a quarter of a second
    import pandas as pd

    rows = pd.DataFrame([{"trait": t.trait, "lo": -t.margin, "hi": t.margin, "mean_shift": t.mean_shift,
                          "ci_low": t.ci_low, "ci_high": t.ci_high, "loa_low": t.loa_low, "loa_high": t.loa_high,
                          "verdict": t.verdict} for t in tests])
    values = [abs(v) for v in clip_shifts["shift"]] if len(clip_shifts) else []
    bounds = [abs(v) for v in rows[["lo", "ci_low", "ci_high", "loa_low", "loa_high"]].to_numpy().ravel().tolist()
              if v is not None and not (isinstance(v, float) and math.isnan(v))]
    reach = max(values + bounds + [1e-6]) * 1.05
    x = alt.Scale(domain=[-reach, reach], nice=False)
    y = alt.Y("trait:N", sort=list(traits), title=None)
    colour_ = alt.Color("verdict:N", scale=alt.Scale(domain=list(VERDICTS),
                                                     range=[VERDICT_COLOUR[v] for v in VERDICTS]))
    band = alt.Chart(rows).mark_bar(color="#d8efd9", opacity=0.9).encode(
        x=alt.X("lo:Q", scale=x, title="shift, edited − original (grey ticks: candidates; bar: CI of the mean; "
                                       "coloured ticks: limits of agreement; green band: ±margin)"), x2="hi:Q", y=y)
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="#888").encode(x=alt.X("x:Q", scale=x))
    layers = [band, zero]
    if len(clip_shifts):
        ticks = clip_shifts[["clip_id", "trait", "shift"]]
        layers.append(alt.Chart(ticks).mark_tick(color="#555", opacity=0.35, thickness=1).encode(
            x=alt.X("shift:Q", scale=x), y=y, tooltip=["clip_id", alt.Tooltip("shift:Q", format="+.4f")]))
    limits = rows.dropna(subset=["loa_low", "loa_high"]).melt(id_vars=["trait", "verdict"],
                                                             value_vars=["loa_low", "loa_high"], value_name="loa")
    if len(limits):
        layers.append(alt.Chart(limits).mark_tick(thickness=2, size=22).encode(
            x=alt.X("loa:Q", scale=x), y=y, color=colour_, tooltip=["trait", alt.Tooltip("loa:Q", format="+.4f")]))
    ci = rows.dropna(subset=["ci_low", "ci_high"])
    layers.append(alt.Chart(ci).mark_rule(strokeWidth=4).encode(x=alt.X("ci_low:Q", scale=x), x2="ci_high:Q",
                                                                 y=y, color=colour_))
    layers.append(alt.Chart(rows.dropna(subset=["mean_shift"])).mark_point(filled=True, size=90).encode(
        x=alt.X("mean_shift:Q", scale=x), y=y, color=colour_,
        tooltip=["trait", alt.Tooltip("mean_shift:Q", format="+.4f"), "verdict"]))
    return alt.layer(*layers).properties(height=max(120, 46 * len(traits)))


def histogram(clip_shifts: pd.DataFrame, traits: Sequence[str], bins: int = 30) -> Any:
    """Counts of the per-clip shifts, one panel per trait on shared bins. Binned here, so the
    browser draws 150 bars instead of binning 5,000 values (a second less for a 1,000-clip run)."""
    import altair as alt
    import numpy as np
    import pandas as pd

    values = clip_shifts["shift"].to_numpy(dtype=float)
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-9, bins + 1)
    rows = []
    for trait in traits:
        counts, _ = np.histogram(clip_shifts.loc[clip_shifts["trait"] == trait, "shift"].to_numpy(dtype=float),
                                 bins=edges)
        rows.append(pd.DataFrame({"trait": trait, "from": edges[:-1], "to": edges[1:], "clips": counts}))
    bars = pd.concat(rows, ignore_index=True)
    return alt.Chart(bars).mark_bar(color="#7a8ca3").encode(
        x=alt.X("from:Q", title="per-candidate shift", scale=alt.Scale(domain=[float(edges[0]), float(edges[-1])])),
        x2="to:Q", y=alt.Y("clips:Q", title="candidates"),
        tooltip=[alt.Tooltip("from:Q", format="+.4f"), alt.Tooltip("to:Q", format="+.4f"), "clips:Q"],
    ).properties(width=170, height=110).facet(facet=alt.Facet("trait:N", sort=list(traits), title=None), columns=5)


def page_condition(ctx: Ctx) -> None:
    import pandas as pd

    result = need_result(ctx)
    if result is None:
        return
    st.header(f"Condition: {ctx.label}")
    cond = condition_select(result)
    tests = [t for t in result.tests if t.perturbation == cond]
    skipped = [s for s in result.skipped if s.perturbation == cond]
    base, arm = data.arms(result, cond)
    unit = "people" if result.unit == "person" else "clips"
    cols = st.columns(5)
    cols[0].metric(f"N paired {unit}", max((t.n for t in tests), default=0))
    cols[1].metric("skipped pairs", len(skipped))
    cols[2].metric("margin", ", ".join(sorted({f"±{t.margin:g}" for t in tests})))
    shares = [t.share_moved for t in tests if t.share_moved is not None]
    cols[3].metric("most moved beyond it", pct(max(shares)) if shares else "n/a")
    cols[4].metric("alpha / correction", f"{result.config.get('alpha')} / {result.config.get('correction')}")
    st.caption(f"Shift = {arm} − {base}, per {'person (the mean of their clips)' if unit == 'people' else 'clip'}. "
               "Verdicts and numbers are those saved in audit.json. " + unit_sentence(result))

    traits = [t.trait or "" for t in tests]
    try:
        frame = data.shifts(ctx.root, ctx.name or ".", result)
        clip_shifts = data.per_candidate(frame[frame["perturbation"] == cond],
                                         data.people(ctx.root, ctx.name or ".", result))
    except AuditkitError as exc:
        st.warning(f"{exc}. The intervals below come from audit.json; the candidates' ticks need the store.")
        clip_shifts = pd.DataFrame(columns=["perturbation", "clip_id", "trait", "before", "after", "shift"])
    st.altair_chart(strip_chart(tests, clip_shifts, traits), width="stretch")
    if len(clip_shifts):
        st.altair_chart(histogram(clip_shifts, traits))
    st.dataframe(_tests_table(tests), hide_index=True, width="stretch")

    open_cols = st.columns(len(traits) + 1)
    open_cols[0].markdown("**See the clips, sorted by the shift of:**")
    for col, trait in zip(open_cols[1:], traits):
        col.button(trait, key=f"open_clips_{trait}", on_click=_open_clips, args=(trait,))

    inconclusive = [t for t in tests if t.verdict == "inconclusive"]
    if inconclusive:
        st.subheader("What the inconclusive results would need")
        st.markdown("\n".join(f"- {needs_text(t)}" for t in inconclusive))
    with st.expander(f"Skipped pairs ({len(skipped)})", expanded=bool(skipped) and len(skipped) <= 10):
        if skipped:
            st.dataframe(pd.DataFrame([{"clip": s.clip, "reason": s.reason} for s in skipped]),
                         hide_index=True, width="stretch")
        else:
            st.write("Every clip was scored under this condition.")
    shot = data.preview(ctx.root, ctx.name or ".", cond)
    if shot is not None:
        st.html(image_html(shot.read_bytes(), "image/png", f"{cond} preview",
                           f"{base} | {arm}: the run's preview (the first clip the edit applied to)"))


def _open_clips(trait: str) -> None:
    st.session_state["page"] = "Clips"
    st.session_state["sort_trait"] = trait
    _reset_clip()


# --------------------------------------------------------------------------- Clips
def sort_clips(wide: pd.DataFrame, trait: str, order: str) -> pd.DataFrame:
    shift = wide[f"{trait} shift"]
    if order == SORTS[0]:
        keys = shift.abs()
        return wide.assign(_k=keys).sort_values(["_k", "clip"], ascending=[False, True]).drop(columns="_k")
    if order == SORTS[1]:
        return wide.sort_values([f"{trait} shift", "clip"], ascending=[True, True])
    if order == SORTS[2]:
        return wide.sort_values([f"{trait} shift", "clip"], ascending=[False, True])
    return wide.sort_values("clip")


def clips_wide(clip_shifts: pd.DataFrame, traits: Sequence[str]) -> pd.DataFrame:
    """One row per clip: each trait's shift, then each trait's score before and after."""
    import pandas as pd

    wide = clip_shifts.pivot(index="clip_id", columns="trait", values=["shift", "before", "after"])
    out = pd.DataFrame(index=wide.index)
    for kind in ("shift", "before", "after"):
        for trait in traits:
            if (kind, trait) in wide.columns:
                out[f"{trait} {kind}"] = wide[(kind, trait)]
    return out.reset_index().rename(columns={"clip_id": "clip"})


def page_clips(ctx: Ctx) -> None:
    import pandas as pd

    result = need_result(ctx)
    if result is None:
        return
    st.header(f"Clips: {ctx.label}")
    name = ctx.name or "."
    top = st.columns(3)
    with top[0]:
        cond = condition_select(result)
    traits = [t.trait or "" for t in result.tests if t.perturbation == cond]
    seed("sort_trait", traits, traits[0])
    seed("sort", SORTS, SORTS[0])
    sort_trait = top[1].selectbox("Sort by the shift of", traits, key="sort_trait", on_change=_reset_clip)
    order = top[2].selectbox("Order", SORTS, key="sort", on_change=_reset_clip)
    try:
        frame = data.shifts(ctx.root, name, result)
    except AuditkitError as exc:
        st.error(str(exc))
        return
    clip_shifts = frame[frame["perturbation"] == cond]
    skipped = {s.clip: s.reason for s in result.skipped if s.perturbation == cond}
    if clip_shifts.empty:
        st.info(f"No clip was scored both ways under {cond}.")
        return
    table = sort_clips(clips_wide(clip_shifts, traits), sort_trait, order).reset_index(drop=True)
    ids = table["clip"].tolist()
    st.session_state["_clip_order"] = ids
    seed("clip", ids, ids[0])
    shift_of = dict(zip(table["clip"], table[f"{sort_trait} shift"]))
    clip = st.selectbox(f"Clip ({len(ids)} paired; listed in this order)", ids, key="clip",
                        format_func=lambda c: f"{c}   ({sort_trait} {fnum(shift_of.get(c))})")
    show_clip(ctx, data.arms(result, cond), clip, table[table["clip"] == clip].iloc[0], traits)

    st.subheader("All clips")
    st.caption("Select a row to show that clip above; click a column header to sort by it.")
    st.dataframe(table, hide_index=True, width="stretch", key="clip_table", on_select=_pick_clip,
                 selection_mode="single-row",
                 column_config={c: st.column_config.NumberColumn(format="%+.4f" if c.endswith("shift") else "%.4f")
                                for c in table.columns if c != "clip"})
    if skipped:
        with st.expander(f"Clips not paired under {cond} ({len(skipped)})"):
            st.dataframe(pd.DataFrame([{"clip": c, "reason": r} for c, r in sorted(skipped.items())]),
                         hide_index=True, width="stretch")


def show_clip(ctx: Ctx, conditions: tuple[str, str], clip: str, row: pd.Series, traits: Sequence[str]) -> None:
    """``conditions``: (base, arm) of the test, shown side by side."""
    import pandas as pd

    base, arm = conditions
    name = ctx.name or "."
    left, right, numbers = st.columns([3, 3, 3])
    for col, which in ((left, base), (right, arm)):
        jpeg = data.thumb(ctx.root, name, clip, which)
        with col:
            st.markdown(f"**{which}**")
            if jpeg is None:
                st.info("No frame stored for this clip (runs written before auditkit kept frames have none).")
            else:
                st.html(image_html(jpeg, "image/jpeg", f"{clip}: {which}", f"{clip}: {which}, middle frame"))
    # Played, not only seen: the whole clip with its sound, encoded when asked (then cached).
    if st.toggle("Play both with sound", key="play_clip", help="encodes the original and the edited clip, "
                 "every frame with the clip's own sound, the first time they are played"):
        for col, which in ((left, base), (right, arm)):
            movie = data.playback(ctx.root, name, ctx.result, clip, which)
            with col:
                if isinstance(movie, str):
                    st.info(f"Cannot play {which}: {movie}.")
                else:
                    st.video(movie, format="video/mp4")
    with numbers:
        st.markdown(f"**{clip}**: scores ({base} → {arm})")
        st.dataframe(pd.DataFrame([{"trait": t, "before": fnum(row.get(f"{t} before"), ".4f"),
                                    "after": fnum(row.get(f"{t} after"), ".4f"),
                                    "shift": fnum(row.get(f"{t} shift"), "+.4f")} for t in traits]),
                     hide_index=True, width="stretch")
    heat = data.overlays(ctx.root, name, ctx.result, clip) if ctx.result is not None else {}
    if heat:
        st.markdown(f"**Where the rater looks on {clip}** (`auditkit explain`: the rater's input | its "
                    "attribution, brighter where a trait's score depends more on the pixels)")
        shown = st.session_state.get("sort_trait")
        seed("heat_trait", list(heat), shown if shown in heat else next(iter(heat)))
        trait = st.radio("Heatmap of", list(heat), key="heat_trait", horizontal=True)
        st.html(image_html(heat[trait].read_bytes(), "image/png", f"{clip}: {trait} attribution",
                           f"{clip} · {trait}: original | attribution"))
    elif ctx.result is not None and ctx.result.where_it_looks is not None:
        st.caption(f"`auditkit explain` did not pick {clip} (it explains the clips that moved most).")


def _pick_clip() -> None:
    rows = st.session_state.get("clip_table", {}).get("selection", {}).get("rows", [])
    order = st.session_state.get("_clip_order", [])
    if rows and rows[0] < len(order):
        st.session_state["clip"] = order[rows[0]]


# --------------------------------------------------------------------------- Compare
def default_baseline(ctx: Ctx, options: Sequence[str]) -> str:
    """For ``x/after`` its sibling ``x/before`` (what ``auditkit demo`` writes), else the newest
    run older than the selected one, else the first other run."""
    name = ctx.name or "."
    if name.endswith("after"):
        sibling = name[: -len("after")] + "before"
        if sibling in options:
            return sibling
    names = [e.name for e in ctx.runs]
    later = [n for n in names[names.index(name) + 1:] if n in options] if name in names else []
    return later[0] if later else options[0]


def compare_grid_html(frame: pd.DataFrame, after: AuditResult, run: str, reach: float) -> str:
    esc = html.escape
    edits = list(dict.fromkeys(frame["perturbation"]))
    traits = list(dict.fromkeys(list(after.traits) + frame["trait"].tolist()))
    index = {(r.perturbation, r.trait): r for r in frame.itertuples(index=False)}
    th = "padding:6px 10px;text-align:left;font-weight:600;border-bottom:1px solid #ccc"
    out = ["<table class='ak-compare' style='border-collapse:separate;border-spacing:3px;font-size:0.85rem'>",
           f"<tr><th style='{th}'>edit</th>" + "".join(f"<th style='{th}'>{esc(t)}</th>" for t in traits) + "</tr>"]
    for edit in edits:
        cells = []
        for trait in traits:
            r = index.get((edit, trait))
            if r is None:
                cells.append("<td></td>")
                continue
            shown = r.mean_shift_after if isinstance(r.verdict_after, str) else r.mean_shift_before
            bg, fg = colour(shown, reach)
            border = "3px solid #111" if r.flipped else "3px solid transparent"
            vb = MARK.get(r.verdict_before, "—") if isinstance(r.verdict_before, str) else "—"
            va = MARK.get(r.verdict_after, "—") if isinstance(r.verdict_after, str) else "—"
            body = (f"{fnum(r.mean_shift_before)} → <b>{fnum(r.mean_shift_after)}</b><br>"
                    f"<small>{vb} → {va}</small>")
            if isinstance(r.verdict_after, str):
                body = (f"<a href='{esc(link(page='Condition', run=run, condition=edit, sort_trait=trait))}' "
                        f"style='color:{fg};text-decoration:none'>{body}</a>")
            cells.append(f"<td data-flipped='{str(bool(r.flipped)).lower()}' style='background:{bg};color:{fg};"
                         f"padding:6px 8px;text-align:center;border:{border};border-radius:4px;min-width:9rem'>"
                         f"{body}</td>")
        out.append(f"<tr><th style='{th}'>{esc(edit)}</th>{''.join(cells)}</tr>")
    out.append("</table>")
    return "".join(out)


def page_compare(ctx: Ctx) -> None:
    after = need_result(ctx)
    if after is None:
        return
    st.header(f"Compare: {ctx.label}")
    options = [e.name for e in ctx.runs if e.ok and e.name != ctx.name]
    if not options:
        st.info("Compare needs a second readable run in RUNS_DIR (e.g. `auditkit demo` writes before and after).")
        return
    seed("compare_run", options, default_baseline(ctx, options))
    other = st.selectbox("Before (baseline) run", options, key="compare_run",
                         format_func=lambda n: data.display_name(ctx.root, n))
    try:
        before = data.load_result(ctx.root, other)
    except AuditkitError as exc:
        st.error(str(exc))
        return
    frame = data.compare_frame(before, after)
    flipped = frame[frame["flipped"]]
    cb, ca = before.counts(), after.counts()
    left, right = st.columns(2)
    left.markdown(f"**Before: {data.display_name(ctx.root, other)}**  \nrater `{before.rater.get('spec')}`, "
                  f"{before.n_clips} clips, created {before.created}  \n"
                  + " · ".join(f"{cb[v]} {v}" for v in VERDICTS))
    right.markdown(f"**After: {ctx.label}**  \nrater `{after.rater.get('spec')}`, {after.n_clips} clips, "
                   f"created {after.created}  \n"
                   + " · ".join(f"{ca[v]} {v}" for v in VERDICTS))
    st.metric("verdicts that flipped", len(flipped))
    reach = max(reach_of(after), reach_of(before))
    st.html(compare_grid_html(frame, after, ctx.name or ".", reach))
    st.html(legend_html(reach).replace("click a cell for its evidence",
                                       "before → after in each cell; a black frame marks a flipped verdict"))
    st.subheader(f"Verdicts that flipped ({len(flipped)})")
    if flipped.empty:
        st.write("No verdict changed between the two runs.")
    else:
        rows = _compare_rows(flipped).drop(columns="flipped")
        pairs = zip(rows["before: verdict"], rows["after: verdict"])
        rows.insert(2, "before → after", [f"{b} → {a}" for b, a in pairs])
        st.dataframe(rows, hide_index=True, width="stretch")
    only = frame[frame["in"] != "both"]
    if not only.empty:
        st.caption(f"{len(only)} cell(s) exist in one run only (different edits or traits); shown with —.")
    with st.expander("Every cell"):
        st.dataframe(_compare_rows(frame), hide_index=True, width="stretch")


def _compare_rows(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    def verdict(v: Any) -> str:
        return v if isinstance(v, str) else "—"

    return pd.DataFrame({
        "perturbation": frame["perturbation"], "trait": frame["trait"],
        "before: shift": [fnum(v) for v in frame["mean_shift_before"]],
        "before: verdict": [verdict(v) for v in frame["verdict_before"]],
        "after: shift": [fnum(v) for v in frame["mean_shift_after"]],
        "after: verdict": [verdict(v) for v in frame["verdict_after"]],
        "change": [fnum(v) for v in frame["change"]],
        "flipped": frame["flipped"].astype(bool)})


PAGE_FUNCS = {"Runs": page_runs, "Overview": page_overview, "Condition": page_condition,
              "Clips": page_clips, "Compare": page_compare}
