"""What one pytest session knows: its settings, the raters it loaded and the audits it ran."""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import pytest

if TYPE_CHECKING:  # the plugin is loaded in every pytest session: import auditkit's heavy parts lazily
    from auditkit.core.result import AuditResult, ShiftTest
    from auditkit.core.settings import AuditConfig

# The assert helpers get only a result; this is how they find the test to attach properties to.
CURRENT_ITEM: contextvars.ContextVar[pytest.Item | None] = contextvars.ContextVar(
    "auditkit_current_item", default=None)


@dataclasses.dataclass
class Run:
    key: str
    label: str
    source: str
    result: "AuditResult | None" = None
    store: Path | None = None
    error: str | None = None
    failure: BaseException | None = None
    report_dir: Path | None = None


class State:
    """The session's settings, loaded raters and audits; each audit runs at most once."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._project: Any = None
        self._raters: dict[tuple[str, str], Any] = {}
        self.runs: list[Run] = []
        self._by_key: dict[str, Run] = {}
        self.inconclusive: list[tuple[str, list[ShiftTest]]] = []
        self._scratch: Path | None = None

    def project_config(self) -> "AuditConfig":
        __tracebackhide__ = True
        if self._project is None:
            from auditkit.contract.errors import AuditkitError
            from auditkit.core.settings import AuditConfig

            path = self.config.getoption("auditkit_config", None)
            try:
                found = (AuditConfig.from_file(Path(path)) if path
                         else AuditConfig.discover(self.config.rootpath))
                found = found or AuditConfig(source="")
                self._project = found.override(source="--auditkit-device",
                                               device=self.config.getoption("auditkit_device", None))
            except AuditkitError as exc:
                raise pytest.UsageError(f"auditkit: {exc}") from None
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
        clips_key = clips_fingerprint(clips, memo)
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
            run = Run(key=key, label=unique, source=cfg.source or "defaults")
            self._by_key[key] = run
            self.runs.append(run)
            try:
                run.store = self._store_path(cfg, identity, clips_key)
                run.result = self._run(cfg, rater, clips, run.store, clips_key)
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

    def store_of(self, result: "AuditResult") -> Path | None:
        """The results store a result of this session was judged from."""
        return next((r.store for r in self.runs if r.result is result), None)

    def _store_path(self, cfg: "AuditConfig", identity: Mapping[str, Any], clips_key: Any) -> Path:
        """Under pytest's cache when the clips are a folder (a second session scores nothing it
        already scored), else in a scratch folder that lives as long as the session."""
        from auditkit import __version__

        cache = getattr(self.config, "cache", None)
        if cache is not None and clips_key is not None:
            digest = hashlib.sha256(json.dumps(
                {"auditkit": __version__, "rater": identity["hash"], "input": identity["input"],
                 "clips": clips_key, "seed": cfg.seed, "max_side": cfg.max_side,
                 "max_missing_face": cfg.max_missing_face, "scenes_dir": cfg.scenes_dir},
                sort_keys=True, default=str).encode()).hexdigest()[:20]
            folder = Path(cache.mkdir("auditkit")) / f"scores-{digest}"
        else:
            if self._scratch is None:
                self._scratch = Path(tempfile.mkdtemp(prefix="auditkit-pytest-"))
            folder = self._scratch / f"run-{len(self.runs)}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / "results.sqlite"

    def _run(self, cfg: "AuditConfig", rater: Any, clips: Any, store: Path, clips_key: Any) -> "AuditResult":
        from auditkit.app.run import for_sample_clips
        from auditkit.core.engine import run_audit
        from auditkit.media.clips import as_sources

        from auditkit.media.samples import sample_clips

        sources = as_sources(clips)
        why: dict = {}
        if not cfg.clips and isinstance(clips, (str, os.PathLike)) and Path(clips) == sample_clips():
            cfg, why = for_sample_clips(cfg, sources)
        spec = cfg.rater or getattr(rater, "name", None)
        return run_audit(rater, sources, list(cfg.perturbations), settings=cfg, store=store,
                         record={"rater": spec, "clips": str(clips) if clips_key else "(objects)", **why})

    def _write_reports(self, run: Run) -> Path | None:
        option = self.config.getoption("auditkit_report", None)
        if not option or run.result is None:
            return None
        from auditkit.app.run import write_run

        out = Path(self.config.invocation_params.dir) / option
        if run.label:
            out = out / run.label
        write_run(run.result, out, store=run.store, text=True)
        return out


STATE = pytest.StashKey[State]()


def state(config: pytest.Config) -> State:
    if STATE not in config.stash:  # configured before the plugin was registered (pytester -p)
        config.stash[STATE] = State(config)
    return config.stash[STATE]


def clips_dir(cfg: "AuditConfig") -> Path:
    __tracebackhide__ = True
    if cfg.clips:
        path = Path(cfg.clips)
        if not path.is_dir():
            raise pytest.UsageError(f"auditkit: clips {path}: not a folder ({cfg.source or 'settings'})")
        return path
    from auditkit.media.samples import sample_clips

    return sample_clips()


def clips_fingerprint(clips: Any, memo: dict[str, Any]) -> Any:
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
