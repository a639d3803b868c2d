"""What a shift would do to decisions, and to groups.

**Decision impact.** A shortlist takes the top ``top`` share of clips by a score (one trait, or
a weighted sum of traits). For each edit, each clip is ranked by its *edited* score against the
*original* scores of everyone else — the counterfactual "had this candidate worn glasses" — and
the audit counts the clips that would enter or leave the shortlist.

**Groups.** With group columns in ``metadata.csv`` (any column but ``subject_id``): the mean shift
per group with a Kruskal–Wallis test of whether the shift differs between groups, and the
scoring-rate impact ratio per group — the share of the group scoring above the sample median,
divided by the highest group's share — for the originals and under each edit (the "four-fifths"
view of adverse impact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from auditkit.contract.errors import ConfigError

from .findings import DecisionImpact, EditImpact, GroupMean, GroupRate, GroupShift

ID_COLUMNS = ("subject_id",)


@dataclass(frozen=True)
class ShortlistRule:
    top: float = 0.25
    trait: str | None = None                       # None: weighted sum (equal weights by default)
    weights: Mapping[str, float] = field(default_factory=dict)

    def check(self, traits: Sequence[str]) -> None:
        """The traits it names are the rater's (its share is checked with the settings)."""
        for name in ([self.trait] if self.trait else []) + list(self.weights):
            if name not in traits:
                raise ConfigError(f"shortlist: unknown trait {name!r}; the rater's traits are {list(traits)}")

    def score(self, scores: Mapping[str, float], traits: Sequence[str]) -> float:
        if self.trait:
            return scores[self.trait]
        weights = self.weights or {t: 1.0 for t in traits}
        return sum(w * scores[t] for t, w in weights.items()) / sum(abs(w) for w in weights.values())

    def describe(self) -> str:
        what = self.trait or ("weighted score " + ", ".join(f"{t} {w:+g}" for t, w in self.weights.items())
                              if self.weights else "mean of all traits")
        return f"top {self.top:.0%} by {what}"


def decision_impact(original: Mapping[str, float], edited: Mapping[str, Mapping[str, float]],
                    rule: ShortlistRule) -> DecisionImpact:
    """``original``: clip → shortlist score; ``edited``: edit → clip → shortlist score."""
    clips = sorted(original)
    if not clips:
        return DecisionImpact(rule.describe(), 0)
    size = max(1, math.ceil(rule.top * len(clips)))
    ranked = sorted(clips, key=lambda c: (-original[c], c))
    shortlisted = set(ranked[:size])
    threshold = original[ranked[size - 1]]
    out = {}
    for edit, scores in edited.items():
        paired = [c for c in clips if c in scores]
        # Strictly above the last one in: a clip whose score did not move never changes side on a tie.
        entered = sorted(c for c in paired if c not in shortlisted and scores[c] > threshold)
        left = sorted(c for c in paired if c in shortlisted and scores[c] < threshold)
        out[edit] = EditImpact(len(paired), tuple(entered), tuple(left))
    return DecisionImpact(rule.describe(), size, threshold, out)


def group_columns(metadata: Mapping[str, Mapping[str, str]], exclude: Sequence[str] = ()) -> list[str]:
    """Columns that group clips: every metadata column with a value, but the ones naming people."""
    skip = set(ID_COLUMNS) | set(exclude)
    columns: set[str] = set()
    for row in metadata.values():
        columns |= {k for k, v in row.items() if v and k not in skip}
    return sorted(columns)


def impact_ratios(scores: Mapping[str, float], groups: Mapping[str, str]) -> dict[str, GroupRate]:
    """Per group: the share above the sample median, and that share over the highest group's."""
    clips = [c for c in scores if c in groups]
    if not clips:
        return {}
    median = float(np.median([scores[c] for c in clips]))
    rates = {}
    for g in sorted({groups[c] for c in clips}):
        members = [c for c in clips if groups[c] == g]
        rates[g] = sum(scores[c] > median for c in members) / len(members)
    best = max(rates.values())
    return {g: GroupRate(sum(groups[c] == g for c in clips), r, (r / best) if best > 0 else None)
            for g, r in rates.items()}


def group_shifts(diffs: Mapping[str, float], groups: Mapping[str, str]) -> GroupShift:
    """Mean shift per group and a Kruskal–Wallis test of whether it differs between groups."""
    from scipy import stats as st

    by_group: dict[str, list[float]] = {}
    for clip, d in diffs.items():
        if clip in groups:
            by_group.setdefault(groups[clip], []).append(d)
    means = {g: GroupMean(len(v), float(np.mean(v))) for g, v in sorted(by_group.items())}
    samples = [v for v in by_group.values() if len(v) >= 2]
    p = None
    if len(samples) >= 2 and len({x for v in samples for x in v}) > 1:
        p = float(st.kruskal(*samples).pvalue)
    return GroupShift(means, p)  # p None: fewer than two groups with two clips, or all shifts equal
