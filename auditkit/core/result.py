"""Result objects of an audit: one paired test per (condition, trait) and the whole run.

Both are frozen dataclasses with ``to_dict``/``from_dict`` so that ``audit.json`` is the single
source the dashboard, the reports and the pytest plugin read. Non-finite floats never reach
JSON: an undefined statistic is ``None`` (``null``), so the file stays valid strict JSON.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any, Iterable, Iterator, Mapping

from auditkit.contract.arms import ORIGINAL, ROLES, Arm

from .findings import DecisionImpact, GroupAnalysis, WhereItLooks

# 2: per-candidate agreement, people as the unit, the unstable verdict; 3: each test's arm, base
# and family (older files get them from the perturbation registry when read).
SCHEMA_VERSION = 3
READABLE_SCHEMAS = (1, 2, 3)
VERDICTS = ("shift", "unstable", "invariant", "inconclusive")
DEFAULT_FAIL_ON = ("shift", "unstable")


class SchemaError(ValueError):
    """An ``audit.json`` (or a dict meant to become one) that does not fit the schema."""


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class LimitsOfAgreement:
    """Bland–Altman 95% limits of agreement ``mean ± 1.96 sd`` and a confidence interval for
    each (``low_ci``, ``high_ci``). Unpacks as ``low, high, low_ci, high_ci``."""

    low: float | None
    high: float | None
    low_ci: tuple[float | None, float | None] = (None, None)
    high_ci: tuple[float | None, float | None] = (None, None)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.low, self.high, self.low_ci, self.high_ci))

    def to_dict(self) -> dict[str, Any]:
        return {"low": _clean(self.low), "high": _clean(self.high), "low_ci": [_clean(x) for x in self.low_ci],
                "high_ci": [_clean(x) for x in self.high_ci]}


@dataclass(frozen=True)
class ShareMoved:
    """The share of candidates whose shift exceeds the margin (``share``), with an exact lower and
    a normal-theory upper confidence bound, the p-values that more (``unstable_p``) or fewer
    (``stable_p``) than ``tolerance`` move, and the rater's own retest share beside it."""

    share: float | None
    low: float | None
    high: float | None
    tolerance: float | None
    unstable_p: float | None
    stable_p: float | None
    retest: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: _clean(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ShiftTest:
    """The paired comparison of one trait's scores before and after one edit.

    ``n`` counts the units of analysis (``unit``: ``person`` when clips carry a subject id, each
    person's clips averaged into one difference; else ``clip``), ``n_clips`` the clips behind
    them. ``p_value`` is the two-sided paired t-test, ``wilcoxon_p`` the signed-rank test (a
    robustness check reported beside it), ``equivalence_p`` the TOST p-value against ``±margin``.
    ``share_moved`` is the share of units whose shift exceeds the margin, with an exact lower
    bound (``share_moved_low``) and a normal-theory upper bound (``share_moved_high``), both at
    confidence 1 − alpha; ``unstable_p`` tests that more than ``tolerance`` move (exact binomial),
    ``stable_p`` that fewer do (normal tolerance interval inside ±margin). ``loa_*`` are the
    Bland–Altman 95% limits of agreement with their confidence intervals. ``*_adjusted`` p-values
    are corrected across the audit's family of tests; a standalone test carries its raw values
    there. ``verdict`` is decided on the adjusted values (see :mod:`auditkit.core.stats`).
    ``n_needed`` says how many units would give 80% power to decide, when inconclusive;
    ``retest_share_moved`` is the share the rater's own retest control moves, for comparison.
    Tests read from a schema-1 ``audit.json`` have no agreement statistics (``None``).
    """

    n: int
    mean_shift: float | None
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    effect_size_dz: float | None
    t_statistic: float | None
    p_value: float
    wilcoxon_p: float
    equivalence_p: float
    margin: float
    alpha: float
    verdict: str
    p_adjusted: float | None = None
    equivalence_p_adjusted: float | None = None
    n_needed: int | None = None
    note: str = ""
    perturbation: str | None = None
    trait: str | None = None
    unit: str = "clip"
    n_clips: int | None = None
    n_subjects: int | None = None
    tolerance: float | None = None
    share_moved: float | None = None
    share_moved_low: float | None = None
    share_moved_high: float | None = None
    unstable_p: float | None = None
    unstable_p_adjusted: float | None = None
    stable_p: float | None = None
    stable_p_adjusted: float | None = None
    loa_low: float | None = None
    loa_high: float | None = None
    loa_low_ci_low: float | None = None
    loa_low_ci_high: float | None = None
    loa_high_ci_low: float | None = None
    loa_high_ci_high: float | None = None
    retest_share_moved: float | None = None
    role: str = "fairness"   # "attribution": a region:* test, where the rater looks; never a failure
    arm: str | None = None     # the edited condition (schema 3; filled from the name for older files)
    base: str | None = None    # the condition it is compared with: original, or a contrast's other edit
    family: str | None = None  # the edit's registered family; "contrast" for a contrast

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise SchemaError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.role not in ROLES:
            raise SchemaError(f"role must be one of {ROLES}, got {self.role!r}")
        if self.perturbation and (self.arm is None or self.base is None or self.family is None):
            from auditkit.perturbations import arm_of

            found = arm_of(self.perturbation, self.role)
            for name in ("arm", "base", "family"):
                if getattr(self, name) is None:
                    object.__setattr__(self, name, getattr(found, name))
        # A standalone test is its own family: adjusted equals raw unless a correction said so.
        for raw, adjusted in (("p_value", "p_adjusted"), ("equivalence_p", "equivalence_p_adjusted"),
                              ("unstable_p", "unstable_p_adjusted"), ("stable_p", "stable_p_adjusted")):
            if getattr(self, adjusted) is None:
                object.__setattr__(self, adjusted, getattr(self, raw))
        if self.n_clips is None:
            object.__setattr__(self, "n_clips", self.n)

    # scipy.stats-style accessors, so the object reads like the results users already know.
    @property
    def statistic(self) -> float | None:
        return self.t_statistic

    @property
    def pvalue(self) -> float:
        return self.p_value

    def confidence_interval(self) -> tuple[float | None, float | None]:
        return (self.ci_low, self.ci_high)

    @property
    def condition(self) -> str | None:
        return self.perturbation

    def to_arm(self) -> Arm:
        """The test's arm: what it compares, under which name."""
        if not self.perturbation or self.arm is None or self.base is None:
            raise ValueError("a test without a perturbation has no arm")
        return Arm(self.perturbation, self.arm, self.base, self.family or "", self.role)

    @property
    def limits(self) -> LimitsOfAgreement:
        return LimitsOfAgreement(self.loa_low, self.loa_high, (self.loa_low_ci_low, self.loa_low_ci_high),
                                 (self.loa_high_ci_low, self.loa_high_ci_high))

    @property
    def moved(self) -> ShareMoved:
        return ShareMoved(self.share_moved, self.share_moved_low, self.share_moved_high, self.tolerance,
                          self.unstable_p, self.stable_p, self.retest_share_moved)

    def to_dict(self) -> dict[str, Any]:
        return {k: _clean(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ShiftTest":
        return cls(**_take_fields(cls, data, where="tests[]"))

    def with_(self, **changes: Any) -> "ShiftTest":
        return replace(self, **changes)


@dataclass(frozen=True)
class Skipped:
    """A (clip, perturbation) pair that could not be scored, and why."""

    clip: str
    perturbation: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Skipped":
        return cls(**_take_fields(cls, data, where="skipped[]"))


@dataclass(frozen=True)
class AuditResult:
    """Everything an audit concluded. Sliceable by perturbation and trait (like a MetricFrame).

    A failure in one cell never aborts the table: a condition with too few scored pairs is an
    ``inconclusive`` test with a note, and unscored pairs are listed in ``skipped``.
    """

    rater: Mapping[str, Any]
    traits: tuple[str, ...]
    n_clips: int
    config: Mapping[str, Any]
    tests: tuple[ShiftTest, ...]
    skipped: tuple[Skipped, ...] = ()
    created: str = ""
    schema_version: int = SCHEMA_VERSION
    impact: Mapping[str, Any] = field(default_factory=dict)   # decision impact (auditkit.core.impact)
    groups: Mapping[str, Any] = field(default_factory=dict)   # per metadata group column
    unit: str = "clip"                # person: clips carry a subject id and people are the unit
    cluster: str | None = None        # the metadata column naming the person
    n_subjects: int | None = None     # people among the scored clips (None without a subject column)
    attribution: Mapping[str, Any] = field(default_factory=dict)  # where the rater looks (auditkit explain)

    def __repr__(self) -> str:  # the full field dump is pages long in a failing test's traceback
        counts = self.counts()
        return (f"<AuditResult {self.rater.get('spec')!r}: {len(self.tests)} tests on {self.n_clips} clips, "
                + ", ".join(f"{counts[v]} {v}" for v in VERDICTS) + f", {len(self.skipped)} skipped>")

    @property
    def perturbations(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for t in self.tests:
            seen.setdefault(t.perturbation or "", None)
        return tuple(seen)

    @property
    def decision_impact(self) -> DecisionImpact | None:
        """The ``impact`` section as a named result (``None`` in a run without one)."""
        return DecisionImpact.from_dict(self.impact)

    @property
    def group_analyses(self) -> tuple[GroupAnalysis, ...]:
        """The ``groups`` section: one analysis per metadata column, in column order."""
        return tuple(GroupAnalysis.from_dict(c, v) for c, v in sorted(self.groups.items()))

    @property
    def where_it_looks(self) -> WhereItLooks | None:
        """The ``attribution`` section (``auditkit explain``) as a named result, or ``None``."""
        return WhereItLooks.from_dict(self.attribution)

    @property
    def any_shift(self) -> bool:
        return any(t.verdict == "shift" for t in self.fairness)

    def failing(self, fail_on: Iterable[str] = DEFAULT_FAIL_ON) -> tuple[ShiftTest, ...]:
        """The fairness tests whose verdict is one of ``fail_on`` (what makes ``auditkit run`` exit 1)."""
        verdicts = set(fail_on)
        return tuple(t for t in self.fairness if t.verdict in verdicts)

    @property
    def fairness(self) -> tuple[ShiftTest, ...]:
        """The tests whose verdicts are the audit's findings (not the region:* attribution tests)."""
        return tuple(t for t in self.tests if t.role == "fairness")

    @property
    def attribution_tests(self) -> tuple[ShiftTest, ...]:
        return tuple(t for t in self.tests if t.role == "attribution")

    def select(self, perturbation: str | Iterable[str] | None = None,
               trait: str | Iterable[str] | None = None) -> tuple[ShiftTest, ...]:
        """Tests matching a perturbation (an exact name — a contrast ``"A vs B"`` included — or a
        family such as ``"lighting"``, which does not match contrasts) and a trait. A name that
        matches nothing raises ``KeyError``: a typo must not make a check pass on no tests."""
        def names(spec: str | Iterable[str] | None) -> tuple[str, ...] | None:
            return None if spec is None else ((spec,) if isinstance(spec, str) else tuple(spec))

        def is_edit(t: ShiftTest, name: str) -> bool:
            return t.perturbation == name or (t.base == ORIGINAL and t.family == name)

        edits, traits = names(perturbation), names(trait)
        for name in edits or ():
            if not any(is_edit(t, name) for t in self.tests):
                raise KeyError(f"no perturbation or family {name!r} in this audit; it has "
                               f"{', '.join(self.perturbations)}")
        for name in traits or ():
            if name not in self.traits:
                raise KeyError(f"no trait {name!r} in this audit; it has {', '.join(self.traits)}")
        return tuple(t for t in self.tests
                     if (edits is None or any(is_edit(t, n) for n in edits))
                     and (traits is None or t.trait in traits))

    def test(self, perturbation: str, trait: str) -> ShiftTest:
        for t in self.tests:
            if t.perturbation == perturbation and t.trait == trait:
                return t
        raise KeyError(f"no test for perturbation {perturbation!r} and trait {trait!r}; "
                       f"perturbations: {', '.join(self.perturbations)}; traits: {', '.join(self.traits)}")

    def __iter__(self) -> Iterator[ShiftTest]:
        return iter(self.tests)

    def counts(self) -> dict[str, int]:
        """Verdicts of the fairness tests (the region:* tests answer another question)."""
        out = {v: 0 for v in VERDICTS}
        for t in self.fairness:
            out[t.verdict] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "created": self.created,
            "rater": dict(self.rater),
            "traits": list(self.traits),
            "n_clips": self.n_clips,
            "config": dict(self.config),
            "tests": [t.to_dict() for t in self.tests],
            "skipped": [s.to_dict() for s in self.skipped],
            "impact": dict(self.impact),
            "groups": dict(self.groups),
            "unit": self.unit,
            "cluster": self.cluster,
            "n_subjects": self.n_subjects,
            "attribution": dict(self.attribution),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AuditResult":
        if not isinstance(data, Mapping):
            raise SchemaError("audit.json: the top level must be an object")
        version = data.get("schema_version")
        if not isinstance(version, int):
            raise SchemaError("audit.json: field 'schema_version' is missing or not an integer")
        if version > SCHEMA_VERSION:
            raise SchemaError(f"audit.json: field 'schema_version' is {version}, newer than this "
                              f"auditkit reads ({SCHEMA_VERSION}); upgrade auditkit")
        if version not in READABLE_SCHEMAS:
            raise SchemaError(f"audit.json: field 'schema_version' is {version}; this auditkit reads "
                              f"{', '.join(map(str, READABLE_SCHEMAS))}")
        for key, kind in (("rater", Mapping), ("traits", list), ("n_clips", int),
                          ("config", Mapping), ("tests", list), ("skipped", list)):
            if not isinstance(data.get(key), kind):
                raise SchemaError(f"audit.json: field {key!r} is missing or not a {kind.__name__}")
        return cls(
            rater=dict(data["rater"]),
            traits=tuple(data["traits"]),
            n_clips=data["n_clips"],
            config=dict(data["config"]),
            tests=tuple(ShiftTest.from_dict(t) for t in data["tests"]),
            skipped=tuple(Skipped.from_dict(s) for s in data["skipped"]),
            created=str(data.get("created", "")),
            schema_version=version,
            impact=dict(data.get("impact") or {}),
            groups=dict(data.get("groups") or {}),
            unit=str(data.get("unit") or "clip"),
            cluster=data.get("cluster") if isinstance(data.get("cluster"), str) else None,
            n_subjects=data.get("n_subjects") if isinstance(data.get("n_subjects"), int) else None,
            attribution=dict(data.get("attribution") or {}),
        )


def _take_fields(cls: type, data: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise SchemaError(f"audit.json: each entry of {where} must be an object")
    names = {f.name for f in fields(cls)}
    required = {f.name for f in fields(cls)
                if f.default is MISSING and f.default_factory is MISSING}
    missing = sorted(required - set(data))
    if missing:
        raise SchemaError(f"audit.json: {where} lacks field {missing[0]!r}")
    return {k: v for k, v in data.items() if k in names}
