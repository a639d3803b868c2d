"""The application layer: run an audit as configured and write its files, or load a saved one.

The command line, the demo, the pytest plugin and the dashboard all come through here, so an
audit is run, written and read back the same way whichever face started it.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

from auditkit.contract.errors import AuditkitError

from .outputs import cannot_write, write_previews, write_text

EXIT_OK, EXIT_SHIFT, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def execute(config, *, quiet: bool = False, echo: bool = True) -> int:
    """Run one audit as configured and write its files; return the exit code."""
    # Imported here: the dashboard reads saved runs through this module without loading torch.
    from auditkit.contract.device import pick_device
    from auditkit.core.engine import run_audit
    from auditkit.core.plan import resolve_edits
    from auditkit.core.report import render_text
    from auditkit.core.stats import MIN_N
    from auditkit.media.clips import discover
    from auditkit.media.samples import sample_clips
    from auditkit.raters import load_rater

    # Everything the user gave is checked before anything is written.
    clips_dir = Path(config.clips) if config.clips else sample_clips()
    sources = discover(clips_dir)
    config, why = for_sample_clips(config, sources)
    record = {"rater": config.rater, "clips": str(clips_dir), **why}
    edits = resolve_edits(list(config.perturbations), scenes_dir=config.scenes_dir)
    device = pick_device(config.device)
    rater = load_rater(config.rater, device=device)
    out = Path(config.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".auditkit-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise AuditkitError(f"{out}: cannot write the output folder ({exc.strerror})") from None
    store_path = out / "results.sqlite"
    if config.workers is None and config.executor == "local":
        config = config.override(source="defaults", workers=1)  # the command line overlaps annotation by default
    try:
        result = run_audit(rater, sources, edits, settings=config, store=store_path, progress=not quiet,
                           record=record)
    except (OSError, sqlite3.Error) as exc:
        raise cannot_write(exc, store_path, store_path) from None

    if result.n_clips == 0:
        raise AuditkitError(f"{clips_dir}: no clip could be scored (see the reasons in "
                            f"{store_path}, table skipped)")
    try:
        previews = write_previews(result, sources, edits, out / "previews", config)
        write_run(result, out, store=store_path, previews=previews)
    except (OSError, sqlite3.Error) as exc:
        raise cannot_write(exc, out, store_path) from None
    if echo:
        print(render_text(result))
        print(f"\nwrote {out / 'audit.json'}, {out / 'report.html'}, {out / 'results.sqlite'}")
    few = [t for t in result.tests if t.n < MIN_N]
    if few and result.unit == "person":
        print(f"auditkit: warning: {len(few)} test(s) rest on fewer than {MIN_N} people and decide nothing "
              f"({result.n_subjects} people in {result.n_clips} clips; --unit clip judges these clips instead)",
              file=sys.stderr)
    elif few:
        print(f"auditkit: warning: {len(few)} test(s) have fewer than {MIN_N} paired clips and decide "
              "nothing (see skipped)", file=sys.stderr)
    return EXIT_SHIFT if result.failing(config.fail_on) else EXIT_OK


def for_sample_clips(config, sources) -> tuple:
    """Settings for auditing ``sources``: when they are the built-in sample set (no ``clips`` in the
    settings) and the unit is left to choose, clips — two people in twelve clips could decide
    nothing about people — with the reason recorded for the report."""
    if config.clips or config.unit != "auto":
        return config, {}
    people = len({s.metadata.get(config.cluster) for s in sources})
    return (config.override(source="the built-in sample clips", unit="clip"),
            {"unit_why": f"the built-in sample clips hold {people} people in {len(sources)} clips, too few "
                         "people to judge people in general"})


def write_run(result, out: Path, *, store: Path | None = None, previews: dict | None = None,
              text: bool = False) -> None:
    """A result's ``audit.json`` and ``report.html`` (with each candidate's shift from ``store``,
    and ``report.txt`` when asked) in ``out``, each written atomically."""
    from auditkit.core.report import explain_files, render_html, render_text
    from auditkit.core.store import Store

    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "audit.json", json.dumps(result.to_dict(), indent=2) + "\n")
    shifts = {}
    if store is not None and Path(store).is_file():
        db = Store.open_readonly(store)
        try:
            shifts = db.shifts(result)
        finally:
            db.close()
    write_text(out / "report.html", render_html(result, previews, shifts=shifts, overlays=explain_files(out, result)))
    if text:
        write_text(out / "report.txt", render_text(result) + "\n")


def load_audit(path: str | Path):
    """An ``AuditResult`` from ``audit.json``; every problem is an :class:`AuditkitError`."""
    from auditkit.core.result import AuditResult, SchemaError

    path = Path(path)
    if not path.is_file():
        raise AuditkitError(f"{path}: no such audit file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuditkitError(f"{path}: not valid JSON ({exc})") from None
    try:
        return AuditResult.from_dict(data)
    except (SchemaError, TypeError, ValueError) as exc:
        message = str(exc).removeprefix("audit.json: ")
        raise AuditkitError(f"{path}: {message}") from None


def saved_shifts(folder: Path, result) -> dict:
    """Per-clip shifts from the run's own store, when it sits beside audit.json (and only there)."""
    from auditkit.core.store import Store

    path = folder / "results.sqlite"
    # SQLite also reads the -wal and -shm files beside the store: a link there reads elsewhere.
    if not path.is_file() or any(Path(f"{path}{end}").is_symlink() for end in ("", "-wal", "-shm")):
        return {}
    try:
        store = Store.open_readonly(path)  # rendering a saved run writes nothing into it
        try:
            return store.shifts(result)
        finally:
            store.close()
    except (AuditkitError, sqlite3.Error):  # a damaged store costs the dots, not the report
        return {}
