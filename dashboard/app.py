"""The reviewer dashboard, a Streamlit script. It renders saved runs and computes nothing new.

Start it with ``auditkit dashboard [RUNS_DIR]`` (or ``streamlit run`` on this file, ``-- RUNS_DIR``).
RUNS_DIR is the script's first argument, else the environment variable ``AUDITKIT_RUNS_DIR``,
else ``auditkit-runs``; it is never read from the page's URL. The URL carries only the view
(``?page=Clips&run=demo-x/after&condition=lighting:dim&sort_trait=openness&clip=...``), and a run
named there must be one the dashboard found inside RUNS_DIR.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

from auditkit.contract.errors import AuditkitError
from auditkit.dashboard import data, views

URL_KEYS = ("page", "run", "condition", "sort_trait", "sort", "clip", "heat_trait", "compare_run")
# Widgets of one page only: Streamlit forgets a widget's state on a run that does not draw it.
PAGE_KEYS = ("family", "trait", "condition", "sort_trait", "sort", "clip", "heat_trait", "compare_run")


def _script_args() -> list[str]:
    # Under `streamlit run` sys.argv is [this file, *args]; under AppTest it is the test runner's.
    if sys.argv and Path(sys.argv[0]).resolve() == Path(__file__).resolve():
        return sys.argv[1:]
    return []


def _sync_url() -> None:
    # The URL follows the view, so a reload or a shared link opens the same place.
    for key in URL_KEYS:
        value = st.session_state.get(key)
        if isinstance(value, str) and st.query_params.get(key) != value:
            st.query_params[key] = value


def main() -> None:
    st.set_page_config(page_title="auditkit dashboard", layout="wide")
    for key in PAGE_KEYS:  # re-assigning keeps a choice made on one page while another is shown
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
    try:
        root = data.check_root(data.runs_dir(_script_args()))
    except AuditkitError as exc:
        st.error(str(exc))
        return
    runs = data.list_runs(root)
    names = [e.name for e in runs]

    with st.sidebar:
        st.title("auditkit")
        st.caption("Counterfactual fairness audit: where the rater moves, and the evidence.")
        views.seed("page", views.PAGES, "Overview")
        page = st.radio("Page", views.PAGES, key="page")
        asked = st.query_params.get("run")
        if asked is not None and "run" not in st.session_state and asked not in names:
            st.error(f"run {asked!r} is not a run in RUNS_DIR; showing the newest run instead")
        name = None
        if runs:
            newest = next((e.name for e in runs if e.ok), names[0])
            views.seed("run", names, newest)
            by_name = {e.name: e for e in runs}

            def label(n: str) -> str:
                e = by_name[n]
                shown = data.display_name(root, n)
                return f"{shown} · {e.date} · {e.n_shift} shift" if e.ok else f"{shown} · cannot be read"

            name = st.selectbox("Run", names, key="run", format_func=label)
        else:
            st.info("No runs in RUNS_DIR yet.")
        result, error = None, None
        if name is not None:
            try:
                result = data.load_result(root, name)
            except AuditkitError as exc:
                error = str(exc)
            _downloads(root, name, result)
        st.caption(f"RUNS_DIR: {root}")

    ctx = views.Ctx(root=root, runs=runs, name=name, result=result, error=error)
    if page != "Runs" and name is None:
        st.info("No runs in RUNS_DIR yet. `auditkit run --out DIR` or `auditkit demo` writes one.")
    else:
        views.PAGE_FUNCS[page](ctx)
    _sync_url()


def _downloads(root: Path, name: str, result) -> None:
    # Deferred (a callable): the bytes are read only when the reviewer clicks, not on every rerun.
    stem = data.display_name(root, name).replace("/", "-")
    try:
        report = data.run_file(root, name, "report.html")
    except AuditkitError as exc:
        st.caption(str(exc))
        return
    if report.is_file():
        st.download_button("Download report.html", lambda: data.report_html(root, name),
                           file_name=f"{stem}-report.html", mime="text/html", key="download_report",
                           on_click="ignore")
    else:
        st.caption("This run has no report.html.")
    problem = data.store_problem(root, name) if result is not None else None
    if problem:
        st.caption(f"No CSV of per-clip scores: {problem}")
    elif result is not None:
        st.download_button("Download per-clip scores (CSV)", lambda: data.scores_csv(root, name),
                           file_name=f"{stem}-scores.csv", mime="text/csv", key="download_csv",
                           on_click="ignore")


main()
