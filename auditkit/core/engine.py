"""``run_audit``: clips in, paired scores into the store, statistics out.

Each clip is decoded once, scored once as the original and once per edit; every edit is applied
at source resolution, before the rater's own resize, so original and edited input differ only by
the edit. Scores are committed to the store after every batch; on a re-run with the same store,
pairs already scored (or already found unscorable) are not touched again.
"""

from __future__ import annotations

import datetime as _dt
import os
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
from .result import AuditResult, Skipped
from .store import ORIGINAL, Store
from .work import DEFAULT_CALL_BYTES, apply_edit, items_per_call

DEFAULT_MARGIN = 0.05
DEFAULT_ALPHA = 0.05
DEFAULT_BATCH = 4
DEFAULT_MAX_SIDE = 640


def _margins(margin: float | Mapping[str, float], traits: Sequence[str]) -> dict[str, float]:
    if isinstance(margin, Mapping):
        unknown = sorted(set(margin) - set(traits) - {"default"})
        if unknown:
            raise ConfigError(f"margin: unknown trait(s) {unknown}; the rater's traits are {list(traits)}")
        default = margin.get("default", DEFAULT_MARGIN)
        out = {t: float(margin.get(t, default)) for t in traits}
    else:
        out = {t: float(margin) for t in traits}
    for t, m in out.items():
        if not np.isfinite(m) or m <= 0:
            raise ConfigError(f"margin for {t!r} must be a positive number, got {m}")
    return out


def run_audit(rater: Any, clips: str | os.PathLike | Iterable[Clip | ClipSource],
              perturbations: str | Sequence[str | Perturbation], *,
              margin: float | Mapping[str, float] = DEFAULT_MARGIN, alpha: float = DEFAULT_ALPHA,
              correction: str = "holm", batch_size: int = DEFAULT_BATCH, device: str = "auto",
              seed: int = 0, max_side: int = DEFAULT_MAX_SIDE, store: str | Path | Store | None = None,
              progress: bool | Callable[[int], None] = False,
              contrasts: Sequence[tuple[str, str]] = (), scenes_dir: str | Path | None = None,
              max_missing_face: float = DEFAULT_MAX_MISSING_FACE, annotator: Annotator | None = None,
              shortlist: ShortlistRule | None = None,
              config: Mapping[str, Any] | None = None, executor: str | Any = "local",
              workers: int | None = None, ray_address: str | None = None,
              call_bytes: int = DEFAULT_CALL_BYTES, thumbs: bool = True) -> AuditResult:
    """Audit ``rater`` on ``clips`` under each perturbation and return the judged result.

    ``rater``: a spec string or a rater object; ``clips``: a folder or clips; ``perturbations``:
    names (``"lighting:dim"``, or a family such as ``"lighting"``) or instances; ``margin``: the
    equivalence margin, one number or per trait; ``store``: a path to ``results.sqlite`` to make
    the run resumable (in memory when ``None``); ``contrasts``: pairs of edits compared with each
    other directly (``("background:bookshelf", "background:plain")``); ``scenes_dir``: images
    for ``background:user``; ``max_missing_face``: the share of frames without a face above
    which face edits skip a clip; ``annotator``: where annotations come from (default: MediaPipe
    with the on-disk cache); ``shortlist``: the rule whose decisions the impact section counts
    (default: top 25% by the mean of all traits); ``executor``: ``"local"`` or ``"ray"`` (or an
    executor object); ``workers``: local processes that decode and annotate ahead of the rater
    (default 0: all in this process; like a DataLoader's workers, a script that sets it needs the
    ``if __name__ == "__main__":`` guard) or Ray actors (default: one per GPU, else one per two
    CPUs); ``ray_address``: an existing Ray cluster (default: a local one started for this
    audit); ``call_bytes``: the most rater input (float32) sent in one rater call — the original
    and every edit of a batch go together, in as few calls as fit; ``thumbs``: keep each scored
    input's middle frame as a small JPEG in the store, for the dashboard.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if correction not in stats.ADJUST_METHODS:
        raise ConfigError(f"correction must be holm, bh, bonferroni or none, got {correction!r}")
    if not 0 < alpha < 0.5:
        raise ConfigError(f"alpha must be between 0 and 0.5, got {alpha}")
    if not 0 <= max_missing_face < 1:
        raise ConfigError(f"max_missing_face must be in [0, 1), got {max_missing_face}")
    dev = pick_device(device)
    rater_spec = rater
    rater = load_rater(rater, device=dev)
    runner = make_executor(executor, workers=workers, address=ray_address) if isinstance(executor, str) else executor
    shortlist = shortlist or ShortlistRule()
    shortlist.check(rater.trait_names)
    edits = _resolve_perturbations(perturbations, scenes_dir=scenes_dir)
    contrasts = _check_contrasts(contrasts, edits)
    sources = as_sources(clips)
    traits = tuple(rater.trait_names)
    margins = _margins(margin, traits)
    identity = rater_identity(rater)

    own_store = not isinstance(store, Store)
    db = Store(store if store is not None else ":memory:") if own_store else store
    try:
        db.bind({"rater_hash": identity["hash"], "seed": int(seed), "max_side": int(max_side),
                 "input": identity["input"], "traits": list(traits),
                 "scenes_dir": str(Path(scenes_dir).resolve()) if scenes_dir else None})
        if annotator is None and any(e.requires for e in edits):
            annotator = Annotator()
        _score_all(rater, rater_spec, sources, edits, db, dev=dev, seed=seed, max_side=max_side,
                   batch_size=batch_size, progress=progress, annotator=annotator,
                   max_missing_face=max_missing_face, executor=runner,
                   per_call=items_per_call(rater.input, call_bytes), thumbs=thumbs)
        return _judge(db, rater_identity=identity, traits=traits, sources=sources, edits=edits,
                      contrasts=contrasts, margins=margins, alpha=alpha, correction=correction,
                      shortlist=shortlist,
                      config={"perturbations": [e.name for e in edits],
                              "contrasts": [list(c) for c in contrasts], "margin": margins,
                              "alpha": alpha, "correction": correction, "seed": int(seed),
                              "max_side": int(max_side), "batch_size": int(batch_size),
                              "max_missing_face": max_missing_face, "shortlist": shortlist.describe(),
                              **dict(config or {})})
    finally:
        if own_store:
            db.commit()
            db.close()


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
               max_missing_face: float, executor: Any, per_call: int, thumbs: bool) -> None:
    conditions = [ORIGINAL] + [e.name for e in edits]
    done = db.done()
    # A fixed partition of the clip list, whatever is already done: a resumed or distributed run
    # sends the rater exactly the calls an uninterrupted local run sends, so scores are identical.
    plan = [sources[i:i + batch_size] for i in range(0, len(sources), batch_size)]
    todo = [b for b in plan if any((s.id, c) not in done for s in b for c in conditions)]
    job = Job(rater=rater, rater_spec=rater_spec, edits=edits, done=done, device=dev, seed=seed,
              max_side=max_side, max_missing_face=max_missing_face, per_call=per_call,
              annotator=annotator, thumbs=thumbs)
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
            rule: ShortlistRule) -> tuple[dict[str, Any], dict[str, Any]]:
    """Decision impact of each edit on a shortlist, and shifts and impact ratios per group."""
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
    for column in group_columns({c: m for c, m in metadata.items() if c in ids}):
        member = {c: m[column] for c, m in metadata.items() if c in ids and m.get(column)}
        groups[column] = {
            "impact_ratio": {ORIGINAL: impact_ratios(original, member),
                             **{a: impact_ratios(s, member) for a, s in edited.items()}},
            "shift": {a: {t: group_shifts({c: per_trait[a][t][c] - per_trait[ORIGINAL][t][c]
                                           for c in per_trait[a][t] if c in per_trait[ORIGINAL][t]}, member)
                          for t in traits} for _, a, _ in arms},
        }
    return impact, groups


def _judge(db: Store, *, rater_identity: Mapping[str, Any], traits: Sequence[str], sources: list,
           edits: list[Perturbation], contrasts: Sequence[tuple[str, str]],
           margins: Mapping[str, float], alpha: float, correction: str,
           config: Mapping[str, Any], shortlist: ShortlistRule) -> AuditResult:
    ids = {s.id for s in sources}
    arms = [(ORIGINAL, e.name, e.name) for e in edits]
    arms += [(b, a, contrast_name(a, b)) for a, b in contrasts]  # a − b per clip
    tests = []
    for base, arm, label in arms:
        for trait in traits:
            before = db.scores(base, trait)
            after = db.scores(arm, trait)
            paired = sorted(ids & before.keys() & after.keys())
            tests.append(stats.paired_shift_test(
                np.array([before[c] for c in paired], dtype=float),
                np.array([after[c] for c in paired], dtype=float),
                margin=margins[trait], alpha=alpha, perturbation=label, trait=trait))
    tests = stats.correct(tests, method=correction)
    impact, groups = _impact(db, ids, traits, arms[:len(edits)], shortlist)
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
    return AuditResult(
        rater=dict(rater_identity), traits=tuple(traits), n_clips=len(scored),
        config={**config, "n_clips_found": len(ids)}, tests=tuple(tests), skipped=tuple(skipped),
        impact=impact, groups=groups,
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat())


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
