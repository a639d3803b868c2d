"""``AuditConfig``: one audit's settings, validated once, carried from wherever they were given —
``auditkit.toml`` (top-level keys), the ``[tool.auditkit]`` table of ``pyproject.toml``, the
command line, the pytest plugin and its suite files, or ``run_audit(**options)`` — to the engine.

Each setting is declared once in :data:`PARAMS` with its rule (:mod:`auditkit.contract.params`),
its command-line flag and its help text; the command line is built from the same table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from auditkit.contract.errors import ConfigError
from auditkit.contract.params import (Either, Flag, Invalid, Maybe, Names, Number, OneOf, Pairs, Rule, Table,
                                      Text, check)
# read_toml stays importable from here too: the pytest plugin's suite files read through it.
from auditkit.contract.toml import read_toml, tomllib

from .result import DEFAULT_FAIL_ON, VERDICTS

# Multiple-testing corrections: Holm (family-wise error), Benjamini–Hochberg (false discovery
# rate), Bonferroni, none. ``fdr_bh`` is statsmodels' name for ``bh``, accepted where p-values
# are adjusted directly (auditkit.stats.adjust_pvalues).
CORRECTIONS = ("holm", "bh", "bonferroni", "none")
CORRECTION_ALIASES = {"fdr_bh": "bh"}
DEVICES = ("auto", "cpu", "cuda")
EXECUTORS = ("local", "ray")
UNITS = ("person", "clip")  # the units of analysis; the setting also takes "auto"
COMMAND_LINE = "command line"
DEFAULT_MARGIN = 0.05
DEFAULT_ALPHA = 0.05
# At most one candidate in twenty may move by more than the margin. With this tolerance
# "invariant" says that the 95% limits of agreement lie inside ±margin, with confidence: the
# Bland–Altman reading of agreement, which reviewers of method-comparison studies know.
DEFAULT_TOLERANCE = 0.05


@dataclass(frozen=True)
class Param:
    """How one setting is checked and offered: its rule, its flag (``None``: not on the command
    line), the flag's metavar and help."""

    rule: Rule
    flag: str | None = None
    help: str = ""
    metavar: str | None = None


_POSITIVE = Number(0.0, None, low_open=True, text="a positive number")
# The rules the statistics' public functions check their own arguments by (auditkit.stats).
MARGIN = _POSITIVE
ALPHA = Number(0.0, 0.5, True, True, text="a number between 0 and 0.5")
TOLERANCE = Number(0.0, 0.5, True, True, text="a share between 0 and 0.5")
CORRECTION = OneOf(CORRECTIONS)
WORKERS = Number(0, None, integer=True)       # local: processes annotating ahead (0: none)
RAY_WORKERS = Number(1, None, integer=True)   # ray: actors
PARAMS: dict[str, Param] = {
    "rater": Param(Maybe(Text()), "--rater", "builtin:NAME, model.pt/.ts, model.onnx, a checkpoint, file.py:name, "
                   "pkg.mod:name, https://vendor/endpoint or http:vendor.toml", "SPEC"),
    "clips": Param(Maybe(Text()), "--clips", "folder of videos (default: the built-in sample clips)", "DIR"),
    "perturbations": Param(Names(), "--perturb", "edits to apply, e.g. lighting:dim,lighting:bright, or a family: "
                           "lighting", "NAME[,NAME...]"),
    "out": Param(Maybe(Text()), "--out", "output folder (audit.json, report.html, results.sqlite, previews/)", "DIR"),
    "margin": Param(Either(_POSITIVE, Table(_POSITIVE, "a table of trait = number"),
                           "a positive number or a table of trait = number"),
                    "--margin", f"the smallest shift that matters, on the score scale (default {DEFAULT_MARGIN}); "
                    "in a file also a table per trait with 'default'", "M"),
    "alpha": Param(ALPHA, "--alpha",
                   f"significance level (default {DEFAULT_ALPHA})", "A"),
    "tolerance": Param(TOLERANCE, "--tolerance",
                       f"the share of candidates allowed to move by more than the margin (default {DEFAULT_TOLERANCE})",
                       "SHARE"),
    "correction": Param(CORRECTION, "--correction",
                        "multiple-testing correction across all tests (default holm)", "METHOD"),
    "unit": Param(OneOf(("auto", *UNITS)), "--unit",
                  "the unit of analysis: person (clips of one person are one person's "
                  "evidence; needs the cluster column), clip, or auto: person when metadata.csv has the cluster "
                  "column (default)", "UNIT"),
    "cluster": Param(Text(), "--cluster", "the metadata.csv column naming the person in each clip "
                     "(default subject_id)", "COLUMN"),
    "retest": Param(Flag(), "--no-retest", "leave out the control:retest condition (the rater's own noise on a "
                    "meaningless change), which every audit adds by default"),
    "fail_on": Param(Names(allowed=VERDICTS), "--fail-on", "verdicts that make the run exit 1 "
                     "(default shift,unstable)", "VERDICT[,VERDICT...]"),
    "batch_size": Param(Number(1, None, integer=True), "--batch-size", "clips per work unit (default 4)", "N"),
    "max_side": Param(Number(16, None, integer=True), None, "decode clips to at most this many pixels a side"),
    "seed": Param(Number(0, None, integer=True), "--seed", "seed of the edits' random parameters (default 0)", "N"),
    "device": Param(OneOf(DEVICES), "--device", "where edits and the rater run (default auto)", "DEVICE"),
    "contrasts": Param(Pairs(example='[["background:bookshelf", "background:plain"]]'), "--contrast",
                       "also compare two edits directly, e.g. 'background:bookshelf vs background:plain' "
                       "(repeatable)", "'A vs B'"),
    "scenes_dir": Param(Maybe(Text()), "--scenes", "folder of background images for background:user", "DIR"),
    "max_missing_face": Param(Number(0.0, 1.0, high_open=True), "--max-missing-face",
                              "face edits skip a clip whose face is missing in more than this share of frames "
                              "(default 0.5)", "FRACTION"),
    "shortlist_top": Param(Number(0.0, 1.0, True, True, text="a share in (0, 1)"), "--shortlist-top",
                           "decision impact: the share of clips shortlisted (default 0.25)", "SHARE"),
    "shortlist_trait": Param(Maybe(Text()), "--shortlist-trait",
                             "decision impact: shortlist by this trait (default: the mean of all traits)", "TRAIT"),
    "shortlist_weights": Param(Table(Number(), "a table of trait = number")),
    "executor": Param(OneOf(EXECUTORS), "--executor", "where batches run: this machine (default) or a Ray cluster",
                      "NAME"),
    "workers": Param(Maybe(WORKERS), "--workers",
                     "local: processes decoding and annotating ahead of the rater (default 1 on the command line, "
                     "0 from Python); ray: actors (default one per GPU, else one per two CPUs)", "N"),
    "ray_address": Param(Maybe(Text()), "--ray-address",
                         "an existing Ray cluster, e.g. ray://head:10001 (default: start a local one)", "ADDR"),
}
_FLAGS = {name: p.flag for name, p in PARAMS.items() if p.flag}


@dataclass(frozen=True)
class AuditConfig:
    rater: str | None = None
    clips: str | None = None            # None: the built-in sample clips
    perturbations: tuple[str, ...] = ("lighting",)
    margin: float | Mapping[str, float] = DEFAULT_MARGIN
    alpha: float = DEFAULT_ALPHA
    tolerance: float = DEFAULT_TOLERANCE
    correction: str = "holm"
    unit: str = "auto"
    cluster: str = "subject_id"
    retest: bool = True
    fail_on: tuple[str, ...] = DEFAULT_FAIL_ON
    batch_size: int = 4
    max_side: int = 640
    seed: int = 0
    device: str = "auto"
    out: str | None = None
    contrasts: tuple[tuple[str, str], ...] = ()   # pairs of edits compared directly
    scenes_dir: str | None = None                 # images for background:user
    max_missing_face: float = 0.5
    shortlist_top: float = 0.25                   # decision impact: top share shortlisted...
    shortlist_trait: str | None = None            # ...by one trait, or by a weighted sum:
    shortlist_weights: Mapping[str, float] = field(default_factory=dict)
    executor: str = "local"                       # or "ray"
    workers: int | None = None                    # local: annotation processes; ray: actors (auto)
    ray_address: str | None = None                # an existing Ray cluster; default: start a local one
    source: str = field(default="", compare=False)  # where it was read from, for messages

    def __post_init__(self) -> None:
        where = self.source or "configuration"

        def label(key: str) -> str | None:
            if where == COMMAND_LINE:  # name the flag the user typed, not the field
                return _FLAGS.get(key.split(".")[0], "--" + key.replace("_", "-"))
            return None

        for f in fields(self):
            if f.name in PARAMS:
                value = check(f.name, getattr(self, f.name), PARAMS[f.name].rule, where=where,
                              label=(lambda k: label(k)) if where == COMMAND_LINE else None)
                object.__setattr__(self, f.name, value)

        def bad(key: str, why: str) -> ConfigError:
            head = label(key) if where == COMMAND_LINE else f"{where}: {key}"
            return ConfigError(f"{head} {why}")

        if self.shortlist_weights and self.shortlist_trait:
            raise bad("shortlist_trait", "and shortlist_weights exclude each other: give one")
        if self.executor == "ray" and self.workers is not None:
            try:
                RAY_WORKERS(self.workers)
            except Invalid as exc:
                raise bad("workers", f"must be {exc.wanted} with executor ray, got {self.workers!r}") from None

    # ---------------------------------------------------------------- building one
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "") -> "AuditConfig":
        names = {f.name for f in fields(cls)} - {"source"}
        unknown = sorted(set(data) - names, key=str)
        if unknown:
            raise ConfigError(f"{source or 'configuration'}: unknown key {unknown[0]!r} "
                              f"(known: {', '.join(sorted(names))})")
        return cls(**dict(data), source=source)

    @classmethod
    def from_file(cls, path: str | Path) -> "AuditConfig":
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: configuration file does not exist")
        data = read_toml(path)
        if path.name == "pyproject.toml":
            data = data.get("tool", {}).get("auditkit")
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: has no [tool.auditkit] table")
            where = f"{path} [tool.auditkit]"
        else:
            where = str(path)
        return cls.from_mapping(rebase(data, path.parent), source=where)

    @classmethod
    def discover(cls, start: str | Path = ".") -> "AuditConfig | None":
        """``auditkit.toml`` or a ``pyproject.toml`` with ``[tool.auditkit]`` in ``start``."""
        base = Path(start)
        if (base / "auditkit.toml").is_file():
            return cls.from_file(base / "auditkit.toml")
        pyproject = base / "pyproject.toml"
        if pyproject.is_file():
            try:
                has = "auditkit" in tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
            except (tomllib.TOMLDecodeError, UnicodeDecodeError):
                return None
            if has:
                return cls.from_file(pyproject)
        return None

    @classmethod
    def from_record(cls, recorded: Mapping[str, Any]) -> "AuditConfig":
        """The settings a saved run recorded (the ``config`` of its ``audit.json``): each key this
        version knows and can read back, the defaults for the rest (an older file records fewer).
        A recorded value this version refuses is left at its default rather than failing the
        reader of an old file."""
        known = {f.name for f in fields(cls)} - {"source"}
        values: dict[str, Any] = {}
        for key, value in recorded.items():
            if key in known and value is not None:
                try:
                    cls.from_mapping({key: value}, source="audit.json")
                except ConfigError:
                    continue
                values[key] = value
        return cls.from_mapping(values, source="audit.json config")

    def override(self, *, source: str = COMMAND_LINE, **values: Any) -> "AuditConfig":
        """Values given later win; ``None`` means "not given". They are checked on their own first,
        so an error names what the user typed (a flag on the command line) rather than the file."""
        given = {k: v for k, v in values.items() if v is not None}
        if not given:
            return self
        AuditConfig.from_mapping(given, source=source)
        return replace(self, **given)

    # ---------------------------------------------------------------- using one
    def margins(self, traits: tuple[str, ...] | list[str]) -> dict[str, float]:
        """The margin of each trait; a table's keys must be traits of the rater (or ``default``)."""
        if isinstance(self.margin, Mapping):
            unknown = sorted(set(self.margin) - set(traits) - {"default"})
            if unknown:
                raise ConfigError(f"margin: unknown trait(s) {unknown}; the rater's traits are {list(traits)}")
            default = self.margin.get("default", DEFAULT_MARGIN)
            return {t: float(self.margin.get(t, default)) for t in traits}
        return {t: float(self.margin) for t in traits}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("source")
        out["perturbations"] = list(self.perturbations)
        out["contrasts"] = [list(c) for c in self.contrasts]
        out["fail_on"] = list(self.fail_on)
        return out


def rebase(values: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """Paths in a settings file are relative to that file, not to the shell: the clip, output and
    scene folders, and whatever part of the rater spec is a file."""
    from auditkit.raters import rebase_spec

    out = dict(values)
    for key in ("clips", "out", "scenes_dir"):
        value = out.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            out[key] = str(base / value)
    if isinstance(out.get("rater"), str) and out["rater"]:
        out["rater"] = rebase_spec(out["rater"], base)
    return out


_MERGED = {"VERDICT_NAMES": ("VERDICTS", VERDICTS)}


def __getattr__(name: str) -> Any:
    if name in _MERGED:
        from auditkit.contract.deprecation import merged

        return merged(__name__, name, *_MERGED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
