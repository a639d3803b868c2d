"""``AuditPlan``: what an audit tests, decided once.

Built from the settings (and, for what depends on them, the rater's traits and the clips), it
holds the resolved edits, the unit of analysis, the per-trait margins, the shortlist rule and one
:class:`~auditkit.contract.arms.Arm` per test: each edit (the retest control included) against
the original, and each contrast of two edits. The engine scores the plan's edits, ``judge`` tests
its arms, the executors carry it to their workers, and ``audit.json`` records it; nothing
downstream reads a setting from anywhere else or parses a test's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

from auditkit import perturbations as _perturbations
from auditkit.contract.arms import ORIGINAL, Arm
from auditkit.contract.errors import ConfigError
from auditkit.perturbations import RETEST, Perturbation

from .impact import ShortlistRule
from .settings import AuditConfig
from .stats import pool_units


def people_of(metadata: Mapping[str, Mapping[str, Any]], column: str | None) -> dict[str, str]:
    """Clip → the person it shows (``column`` of its metadata). A clip that names nobody is a
    person of its own, shown as ``(clip ID)``; :attr:`Units.unnamed` says which those are."""
    return {c: (m.get(column) if column else None) or f"(clip {c})" for c, m in metadata.items()}


@dataclass(frozen=True)
class Units:
    """Who the unit of analysis is: ``person`` (``person_of`` maps each clip to its person) or
    ``clip``; ``column`` is the metadata column naming people when the clips have one, and
    ``unnamed`` the clips whose metadata names nobody (each its own person)."""

    unit: str = "clip"
    column: str | None = None
    person_of: Mapping[str, str] = field(default_factory=dict)
    unnamed: frozenset[str] = frozenset()

    @classmethod
    def of(cls, unit: str, column: str, metadata: Mapping[str, Mapping[str, Any]]) -> "Units":
        """The unit the settings ask for (``auto``: person when the clips name people)."""
        has = any(column in (m or {}) for m in metadata.values())
        if unit == "person" and not has:
            raise ConfigError(f"--unit person: the clips carry no {column!r} column (metadata.csv beside "
                              "the clips); name the column with --cluster, or use --unit clip")
        if not has:
            return cls("clip" if unit == "auto" else unit)
        clean = {c: dict(m or {}) for c, m in metadata.items()}
        return cls(unit if unit != "auto" else "person", column, people_of(clean, column),
                   frozenset(c for c, m in clean.items() if not m.get(column)))

    @classmethod
    def saved(cls, unit: str, column: str | None, metadata: Mapping[str, Mapping[str, Any]]) -> "Units":
        """The units of a saved run (its ``unit`` and ``cluster``), from its store's metadata."""
        if not column:
            return cls(unit)
        return cls(unit, column, people_of(metadata, column),
                   frozenset(c for c, m in metadata.items() if not m.get(column)))

    def groups(self, clips: Sequence[str]) -> list[str] | None:
        return [self.person_of[c] for c in clips] if self.unit == "person" else None

    def count(self, clips: Iterable[str]) -> int | None:
        return len({self.person_of[c] for c in clips}) if self.column else None

    def pool(self, values: Mapping[str, float]) -> dict[str, float]:
        """Per candidate: the clips' own values, or with people as the unit each person's mean."""
        if self.unit != "person":
            return dict(values)
        return pool_units((self.person_of[c], v) for c, v in values.items())


def resolve_edits(spec: str | Sequence[str | Perturbation], scenes_dir: str | None = None) -> list[Perturbation]:
    """Names (or families, or instances) → edits, each once, in the order given."""
    items = [spec] if isinstance(spec, str) else list(spec)
    out: dict[str, Perturbation] = {}
    for item in items:
        try:
            found = [item] if isinstance(item, Perturbation) else _perturbations.resolve(item, scenes_dir=scenes_dir)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"--perturb: {exc.args[0]}") from None
        for p in found:
            out.setdefault(p.name, p)
    if not out:
        raise ConfigError("--perturb: no perturbation given")
    return list(out.values())


def _contrast_arms(contrasts: Sequence[tuple[str, str]], names: Sequence[str]) -> list[Arm]:
    out = []
    for pair in contrasts:
        if len(pair) != 2:
            raise ConfigError(f"--contrast takes two edits, got {pair!r}")
        a, b = pair
        for name in (a, b):
            if name not in names:
                raise ConfigError(f"--contrast: {name!r} is not among the audited edits "
                                  f"({', '.join(sorted(names))})")
        if a == b:
            raise ConfigError(f"--contrast: an edit cannot be contrasted with itself ({a!r})")
        out.append(_perturbations.contrast_arm(a, b))
    return out


@dataclass(frozen=True)
class AuditPlan:
    """One audit's tests and how they are judged. ``edits``: what is scored besides the original
    (empty for a plan read back from a saved run); ``arms``: one per test, in the order of the
    report; ``traits`` and ``margins`` are known once a rater is, ``units`` once the clips are."""

    settings: AuditConfig
    arms: tuple[Arm, ...]
    edits: tuple[Perturbation, ...] = ()
    traits: tuple[str, ...] = ()
    margins: Mapping[str, float] = field(default_factory=dict)
    units: Units = field(default_factory=Units)
    test_margins: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (test, trait): a saved run's

    @classmethod
    def build(cls, settings: AuditConfig, perturbations: str | Sequence[str | Perturbation] | None = None, *,
              traits: Sequence[str] = (), metadata: Mapping[str, Mapping[str, Any]] | None = None) -> "AuditPlan":
        """The plan of an audit with these settings (``perturbations`` instead of the settings' own
        names, e.g. instances). Without ``traits`` (no rater loaded yet: the pytest plugin at
        collection) the arms are all there and the margins are not; without ``metadata`` (clip →
        its metadata.csv row) the unit is not resolved."""
        edits = resolve_edits(settings.perturbations if perturbations is None else perturbations,
                              settings.scenes_dir)
        if settings.retest and all(e.name != RETEST for e in edits):
            edits.append(_perturbations.get(RETEST))
        names = [e.name for e in edits]
        arms = [e.arm for e in edits] + _contrast_arms(settings.contrasts, names)
        plan = cls(settings, tuple(arms), tuple(edits))
        if traits:
            plan = plan.for_traits(traits)
        if metadata is not None:
            plan = replace(plan, units=Units.of(settings.unit, settings.cluster, metadata))
        return plan

    @classmethod
    def saved(cls, result: Any, metadata: Mapping[str, Mapping[str, Any]]) -> "AuditPlan":
        """The plan a saved run was judged by: its recorded settings, its tests' arms and margins,
        its unit over the clips of its store."""
        settings = AuditConfig.from_record(result.config)
        arms = tuple(dict.fromkeys(t.to_arm() for t in result.tests))
        return cls(settings, arms, traits=tuple(result.traits),
                   units=Units.saved(result.unit, result.cluster, metadata),
                   test_margins={(t.perturbation, t.trait): t.margin for t in result.tests})

    def for_traits(self, traits: Sequence[str]) -> "AuditPlan":
        """This plan for a rater with these traits: the margins, checked against them."""
        traits = tuple(traits)
        self.shortlist.check(traits)
        return replace(self, traits=traits, margins=self.settings.margins(traits))

    @property
    def shortlist(self) -> ShortlistRule:
        s = self.settings
        return ShortlistRule(s.shortlist_top, s.shortlist_trait, dict(s.shortlist_weights))

    @property
    def conditions(self) -> list[str]:
        """Every condition scored per clip: the original, then each edit."""
        return [ORIGINAL] + [e.name for e in self.edits]

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.arms]

    def margin(self, arm: Arm, trait: str) -> float:
        """A test's margin: its own in a saved run, else its trait's."""
        found = self.test_margins.get((arm.name, trait))
        return float(found if found is not None else self.margins[trait])

    def record(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The ``config`` section of ``audit.json``: the settings the tests were judged by, as
        :meth:`AuditConfig.from_record` reads them back."""
        s = self.settings
        return {"perturbations": [e.name for e in self.edits],
                "contrasts": [[a.arm, a.base] for a in self.arms if a.is_contrast],
                "margin": dict(self.margins), "alpha": s.alpha, "tolerance": s.tolerance,
                "correction": s.correction, "unit": self.units.unit, "cluster": self.units.column,
                "retest": s.retest, "fail_on": list(s.fail_on), "seed": s.seed, "max_side": s.max_side,
                "batch_size": s.batch_size, "max_missing_face": s.max_missing_face,
                "shortlist": self.shortlist.describe(), **dict(extra or {})}
