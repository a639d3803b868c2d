"""The reviewer dashboard through Streamlit's AppTest: every page driven by widget keys, on real
runs written by `auditkit run`, next to runs that are missing, corrupt, older or pointing away."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from auditkit import dashboard
from auditkit.app.run import load_audit
from auditkit.cli import dashboard_command, main
from auditkit.stats import paired_shift_test
from auditkit.core.store import Store
from auditkit.contract.errors import AuditkitError
from auditkit.dashboard import data, views

APP = str(Path(dashboard.__file__).parent / "app.py")
EDITS = "lighting:dim,lighting:bright"
CONTRAST = "lighting:dim vs lighting:bright"


def _audit(out: Path, rater: str, sample_dir: Path, *extra: str) -> None:
    # Clips as the unit: the sample set holds two people, too few to decide anything about people.
    code = main(["run", "--rater", rater, "--clips", str(sample_dir), "--perturb", EDITS,
                 "--out", str(out), "--quiet", "--unit", "clip", *extra])
    assert code in (0, 1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, sample_dir, jitter_rater_path) -> Path:
    """RUNS_DIR as `auditkit demo` lays it out, a run of a rater that moves candidates both ways,
    and every kind of bad neighbour."""
    root = tmp_path_factory.mktemp("runs")
    _audit(root / "jittery", str(jitter_rater_path), sample_dir)
    _audit(root / "demo-1" / "before", "builtin:appearance", sample_dir, "--contrast", CONTRAST)
    _audit(root / "demo-1" / "after", "builtin:constant", sample_dir, "--contrast", CONTRAST)

    # A run written before the store kept frames: the same files without the thumbs table.
    older = root / "older-frames"
    shutil.copytree(root / "demo-1" / "before", older)
    with sqlite3.connect(older / "results.sqlite") as db:
        db.execute("DROP TABLE thumbs")
    db.close()

    # A finished audit whose store was damaged: the numbers stay, the per-clip evidence goes.
    shutil.copytree(root / "demo-1" / "before", root / "broken-store")
    (root / "broken-store" / "results.sqlite").write_bytes(b"this is not a database " * 200)
    # A valid audit.json with no test in it (nothing could be paired).
    (root / "no-tests").mkdir()
    doc = json.loads((root / "demo-1" / "before" / "audit.json").read_text())
    (root / "no-tests" / "audit.json").write_text(json.dumps({**doc, "tests": [], "skipped": []}))

    (root / "broken-missing").mkdir()
    (root / "broken-missing" / "report.html").write_text("<html></html>")
    (root / "broken-corrupt").mkdir()
    (root / "broken-corrupt" / "audit.json").write_text('{"schema_version": 1, "tests": [')
    (root / "broken-old").mkdir()
    (root / "broken-old" / "audit.json").write_text(json.dumps(
        {"schema_version": 0, "rater": "builtin:appearance", "n_clips": 12, "results": []}))

    # A run outside RUNS_DIR, reachable only through symbolic links: never to be read.
    outside = tmp_path_factory.mktemp("outside") / "secret-run"
    shutil.copytree(root / "demo-1" / "before", outside)
    doc = json.loads((outside / "audit.json").read_text())
    doc["rater"]["spec"] = "SECRET-OUTSIDE-RATER"
    (outside / "audit.json").write_text(json.dumps(doc))
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "sneaky").mkdir()
    (root / "sneaky" / "audit.json").symlink_to(outside / "audit.json")
    return root


@pytest.fixture
def app(runs, monkeypatch) -> AppTest:
    monkeypatch.setenv(data.ENV_RUNS_DIR, str(runs))
    return AppTest.from_file(APP, default_timeout=60)


def _ok(at: AppTest) -> None:
    """No exception reached the page, and nothing on it is a traceback."""
    assert not at.exception, [e.value for e in at.exception]
    for block in (at.error, at.warning, at.info):
        for element in block:
            assert "Traceback" not in element.value and "\n" not in element.value.strip(), element.value


def _table(at: AppTest, column: str):
    """The one table with ``column``: a table that cannot be selected from carries no key in
    AppTest, so tables are told apart by what they show."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def _html(at: AppTest) -> str:
    return "\n".join(e.proto.body for e in at.get("html"))


def _texts(at: AppTest) -> str:
    parts = [e.value for kind in (at.markdown, at.caption, at.error, at.warning, at.info, at.header)
             for e in kind]
    return "\n".join(parts) + _html(at)


def _newest_ok(runs: Path) -> str:
    """The readable run with the latest `created` (ties: the first name), as the brief asks."""
    stamps = {name: datetime.fromisoformat(load_audit(runs / name / "audit.json").created).timestamp()
              for name in ("demo-1/before", "demo-1/after", "older-frames", "broken-store", "no-tests")}
    return min(stamps, key=lambda name: (-stamps[name], name))


def go(at: AppTest, run: str | None = None, page: str | None = None) -> AppTest:
    if run is not None:
        at.selectbox(key="run").set_value(run)
    if page is not None:
        at.radio(key="page").set_value(page)
    return at.run()


# --------------------------------------------------------------------------- opening, Runs
def test_opens_on_the_newest_run_overview(app, runs):
    at = app.run()
    _ok(at)
    assert at.radio(key="page").value == "Overview"
    assert at.selectbox(key="run").value == _newest_ok(runs)
    assert at.query_params["page"] == ["Overview"]


def test_runs_page_lists_every_run_and_says_what_is_wrong(app, runs):
    at = app.run()
    at.radio(key="page").set_value("Runs").run()
    _ok(at)
    table = _table(at, "shift verdicts")
    listed = set(table["run"])
    assert {"jittery", "demo-1/before", "demo-1/after", "older-frames", "broken-store", "no-tests",
            "broken-missing", "broken-corrupt", "broken-old", "sneaky"} == listed
    assert "linked" not in listed  # a symbolic link to a folder is never followed
    rows = table.set_index("run")
    before = load_audit(runs / "demo-1" / "before" / "audit.json")
    assert rows.loc["demo-1/before", "shift verdicts"] == before.counts()["shift"]
    assert rows.loc["demo-1/before", "clips"] == before.n_clips
    assert rows.loc["demo-1/before", "rater"] == "builtin:appearance"
    assert rows.loc["demo-1/after", "status"] == "ok"
    warnings = {w.value.split(":")[0].split("/")[0]: w.value for w in at.warning}
    assert set(warnings) == {"broken-missing", "broken-corrupt", "broken-old", "sneaky"}
    assert "no audit.json" in warnings["broken-missing"]
    assert "not valid JSON" in warnings["broken-corrupt"]
    assert "older auditkit, schema 0" in warnings["broken-old"]
    assert "symbolic link" in warnings["sneaky"]
    assert "SECRET-OUTSIDE-RATER" not in _texts(at)


@pytest.mark.parametrize("name, fragment", [("broken-missing", "no audit.json"),
                                            ("broken-corrupt", "not valid JSON"),
                                            ("broken-old", "older auditkit"),
                                            ("sneaky", "symbolic link")])
def test_a_bad_run_shows_a_message_and_the_rest_still_works(app, name, fragment):
    at = app.run()
    at.selectbox(key="run").set_value(name).run()
    for page in views.PAGES[1:]:
        at.radio(key="page").set_value(page).run()
        _ok(at)
        assert len(at.error) == 1 and fragment in at.error[0].value
    go(at, run="demo-1/before", page="Overview")
    _ok(at)
    assert not at.error and "data-verdict='shift'" in _html(at)


def test_a_damaged_store_costs_the_per_clip_evidence_only(app):
    at = app.run()
    go(at, run="broken-store", page="Overview")
    _ok(at)
    assert "data-verdict='shift'" in _html(at)
    assert any("No CSV of per-clip scores" in c.value and "not a usable results store" in c.value
               for c in at.sidebar.caption)
    assert "download_csv" not in {b.key for b in at.get("download_button")}
    go(at, page="Condition")
    _ok(at)
    assert len(at.warning) == 1 and "not a usable results store" in at.warning[0].value
    assert len(_table(at, "equiv p adj")) == 5  # the saved numbers are still shown
    go(at, page="Clips")
    _ok(at)
    assert len(at.error) == 1 and "not a usable results store" in at.error[0].value


def test_a_run_without_tests_says_so_on_every_page(app):
    at = app.run()
    go(at, run="no-tests")
    for page in views.PAGES:
        go(at, page=page)
        _ok(at)
        if page != "Runs":
            assert any("holds no tests" in i.value for i in at.info)
    go(at, run="demo-1/after", page="Compare")
    at.selectbox(key="compare_run").set_value("no-tests").run()
    _ok(at)
    assert {m.label: m.value for m in at.metric}["verdicts that flipped"] == "0"


def test_missing_runs_dir_is_a_message(monkeypatch, tmp_path):
    monkeypatch.setenv(data.ENV_RUNS_DIR, str(tmp_path / "nope"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    _ok(at)
    assert len(at.error) == 1 and "no such folder of runs" in at.error[0].value


def test_empty_runs_dir_says_how_to_make_a_run(monkeypatch, tmp_path):
    monkeypatch.setenv(data.ENV_RUNS_DIR, str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    _ok(at)
    assert any("auditkit demo" in i.value for i in at.info)


# --------------------------------------------------------------------------- Overview
def test_overview_grid_is_the_saved_verdicts_with_filters(app, runs):
    at = app.run()
    at.selectbox(key="run").set_value("demo-1/before").run()
    _ok(at)
    result = load_audit(runs / "demo-1" / "before" / "audit.json")
    grid = _html(at)
    assert grid.count("data-verdict=") == len(result.tests)
    for verdict, count in result.counts().items():
        assert grid.count(f"data-verdict='{verdict}'") == count
    first = result.tests[0]
    assert f"{first.mean_shift:+.3f}" in grid
    assert [m.value for m in at.metric][:2] == [str(result.n_clips), str(result.counts()["shift"])]

    # Every audit holds the retest control (family "control") beside the edits and contrasts.
    assert at.multiselect(key="family").options == ["lighting", "control", "contrasts"]
    at.multiselect(key="family").set_value(["contrasts"]).run()
    _ok(at)
    assert _html(at).count("data-verdict=") == len(result.traits)
    at.multiselect(key="trait").set_value(["openness"]).run()
    assert _html(at).count("data-verdict=") == 1
    at.multiselect(key="family").set_value([]).run()
    _ok(at)
    assert "data-verdict" not in _html(at) and any("No cell matches" in i.value for i in at.info)


def test_choices_survive_a_visit_to_another_page(app):
    at = app.run()
    go(at, run="demo-1/before")
    at.multiselect(key="trait").set_value(["openness", "neuroticism"]).run()
    go(at, page="Clips")
    at.selectbox(key="sort").set_value("clip id").run()
    go(at, page="Runs")
    go(at, page="Overview")
    _ok(at)
    assert at.multiselect(key="trait").value == ["openness", "neuroticism"]
    go(at, page="Clips")
    assert at.selectbox(key="sort").value == "clip id"


def test_a_grid_cell_links_to_its_condition(app):
    at = app.run()
    at.selectbox(key="run").set_value("demo-1/before").run()
    assert "?page=Condition&amp;run=demo-1%2Fbefore&amp;condition=lighting%3Adim&amp;sort_trait=openness" in _html(at)


# --------------------------------------------------------------------------- Condition
def test_condition_page_shows_distribution_numbers_and_skips(app, runs):
    at = app.run()
    go(at, run="demo-1/before", page="Condition")
    _ok(at)
    result = load_audit(runs / "demo-1" / "before" / "audit.json")
    assert len(at.selectbox(key="condition").options) == len(result.perturbations)
    at.selectbox(key="condition").set_value(CONTRAST).run()
    _ok(at)
    tests = [t for t in result.tests if t.perturbation == CONTRAST]
    assert len(at.get("vega_lite_chart")) == 2  # per-clip strip against the margin band, histograms
    table = _table(at, "equiv p adj")
    assert list(table["trait"]) == [t.trait for t in tests]
    assert list(table["mean shift"]) == [f"{t.mean_shift:+.3f}" for t in tests]
    assert list(table["n"]) == [t.n for t in tests]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["N paired clips"] == str(max(t.n for t in tests)) and metrics["skipped pairs"] == "0"
    assert any("Shift = lighting:dim − lighting:bright, per clip" in c.value for c in at.caption)
    assert list(table["moved beyond margin"]) == [views.moved(t) for t in tests]


def test_unstable_verdicts_show_in_the_grid_and_the_condition(app, runs):
    # The jittery rater moves candidates by ±0.4 with no direction: unstable, not shift.
    at = app.run()
    go(at, run="jittery", page="Overview")
    _ok(at)
    result = load_audit(runs / "jittery" / "audit.json")
    unstable = [t for t in result.tests if t.verdict == "unstable"]
    assert unstable and _html(at).count("data-verdict='unstable'") == len(unstable)
    assert "≋ unstable" in _html(at)
    assert {m.label: m.value for m in at.metric}["unstable"] == str(len(unstable))
    assert any("control:retest" in c.value or "retest" in c.value for c in at.caption)
    at.radio(key="page").set_value("Condition").run()
    at.selectbox(key="condition").set_value(unstable[0].perturbation).run()
    _ok(at)
    table = _table(at, "moved beyond margin")
    row = table.set_index("trait").loc[unstable[0].trait]
    assert row["verdict"] == "≋ unstable" and row["moved beyond margin"] == views.moved(unstable[0])
    assert row["limits of agreement"] == views.loa(unstable[0])


def test_condition_opens_the_clips_sorted_by_a_trait(app):
    at = app.run()
    go(at, run="demo-1/before", page="Condition")
    at.selectbox(key="condition").set_value("lighting:bright").run()
    at.button(key="open_clips_extraversion").click().run()
    _ok(at)
    assert at.radio(key="page").value == "Clips"
    assert at.selectbox(key="condition").value == "lighting:bright"
    assert at.selectbox(key="sort_trait").value == "extraversion"


def test_what_an_inconclusive_result_would_need():
    # A real test on few noisy clips: too few to decide either way.
    t = paired_shift_test([0.50, 0.52, 0.47, 0.55], [0.53, 0.50, 0.52, 0.58], margin=0.05,
                          perturbation="glasses:thick", trait="openness")
    assert t.verdict == "inconclusive" and t.n_needed
    text = views.needs_text(t)
    assert f"about **{t.n_needed} clips**" in text and "this run has 4" in text
    few = paired_shift_test([0.5, 0.6], [0.5, 0.7], margin=0.05, trait="openness")
    assert "only 2 paired clips; at least 3" in views.needs_text(few)
    moved = paired_shift_test([0.5] * 4, [0.51, 0.49, 0.58, 0.5], margin=0.05, trait="openness")
    assert moved.verdict == "inconclusive" and "more than the tolerated 5%" in views.needs_text(moved)


# --------------------------------------------------------------------------- Clips
def _store_shift(runs: Path, name: str, cond: str, trait: str) -> dict[str, float]:
    base, arm = data.arms(load_audit(runs / name / "audit.json"), cond)
    with Store.open_readonly(runs / name / "results.sqlite") as store:
        before, after = store.scores(base, trait), store.scores(arm, trait)
    return {c: after[c] - before[c] for c in after if c in before}


def test_clips_page_orders_by_shift_and_shows_both_frames(app, runs):
    at = app.run()
    go(at, run="demo-1/before", page="Clips")
    at.selectbox(key="condition").set_value("lighting:dim").run()
    at.selectbox(key="sort_trait").set_value("extraversion").run()
    _ok(at)
    shift = _store_shift(runs, "demo-1/before", "lighting:dim", "extraversion")
    assert at.selectbox(key="clip").options[0].startswith(max(shift, key=lambda c: abs(shift[c])))
    at.selectbox(key="sort").set_value("most positive first").run()
    _ok(at)
    top = max(shift, key=shift.get)
    assert at.selectbox(key="clip").value == top
    html = _html(at)
    assert html.count("data:image/jpeg;base64,") == 2
    assert f"alt='{top}: original'" in html and f"alt='{top}: lighting:dim'" in html
    scores = _table(at, "before").set_index("trait")
    assert scores.loc["extraversion", "shift"] == f"{shift[top]:+.4f}"
    table = _table(at, "extraversion shift")
    assert len(table) == len(shift)
    assert list(table["extraversion shift"]) == pytest.approx(sorted(shift.values(), reverse=True), abs=1e-12)


def test_clips_page_picks_a_clip_by_key(app, runs):
    at = app.run()
    go(at, run="demo-1/before", page="Clips")
    last = at.selectbox(key="clip").options[-1].split()[0]
    at.selectbox(key="clip").set_value(last).run()
    _ok(at)
    assert f"alt='{last}: original'" in _html(at)
    assert at.query_params["clip"] == [last]


def test_a_run_without_stored_frames_says_so(app):
    at = app.run()
    go(at, run="older-frames", page="Clips")
    _ok(at)
    notes = [i.value for i in at.info if "No frame stored for this clip" in i.value]
    assert len(notes) == 2 and "data:image/jpeg" not in _html(at)
    assert len(_table(at, "before")) == 5  # the numbers are still there


def test_deep_link_opens_a_clip(app, runs):
    app.query_params.update({"page": "Clips", "run": "demo-1/before", "condition": "lighting:bright",
                             "sort_trait": "neuroticism", "clip": "hopper_02_wide"})
    at = app.run()
    _ok(at)
    assert at.radio(key="page").value == "Clips" and at.selectbox(key="condition").value == "lighting:bright"
    assert at.selectbox(key="sort_trait").value == "neuroticism" and at.selectbox(key="clip").value == "hopper_02_wide"


# --------------------------------------------------------------------------- Compare
def test_compare_before_and_after(app, runs):
    at = app.run()
    go(at, run="demo-1/after", page="Compare")
    _ok(at)
    assert at.selectbox(key="compare_run").value == "demo-1/before"  # the sibling of .../after
    before = load_audit(runs / "demo-1" / "before" / "audit.json")
    after = load_audit(runs / "demo-1" / "after" / "audit.json")
    flips = {(b.perturbation, b.trait) for b in before.tests
             if b.verdict != after.test(b.perturbation, b.trait).verdict}
    assert flips  # the constant rater is invariant everywhere; the appearance rater is not
    assert {m.label: m.value for m in at.metric}["verdicts that flipped"] == str(len(flips))
    flipped = _table(at, "before → after")
    assert set(zip(flipped["perturbation"], flipped["trait"])) == flips
    row = flipped.iloc[0]
    b = before.test(row["perturbation"], row["trait"])
    assert row["before: verdict"] == b.verdict and row["before: shift"] == f"{b.mean_shift:+.3f}"
    assert _html(at).count("data-flipped='true'") == len(flips)
    at.selectbox(key="compare_run").set_value("older-frames").run()
    _ok(at)


def test_compare_needs_a_second_readable_run(monkeypatch, runs, tmp_path):
    shutil.copytree(runs / "demo-1" / "before", tmp_path / "only")
    monkeypatch.setenv(data.ENV_RUNS_DIR, str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.radio(key="page").set_value("Compare").run()
    _ok(at)
    assert any("second readable run" in i.value for i in at.info)


# --------------------------------------------------------------------------- downloads, data
def test_downloads_are_the_runs_own_files(app, runs):
    at = app.run()
    at.selectbox(key="run").set_value("demo-1/before").run()
    keys = {b.key for b in at.get("download_button")}
    assert {"download_report", "download_csv"} <= keys
    assert data.report_html(runs, "demo-1/before") == (runs / "demo-1" / "before" / "report.html").read_bytes()
    lines = data.scores_csv(runs, "demo-1/before").decode().splitlines()
    with Store.open_readonly(runs / "demo-1" / "before" / "results.sqlite") as store:
        rows = list(store.export_rows())
    assert lines[0] == "clip_id,condition,trait,value" and len(lines) == len(rows) + 1
    clip, cond, trait, value = lines[1].split(",")
    assert (clip, cond, trait) == rows[0][:3] and float(value) == rows[0][3]


def test_per_clip_shifts_are_the_stores(runs):
    result = load_audit(runs / "demo-1" / "before" / "audit.json")
    frame = data.shifts(runs, "demo-1/before", result)
    with Store.open_readonly(runs / "demo-1" / "before" / "results.sqlite") as store:
        expected = store.shifts(result)
    for (cond, trait), values in expected.items():
        mine = frame[(frame["perturbation"] == cond) & (frame["trait"] == trait)].sort_values("clip_id")
        assert mine["shift"].tolist() == pytest.approx(values, abs=1e-12)


def test_reviewing_writes_nothing_into_the_runs(app, runs):
    def snapshot() -> dict[str, tuple[int, int]]:
        return {str(p.relative_to(runs)): (p.stat().st_size, p.stat().st_mtime_ns)
                for p in sorted(runs.rglob("*")) if p.is_file() and not p.is_symlink()}

    before = snapshot()
    at = app.run()
    for name in ("demo-1/before", "demo-1/after", "older-frames", "broken-store", "broken-corrupt"):
        at.selectbox(key="run").set_value(name).run()
        for page in views.PAGES:
            at.radio(key="page").set_value(page).run()
            _ok(at)
    assert snapshot() == before  # no -wal, no -shm, no rewritten file


# --------------------------------------------------------------------------- paths (issue 8)
@pytest.mark.parametrize("name", ["../outside", "demo-1/../../etc", "/etc", "demo-1/./before", "",
                                  "linked", "linked/../demo-1/before", "demo-1\\before", "a\x00b"])
def test_run_names_cannot_leave_runs_dir(runs, name):
    with pytest.raises(AuditkitError):
        data.run_path(runs.resolve(), name)


def test_symlinked_files_inside_a_run_are_refused(runs):
    with pytest.raises(AuditkitError, match="symbolic link"):
        data.load_result(runs.resolve(), "sneaky")
    assert "linked" not in data.find_runs(runs.resolve())


@pytest.mark.parametrize("asked", ["../outside/secret-run", "linked", "sneaky/../linked"])
def test_a_run_name_in_the_url_outside_runs_dir_is_refused(app, runs, asked):
    app.query_params["run"] = asked
    app.query_params["page"] = "Overview"
    at = app.run()
    _ok(at)
    assert any("is not a run in RUNS_DIR" in e.value for e in at.error)
    assert at.selectbox(key="run").value == _newest_ok(runs)
    assert "SECRET-OUTSIDE-RATER" not in _texts(at)


# --------------------------------------------------------------------------- the command
def test_dashboard_command_refuses_a_missing_folder(tmp_path, capsys):
    assert main(["dashboard", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("auditkit: error: ") and "no such folder of runs" in err


def test_dashboard_command_serves_on_localhost_only(tmp_path):
    cmd = dashboard_command(tmp_path, 8765)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8765"
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"
    assert cmd[-2:] == ["--", str(tmp_path)] and Path(cmd[cmd.index("run") + 1]).name == "app.py"


def test_runs_dir_comes_from_arguments_then_environment():
    assert data.runs_dir(["/a"], {data.ENV_RUNS_DIR: "/b"}) == Path("/a")
    assert data.runs_dir([], {data.ENV_RUNS_DIR: "/b"}) == Path("/b")
    assert data.runs_dir([], {}) == Path("auditkit-runs")


@pytest.mark.parametrize("version", [1, 2])
def test_a_run_of_an_older_schema_renders_every_page_with_its_verdicts(runs, tmp_path, monkeypatch, version):
    # A run written before tests carried their arm, base and family (and, schema 1, before the
    # per-candidate statistics): the dashboard reads the identity from the registry.
    from test_plan import _downgrade

    root = tmp_path / "runs"
    shutil.copytree(runs / "demo-1" / "before", root / "older-schema")
    path = root / "older-schema" / "audit.json"
    new = json.loads(path.read_text())
    path.write_text(json.dumps(_downgrade(new, version)))
    monkeypatch.setenv(data.ENV_RUNS_DIR, str(root))
    at = AppTest.from_file(APP, default_timeout=60).run()
    _ok(at)
    grid = _html(at)
    for t in new["tests"]:
        assert t["perturbation"] in grid
    assert at.multiselect(key="family").options == ["lighting", "control", "contrasts"]
    go(at, page="Condition")
    at.selectbox(key="condition").set_value(CONTRAST).run()
    _ok(at)
    assert any("Shift = lighting:dim − lighting:bright, per clip" in c.value for c in at.caption)
    table = _table(at, "equiv p adj")
    saved = [t["verdict"] for t in new["tests"] if t["perturbation"] == CONTRAST]
    assert [v.split()[-1] for v in table["verdict"]] == saved  # shown with a mark: "⚠ shift"
    go(at, page="Clips")
    _ok(at)


def test_a_reviewer_plays_both_clips_with_their_sound(app, runs):
    # Encoded when asked (not stored in the run for every pair): every frame of the clip, with
    # the edit as the audit applied it, H.264 with the clip's own sound.
    import io

    import av

    at = app.run()
    go(at, run="demo-1/before", page="Clips")
    at.selectbox(key="condition").set_value("lighting:dim").run()
    clip = at.selectbox(key="clip").value.split()[0]
    assert not any(runs.rglob("*.mp4"))  # nothing encoded up front
    at.toggle(key="play_clip").set_value(True).run()
    _ok(at)
    videos = at.get("video")
    assert len(videos) == 2
    result = data.load_result(runs, "demo-1/before")
    movies = [data.playback(runs, "demo-1/before", result, clip, which) for which in ("original", "lighting:dim")]
    for movie in movies:
        assert isinstance(movie, bytes)
        with av.open(io.BytesIO(movie)) as container:
            assert container.streams.video[0].codec_context.name == "h264"
            assert container.streams.audio[0].codec_context.name == "aac"
            frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
        assert len(frames) == 30
    dim = [float(np.mean(f)) for f in frames]
    with av.open(io.BytesIO(movies[0])) as container:
        plain = [float(np.mean(f.to_ndarray(format="gray"))) for f in container.decode(video=0)]
    assert np.mean(dim) < np.mean(plain) - 5  # the edited one is the dimmed clip
    assert not any(runs.rglob("*.mp4"))  # and the run folder is left as it was
    assert "no longer there" in data._playback("/nowhere/clip.mp4", "x", "original", 0, "c")
