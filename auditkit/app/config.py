"""``AuditConfig``: the audit's settings from TOML — ``auditkit.toml`` (top-level keys) or the
``[tool.auditkit]`` table of ``pyproject.toml`` — overridden by command-line arguments."""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from auditkit.contract.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

CORRECTIONS = ("holm", "bh", "bonferroni", "none")
COMMAND_LINE = "command line"
_FLAGS = {"perturbations": "perturb", "scenes_dir": "scenes", "contrasts": "contrast"}
DEVICES = ("auto", "cpu", "cuda")
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class AuditConfig:
    rater: str | None = None
    clips: str | None = None            # None: the built-in sample clips
    perturbations: tuple[str, ...] = ("lighting",)
    margin: float | Mapping[str, float] = 0.05
    alpha: float = 0.05
    correction: str = "holm"
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
    workers: int | None = None                    # local: annotation processes (1); ray: actors (auto)
    ray_address: str | None = None                # an existing Ray cluster; default: start a local one
    source: str = field(default="", compare=False)  # where it was read from, for messages

    def __post_init__(self) -> None:
        where = self.source or "configuration"

        def bad(key: str, why: str) -> ConfigError:
            if where == COMMAND_LINE:  # name the flag the user typed, not the field
                return ConfigError(f"--{_FLAGS.get(key.split('.')[0], key).replace('_', '-')} {why}")
            return ConfigError(f"{where}: {key} {why}")

        if isinstance(self.perturbations, str):
            object.__setattr__(self, "perturbations",
                               tuple(p.strip() for p in self.perturbations.split(",") if p.strip()))
        if not isinstance(self.perturbations, (list, tuple)) or not all(
                isinstance(p, str) and p for p in self.perturbations) or not self.perturbations:
            raise bad("perturbations", "must be a non-empty list of names")
        object.__setattr__(self, "perturbations", tuple(self.perturbations))
        contrasts = self.contrasts
        if not isinstance(contrasts, (list, tuple)) or not all(
                isinstance(c, (list, tuple)) and len(c) == 2 and all(isinstance(x, str) and x for x in c)
                for c in contrasts):
            raise bad("contrasts", "must be a list of [edit, edit] pairs, e.g. "
                                   "[[\"background:bookshelf\", \"background:plain\"]]")
        object.__setattr__(self, "contrasts", tuple(tuple(c) for c in contrasts))
        m = self.max_missing_face
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m < 1:
            raise bad("max_missing_face", f"must be a number in [0, 1), got {m!r}")
        top = self.shortlist_top
        if isinstance(top, bool) or not isinstance(top, (int, float)) or not 0 < top < 1:
            raise bad("shortlist_top", f"must be a share in (0, 1), got {top!r}")
        weights = self.shortlist_weights
        if not isinstance(weights, Mapping) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in weights.values()):
            raise bad("shortlist_weights", "must be a table of trait = number")
        if weights and self.shortlist_trait:
            raise bad("shortlist_trait", "and shortlist_weights exclude each other: give one")
        if self.executor not in EXECUTORS:
            raise bad("executor", f"must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 0 or (self.executor == "ray" and self.workers < 1)):
            raise bad("workers", f"must be an integer >= {1 if self.executor == 'ray' else 0}, got {self.workers!r}")
        for key in ("rater", "clips", "out", "scenes_dir", "shortlist_trait", "ray_address"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise bad(key, f"must be a non-empty string, got {value!r}")
        margin = self.margin
        if isinstance(margin, Mapping):
            for trait, value in margin.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                    raise bad(f"margin.{trait}", f"must be a positive number, got {value!r}")
            object.__setattr__(self, "margin", {k: float(v) for k, v in margin.items()})
        # An infinite margin would make every test "invariant": a passing audit that proves nothing.
        elif isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 < margin < math.inf:
            raise bad("margin", f"must be a positive number or a table of trait = number, got {margin!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < 0.5:
            raise bad("alpha", f"must be a number between 0 and 0.5, got {self.alpha!r}")
        if self.correction not in CORRECTIONS:
            raise bad("correction", f"must be one of {', '.join(CORRECTIONS)}, got {self.correction!r}")
        if self.device not in DEVICES:
            raise bad("device", f"must be one of {', '.join(DEVICES)}, got {self.device!r}")
        for key, low in (("batch_size", 1), ("max_side", 16), ("seed", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise bad(key, f"must be an integer >= {low}, got {value!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "") -> "AuditConfig":
        names = {f.name for f in fields(cls)} - {"source"}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{source or 'configuration'}: unknown key {unknown[0]!r} "
                              f"(known: {', '.join(sorted(names))})")
        return cls(**dict(data), source=source)

    @classmethod
    def from_file(cls, path: str | Path) -> "AuditConfig":
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: configuration file does not exist")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        if path.name == "pyproject.toml":
            data = data.get("tool", {}).get("auditkit")
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: has no [tool.auditkit] table")
            where = f"{path} [tool.auditkit]"
        else:
            where = str(path)
        config = cls.from_mapping(data, source=where)
        # Relative paths in a config file are relative to that file, not to the shell.
        base = path.parent
        updates = {}
        for key in ("clips", "out", "scenes_dir"):
            value = getattr(config, key)
            if value and not Path(value).is_absolute():
                updates[key] = str(base / value)
        rater = config.rater
        if rater and rater.startswith("http:") and not rater.startswith("http://"):
            target = rater[len("http:"):]  # an HTTP rater's description file
            if target and not Path(target).is_absolute():
                updates["rater"] = "http:" + str(base / target)
        elif rater and not rater.startswith(("builtin:", "https://", "http://")):
            target = rater.rpartition(":")[0] if rater.rpartition(":")[0].endswith(".py") else rater
            if target.endswith((".py", ".pt", ".ts", ".pth", ".onnx")) and not Path(target).is_absolute():
                updates["rater"] = str(base / target) + rater[len(target):]
        return replace(config, **updates)

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

    def override(self, **values: Any) -> "AuditConfig":
        """Command-line values win over the file; ``None`` means "not given". They are checked
        on their own first, so an error names the flag rather than the file."""
        given = {k: v for k, v in values.items() if v is not None}
        if not given:
            return self
        AuditConfig(**given, source=COMMAND_LINE)
        return replace(self, **given)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("source")
        out["perturbations"] = list(self.perturbations)
        out["contrasts"] = [list(c) for c in self.contrasts]
        return out
