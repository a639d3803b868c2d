"""SQLite store of per-clip scores. Appended as the audit goes, committed after every scored
batch, so a run that stops (an error, Ctrl-C, a crash) keeps what it scored and a second run with
the same output folder continues where the first stopped."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from collections.abc import MutableMapping
from typing import Any, Iterable, Iterator, Mapping, Sequence

from auditkit.contract.arms import ORIGINAL  # noqa: F401  (importable from here, as before)
from auditkit.contract.errors import AuditkitError
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clips (
    clip_id TEXT PRIMARY KEY, path TEXT, content_hash TEXT, frames INTEGER, fps REAL,
    metadata TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS scores (
    clip_id TEXT NOT NULL, condition TEXT NOT NULL, trait TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (clip_id, condition, trait));
CREATE TABLE IF NOT EXISTS skipped (
    clip_id TEXT NOT NULL, condition TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (clip_id, condition));
CREATE TABLE IF NOT EXISTS thumbs (
    clip_id TEXT NOT NULL, condition TEXT NOT NULL, jpeg BLOB NOT NULL,
    PRIMARY KEY (clip_id, condition));
CREATE TABLE IF NOT EXISTS explain (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


class Store:
    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        try:
            self.db = sqlite3.connect(self.path)
            self.db.executescript(_SCHEMA)
            if self.path != ":memory:":
                self.db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            # A full or read-only disk is the folder's problem, not a damaged file.
            if any(w in str(exc) for w in ("disk is full", "readonly", "read-only", "unable to open")):
                raise AuditkitError(f"{self.path}: cannot write the results store ({exc})") from None
            raise AuditkitError(f"{self.path}: not a usable results store ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise AuditkitError(f"{self.path}: not a usable results store ({exc})") from None

    @classmethod
    def open_readonly(cls, path: str | Path) -> "Store":
        """The store of a saved run, for reading only (the dashboard): no schema, no journal
        change, nothing written. A missing table (an older run) fails only the query that needs it.

        A finished run holds no ``-wal``/``-shm`` files, and a plain read-only open of a WAL file
        would create them beside the run and leave them there, so it is opened ``immutable``.
        While a writer is still at work both files exist already and are read as they are."""
        path = Path(path)
        if not path.is_file():
            raise AuditkitError(f"{path}: no such results store")
        live = Path(f"{path}-wal").is_file() and Path(f"{path}-shm").is_file()
        uri = path.absolute().as_uri() + ("?mode=ro" if live else "?mode=ro&immutable=1")
        try:
            db = sqlite3.connect(uri, uri=True)
        except sqlite3.DatabaseError as exc:
            raise AuditkitError(f"{path}: cannot open the results store ({exc})") from None
        try:
            db.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise AuditkitError(f"{path}: not a usable results store ({exc})") from None
        store = cls.__new__(cls)
        store.path, store.db = str(path), db
        return store

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.commit()
        self.close()

    def commit(self) -> None:
        self.db.commit()

    def bind(self, key: Mapping[str, Any]) -> None:
        """Tie the store to one audit configuration; refuse to mix scores of another."""
        wanted = json.dumps(dict(key), sort_keys=True)
        row = self.db.execute("SELECT value FROM meta WHERE key = 'run_key'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('run_key', ?)", (wanted,))
            self.commit()
            return
        held = json.loads(row[0])
        diff = sorted(k for k in set(held) | set(key) if held.get(k) != key.get(k))
        if diff:
            raise AuditkitError(f"{self.path}: holds scores of a different audit ({', '.join(diff)} "
                                "differ); use a new --out folder or delete that file")

    def add_clip(self, clip_id: str, *, path: str | None, content_hash: str, frames: int,
                 fps: float, metadata: Mapping[str, str]) -> None:
        row = self.db.execute("SELECT content_hash FROM clips WHERE clip_id = ?", (clip_id,)).fetchone()
        if row is not None and row[0] != content_hash:
            raise AuditkitError(f"clip {clip_id!r} changed since it was scored into {self.path}; "
                                "use a new --out folder")
        self.db.execute("INSERT OR REPLACE INTO clips VALUES (?, ?, ?, ?, ?, ?)",
                        (clip_id, path, content_hash, frames, fps, json.dumps(dict(metadata))))

    def add_scores(self, clip_id: str, condition: str, traits: Sequence[str],
                   values: Sequence[float]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)",
                            [(clip_id, condition, t, float(v)) for t, v in zip(traits, values)])
        self.db.execute("DELETE FROM skipped WHERE clip_id = ? AND condition = ?", (clip_id, condition))

    def add_skipped(self, clip_id: str, condition: str, reason: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO skipped VALUES (?, ?, ?)", (clip_id, condition, reason))

    def add_thumb(self, clip_id: str, condition: str, jpeg: bytes) -> None:
        """The middle frame of a scored input, small JPEG, for the dashboard's Clips page."""
        self.db.execute("INSERT OR REPLACE INTO thumbs VALUES (?, ?, ?)", (clip_id, condition, jpeg))

    def clip_file(self, clip_id: str) -> tuple[str, str] | None:
        """(path, content hash) of a clip's video file as the audit recorded it; ``None`` for an
        unknown clip or one given as frames in memory."""
        row = self.db.execute("SELECT path, content_hash FROM clips WHERE clip_id = ?", (clip_id,)).fetchone()
        return None if row is None or not row[0] else (str(row[0]), str(row[1] or ""))

    def thumb(self, clip_id: str, condition: str) -> bytes | None:
        row = self.db.execute("SELECT jpeg FROM thumbs WHERE clip_id = ? AND condition = ?",
                              (clip_id, condition)).fetchone()
        return None if row is None else bytes(row[0])

    def write(self, outcome: Any) -> None:
        """Everything one scored batch produced (an :class:`auditkit.work.Outcome`)."""
        for clip_id, info in outcome.clips:
            self.add_clip(clip_id, **info)
        for clip_id, condition, reason in outcome.skipped:
            self.add_skipped(clip_id, condition, reason)
        for clip_id, condition, values in outcome.scores:
            self.add_scores(clip_id, condition, self.traits, values)
        for clip_id, condition, jpeg in outcome.thumbs:
            self.add_thumb(clip_id, condition, jpeg)

    @property
    def traits(self) -> list[str]:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'run_key'").fetchone()
        if row is None:
            raise AuditkitError(f"{self.path}: no audit is bound to this store yet")
        return list(json.loads(row[0])["traits"])

    def done(self) -> set[tuple[str, str]]:
        """(clip, condition) pairs already scored. Skipped pairs are not done: a later run tries
        them again (the file may have been replaced, the face threshold changed)."""
        rows = self.db.execute("SELECT DISTINCT clip_id, condition FROM scores")
        return {(a, b) for a, b in rows}

    def scores(self, condition: str, trait: str) -> dict[str, float]:
        rows = self.db.execute("SELECT clip_id, value FROM scores WHERE condition = ? AND trait = ?",
                               (condition, trait))
        return dict(rows.fetchall())

    def skipped(self) -> list[tuple[str, str, str]]:
        return self.db.execute("SELECT clip_id, condition, reason FROM skipped "
                               "ORDER BY clip_id, condition").fetchall()

    def shifts(self, result: Any) -> dict[tuple[str, str], list[float]]:
        """Per (perturbation, trait) of an ``AuditResult``: each candidate's arm − base score
        (edited − original; for a contrast ``A vs B``: A − B), the distribution behind the test's
        mean. A candidate is a clip, or with people as the result's unit a person (the mean of
        their clips)."""
        from .plan import Units

        units = Units.saved(result.unit, result.cluster, self.metadata())
        out: dict[tuple[str, str], list[float]] = {}
        for t in result.tests:
            before, after = self.scores(t.base, t.trait), self.scores(t.arm, t.trait)
            diffs = {c: after[c] - before[c] for c in sorted(after) if c in before}
            out[(t.perturbation, t.trait)] = list(units.pool(diffs).values())
        return out

    def people(self, column: str | None) -> dict[str, str]:
        """Clip → the person it shows (``column`` of its metadata; a clip without one is its own)."""
        from .plan import people_of

        return people_of(self.metadata(), column)

    def explain_cache(self) -> "ExplainCache":
        """A mapping over the ``explain`` table: each clip's attribution, kept by its cache key, so
        a second ``auditkit explain`` of the same run computes nothing again."""
        return ExplainCache(self)

    def metadata(self) -> dict[str, dict[str, str]]:
        return {c: json.loads(m) for c, m in self.db.execute("SELECT clip_id, metadata FROM clips")}

    def clip_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT clip_id FROM clips ORDER BY clip_id")]

    def export_rows(self) -> Iterable[tuple[str, str, str, float]]:
        """(clip_id, condition, trait, value) for a CSV of per-clip scores."""
        return self.db.execute("SELECT clip_id, condition, trait, value FROM scores "
                               "ORDER BY clip_id, condition, trait")


class ExplainCache(MutableMapping):
    """``key -> bytes`` stored in the run's ``explain`` table (committed with the store)."""

    def __init__(self, store: Store) -> None:
        self.db = store.db

    def __getitem__(self, key: str) -> bytes:
        row = self.db.execute("SELECT value FROM explain WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return bytes(row[0])

    def __setitem__(self, key: str, value: bytes) -> None:
        self.db.execute("INSERT OR REPLACE INTO explain VALUES (?, ?)", (key, value))

    def __delitem__(self, key: str) -> None:
        self.db.execute("DELETE FROM explain WHERE key = ?", (key,))

    def __iter__(self) -> Iterator[str]:
        return iter([r[0] for r in self.db.execute("SELECT key FROM explain")])

    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM explain").fetchone()[0])
