"""``run_audit``: clips in, paired scores into the store, statistics out.

Each clip is decoded once, scored once as the original and once per edit; every edit is applied
at source resolution, before the rater's own resize, so original and edited input differ only by
the edit. Scores are committed to the store after every batch; on a re-run with the same store,
pairs already scored (or already found unscorable) are not touched again.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from auditkit.contract.arms import ORIGINAL
from auditkit.contract.device import pick_device
from auditkit.contract.errors import ConfigError
from auditkit.contract.rater import rater_identity
from auditkit.media.clips import Clip, ClipSource, as_sources
from auditkit.perturbations import DEFAULT_MAX_MISSING_FACE, RETEST, Perturbation, edits_sound
from auditkit.perturbations.annotate import Annotator
from auditkit.raters import load_rater

from . import stats
from .executors import Job, make_executor
from .findings import DecisionImpact, GroupAnalysis
from .impact import decision_impact, group_columns, group_shifts, impact_ratios
from .plan import AuditPlan, Units  # noqa: F401  (Units: importable from here as before)
from .result import AuditResult, ShiftTest, Skipped
from .settings import AuditConfig
from .store import Store
from .work import DEFAULT_CALL_BYTES, apply_edit, items_per_call

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
    sources = as_sources(clips)
    plan = AuditPlan.build(settings, perturbations, traits=tuple(rater.trait_names),
                           metadata={s.id: s.metadata or {} for s in sources})
    check_hears(plan.edits, rater)
    identity = rater_identity(rater)

    own_store = not isinstance(store, Store)
    db = Store(store if store is not None else ":memory:") if own_store else store
    try:
        db.bind({"rater_hash": identity["hash"], "seed": settings.seed, "max_side": settings.max_side,
                 "input": identity["input"], "traits": list(plan.traits),
                 "scenes_dir": str(Path(settings.scenes_dir).resolve()) if settings.scenes_dir else None})
        if annotator is None and (any(e.requires for e in plan.edits) or rater.input.crop == "face"):
            annotator = Annotator()
        job = Job(rater=rater, rater_spec=rater_spec, plan=plan, done=db.done(), device=dev,
                  per_call=items_per_call(rater.input, call_bytes), annotator=annotator, thumbs=thumbs)
        _score_all(job, sources, db, runner, progress)
        return judge(db, plan, identity, sources, record)
    finally:
        if own_store:
            db.commit()
            db.close()


def check_hears(edits: Sequence[Perturbation], rater: Any) -> None:
    """An edit of the sound needs a rater that hears it: one that declares audio, or a vendor
    that takes the recording. For any other it would be a test of nothing, invariant by
    construction; say so before any clip is decoded."""
    if rater.input.listens or getattr(rater, "recording", None) is not None:
        return
    heard = [e.name for e in edits if edits_sound(e)]
    if heard:
        name = getattr(rater, "name", type(rater).__name__)
        raise ConfigError(f"--perturb: {', '.join(heard[:4])}{' ...' if len(heard) > 4 else ''} edit the sound, "
                          f"but rater {name} hears none (its input declares no audio; see the README's "
                          "'Raters that listen')")


def _score_all(job: Job, sources: list, db: Store, executor: Any, progress: bool | Callable[[int], None]) -> None:
    conditions = job.plan.conditions
    done = job.done
    size = job.plan.settings.batch_size
    # A fixed partition of the clip list, whatever is already done: a resumed or distributed run
    # sends the rater exactly the calls an uninterrupted local run sends, so scores are identical.
    batches = [sources[i:i + size] for i in range(0, len(sources), size)]
    todo = [b for b in batches if any((s.id, c) not in done for s in b for c in conditions)]
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(sources), initial=len(sources) - sum(len(b) for b in todo), unit="clip",
                   desc="auditing", dynamic_ncols=True)
    try:
        for outcome in executor.run(job, todo):
            db.write(outcome)
            db.commit()  # a batch is kept whole or not at all: a crash loses at most the batches in flight
            if job.annotator is not None:
                for key, value in outcome.annotated.items():
                    job.annotator.stats[key] = job.annotator.stats.get(key, 0) + value
            if bar is not None:
                bar.update(outcome.sources)
            elif callable(progress):
                progress(outcome.sources)
    finally:
        if bar is not None:
            bar.close()


def _impact(db: Store, ids: set[str], plan: AuditPlan) -> tuple[DecisionImpact, list[GroupAnalysis]]:
    """Decision impact of each fairness edit on a shortlist, and shifts and impact ratios per group.

    With people as the unit, a group column that is constant within each person compares
    per-person shifts (each person once); a column that varies within a person (a clip's framing)
    can only compare clips, and says so. The region:* ablations ask another question and are
    left out."""
    arms = [a for a in plan.arms if not a.is_contrast and a.role == "fairness"]
    traits, rule, units = plan.traits, plan.shortlist, plan.units
    per_trait = {cond: {t: db.scores(cond, t) for t in traits} for cond in [ORIGINAL] + [a.arm for a in arms]}

    def shortlist_scores(cond: str) -> dict[str, float]:
        table = per_trait[cond]
        return {c: rule.score({t: table[t][c] for t in traits}, traits) for c in ids
                if all(c in table[t] for t in traits)}

    original = shortlist_scores(ORIGINAL)
    edited = {a.arm: shortlist_scores(a.arm) for a in arms}
    impact = decision_impact(original, edited, rule)
    metadata = db.metadata()
    groups: list[GroupAnalysis] = []
    for column in group_columns({c: m for c, m in metadata.items() if c in ids}, exclude=(units.column or "",)):
        member = {c: m[column] for c, m in metadata.items() if c in ids and m.get(column)}
        by_person = units.unit == "person" and _constant_within(member, units.person_of)
        pool = units.pool if by_person else dict

        def diffs(arm: str, trait: str) -> dict[str, float]:
            after, before = per_trait[arm][trait], per_trait[ORIGINAL][trait]
            return pool({c: after[c] - before[c] for c in after if c in before})

        who = {units.person_of[c]: g for c, g in member.items()} if by_person else member
        groups.append(GroupAnalysis(
            column, "person" if by_person else "clip",
            {ORIGINAL: impact_ratios(original, member), **{a: impact_ratios(s, member) for a, s in edited.items()}},
            {a.arm: {t: group_shifts(diffs(a.arm, t), who) for t in traits} for a in arms}))
    return impact, groups


def _constant_within(member: Mapping[str, str], person_of: Mapping[str, str]) -> bool:
    seen: dict[str, str] = {}
    for clip, group in member.items():
        if seen.setdefault(person_of[clip], group) != group:
            return False
    return True


def judge(db: Store, plan: AuditPlan, rater: Mapping[str, Any], sources: Sequence[Any],
          record: Mapping[str, Any] | None = None) -> AuditResult:
    """The statistics of everything scored into ``db`` for ``plan``: every test of the audit,
    corrected as one family, with decision impact, groups and the skipped pairs. ``rater``: its
    identity (spec, hash); ``record``: extra entries for the result's ``config``."""
    ids = {s.id for s in sources}
    tests = _tests(db, ids, plan)
    impact, groups = _impact(db, ids, plan)
    conditions = {e.name for e in plan.edits}
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
    units = plan.units
    scored = ids - {c for c, p in listed if p == ORIGINAL}
    without = len(scored & units.unnamed) if units.column else 0
    config = {**plan.record(record), "n_clips_found": len(ids),
              **({"clips_without_subject": without} if without else {})}
    return AuditResult(
        rater=dict(rater), traits=plan.traits, n_clips=len(scored), config=config,
        tests=tuple(tests), skipped=tuple(skipped), impact=impact.to_dict(),
        groups={g.column: g.to_dict() for g in groups},
        unit=units.unit, cluster=units.column, n_subjects=units.count(scored),
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat())


def _tests(db: Store, ids: set[str], plan: AuditPlan) -> list[ShiftTest]:
    """One paired test per (arm, trait) from the stored scores. The fairness tests are corrected
    as one family; the attribution tests (``region:*``, where a rater is expected to react) as a
    family of their own, so that asking where the rater looks costs the fairness verdicts nothing."""
    s, units = plan.settings, plan.units
    tests = []
    for arm in plan.arms:
        for trait in plan.traits:
            before = db.scores(arm.base, trait)
            after = db.scores(arm.arm, trait)
            paired = sorted(ids & before.keys() & after.keys())
            test = stats.paired_shift_test(
                np.array([before[c] for c in paired], dtype=float),
                np.array([after[c] for c in paired], dtype=float), margin=plan.margin(arm, trait),
                alpha=s.alpha, tolerance=s.tolerance, groups=units.groups(paired), perturbation=arm.name, trait=trait)
            tests.append(dataclasses.replace(test, n_subjects=units.count(paired), role=arm.role, arm=arm.arm,
                                             base=arm.base, family=arm.family))
    corrected = list(tests)
    for role in ("fairness", "attribution"):
        family = [i for i, t in enumerate(tests) if t.role == role]
        for i, judged in zip(family, stats.correct([tests[i] for i in family], method=s.correction)):
            corrected[i] = judged
    return _beside_retest(corrected)


def rejudge(db: Store, result: AuditResult, margins: Mapping[tuple[str | None, str | None], float]) -> AuditResult:
    """``result`` judged again from its stored scores with other margins for some tests (keyed by
    (perturbation, trait)); every statistic and the correction across the family are recomputed,
    as an audit run with those margins would have given them."""
    plan = AuditPlan.saved(result, db.metadata())
    plan = dataclasses.replace(plan, test_margins={**plan.test_margins, **margins})
    tests = _tests(db, set(db.clip_ids()), plan)
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
