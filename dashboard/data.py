"""Saved runs for the dashboard: find them, load them, refuse anything outside RUNS_DIR.

Nothing here computes a statistic. Verdicts, intervals and p-values are read from ``audit.json``;
per-clip scores come from the run's ``results.sqlite``, opened read-only; a per-clip shift is the
same ``edited - original`` (``A - B`` for a contrast) that ``Store.shifts`` gives. Loads are
cached with ``st.cache_data`` keyed on each file's modification time and size, so a page rerun
costs nothing and a run rewritten on disk is read again.

Every problem with a run (no ``audit.json``, broken JSON, an older schema, a damaged store, a
symbolic link) becomes a one-line :class:`~auditkit.errors.AuditkitError` message; one bad run
never hides the others.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import sqlite3
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import streamlit as st

if TYPE_CHECKING:  # imported where used: the Overview opens without paying for pandas
    import pandas as pd

from auditkit.contract.errors import AuditkitError
from auditkit.core.result import SCHEMA_VERSION, AuditResult, ShiftTest
from auditkit.contract.arms import ORIGINAL
from auditkit.core.store import Store

RUN_FILES = ("audit.json", "results.sqlite", "report.html")
MAX_DEPTH = 3  # auditkit-runs/demo-<time>/before is two levels down; deeper is not a layout we write
ENV_RUNS_DIR = "AUDITKIT_RUNS_DIR"
DEFAULT_RUNS_DIR = "auditkit-runs"
CONTRASTS = "contrasts"  # the family of every "A vs B" test


# --------------------------------------------------------------------------- where runs live
def runs_dir(argv: Iterable[str] = (), env: os._Environ | dict | None = None) -> Path:
    """RUNS_DIR: the first script argument (``streamlit run app.py -- DIR``), else
    ``$AUDITKIT_RUNS_DIR``, else ``auditkit-runs``. Never taken from the page's URL."""
    env = os.environ if env is None else env
    args = [a for a in argv if a]
    return Path(args[0] if args else env.get(ENV_RUNS_DIR) or DEFAULT_RUNS_DIR)


def check_root(root: Path) -> Path:
    if not root.exists():
        raise AuditkitError(f"{root}: no such folder of runs (give RUNS_DIR, e.g. auditkit-runs)")
    if not root.is_dir():
        raise AuditkitError(f"{root}: not a folder (RUNS_DIR is a folder of runs)")
    return root.resolve()


def find_runs(root: Path) -> list[str]:
    """Names (paths relative to ``root``, ``/``-separated) of the folders that hold a run.

    A folder with any run file is a run and is not searched further (its ``previews/`` is not a
    run); other folders are searched down to ``MAX_DEPTH``. Symbolic links are never followed,
    so nothing outside ``root`` is ever listed, and hidden folders are skipped. ``root`` itself
    is the run ``.`` when it holds run files.
    """
    found: list[str] = []

    def walk(folder: Path, parts: tuple[str, ...]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        if any(e.name in RUN_FILES for e in entries):
            found.append("/".join(parts) or ".")
            return
        if len(parts) >= MAX_DEPTH:
            return
        for entry in entries:
            if entry.name.startswith(".") or entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
                continue
            walk(Path(entry.path), parts + (entry.name,))

    walk(root, ())
    return found


def run_path(root: Path, name: str) -> Path:
    """The folder of run ``name`` inside ``root``. Refuses absolute names, ``..``, and any
    symbolic link on the way, so a name from the URL can never reach outside RUNS_DIR."""
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
        raise AuditkitError(f"run {name!r}: not a run name")
    if name == ".":
        return root
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise AuditkitError(f"run {name!r}: a run name is a folder inside RUNS_DIR (no '..', no absolute path)")
    folder = root
    for part in parts:
        folder = folder / part
        if folder.is_symlink():
            raise AuditkitError(f"run {name!r}: {part} is a symbolic link; the dashboard reads only inside RUNS_DIR")
    if not folder.is_dir():
        raise AuditkitError(f"run {name!r}: no such run in RUNS_DIR")
    if not folder.resolve().is_relative_to(root.resolve()):
        raise AuditkitError(f"run {name!r}: outside RUNS_DIR")
    return folder


def run_file(root: Path, name: str, filename: str) -> Path:
    """A file of a run; a symbolic link there is refused, since it could point anywhere."""
    path = run_path(root, name) / filename
    if path.is_symlink():
        raise AuditkitError(f"{name}/{filename} is a symbolic link; the dashboard reads only inside RUNS_DIR")
    return path


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        s = path.stat()
    except OSError:
        return None
    return (s.st_mtime_ns, s.st_size)


def _store_stamp(path: Path) -> tuple:
    # A run still being written changes its -wal file, not the database file.
    return (_stamp(path), _stamp(Path(f"{path}-wal")))


# --------------------------------------------------------------------------- audit.json
@st.cache_data(show_spinner=False, max_entries=256)
def _load_audit(path: str, stamp: tuple[int, int] | None) -> tuple[AuditResult | None, str | None]:
    # Errors are cached too (as text), so a broken run costs one read, not one per rerun.
    from auditkit.app.run import load_audit

    try:
        return load_audit(path), None
    except AuditkitError as exc:
        return None, _explain(Path(path), str(exc))


def _explain(path: Path, message: str) -> str:
    """Say when a file that does not fit was written by an older auditkit: the fix is a re-run."""
    try:
        version = json.loads(path.read_text(encoding="utf-8")).get("schema_version")
    except (OSError, ValueError, AttributeError):
        return message
    if isinstance(version, int) and version < SCHEMA_VERSION:
        return (f"{message} (written by an older auditkit, schema {version}; this one reads "
                f"schema {SCHEMA_VERSION}: run the audit again)")
    return message


def load_result(root: Path, name: str) -> AuditResult:
    """The run's ``AuditResult``, or an ``AuditkitError`` with a one-line reason."""
    path = run_file(root, name, "audit.json")
    if not path.is_file():
        raise AuditkitError(f"{name}: no audit.json (the run did not finish, or this is not a run folder)")
    result, error = _load_audit(str(path), _stamp(path))
    if error:
        raise AuditkitError(error.replace(str(root) + os.sep, ""))
    assert result is not None
    return result


@dataclass(frozen=True)
class RunEntry:
    """One line of the Runs page: enough to pick a run without opening it."""

    name: str
    date: str
    when: float  # for the newest-first order
    rater: str
    n_clips: int | None
    n_tests: int | None
    n_shift: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def _when(created: str, folder: Path) -> tuple[float, str]:
    try:
        stamp = _dt.datetime.fromisoformat(created)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=_dt.timezone.utc)
        return stamp.timestamp(), stamp.strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        try:
            mtime = folder.stat().st_mtime
        except OSError:
            return 0.0, ""
        return mtime, _dt.datetime.fromtimestamp(mtime, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def list_runs(root: Path) -> list[RunEntry]:
    """Every run under ``root``, newest first; a run that cannot be read carries its reason."""
    entries = []
    for name in find_runs(root):
        folder = root if name == "." else root / name
        try:
            result = load_result(root, name)
        except AuditkitError as exc:
            when, date = _when("", folder)
            entries.append(RunEntry(name, date, when, "", None, None, None, str(exc)))
            continue
        when, date = _when(result.created, folder)
        entries.append(RunEntry(name, date, when, str(result.rater.get("spec", "")), result.n_clips,
                                len(result.fairness), result.counts()["shift"], None))
    entries.sort(key=lambda e: (-e.when, e.name))
    return entries


def display_name(root: Path, name: str) -> str:
    return root.name if name == "." else name


# --------------------------------------------------------------------------- tables from audit.json
def family(test: ShiftTest) -> str:
    """The family a test is filed under: its edit's, or ``contrasts`` for every "A vs B"."""
    return CONTRASTS if test.base != ORIGINAL else (test.family or "")


def arms(result: AuditResult, condition: str) -> tuple[str, str]:
    """(base, arm) of a test of ``result``: the per-clip shift is ``arm - base``."""
    for t in result.tests:
        if t.perturbation == condition and t.base is not None and t.arm is not None:
            return t.base, t.arm
    raise AuditkitError(f"no test named {condition!r} in this run")


def tests_frame(result: AuditResult) -> pd.DataFrame:
    """One row per (perturbation, trait), the fields of audit.json as they are."""
    import pandas as pd

    frame = pd.DataFrame([t.to_dict() for t in result.tests], columns=[f.name for f in fields(ShiftTest)])
    frame["family"] = [family(t) for t in result.tests]
    return frame


def compare_frame(before: AuditResult, after: AuditResult) -> pd.DataFrame:
    """Every cell of either run: both runs' mean shift and verdict, the change, and whether the
    verdict flipped. A cell only one run has is kept, marked by an empty side."""
    cols = ["perturbation", "trait", "mean_shift", "ci_low", "ci_high", "verdict"]
    b = tests_frame(before)[cols]
    a = tests_frame(after)[cols]
    merged = b.merge(a, on=["perturbation", "trait"], how="outer", suffixes=("_before", "_after"),
                     sort=False, indicator=True)
    merged["change"] = merged["mean_shift_after"] - merged["mean_shift_before"]
    merged["flipped"] = (merged["_merge"] == "both") & (merged["verdict_before"] != merged["verdict_after"])
    merged["in"] = merged["_merge"].map({"both": "both", "left_only": "before only", "right_only": "after only"})
    order = {(t.perturbation, t.trait): i for i, t in enumerate(after.tests)}
    order.update({k: len(order) + i for i, k in enumerate((t.perturbation, t.trait) for t in before.tests)
                  if k not in order})
    merged["_order"] = [order[k] for k in zip(merged["perturbation"], merged["trait"])]
    return merged.sort_values("_order").drop(columns=["_merge", "_order"]).reset_index(drop=True)


# --------------------------------------------------------------------------- results.sqlite
def open_store(root: Path, name: str) -> Store:
    path = run_file(root, name, "results.sqlite")
    if not path.is_file():
        raise AuditkitError(f"{name}: no results.sqlite (per-clip scores are not available)")
    return Store.open_readonly(path)


@st.cache_data(show_spinner=False, max_entries=16)
def _scores(path: str, stamp: tuple) -> tuple[pd.DataFrame | None, str | None]:
    import pandas as pd

    try:
        store = Store.open_readonly(path)
    except AuditkitError as exc:
        return None, str(exc)
    try:
        rows = store.export_rows()
        frame = pd.DataFrame.from_records(list(rows), columns=["clip_id", "condition", "trait", "value"])
    except sqlite3.DatabaseError as exc:
        return None, f"{Path(path).name}: cannot read the scores ({exc})"
    finally:
        store.close()
    return frame, None


def scores(root: Path, name: str) -> pd.DataFrame:
    """Per-clip scores ``clip_id, condition, trait, value`` (the store's CSV export, as a table)."""
    path = run_file(root, name, "results.sqlite")
    if not path.is_file():
        raise AuditkitError(f"{name}: no results.sqlite (per-clip scores are not available)")
    frame, error = _scores(str(path), _store_stamp(path))
    if error:
        raise AuditkitError(f"{name}: {error.replace(str(root) + os.sep, '')}")
    assert frame is not None
    return frame


@st.cache_data(show_spinner=False, max_entries=16)
def _shifts(path: str, stamp: tuple, tests: tuple[tuple[str, str, str, str], ...],
            _frame: pd.DataFrame) -> pd.DataFrame:
    # One wide table (clip x (condition, trait)) and one subtraction per condition: a 1,000-clip,
    # 10-edit run is a handful of vectorised operations, not 50,000 Python steps.
    import pandas as pd

    wide = _frame.pivot(index="clip_id", columns=["condition", "trait"], values="value")
    pieces = []
    for cond, base, arm in dict.fromkeys((p, b, a) for p, _, b, a in tests):
        traits = [t for p, t, _, _ in tests if p == cond]
        if base not in wide.columns.get_level_values(0) or arm not in wide.columns.get_level_values(0):
            continue
        before = wide[base].reindex(columns=traits)
        after = wide[arm].reindex(columns=traits)
        long = pd.DataFrame({"before": before.stack(), "after": after.stack()})
        long = long.dropna()  # a clip is paired only where both sides were scored
        long["shift"] = long["after"] - long["before"]
        long = long.reset_index()
        long.insert(0, "perturbation", cond)
        pieces.append(long)
    cols = ["perturbation", "clip_id", "trait", "before", "after", "shift"]
    if not pieces:
        return pd.DataFrame(columns=cols)
    return pd.concat(pieces, ignore_index=True)[cols]


def shifts(root: Path, name: str, result: AuditResult) -> pd.DataFrame:
    """Per (perturbation, trait, clip): the scores before and after and their difference."""
    path = run_file(root, name, "results.sqlite")
    frame = scores(root, name)
    key = tuple((t.perturbation or "", t.trait or "", t.base or ORIGINAL, t.arm or "") for t in result.tests)
    return _shifts(str(path), _store_stamp(path), key, frame)


@st.cache_data(show_spinner=False, max_entries=16)
def _people(path: str, stamp: tuple, column: str | None) -> dict[str, str]:
    store = Store.open_readonly(path)
    try:
        return store.people(column)
    finally:
        store.close()


def people(root: Path, name: str, result: AuditResult) -> dict[str, str] | None:
    """Clip → person, when the run's unit of analysis is the person (else ``None``)."""
    if result.unit != "person":
        return None
    path = run_file(root, name, "results.sqlite")
    if not path.is_file():
        raise AuditkitError(f"{name}: no results.sqlite (per-clip scores are not available)")
    return _people(str(path), _store_stamp(path), result.cluster)


def per_candidate(clip_shifts: pd.DataFrame, person_of: dict[str, str] | None) -> pd.DataFrame:
    """Shifts per candidate: the clips' own, or with people as the unit each person's mean (the
    same grouping as ``Store.shifts``), labelled by the person."""
    if person_of is None or not len(clip_shifts):
        return clip_shifts
    frame = clip_shifts.assign(clip_id=clip_shifts["clip_id"].map(person_of))
    return frame.groupby(["perturbation", "clip_id", "trait"], as_index=False, sort=True)[
        ["before", "after", "shift"]].mean()


@st.cache_data(show_spinner=False, max_entries=512)
def _thumb(path: str, stamp: tuple, clip_id: str, condition: str) -> bytes | None:
    try:
        store = Store.open_readonly(path)
    except AuditkitError:
        return None
    try:
        return store.thumb(clip_id, condition)
    except sqlite3.OperationalError:  # a run written before frames were stored has no table
        return None
    finally:
        store.close()


def thumb(root: Path, name: str, clip_id: str, condition: str) -> bytes | None:
    """The stored middle frame (JPEG) of one clip under one condition, or None."""
    try:
        path = run_file(root, name, "results.sqlite")
    except AuditkitError:
        return None
    if not path.is_file():
        return None
    return _thumb(str(path), _store_stamp(path), clip_id, condition)


@st.cache_data(show_spinner=False, max_entries=256)
def _store_problem(path: str, stamp: tuple) -> str | None:
    try:
        Store.open_readonly(path).close()
    except AuditkitError as exc:
        return str(exc)
    return None


def store_problem(root: Path, name: str) -> str | None:
    """Why the run's store cannot be read, or None; a cheap probe, not a load of the scores."""
    try:
        path = run_file(root, name, "results.sqlite")
    except AuditkitError as exc:
        return str(exc)
    if not path.is_file():
        return f"{name}: no results.sqlite (per-clip scores are not available)"
    problem = _store_problem(str(path), _store_stamp(path))
    return None if problem is None else f"{name}: {problem.replace(str(root) + os.sep, '')}"


def scores_csv(root: Path, name: str) -> bytes:
    """Per-clip scores as CSV (``clip_id,condition,trait,value``), straight from the store."""
    import pandas as pd

    buffer = io.StringIO()
    buffer.write("clip_id,condition,trait,value\n")
    with open_store(root, name) as store:
        try:
            rows = list(store.export_rows())
        except sqlite3.DatabaseError as exc:
            raise AuditkitError(f"{name}: cannot read the scores ({exc})") from None
    pd.DataFrame.from_records(rows).to_csv(buffer, header=False, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def report_html(root: Path, name: str) -> bytes:
    path = run_file(root, name, "report.html")
    if not path.is_file():
        raise AuditkitError(f"{name}: no report.html")
    return path.read_bytes()


def overlays(root: Path, name: str, result: AuditResult, clip: str) -> dict[str, Path]:
    """The heatmap overlays ``auditkit explain`` wrote for one clip of the run, by trait (only the
    files the run's ``audit.json`` names, inside its ``explain/`` folder, no links)."""
    from auditkit.core.report import explain_files

    try:
        folder = run_path(root, name)
    except AuditkitError:
        return {}
    return {trait: path for (c, trait), path in explain_files(folder, result).items() if c == clip}


PLAYBACK_SIDE = 480  # the clips a reviewer plays are capped at this longest side


def playback(root: Path, name: str, result: AuditResult, clip: str, condition: str) -> bytes | str:
    """The clip under ``condition`` as an MP4 with its sound (every frame, the edit applied as the
    audit applied it), or why it cannot be played. Encoded when a reviewer asks, then cached on
    disk under the user cache: never stored in the run for every pair."""
    try:
        path = run_file(root, name, "results.sqlite")
        store = Store.open_readonly(path)
    except AuditkitError as exc:
        return f"the run's results store cannot be read ({exc})"
    try:
        found = store.clip_file(clip)
    except sqlite3.OperationalError:
        found = None
    finally:
        store.close()
    if found is None:
        return f"the audit recorded no video file for {clip} (it was given as frames)"
    video, content_hash = found
    seed = int((result.config if result is not None else {}).get("seed", 0) or 0)
    return _playback(video, content_hash, condition, seed, clip)


@st.cache_data(show_spinner="Encoding the clip with its sound ...", max_entries=32)
def _playback(video: str, content_hash: str, condition: str, seed: int, clip: str) -> bytes | str:
    import hashlib

    from auditkit.contract.paths import cache_root
    from auditkit.core.recording import render
    from auditkit.media.recording import RecordingSpec
    from auditkit.perturbations import get
    from auditkit.perturbations.annotate import Annotator

    source = Path(video)
    if not source.is_file():
        return f"the clip's video file {source} is no longer there"
    edit = None
    if condition != ORIGINAL:
        try:
            edit = get(condition)
        except Exception as exc:  # an edit that needs options of its own (a folder of scenes)
            return f"{condition} cannot be replayed here ({exc})"
    key = hashlib.sha256(f"{content_hash}|{condition}|{seed}|{PLAYBACK_SIDE}|v1".encode()).hexdigest()[:32]
    cached = cache_root() / "playback" / f"{key}.mp4"
    if cached.is_file():
        return cached.read_bytes()
    try:
        data_bytes = render(source, edit, RecordingSpec(max_side=PLAYBACK_SIDE), clip_id=clip, seed=seed,
                            annotator=Annotator())
    except Exception as exc:  # a clip or an edit that fails is the page's note, not a traceback
        return f"the clip could not be encoded ({type(exc).__name__}: {exc})"
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".part")
    tmp.write_bytes(data_bytes)
    tmp.replace(cached)
    return data_bytes


def preview(root: Path, name: str, condition: str) -> Path | None:
    """The run's own original | edited preview image of an edit, when it wrote one (a preview
    is an extra: a linked or missing folder just means none is shown)."""
    try:
        folder = run_file(root, name, "previews")
    except AuditkitError:
        return None
    if not folder.is_dir():
        return None
    path = folder / f"{condition.replace(':', '_')}.png"
    if path.is_symlink() or not path.is_file():
        return None
    return path
