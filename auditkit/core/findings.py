"""What an audit found besides its tests, as small named results: the decision impact on a
shortlist, the analysis by group, and where the rater looks.

Each has ``to_dict()`` (its section of ``audit.json``, unchanged in shape) and ``from_dict()``
(tolerant of an older or partial file: what is missing reads as empty). The report writers, the
dashboard and the demo read them by attribute, never by key strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _pair(value: Any) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


@dataclass(frozen=True)
class EditImpact:
    """Under one edit: the clips paired (``n``) and those that would enter or leave the shortlist."""

    n: int
    entered: tuple[str, ...] = ()
    left: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "entered": list(self.entered), "left": list(self.left)}


@dataclass(frozen=True)
class DecisionImpact:
    """A shortlist of ``size`` clips by ``rule`` (its last score ``threshold``) and what each
    edit would do to it (see :mod:`auditkit.core.impact`)."""

    rule: str
    size: int
    threshold: float | None = None
    edits: Mapping[str, EditImpact] = field(default_factory=dict)

    @property
    def moved(self) -> list[tuple[str, int, int]]:
        """(edit, clips entering, clips leaving) for each edit that moves anyone."""
        return [(e, len(v.entered), len(v.left)) for e, v in self.edits.items() if v.entered or v.left]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "size": self.size,
                               "edits": {e: v.to_dict() for e, v in self.edits.items()}}
        if self.threshold is not None:
            out["threshold"] = self.threshold
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "DecisionImpact | None":
        if not data:
            return None
        edits = {e: EditImpact(int(v.get("n", 0)), tuple(v.get("entered", ())), tuple(v.get("left", ())))
                 for e, v in (data.get("edits") or {}).items()}
        return cls(str(data.get("rule", "")), int(data.get("size", 0)), _float(data.get("threshold")), edits)


@dataclass(frozen=True)
class GroupRate:
    """One group's share scoring above the sample median, and that over the highest group's."""

    n: int
    rate: float
    impact_ratio: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "rate": self.rate, "impact_ratio": self.impact_ratio}


@dataclass(frozen=True)
class GroupMean:
    n: int
    mean_shift: float

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean_shift": self.mean_shift}


@dataclass(frozen=True)
class GroupShift:
    """The mean shift per group, and the Kruskal–Wallis p-value that it differs between groups
    (``None``: fewer than two groups of two, or every shift equal)."""

    groups: Mapping[str, GroupMean]
    differs_p: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"groups": {g: v.to_dict() for g, v in self.groups.items()}, "differs_p": self.differs_p}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GroupShift":
        return cls({g: GroupMean(int(v["n"]), float(v["mean_shift"])) for g, v in (data.get("groups") or {}).items()},
                   _float(data.get("differs_p")))


@dataclass(frozen=True)
class GroupAnalysis:
    """One metadata column: impact ratios per condition and group, shifts per edit and trait.
    ``unit``: ``person`` when the column is constant within each person (each person counted
    once), else ``clip``."""

    column: str
    unit: str
    impact_ratio: Mapping[str, Mapping[str, GroupRate]]
    shift: Mapping[str, Mapping[str, GroupShift]]

    def lowest_ratio(self, condition: str) -> tuple[float, str] | None:
        """(ratio, group) of the lowest impact ratio under a condition, or None."""
        ratios = [(r.impact_ratio, g) for g, r in self.impact_ratio.get(condition, {}).items()
                  if r.impact_ratio is not None]
        return min(ratios) if ratios else None

    def to_dict(self) -> dict[str, Any]:
        return {"unit": self.unit,
                "impact_ratio": {c: {g: r.to_dict() for g, r in rates.items()}
                                 for c, rates in self.impact_ratio.items()},
                "shift": {a: {t: s.to_dict() for t, s in traits.items()} for a, traits in self.shift.items()}}

    @classmethod
    def from_dict(cls, column: str, data: Mapping[str, Any]) -> "GroupAnalysis":
        rates = {c: {g: GroupRate(int(v["n"]), float(v["rate"]), _float(v.get("impact_ratio")))
                     for g, v in (groups or {}).items()} for c, groups in (data.get("impact_ratio") or {}).items()}
        shifts = {a: {t: GroupShift.from_dict(v) for t, v in (traits or {}).items()}
                  for a, traits in (data.get("shift") or {}).items()}
        return cls(column, str(data.get("unit", "clip")), rates, shifts)


@dataclass(frozen=True)
class RegionSummary:
    """Mean over clips of one (trait, region) with its interval (``None`` below two clips)."""

    share: float
    share_ci: tuple[float, float] | None
    density: float
    density_ci: tuple[float, float] | None
    area: float

    def to_dict(self) -> dict[str, Any]:
        def r(x: float) -> float:
            return round(float(x), 6)
        return {"share": r(self.share), "share_ci": None if self.share_ci is None else [r(v) for v in self.share_ci],
                "density": r(self.density),
                "density_ci": None if self.density_ci is None else [r(v) for v in self.density_ci],
                "area": r(self.area)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RegionSummary":
        return cls(float(data.get("share") or 0.0), _pair(data.get("share_ci")), float(data.get("density") or 0.0),
                   _pair(data.get("density_ci")), float(data.get("area") or 0.0))


@dataclass(frozen=True)
class TraitAttribution:
    """Per region of one trait: the share of the attribution and its density (share over the
    region's share of the picture); ``note`` says when clips had no attribution at all."""

    regions: Mapping[str, RegionSummary]
    n: int = 0
    n_zero: int = 0
    note: str = ""
    completeness_gap: float | None = None


@dataclass(frozen=True)
class WhereItLooks:
    """The ``attribution`` section of ``audit.json`` (``auditkit explain``): the method, the
    clips explained, per trait and region the share and density, and the overlay files."""

    method: str
    n_clips: int
    regions: tuple[str, ...]
    traits: Mapping[str, TraitAttribution]
    baseline: str = ""
    interval: str = ""
    overlays: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "WhereItLooks | None":
        if not data:
            return None
        traits = {t: TraitAttribution({r: RegionSummary.from_dict(v) for r, v in (e.get("regions") or {}).items()},
                                      int(e.get("n", 0)), int(e.get("n_zero", 0)), str(e.get("note") or ""),
                                      _float(e.get("completeness_gap")))
                  for t, e in (data.get("traits") or {}).items()}
        overlays = {c: {t: str(p) for t, p in (v or {}).items()} for c, v in (data.get("overlays") or {}).items()}
        return cls(str(data.get("method", "")), int(data.get("n_clips", 0)), tuple(data.get("regions") or ()),
                   traits, str(data.get("baseline", "")), str(data.get("interval", "")), overlays)
