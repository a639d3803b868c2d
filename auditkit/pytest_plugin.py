"""auditkit's pytest plugin: fairness audits as ordinary tests.

Installed with auditkit and loaded by pytest through the ``pytest11`` entry point ``auditkit``
(``-p no:auditkit`` turns it off). In a project without auditkit settings it does nothing: the
fixtures compute only when a test asks for them, no file is collected unless it is named like a
suite, and the terminal section appears only after an audit ran.

Settings come from ``--auditkit-config FILE``, else from ``auditkit.toml`` or the
``[tool.auditkit]`` table of ``pyproject.toml`` in pytest's rootdir (the keys of
:class:`auditkit.app.config.AuditConfig`: ``rater``, ``clips``, ``perturbations``, ``margin`` — one
number or a table per trait —, ``alpha``, ``correction``, ...).

Options (group ``auditkit``):

* ``--auditkit-config FILE``: the settings file (default: discovered in the rootdir);
* ``--auditkit-report DIR``: write ``audit.json``, ``report.html`` and ``report.txt`` of every
  audit the session ran (a suite with its own ``[audit]`` settings writes to ``DIR/<suite>/``);
* ``--auditkit-device auto|cpu|cuda``: where edits and the rater run (overrides the settings).

Session fixtures: ``auditkit_config`` (the :class:`AuditConfig`), ``auditkit_rater`` (the loaded
rater; override it in a ``conftest.py`` to audit a rater built in Python), ``auditkit_clips`` (the
clips folder; the built-in sample clips when ``clips`` is not set) and ``audit_result`` (the
:class:`AuditResult`, computed once per session). Scores are kept in a results store under
pytest's cache folder (``.pytest_cache/d/auditkit/``), keyed by the rater's hash, the clips
folder's files (names and contents), the seed and the input settings: a second session scores
nothing it already scored, and ``--cache-clear`` starts afresh.

Marker: ``fairness_audit``, put on every test that uses ``audit_result`` and on every suite item,
so ``-m "not fairness_audit"`` leaves the audits out.

Assert helpers (``from auditkit.pytest_plugin import assert_invariant, assert_no_shift``):
:func:`assert_invariant` and :func:`assert_no_shift` fail with a per-trait table.

Declarative suites: files named ``*.audit.toml`` are collected as tests, one item per
(perturbation, trait) expectation, named ``glasses:thick / conscientiousness``::

    [audit]                              # optional: overrides of the project's settings
    perturbations = ["lighting:dim", "glasses:thick"]

    [[expect]]
    perturbation = "glasses:thick"       # an audited edit, or a family ("lighting")
    traits = ["conscientiousness"]       # default: every trait of the rater
    verdict = "invariant"                # or "no-shift" (default "invariant")
    margin = 0.03                        # optional, with "invariant": re-judge at this margin
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

import pytest

if TYPE_CHECKING:  # the plugin is loaded in every pytest session: import auditkit's heavy parts lazily
    from auditkit.app.config import AuditConfig
    from auditkit.core.result import AuditResult, ShiftTest

__all__ = ["assert_invariant", "assert_no_shift", "SUITE_SUFFIX", "AuditSuiteFile", "AuditItem"]

SUITE_SUFFIX = ".audit.toml"
_VERDICT_EXPECTATIONS = ("invariant", "no-shift")
_CURRENT_ITEM: contextvars.ContextVar[pytest.Item | None] = contextvars.ContextVar(
    "auditkit_current_item", default=None)


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
    config.stash[_STATE] = _State(config)


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
    # The assert helpers get only a result; this is how they find the test to attach properties to.
    token = _CURRENT_ITEM.set(item)
    try:
        return (yield)
    finally:
        _CURRENT_ITEM.reset(token)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None or not (state.runs or state.inconclusive):
        return
    from auditkit.core.report import render_text

    tr = terminalreporter
    tr.write_sep("=", "auditkit")
    for run in state.runs:
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
    if state.inconclusive:
        tr.write_line("passed with inconclusive tests (assert_no_shift / verdict = \"no-shift\"):")
        for nodeid, tests in state.inconclusive:
            for t in tests:
                need = f" (about {t.n_needed} clips would decide)" if t.n_needed else ""
                tr.write_line(f"  {nodeid}: {t.perturbation} / {t.trait}{need}")


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def auditkit_config(pytestconfig: pytest.Config) -> "AuditConfig":
    """The project's :class:`AuditConfig` (defaults when none is found), ``--auditkit-device`` applied."""
    __tracebackhide__ = True
    return _state(pytestconfig).project_config()


@pytest.fixture(scope="session")
def auditkit_rater(pytestconfig: pytest.Config, auditkit_config: "AuditConfig") -> Any:
    """The configured rater, loaded once on the configured device."""
    __tracebackhide__ = True
    return _state(pytestconfig).rater(auditkit_config)


@pytest.fixture(scope="session")
def auditkit_clips(auditkit_config: "AuditConfig") -> Path:
    """The clips folder: ``clips`` of the settings, else the built-in sample clips."""
    __tracebackhide__ = True
    return _clips_dir(auditkit_config)


@pytest.fixture(scope="session")
def audit_result(pytestconfig: pytest.Config, auditkit_config: "AuditConfig", auditkit_rater: Any,
                 auditkit_clips: Any) -> "AuditResult":
    """The audit of ``auditkit_rater`` on ``auditkit_clips`` as configured, run once per session."""
    __tracebackhide__ = True
    return _state(pytestconfig).audit(auditkit_config, rater=auditkit_rater, clips=auditkit_clips,
                                      label="")


# --------------------------------------------------------------------------- assert helpers
def assert_invariant(result: Any, perturbation: str | Iterable[str] | None = None,
                     traits: str | Iterable[str] | None = None,
                     margin: float | Mapping[str, float] | None = None) -> None:
    """Fail unless every selected test's verdict is ``invariant``.

    ``result``: an :class:`AuditResult`, its ``to_dict()`` form, or the path of an ``audit.json``;
    ``perturbation``: an edit (``"glasses:thick"``), a family (``"glasses"``) or several, ``None``
    for all; ``traits``: one trait or several, ``None`` for all. Selecting nothing fails.

    ``margin`` (a number, or ``{trait: number}`` with an optional ``"default"``) re-judges the
    selected tests against that equivalence margin instead of the audit's: each one's TOST p-value
    is recomputed from its n, mean shift and sd, and the audit's correction (Holm by default) is
    applied again across the audit's whole family — the verdict the audit would have given had it
    been run with that margin for those tests. ``inconclusive`` is not a pass.
    """
    __tracebackhide__ = True
    result = _as_result(result)
    tests = _select(result, perturbation, traits, "assert_invariant")
    if margin is not None:
        tests = _rejudge(result, tests, margin)
    failed = [t for t in tests if t.verdict != "invariant"]
    _record(tests)
    if failed:
        raise AssertionError(_failure_message("assert_invariant", result, tests, failed,
                                              "not invariant", perturbation))


def assert_no_shift(result: Any, perturbation: str | Iterable[str] | None = None,
                    traits: str | Iterable[str] | None = None) -> None:
    """Fail when a selected test's verdict is ``shift``. ``inconclusive`` passes, and is listed
    in the terminal summary with the clips it would need; arguments as :func:`assert_invariant`."""
    __tracebackhide__ = True
    result = _as_result(result)
    tests = _select(result, perturbation, traits, "assert_no_shift")
    failed = [t for t in tests if t.verdict == "shift"]
    _record(tests)
    if failed:
        raise AssertionError(_failure_message("assert_no_shift", result, tests, failed, "shift",
                                              perturbation))
    unsure = [t for t in tests if t.verdict == "inconclusive"]
    item = _CURRENT_ITEM.get()
    if unsure and item is not None and _STATE in item.config.stash:
        item.config.stash[_STATE].inconclusive.append((item.nodeid, unsure))


def _as_result(result: Any) -> "AuditResult":
    __tracebackhide__ = True
    from auditkit.core.result import AuditResult

    if isinstance(result, AuditResult):
        return result
    if isinstance(result, Mapping):
        return AuditResult.from_dict(result)
    if isinstance(result, (str, os.PathLike)):
        path = Path(result)
        if path.is_dir():
            path = path / "audit.json"
        return AuditResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    raise TypeError(f"result must be an AuditResult, its to_dict() or an audit.json path, "
                    f"got {type(result).__name__}")


def _names(value: str | Iterable[str] | None, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = (value,) if isinstance(value, str) else tuple(value)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"{what} must be a name or a non-empty list of names, got {value!r}")
    return names


def _select(result: "AuditResult", perturbation: Any, traits: Any, helper: str) -> list["ShiftTest"]:
    __tracebackhide__ = True
    perts = _names(perturbation, "perturbation")
    wanted = _names(traits, "traits")
    unknown = [t for t in wanted or () if t not in result.traits]
    if unknown:
        raise AssertionError(f"{helper}: {unknown[0]!r} is not a trait of this audit "
                             f"(traits: {', '.join(result.traits)})")
    try:
        tests = list(result.select(perts, wanted))
    except KeyError:  # newer AuditResult.select refuses names it does not have
        tests = []
    if not tests:
        raise AssertionError(f"{helper}: the audit has no test for perturbation "
                             f"{', '.join(perts or ())!r} (audited: {', '.join(result.perturbations)})")
    return tests


def _margins(margin: float | Mapping[str, float], traits: Sequence[str]) -> dict[str, float]:
    if isinstance(margin, Mapping):
        default = margin.get("default")
        out = {}
        for trait in traits:
            value = margin.get(trait, default)
            if value is None:
                raise ValueError(f"margin: no value for trait {trait!r} and no 'default'")
            out[trait] = value
    else:
        out = {t: margin for t in traits}
    for trait, value in out.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
                or not math.isfinite(value):
            raise ValueError(f"margin for {trait!r} must be a positive number, got {value!r}")
    return {t: float(v) for t, v in out.items()}


def _tost_p(t: "ShiftTest", margin: float) -> float:
    """TOST p-value against ±margin from a test's summary, as ``stats.paired_shift_test`` does it."""
    from scipy import stats as st

    from auditkit.core.stats import MIN_N

    if t.n < MIN_N or t.mean_shift is None or t.sd is None:
        return 1.0
    if t.sd == 0.0:
        return 0.0 if abs(t.mean_shift) < margin else 1.0
    se, df = t.sd / math.sqrt(t.n), t.n - 1
    return max(float(st.t.sf((t.mean_shift + margin) / se, df)),
               float(st.t.cdf((t.mean_shift - margin) / se, df)))


def _rejudge(result: "AuditResult", tests: list["ShiftTest"], margin: Any) -> list["ShiftTest"]:
    from auditkit.core import stats

    margins = _margins(margin, sorted({t.trait or "" for t in tests}))
    keys = {(t.perturbation, t.trait) for t in tests}
    family = [t.with_(margin=margins[t.trait or ""], equivalence_p=_tost_p(t, margins[t.trait or ""]))
              if (t.perturbation, t.trait) in keys else t for t in result.tests]
    judged = {(t.perturbation, t.trait): t
              for t in stats.correct(family, method=str(result.config.get("correction", "holm")))}
    return [judged[(t.perturbation, t.trait)] for t in tests]


def _record(tests: Sequence["ShiftTest"]) -> None:
    item = _CURRENT_ITEM.get()
    if item is None:
        return
    for t in tests:
        cell = f"{t.perturbation} / {t.trait}"
        item.user_properties += [(f"{cell} verdict", t.verdict),
                                 (f"{cell} mean_shift", _junit_number(t.mean_shift)),
                                 (f"{cell} p_adjusted", _junit_number(t.p_adjusted))]


def _junit_number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"


# --------------------------------------------------------------------------- tables
def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def _p(value: float | None) -> str:
    return "n/a" if value is None else ("<0.001" if value < 0.001 else f"{value:.3f}")


def _table(tests: Sequence["ShiftTest"], failed: Sequence["ShiftTest"] = ()) -> str:
    """A fixed-width per-trait table (perturbation column when several are shown); rows in
    ``failed`` are marked."""
    several = len({t.perturbation for t in tests}) > 1
    alpha = tests[0].alpha if tests else 0.05
    header = (["perturbation"] if several else []) + [
        "trait", "n", "shift", f"{100 * (1 - alpha):g}% CI", "p adj", "equiv p adj", "margin",
        "verdict", ""]
    bad = {id(t) for t in failed}
    rows = [header]
    for t in tests:
        note = ("<- fails" if id(t) in bad else "")
        if t.verdict == "inconclusive" and t.n_needed:
            note = f"{note}  (about {t.n_needed} clips would decide)".strip()
        rows.append(([t.perturbation or ""] if several else []) + [
            t.trait or "", str(t.n), _num(t.mean_shift), f"[{_num(t.ci_low)}, {_num(t.ci_high)}]",
            _p(t.p_adjusted), _p(t.equivalence_p_adjusted), f"{t.margin:g}",
            t.verdict.upper() if t.verdict == "shift" else t.verdict, note])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths[:-1]))
    return "\n".join(lines)


def _about(result: "AuditResult") -> str:
    return (f"{result.n_clips} clips, alpha {result.config.get('alpha', 'n/a')}, "
            f"{result.config.get('correction', 'holm')} correction, rater {result.rater.get('spec')}")


def _failure_message(helper: str, result: "AuditResult", tests: Sequence["ShiftTest"],
                     failed: Sequence["ShiftTest"], what: str, perturbation: Any) -> str:
    names = _names(perturbation, "perturbation")
    which = ", ".join(names) if names else "all perturbations"
    return (f"{helper}: {len(failed)} of {len(tests)} tests {what} for {which} ({_about(result)})\n"
            f"{_table(tests, failed)}\n"
            "shift: significant after correction; invariant: within the margin, shown after "
            "correction; inconclusive: neither (not a pass for assert_invariant)")


# --------------------------------------------------------------------------- the session's audits
@dataclasses.dataclass
class _Run:
    key: str
    label: str
    source: str
    result: "AuditResult | None" = None
    error: str | None = None
    failure: BaseException | None = None
    report_dir: Path | None = None


class _State:
    """What one pytest session knows: its settings, loaded raters and the audits it ran."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._project: Any = None
        self._raters: dict[tuple[str, str], Any] = {}
        self.runs: list[_Run] = []
        self._by_key: dict[str, _Run] = {}
        self.inconclusive: list[tuple[str, list[ShiftTest]]] = []

    def project_config(self) -> "AuditConfig":
        __tracebackhide__ = True
        if self._project is None:
            from auditkit.app.config import AuditConfig
            from auditkit.contract.errors import AuditkitError

            path = self.config.getoption("auditkit_config", None)
            try:
                found = (AuditConfig.from_file(Path(path)) if path
                         else AuditConfig.discover(self.config.rootpath))
            except AuditkitError as exc:
                raise pytest.UsageError(f"auditkit: {exc}") from None
            found = found or AuditConfig(source="")
            self._project = found.override(device=self.config.getoption("auditkit_device", None))
        return self._project

    def rater(self, cfg: "AuditConfig") -> Any:
        __tracebackhide__ = True
        if not cfg.rater:
            where = cfg.source or (f"[tool.auditkit] in {self.config.rootpath / 'pyproject.toml'} "
                                   f"or {self.config.rootpath / 'auditkit.toml'}")
            raise pytest.UsageError(f"auditkit: no rater configured: set rater = \"...\" in {where}, "
                                    "or pass --auditkit-config FILE")
        key = (cfg.rater, cfg.device)
        if key not in self._raters:
            from auditkit.contract.device import pick_device
            from auditkit.contract.errors import AuditkitError
            from auditkit.raters import load_rater

            try:
                self._raters[key] = load_rater(cfg.rater, device=pick_device(cfg.device))
            except AuditkitError as exc:
                raise pytest.UsageError(f"auditkit: {exc}") from None
        return self._raters[key]

    def audit(self, cfg: "AuditConfig", *, rater: Any, clips: Any, label: str) -> "AuditResult":
        """The audit of ``cfg`` (with this rater and clips), run at most once per session."""
        __tracebackhide__ = True
        from auditkit.contract.errors import AuditkitError
        from auditkit.contract.rater import rater_identity

        identity = rater_identity(rater)
        cache = getattr(self.config, "cache", None)
        memo = cache.get("auditkit/file_hashes", {}) if cache is not None else {}
        clips_key = _clips_key(clips, memo)
        if cache is not None and clips_key is not None:
            cache.set("auditkit/file_hashes", memo)
        settings = {k: v for k, v in cfg.to_dict().items()
                    if k not in ("rater", "clips", "out", "device", "batch_size")}
        key = json.dumps({"rater": identity["hash"], "clips": clips_key or id(clips), **settings},
                         sort_keys=True, default=str)
        run = self._by_key.get(key)
        if run is None:
            taken = {r.label for r in self.runs}
            unique, i = label, 2
            while unique in taken:
                unique, i = f"{label or 'project'}-{i}", i + 1
            run = _Run(key=key, label=unique, source=cfg.source or "defaults")
            self._by_key[key] = run
            self.runs.append(run)
            try:
                run.result = self._run(cfg, rater, clips, identity, clips_key)
            except AuditkitError as exc:  # the user's input: one clear line, for every test using it
                run.error = str(exc)
            except Exception as exc:  # a bug or a rater crash: its traceback, but not a second run
                run.error = f"{type(exc).__name__}: {exc}"
                run.failure = exc
            else:
                run.report_dir = self._write_reports(run)
        if run.failure is not None:
            raise run.failure
        if run.error is not None:
            raise pytest.UsageError(f"auditkit: {run.error}")
        assert run.result is not None
        return run.result

    def _run(self, cfg: "AuditConfig", rater: Any, clips: Any, identity: Mapping[str, Any],
             clips_key: Any) -> "AuditResult":
        from auditkit import __version__
        from auditkit.core.engine import run_audit

        store = None
        cache = getattr(self.config, "cache", None)
        if cache is not None and clips_key is not None:
            digest = hashlib.sha256(json.dumps(
                {"auditkit": __version__, "rater": identity["hash"], "input": identity["input"],
                 "clips": clips_key, "seed": cfg.seed, "max_side": cfg.max_side,
                 "max_missing_face": cfg.max_missing_face, "scenes_dir": cfg.scenes_dir},
                sort_keys=True, default=str).encode()).hexdigest()[:20]
            folder = Path(cache.mkdir("auditkit")) / f"scores-{digest}"
            folder.mkdir(parents=True, exist_ok=True)
            store = folder / "results.sqlite"
        spec = cfg.rater or identity.get("spec")
        return run_audit(rater, clips, list(cfg.perturbations), margin=cfg.margin, alpha=cfg.alpha,
                         correction=cfg.correction, batch_size=cfg.batch_size, device=cfg.device,
                         seed=cfg.seed, max_side=cfg.max_side, store=store,
                         contrasts=cfg.contrasts, scenes_dir=cfg.scenes_dir,
                         max_missing_face=cfg.max_missing_face, executor=cfg.executor,
                         workers=cfg.workers, ray_address=cfg.ray_address,
                         config={"rater": spec, "clips": str(clips) if clips_key else "(objects)"})

    def _write_reports(self, run: _Run) -> Path | None:
        option = self.config.getoption("auditkit_report", None)
        if not option or run.result is None:
            return None
        from auditkit.core.report import render_html, render_text

        out = Path(self.config.invocation_params.dir) / option
        if run.label:
            out = out / run.label
        out.mkdir(parents=True, exist_ok=True)
        (out / "audit.json").write_text(json.dumps(run.result.to_dict(), indent=2) + "\n", encoding="utf-8")
        (out / "report.html").write_text(render_html(run.result), encoding="utf-8")
        (out / "report.txt").write_text(render_text(run.result) + "\n", encoding="utf-8")
        return out


_STATE = pytest.StashKey[_State]()


def _state(config: pytest.Config) -> _State:
    if _STATE not in config.stash:  # configured before the plugin was registered (pytester -p)
        config.stash[_STATE] = _State(config)
    return config.stash[_STATE]


def _clips_dir(cfg: "AuditConfig") -> Path:
    __tracebackhide__ = True
    if cfg.clips:
        path = Path(cfg.clips)
        if not path.is_dir():
            raise pytest.UsageError(f"auditkit: clips {path}: not a folder ({cfg.source or 'settings'})")
        return path
    from auditkit.media.samples import sample_clips

    return sample_clips()


def _clips_key(clips: Any, memo: dict[str, Any]) -> Any:
    """A fingerprint of a clips folder (every file's name and content hash), or ``None`` for clip
    objects, which are then scored into a store that lives only as long as the session.

    Content, not times: a CI checkout gives every file a new time, and its restored cache should
    still count. ``memo`` maps a path to ``[size, mtime_ns, sha256]`` so that a local re-run
    hashes only files that changed."""
    if not isinstance(clips, (str, os.PathLike)):
        return None
    from auditkit.contract.paths import file_digest

    root = Path(clips).resolve()
    entries = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            try:
                st = path.stat()
                known = memo.get(str(path))
                if known and known[:2] == [st.st_size, st.st_mtime_ns]:
                    digest = known[2]
                else:
                    digest = file_digest(path)
                    memo[str(path)] = [st.st_size, st.st_mtime_ns, digest]
            except OSError:
                continue
            entries.append(f"{path.relative_to(root).as_posix()}\0{digest}")
    return [str(root), hashlib.sha256("\n".join(entries).encode()).hexdigest()]


# --------------------------------------------------------------------------- declarative suites
@dataclasses.dataclass(frozen=True)
class _Expect:
    index: int
    perturbation: str
    traits: tuple[str, ...] | None
    verdict: str
    margin: float | None
    line: int | None


class AuditSuiteFile(pytest.File):
    """A ``*.audit.toml`` file: one :class:`AuditItem` per (perturbation, trait) expected."""

    def _bad(self, why: str) -> "pytest.Collector.CollectError":
        return self.CollectError(f"{self.path}: {why}")

    def collect(self) -> Iterable[pytest.Item]:
        import sys

        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib

        from auditkit.contract.errors import AuditkitError

        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise self._bad("not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise self._bad(f"not valid TOML ({exc})") from None
        unknown = sorted(set(data) - {"audit", "expect"})
        if unknown:
            raise self._bad(f"unknown key {unknown[0]!r} (a suite has [audit] and [[expect]] tables)")
        state = _state(self.config)
        try:
            cfg = self._settings(state.project_config(), data.get("audit", {}))
        except AuditkitError as exc:
            raise self.CollectError(str(exc)) from None
        except pytest.UsageError as exc:
            raise self.CollectError(f"{self.path}: {exc}") from None
        expects = self._expectations(data.get("expect"))
        if not cfg.rater:
            raise self._bad("no rater configured: set rater = \"...\" in [audit] of this suite, or in "
                            "[tool.auditkit] of pyproject.toml or auditkit.toml in the rootdir "
                            f"({self.config.rootpath}), or pass --auditkit-config FILE")
        try:
            rater = state.rater(cfg)
        except pytest.UsageError as exc:
            raise self.CollectError(f"{self.path}: {str(exc).removeprefix('auditkit: ')}") from None
        audited = self._audited(cfg)
        seen: dict[str, int] = {}
        for ex in expects:
            for trait in ex.traits or ():
                if trait not in rater.trait_names:
                    raise self._bad(f"expect[{ex.index}].traits: {trait!r} is not a trait of the rater "
                                    f"({', '.join(rater.trait_names)})")
            names = [n for n in audited if n == ex.perturbation
                     or (" vs " not in n and n.split(":")[0] == ex.perturbation)]
            if not names:
                raise self._bad(f"expect[{ex.index}].perturbation: {ex.perturbation!r} is not audited "
                                f"(audited: {', '.join(audited)}); add it to perturbations in [audit]")
            for name in names:
                for trait in ex.traits or rater.trait_names:
                    item_name = f"{name} / {trait}"
                    if item_name in seen:
                        raise self._bad(f"expect[{ex.index}] repeats {item_name!r} of expect[{seen[item_name]}]")
                    seen[item_name] = ex.index
                    item = AuditItem.from_parent(self, name=item_name, suite=self, settings=cfg,
                                                 perturbation=name, trait=trait, expect=ex)
                    item.add_marker("fairness_audit")
                    yield item

    def _settings(self, project: "AuditConfig", overrides: Any) -> "AuditConfig":
        from auditkit.app.config import AuditConfig

        if not isinstance(overrides, dict):
            raise self._bad("[audit] must be a table of settings")
        where = f"{self.path} [audit]"
        if not overrides:
            return project
        base = self.path.parent
        values = dict(overrides)
        for key in ("clips", "out", "scenes_dir"):  # relative to the suite file, as in a config file
            value = values.get(key)
            if isinstance(value, str) and value and not Path(value).is_absolute():
                values[key] = str(base / value)
        rater = values.get("rater")
        if isinstance(rater, str) and rater and not rater.startswith("builtin:"):
            target = rater.rpartition(":")[0] if rater.rpartition(":")[0].endswith(".py") else rater
            if target.endswith((".py", ".pt", ".ts", ".pth", ".onnx")) and not Path(target).is_absolute():
                values["rater"] = str(base / target) + rater[len(target):]
        merged = {**project.to_dict(), **values}
        cfg = AuditConfig.from_mapping(merged, source=where)
        device = self.config.getoption("auditkit_device", None)
        return cfg.override(device=device) if "device" in values else cfg

    def _expectations(self, raw: Any) -> list[_Expect]:
        if raw is None:
            raise self._bad("no [[expect]] tables: say what each edit must not do, e.g.\n"
                            "[[expect]]\nperturbation = \"lighting:dim\"\nverdict = \"invariant\"")
        if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
            raise self._bad("expect must be an array of tables ([[expect]])")
        lines = [i + 1 for i, line in enumerate(self.path.read_text(encoding="utf-8").splitlines())
                 if re.match(r"\s*\[\[\s*expect\s*\]\]", line)]
        out = []
        for i, entry in enumerate(raw):
            key = f"expect[{i}]"
            unknown = sorted(set(entry) - {"perturbation", "traits", "verdict", "margin"})
            if unknown:
                raise self._bad(f"{key}: unknown key {unknown[0]!r} "
                                "(known: perturbation, traits, verdict, margin)")
            pert = entry.get("perturbation")
            if not isinstance(pert, str) or not pert.strip():
                raise self._bad(f"{key}.perturbation must be an edit name such as \"glasses:thick\", "
                                f"got {pert!r}")
            traits = entry.get("traits")
            if isinstance(traits, str):
                traits = [traits]
            if traits is not None and (not isinstance(traits, list) or not traits
                                       or not all(isinstance(t, str) and t for t in traits)):
                raise self._bad(f"{key}.traits must be a trait name or a non-empty list of them, "
                                f"got {entry.get('traits')!r}")
            verdict = entry.get("verdict", "invariant")
            if verdict not in _VERDICT_EXPECTATIONS:
                raise self._bad(f"{key}.verdict must be \"invariant\" or \"no-shift\", got {verdict!r}")
            margin = entry.get("margin")
            if margin is not None:
                if verdict != "invariant":
                    raise self._bad(f"{key}.margin applies only to verdict = \"invariant\"")
                if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin > 0:
                    raise self._bad(f"{key}.margin must be a positive number, got {margin!r}")
                margin = float(margin)
            out.append(_Expect(i, pert.strip(), tuple(traits) if traits else None, verdict, margin,
                               lines[i] if i < len(lines) else None))
        return out

    def _audited(self, cfg: "AuditConfig") -> list[str]:
        """Names of every test the audit will have: edits (families resolved) and contrasts."""
        from auditkit.core.engine import _resolve_perturbations, contrast_name
        from auditkit.contract.errors import AuditkitError

        try:
            edits = _resolve_perturbations(list(cfg.perturbations), scenes_dir=cfg.scenes_dir)
        except AuditkitError as exc:
            raise self._bad(f"perturbations: {str(exc).removeprefix('--perturb: ')}") from None
        return [e.name for e in edits] + [contrast_name(a, b) for a, b in cfg.contrasts]

    def audit(self, cfg: "AuditConfig") -> "AuditResult":
        __tracebackhide__ = True
        state = _state(self.config)
        project = state.project_config()
        label = ""
        if cfg != project:  # its own audit: reported under the suite's path without the suffix
            where = (self.path.relative_to(self.config.rootpath)
                     if self.path.is_relative_to(self.config.rootpath) else Path(self.path.name))
            label = where.as_posix()[: -len(SUITE_SUFFIX)]
        return state.audit(cfg, rater=state.rater(cfg), clips=_clips_dir(cfg), label=label)


@dataclasses.dataclass
class _Crash:
    """What pytest prints on the short summary line (and as the JUnit failure message)."""

    path: str
    lineno: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}: {self.message}"

    def toterminal(self, tw: Any) -> None:
        tw.line(str(self))


class _AuditRepr:
    def __init__(self, text: str, crash: _Crash) -> None:
        self.text = text
        self.reprcrash = crash

    def toterminal(self, tw: Any) -> None:
        for line in self.text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.text


class _ExpectationFailed(Exception):
    def __init__(self, headline: str, text: str) -> None:
        super().__init__(headline)
        self.headline = headline
        self.text = text


class AuditItem(pytest.Item):
    """One expectation about one (perturbation, trait) test of an audit."""

    def __init__(self, *, suite: AuditSuiteFile, settings: "AuditConfig", perturbation: str,
                 trait: str, expect: _Expect, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.settings = settings
        self.perturbation = perturbation
        self.trait = trait
        self.expect = expect

    def runtest(self) -> None:
        __tracebackhide__ = True
        result = self.suite.audit(self.settings)
        try:
            test = result.test(self.perturbation, self.trait)
        except KeyError as exc:
            raise _ExpectationFailed(f"no such test in the audit: {exc.args[0]}", exc.args[0]) from None
        if self.expect.margin is not None:
            test = _rejudge(result, [test], self.expect.margin)[0]
        self.user_properties += [
            ("perturbation", self.perturbation), ("trait", self.trait),
            ("expected", self.expect.verdict), ("verdict", test.verdict), ("n", str(test.n)),
            ("mean_shift", _junit_number(test.mean_shift)), ("ci_low", _junit_number(test.ci_low)),
            ("ci_high", _junit_number(test.ci_high)), ("p_adjusted", _junit_number(test.p_adjusted)),
            ("equivalence_p_adjusted", _junit_number(test.equivalence_p_adjusted)),
            ("margin", _junit_number(test.margin))]
        if self.expect.verdict == "invariant":
            ok = test.verdict == "invariant"
        else:
            ok = test.verdict != "shift"
            if test.verdict == "inconclusive":
                _state(self.config).inconclusive.append((self.nodeid, [test]))
        if not ok:
            got = test.verdict.upper() if test.verdict == "shift" else test.verdict
            headline = (f"expected {self.expect.verdict}, got {got}: shift {_num(test.mean_shift)} "
                        f"[{_num(test.ci_low)}, {_num(test.ci_high)}], p adj {_p(test.p_adjusted)}, "
                        f"margin {test.margin:g}")
            reason = {"shift": "the edit moves this trait's score (significant after correction)",
                      "inconclusive": "neither a shift nor equivalence within the margin was shown"
                                      + (f"; about {test.n_needed} clips would decide" if test.n_needed else ""),
                      "invariant": ""}[test.verdict]
            text = (f"{self.name}: {headline}\n{_table([test], [test])}\n{reason}\n"
                    f"suite {self.suite.path.name}, expect[{self.expect.index}]; audit: {_about(result)}")
            raise _ExpectationFailed(headline, text)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        exc = excinfo.value
        if isinstance(exc, _ExpectationFailed):
            return _AuditRepr(exc.text, _Crash(str(self.path), self.expect.line or 0, exc.headline))
        if isinstance(exc, pytest.UsageError):
            return str(exc)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, (self.expect.line - 1 if self.expect.line else None), self.name
