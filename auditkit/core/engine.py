"""``run_audit``: clips in, paired scores into the store, statistics out.

Each clip is decoded once, scored once as the original and once per edit; every edit is applied
at source resolution, before the rater's own resize, so original and edited input differ only by
the edit. Scores are committed to the store after every batch; on a re-run with the same store,
pairs already scored (or already found unscorable) are not touched again.
"""

from __future__ import annotations

import datetime as _dt
import os
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from auditkit import perturbations as _perturbations
from auditkit.contract.device import pick_device
from auditkit.contract.errors import ConfigError
from auditkit.contract.rater import rater_identity
from auditkit.media.clips import Clip, ClipSource, as_sources
from auditkit.perturbations import DEFAULT_MAX_MISSING_FACE, Perturbation
from auditkit.perturbations.annotate import Annotator
from auditkit.raters import load_rater

from . import stats
from .executors import Job, make_executor
from .impact import ShortlistRule, decision_impact, group_columns, group_shifts, impact_ratios
from .result import AuditResult, ShiftTest, Skipped
from .settings import AuditConfig
from .store import ORIGINAL, Store
from .work import DEFAULT_CALL_BYTES, apply_edit, items_per_call

RETEST = "control:retest"
API = "run_audit"


def run_audit(rater: Any, clips: str | os.PathLike | Iterable[Clip | ClipSource],
              perturbations: str | Sequence[str | Perturbation], *, settings: AuditConfig | None = None,
              store: str | Path | Store | None = None, progress: bool | Callable[[int], None] = False,
              annotator: Annotator | None = None, executor: str | Any | None = None,
              record: Mapping[str, Any] | None = None, call_bytes: int = DEFAULT_CALL_BYTES,
              thumbs: bool = True, **options: Any) -> AuditResult:
    """Audit ``rater`` on ``clips`` under each perturbation and return the judged result.

    ``rater``: a spec string or a rater object; ``clips``: a folder or clips; ``perturbations``:
    names (``"lighting:dim"``, or a family such as ``"lighting"``) or instances. The audit's
    settings come from ``settings`` (an :class:`AuditConfig`, e.g. read from ``auditkit.toml``)
    with ``options`` on top — any of its keys: ``margin`` (one number or per trait), ``alpha``,
    ``tolerance``, ``correction``, ``unit`` and ``cluster``, ``retest``, ``batch_size``,
    ``device``, ``seed``, ``contrasts``, ``scenes_dir``, ``max_missing_face``, ``shortlist_*``,
    ``workers``, ``ray_address``... each checked by the same rules as a settings file.
    ``workers`` defaults to 0 here (all in this process): like a DataLoader's workers, a script
    that sets it needs the ``if __name__ == "__main__":`` guard.

    ``store``: a path to ``results.sqlite`` to make the run resumable (in memory when ``None``);
    ``annotator``: where annotations come from (default: MediaPipe with the on-disk cache);
    ``executor``: ``"local"``, ``"ray"`` or an executor object; ``record``: extra entries for
    the ``config`` of ``audit.json``; ``call_bytes``: the most rater input (float32) sent in one
    rater call — the original and every edit of a batch go together, in as few calls as fit;
    ``thumbs``: keep each scored input's middle frame as a small JPEG in the store.
    """
    runner = None
    if executor is not None and not isinstance(executor, str):
        runner = executor  # an executor object: nothing of it goes through the settings
    elif executor is not None:
        options["executor"] = executor
    settings = (settings or AuditConfig(source=API)).override(source=API, **options)
    dev = pick_device(settings.device)
    rater_spec = rater
    rater = load_rater(rater, device=dev)
    if runner is None:
        runner = make_executor(settings.executor, workers=settings.workers, address=settings.ray_address)
    traits = tuple(rater.trait_names)
    shortlist = ShortlistRule(settings.shortlist_top, settings.shortlist_trait, dict(settings.shortlist_weights))
    shortlist.check(traits)
    edits = _resolve_perturbations(perturbations, scenes_dir=settings.scenes_dir)
    if settings.retest and all(e.name != RETEST for e in edits):
        edits.append(_perturbations.get(RETEST))
    contrasts = _check_contrasts(settings.contrasts, edits)
    sources = as_sources(clips)
    units = Units.of(settings, sources)
    margins = settings.margins(traits)
    identity = rater_identity(rater)

    own_store = not isinstance(store, Store)
    db = Store(store if store is not None else ":memory:") if own_store else store
    try:
        db.bind({"rater_hash": identity["hash"], "seed": settings.seed, "max_side": settings.max_side,
                 "input": identity["input"], "traits": list(traits),
                 "scenes_dir": str(Path(settings.scenes_dir).resolve()) if settings.scenes_dir else None})
        if annotator is None and (any(e.requires for e in edits) or rater.input.crop == "face"):
            annotator = Annotator()
        _score_all(rater, rater_spec, sources, edits, db, dev=dev, seed=settings.seed,
                   max_side=settings.max_side, batch_size=settings.batch_size, progress=progress,
                   annotator=annotator, max_missing_face=settings.max_missing_face, executor=runner,
                   per_call=items_per_call(rater.input, call_bytes), thumbs=thumbs,
                   device_setting=settings.device)
        recorded = {"perturbations": [e.name for e in edits], "contrasts": [list(c) for c in contrasts],
                    "margin": margins, "alpha": settings.alpha, "tolerance": settings.tolerance,
                    "correction": settings.correction, "unit": units.unit, "cluster": units.column,
                    "retest": settings.retest, "fail_on": list(settings.fail_on), "seed": settings.seed,
                    "max_side": settings.max_side, "batch_size": settings.batch_size,
                    "max_missing_face": settings.max_missing_face, "shortlist": shortlist.describe(),
                    **dict(record or {})}
        return judge(db, rater_identity=identity, traits=traits, sources=sources, edits=edits,
                     contrasts=contrasts, margins=margins, settings=settings, units=units,
                     shortlist=shortlist, config=recorded)
    finally:
        if own_store:
            db.commit()
            db.close()


@dataclass(frozen=True)
class Units:
    """Who the unit of analysis is: ``person`` (``person_of`` maps each clip to its person, a clip
    without an id being a person of its own) or ``clip``; ``column`` is the metadata column
    naming people when the clips have one."""

    unit: str
    column: str | None
    person_of: Mapping[str, str]
    why: str = ""

    @classmethod
    def of(cls, settings: AuditConfig, sources: Sequence[Any]) -> "Units":
        column = settings.cluster
        has = any(column in (s.metadata or {}) for s in sources)
        person_of = {s.id: (s.metadata or {}).get(column) or f"(clip {s.id})" for s in sources} if has else {}
        if settings.unit == "person" and not has:
            raise ConfigError(f"--unit person: the clips carry no {column!r} column (metadata.csv beside "
                              "the clips); name the column with --cluster, or use --unit clip")
        unit = settings.unit if settings.unit != "auto" else ("person" if has else "clip")
        return cls(unit, column if has else None, person_of)

    def groups(self, clips: Sequence[str]) -> list[str] | None:
        return [self.person_of[c] for c in clips] if self.unit == "person" else None

    def count(self, clips: Iterable[str]) -> int | None:
        return len({self.person_of[c] for c in clips}) if self.column else None


def test_names(perturbations: str | Sequence[str | Perturbation], settings: AuditConfig) -> list[str]:
    """The name of every test an audit with these edits and settings will have: each edit, the
    retest control when the settings add it, and each contrast."""
    edits = [e.name for e in _resolve_perturbations(perturbations, scenes_dir=settings.scenes_dir)]
    if settings.retest and RETEST not in edits:
        edits.append(RETEST)
    return edits + [contrast_name(a, b) for a, b in settings.contrasts]


def _resolve_perturbations(spec: str | Sequence[str | Perturbation], **options: Any) -> list[Perturbation]:
    items = [spec] if isinstance(spec, str) else list(spec)
    out: dict[str, Perturbation] = {}
    for item in items:
        try:
            found = [item] if isinstance(item, Perturbation) else _perturbations.resolve(item, **options)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"--perturb: {exc.args[0]}") from None
        for p in found:
            out.setdefault(p.name, p)
    if not out:
        raise ConfigError("--perturb: no perturbation given")
    return list(out.values())


def _check_contrasts(contrasts: Sequence[tuple[str, str]], edits: list[Perturbation]) -> list[tuple[str, str]]:
    names = {e.name for e in edits}
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
        out.append((a, b))
    return out


def contrast_name(a: str, b: str) -> str:
    return f"{a} vs {b}"


def _score_all(rater: Any, rater_spec: Any, sources: list, edits: list[Perturbation], db: Store, *,
               dev: torch.device, seed: int, max_side: int, batch_size: int,
               progress: bool | Callable[[int], None], annotator: Annotator | None,
               max_missing_face: float, executor: Any, per_call: int, thumbs: bool,
               device_setting: str = "auto") -> None:
    conditions = [ORIGINAL] + [e.name for e in edits]
    done = db.done()
    # A fixed partition of the clip list, whatever is already done: a resumed or distributed run
    # sends the rater exactly the calls an uninterrupted local run sends, so scores are identical.
    plan = [sources[i:i + batch_size] for i in range(0, len(sources), batch_size)]
    todo = [b for b in plan if any((s.id, c) not in done for s in b for c in conditions)]
    job = Job(rater=rater, rater_spec=rater_spec, edits=edits, done=done, device=dev, seed=seed,
              max_side=max_side, max_missing_face=max_missing_face, per_call=per_call,
              annotator=annotator, thumbs=thumbs, face_crop=rater.input.crop == "face",
              device_setting=device_setting)
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(sources), initial=len(sources) - sum(len(b) for b in todo), unit="clip",
                   desc="auditing", dynamic_ncols=True)
    try:
        for outcome in executor.run(job, todo):
            db.write(outcome)
            db.commit()  # a batch is kept whole or not at all: a crash loses at most the batches in flight
            if annotator is not None:
                for key, value in outcome.annotated.items():
                    annotator.stats[key] = annotator.stats.get(key, 0) + value
            if bar is not None:
                bar.update(outcome.sources)
            elif callable(progress):
                progress(outcome.sources)
    finally:
        if bar is not None:
            bar.close()


def _impact(db: Store, ids: set[str], traits: Sequence[str], arms: Sequence[tuple[str, str, str]],
            rule: ShortlistRule, units: Units) -> tuple[dict[str, Any], dict[str, Any]]:
    """Decision impact of each edit on a shortlist, and shifts and impact ratios per group.

    With people as the unit, a group column that is constant within each person compares
    per-person shifts (each person once); a column that varies within a person (a clip's framing)
    can only compare clips, and says so."""
    per_trait = {cond: {t: db.scores(cond, t) for t in traits} for cond in [ORIGINAL] + [a for _, a, _ in arms]}

    def shortlist_scores(cond: str) -> dict[str, float]:
        table = per_trait[cond]
        return {c: rule.score({t: table[t][c] for t in traits}, traits) for c in ids
                if all(c in table[t] for t in traits)}

    original = shortlist_scores(ORIGINAL)
    edited = {a: shortlist_scores(a) for _, a, _ in arms}
    impact = decision_impact(original, edited, rule)
    metadata = db.metadata()
    groups: dict[str, Any] = {}
    for column in group_columns({c: m for c, m in metadata.items() if c in ids}, exclude=(units.column or "",)):
        member = {c: m[column] for c, m in metadata.items() if c in ids and m.get(column)}
        by_person = units.unit == "person" and _constant_within(member, units.person_of)

        def diffs(arm: str, trait: str) -> dict[str, float]:
            d = {c: per_trait[arm][trait][c] - per_trait[ORIGINAL][trait][c]
                 for c in per_trait[arm][trait] if c in per_trait[ORIGINAL][trait]}
            if not by_person:
                return d
            pooled: dict[str, list[float]] = {}
            for c, value in d.items():
                pooled.setdefault(units.person_of[c], []).append(value)
            return {p: float(np.mean(v)) for p, v in pooled.items()}

        who = {units.person_of[c]: g for c, g in member.items()} if by_person else member
        groups[column] = {
            "unit": "person" if by_person else "clip",
            "impact_ratio": {ORIGINAL: impact_ratios(original, member),
                             **{a: impact_ratios(s, member) for a, s in edited.items()}},
            "shift": {a: {t: group_shifts(diffs(a, t), who) for t in traits} for _, a, _ in arms},
        }
    return impact, groups


def _constant_within(member: Mapping[str, str], person_of: Mapping[str, str]) -> bool:
    seen: dict[str, str] = {}
    for clip, group in member.items():
        if seen.setdefault(person_of[clip], group) != group:
            return False
    return True


def judge(db: Store, *, rater_identity: Mapping[str, Any], traits: Sequence[str], sources: Sequence[Any],
          edits: Sequence[Perturbation], contrasts: Sequence[tuple[str, str]], margins: Mapping[str, float],
          settings: AuditConfig, units: Units, shortlist: ShortlistRule, config: Mapping[str, Any]) -> AuditResult:
    """The statistics of everything scored into ``db``: every test of the audit, corrected as one
    family, with decision impact, groups and the skipped pairs."""
    ids = {s.id for s in sources}
    arms = [(ORIGINAL, e.name, e.name) for e in edits]
    arms += [(b, a, contrast_name(a, b)) for a, b in contrasts]  # a − b per clip
    roles = {e.name: e.role for e in edits}
    roles.update({contrast_name(a, b): "attribution" if roles[a] == roles[b] == "attribution" else "fairness"
                  for a, b in contrasts})
    tests = _tests(db, ids, arms, traits, lambda label, trait: margins[trait], alpha=settings.alpha,
                   tolerance=settings.tolerance, correction=settings.correction, units=units, roles=roles)
    # Decision impact is a fairness question: the region:* ablations are left out of it.
    impact, groups = _impact(db, ids, traits, [a for a, e in zip(arms, edits) if e.role == "fairness"],
                             shortlist, units)
    conditions = {e.name for e in edits}
    skipped_rows = [r for r in db.skipped() if r[0] in ids]
    listed = {(c, p) for c, p, _ in skipped_rows}
    skipped: list[Skipped] = []
    for clip_id, cond, reason in skipped_rows:
        # An unscorable original makes every edit of that clip unpairable: list each pair.
        if cond == ORIGINAL:
            skipped += [Skipped(clip_id, e, f"original not scored: {reason}")
                        for e in sorted(conditions) if (clip_id, e) not in listed]
        elif cond in conditions:
            skipped.append(Skipped(clip_id, cond, reason))
    skipped.sort(key=lambda s: (s.clip, s.perturbation))
    unscored = {c for c, p in listed if p == ORIGINAL}
    scored = ids - unscored
    without = sum(1 for c in scored if units.column and units.person_of[c].startswith("(clip "))
    return AuditResult(
        rater=dict(rater_identity), traits=tuple(traits), n_clips=len(scored),
        config={**config, "n_clips_found": len(ids), **({"clips_without_subject": without} if without else {})},
        tests=tuple(tests), skipped=tuple(skipped), impact=impact, groups=groups,
        unit=units.unit, cluster=units.column, n_subjects=units.count(scored),
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat())


def _tests(db: Store, ids: set[str], arms: Sequence[tuple[str, str, str]], traits: Sequence[str],
           margin_of: Callable[[str, str], float], *, alpha: float, tolerance: float, correction: str,
           units: Units, roles: Mapping[str, str]) -> list[ShiftTest]:
    """One paired test per (arm, trait) from the stored scores. The fairness tests are corrected
    as one family; the attribution tests (``region:*``, where a rater is expected to react) as a
    family of their own, so that asking where the rater looks costs the fairness verdicts nothing."""
    tests = []
    for base, arm, label in arms:
        for trait in traits:
            before = db.scores(base, trait)
            after = db.scores(arm, trait)
            paired = sorted(ids & before.keys() & after.keys())
            test = stats.paired_shift_test(
                np.array([before[c] for c in paired], dtype=float),
                np.array([after[c] for c in paired], dtype=float), margin=margin_of(label, trait),
                alpha=alpha, tolerance=tolerance, groups=units.groups(paired), perturbation=label, trait=trait)
            tests.append(test.with_(n_subjects=units.count(paired), role=roles.get(label, "fairness")))
    corrected = list(tests)
    for role in ("fairness", "attribution"):
        family = [i for i, t in enumerate(tests) if t.role == role]
        for i, judged in zip(family, stats.correct([tests[i] for i in family], method=correction)):
            corrected[i] = judged
    return _beside_retest(corrected)


def rejudge(db: Store, result: AuditResult, margins: Mapping[tuple[str | None, str | None], float]) -> AuditResult:
    """``result`` judged again from its stored scores with other margins for some tests (keyed by
    (perturbation, trait)); every statistic and the correction across the family are recomputed,
    as an audit run with those margins would have given them."""
    arms = []
    for name in result.perturbations:
        arm, _, base = name.partition(" vs ")
        arms.append((base or ORIGINAL, arm, name))
    people = db.people(result.cluster) if result.cluster else {}
    units = Units(result.unit, result.cluster, people)
    own = {(t.perturbation, t.trait): t.margin for t in result.tests}
    ids = set(db.clip_ids())
    tests = _tests(db, ids, arms, result.traits, lambda label, trait: margins.get((label, trait), own[(label, trait)]),
                   alpha=float(result.config.get("alpha", 0.05)),
                   tolerance=float(result.config.get("tolerance", stats.DEFAULT_TOLERANCE)),
                   correction=str(result.config.get("correction", "holm")), units=units,
                   roles={t.perturbation or "": t.role for t in result.tests})
    return dataclasses.replace(result, tests=tuple(tests))


def _beside_retest(tests: Sequence[ShiftTest]) -> list[ShiftTest]:
    """Each test carries the share the rater's own retest moves for its trait; an ``unstable``
    edit that moves no more candidates than the retest says so in its note."""
    retest = {t.trait: t.share_moved for t in tests if t.perturbation == RETEST}
    out = []
    for t in tests:
        share = retest.get(t.trait)
        if t.perturbation == RETEST or share is None or t.role != "fairness":
            out.append(t)
            continue
        note = t.note
        if t.verdict == "unstable" and t.share_moved_low is not None and t.share_moved_low <= share:
            note = "; ".join(x for x in (note, f"the rater's own retest moves {share:.0%} of candidates: "
                                               "this instability may be its noise, not the edit") if x)
        out.append(t.with_(retest_share_moved=share, note=note))
    return out


def preview(clip: Clip, edits: Sequence[Perturbation], *, seed: int = 0,
            annotator: Annotator | None = None,
            max_missing_face: float = DEFAULT_MAX_MISSING_FACE) -> dict[str, np.ndarray]:
    """Original | edited middle frame for each edit, exactly as the audit edited that clip."""
    frames = torch.from_numpy(clip.frames)
    middle = clip.num_frames // 2
    annotations = None
    if any(e.requires for e in edits):
        annotations = (annotator or Annotator()).annotate_clip(clip)
    out = {}
    for edit in edits:
        edited = apply_edit(edit, clip, frames, annotations, seed, max_missing_face)
        if isinstance(edited, str):
            continue
        edited = edited[middle].numpy()
        gap = np.full((clip.frames.shape[1], 4, 3), 255, np.uint8)
        out[edit.name] = np.concatenate([clip.frames[middle], gap, edited], axis=1)
    return out
