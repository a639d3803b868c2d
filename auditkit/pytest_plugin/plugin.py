"""The pytest11 entry point ``auditkit``: options, hooks and fixtures, nothing more (the work is
in :mod:`.session`, :mod:`.asserts`, :mod:`.suite` and :mod:`.table`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

from .session import CURRENT_ITEM, STATE, State, clips_dir, state
from .suite import SUITE_SUFFIX, AuditSuiteFile

if TYPE_CHECKING:
    from auditkit.core.result import AuditResult
    from auditkit.core.settings import AuditConfig


# --------------------------------------------------------------------------- options and hooks
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("auditkit", "auditkit fairness audits")
    group.addoption("--auditkit-config", metavar="FILE", default=None,
                    help="auditkit settings (auditkit.toml, or pyproject.toml with [tool.auditkit]); "
                         "default: the one in the rootdir")
    group.addoption("--auditkit-report", metavar="DIR", default=None,
                    help="write audit.json, report.html and report.txt of each audit to DIR")
    group.addoption("--auditkit-device", choices=("auto", "cpu", "cuda"), default=None,
                    help="where edits and the rater run (overrides the settings' device)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fairness_audit: a counterfactual fairness audit (set by auditkit on tests "
                   "that use audit_result and on *.audit.toml items)")
    path = config.getoption("auditkit_config", None)
    if path and not Path(path).is_file():
        raise pytest.UsageError(f"--auditkit-config {path}: file does not exist")
    config.stash[STATE] = State(config)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith(SUITE_SUFFIX) and len(file_path.name) > len(SUITE_SUFFIX):
        return AuditSuiteFile.from_parent(parent, path=file_path)
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "audit_result" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("fairness_audit"):
            item.add_marker("fairness_audit")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    token = CURRENT_ITEM.set(item)
    try:
        return (yield)
    finally:
        CURRENT_ITEM.reset(token)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = config.stash.get(STATE, None)
    if session is None or not (session.runs or session.inconclusive):
        return
    from auditkit.core.report import render_text

    tr = terminalreporter
    tr.write_sep("=", "auditkit")
    for run in session.runs:
        where = f"suite {run.label}" if run.label else "project audit"
        if run.error is not None:
            tr.write_line(f"{where}: the audit failed: {run.error}")
            continue
        result = run.result
        tr.write_line(f"{where}: rater {result.rater.get('spec')} on {result.n_clips} clips "
                      f"({run.source})")
        for line in render_text(result).splitlines():
            tr.write_line(line)
        if run.report_dir is not None:
            tr.write_line(f"report: {run.report_dir / 'report.html'} (and audit.json, report.txt)")
        tr.write_line("")
    if session.inconclusive:
        tr.write_line("passed with inconclusive tests (assert_no_shift / verdict = \"no-shift\"):")
        for nodeid, tests in session.inconclusive:
            for t in tests:
                need = (f" (about {t.n_needed} {'people' if t.unit == 'person' else 'clips'} would decide)"
                        if t.n_needed else "")
                tr.write_line(f"  {nodeid}: {t.perturbation} / {t.trait}{need}")


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def auditkit_config(pytestconfig: pytest.Config) -> "AuditConfig":
    """The project's :class:`AuditConfig` (defaults when none is found), ``--auditkit-device`` applied."""
    __tracebackhide__ = True
    return state(pytestconfig).project_config()


@pytest.fixture(scope="session")
def auditkit_rater(pytestconfig: pytest.Config, auditkit_config: "AuditConfig") -> Any:
    """The configured rater, loaded once on the configured device."""
    __tracebackhide__ = True
    return state(pytestconfig).rater(auditkit_config)


@pytest.fixture(scope="session")
def auditkit_clips(auditkit_config: "AuditConfig") -> Path:
    """The clips folder: ``clips`` of the settings, else the built-in sample clips."""
    __tracebackhide__ = True
    return clips_dir(auditkit_config)


@pytest.fixture(scope="session")
def audit_result(pytestconfig: pytest.Config, auditkit_config: "AuditConfig", auditkit_rater: Any,
                 auditkit_clips: Any) -> "AuditResult":
    """The audit of ``auditkit_rater`` on ``auditkit_clips`` as configured, run once per session."""
    __tracebackhide__ = True
    return state(pytestconfig).audit(auditkit_config, rater=auditkit_rater, clips=auditkit_clips, label="")
