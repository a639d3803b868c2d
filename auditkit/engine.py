"""``run_audit``: clips in, paired scores into the store, statistics out.

Each clip is decoded once, scored once as the original and once per edit; every edit is applied
at source resolution, before the rater's own resize, so original and edited input differ only by
the edit. Scores are committed to the store after every batch; on a re-run with the same store,
pairs already scored (or already found unscorable) are not touched again.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

import perturbations as _perturbations
from perturbations import DEFAULT_MAX_MISSING_FACE, NotApplicable, Perturbation, clip_seed
from perturbations.annotate import Annotator

from . import stats
from .clips import Clip, ClipSource, as_sources, sample_indices
from .errors import ClipError, ConfigError, RaterError
from .raters import check_scores, load_rater, rater_identity
from .result import AuditResult, Skipped
from .impact import ShortlistRule, decision_impact, group_columns, group_shifts, impact_ratios
from .store import ORIGINAL, Store

DEFAULT_MARGIN = 0.05
DEFAULT_ALPHA = 0.05
DEFAULT_BATCH = 4
DEFAULT_MAX_SIDE = 640


def pick_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available here (use auto or cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu or cuda, got {device!r}")
    return dev


def rater_input(frames: torch.Tensor, spec: Any) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` → float ``[T', 3, h, w]`` in [0, 1] as the rater declared it."""
    index = torch.as_tensor(sample_indices(frames.shape[0], spec.frames), device=frames.device)
    x = frames.index_select(0, index).permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    if tuple(x.shape[-2:]) != tuple(spec.size):
        x = F.interpolate(x, size=spec.size, mode="bilinear", antialias=True, align_corners=False)
    return x.clamp_(0.0, 1.0)


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


@dataclass
class _Loaded:
    source: Clip | ClipSource
    clip: Clip | None
    error: str | None


def _load(source: Clip | ClipSource, frames: int, max_side: int) -> _Loaded:
    if isinstance(source, Clip):
        return _Loaded(source, source, None)
    try:
        return _Loaded(source, source.read(frames, max_side), None)
    except ClipError as exc:
        return _Loaded(source, None, exc.reason)


def run_audit(rater: Any, clips: str | os.PathLike | Iterable[Clip | ClipSource],
              perturbations: str | Sequence[str | Perturbation], *,
              margin: float | Mapping[str, float] = DEFAULT_MARGIN, alpha: float = DEFAULT_ALPHA,
              correction: str = "holm", batch_size: int = DEFAULT_BATCH, device: str = "auto",
              seed: int = 0, max_side: int = DEFAULT_MAX_SIDE, store: str | Path | Store | None = None,
              progress: bool | Callable[[int], None] = False,
              contrasts: Sequence[tuple[str, str]] = (), scenes_dir: str | Path | None = None,
              max_missing_face: float = DEFAULT_MAX_MISSING_FACE, annotator: Annotator | None = None,
              shortlist: ShortlistRule | None = None,
              config: Mapping[str, Any] | None = None) -> AuditResult:
    """Audit ``rater`` on ``clips`` under each perturbation and return the judged result.

    ``rater``: a spec string or a rater object; ``clips``: a folder or clips; ``perturbations``:
    names (``"lighting:dim"``, or a family such as ``"lighting"``) or instances; ``margin``: the
    equivalence margin, one number or per trait; ``store``: a path to ``results.sqlite`` to make
    the run resumable (in memory when ``None``); ``contrasts``: pairs of edits compared with each
    other directly (``("background:bookshelf", "background:plain")``); ``scenes_dir``: images
    for ``background:user``; ``max_missing_face``: the share of frames without a face above
    which face edits skip a clip; ``annotator``: where annotations come from (default: MediaPipe
    with the on-disk cache); ``shortlist``: the rule whose decisions the impact section counts
    (default: top 25% by the mean of all traits).
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
    rater = load_rater(rater, device=dev)
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
        _score_all(rater, sources, edits, db, dev=dev, seed=seed, max_side=max_side,
                   batch_size=batch_size, progress=progress, annotator=annotator,
                   max_missing_face=max_missing_face)
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


def _score_all(rater: Any, sources: list, edits: list[Perturbation], db: Store, *,
               dev: torch.device, seed: int, max_side: int, batch_size: int,
               progress: bool | Callable[[int], None], annotator: Annotator | None,
               max_missing_face: float) -> None:
    conditions = [ORIGINAL] + [e.name for e in edits]
    done = db.done()
    todo = [s for s in sources if any((s.id, c) not in done for c in conditions)]
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(sources), initial=len(sources) - len(todo), unit="clip",
                   desc="auditing", dynamic_ncols=True)
    try:
        for start in range(0, len(todo), batch_size):
            batch = [_load(s, rater.input.frames, max_side) for s in todo[start:start + batch_size]]
            try:
                _score_batch(rater, batch, edits, db, done, dev=dev, seed=seed,
                             annotator=annotator, max_missing_face=max_missing_face)
            finally:
                db.commit()  # whatever was scored stays scored, even when the rater just failed
            if bar is not None:
                bar.update(len(batch))
            elif callable(progress):
                progress(len(batch))
    finally:
        if bar is not None:
            bar.close()


def _score_batch(rater: Any, batch: list[_Loaded], edits: list[Perturbation], db: Store,
                 done: set[tuple[str, str]], *, dev: torch.device, seed: int,
                 annotator: Annotator | None, max_missing_face: float) -> None:
    traits = rater.trait_names
    ready: list[tuple[Clip, torch.Tensor]] = []
    for item in batch:
        cid = item.source.id
        if item.clip is None:
            for cond in [ORIGINAL] + [e.name for e in edits]:
                db.add_skipped(cid, cond, item.error or "unreadable")
            continue
        clip = item.clip
        db.add_clip(cid, path=str(clip.path) if clip.path else None, content_hash=clip.content_hash,
                    frames=clip.source_frames, fps=clip.fps, metadata=clip.metadata)
        ready.append((clip, torch.from_numpy(clip.frames).to(dev)))
    if not ready:
        return

    def score(condition: str, items: list[tuple[str, torch.Tensor]]) -> None:
        if not items:
            return
        ids = [cid for cid, _ in items]
        x = torch.stack([rater_input(frames, rater.input) for _, frames in items])
        try:
            raw = rater(x)
        except Exception as exc:  # the user's model failing is their error to read, not our bug
            name = getattr(rater, "name", type(rater).__name__)
            raise RaterError(f"rater {name} raised {type(exc).__name__} on clip(s) {', '.join(ids)}: "
                             f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
        out = check_scores(raw, rater, ids)
        for cid, row in zip(ids, out.tolist()):
            db.add_scores(cid, condition, traits, row)

    score(ORIGINAL, [(c.id, f) for c, f in ready if (c.id, ORIGINAL) not in done])
    annotations: dict[str, Any] = {}
    for clip, _ in ready:
        # Annotate only clips that still have an edit to score that needs it (a resumed run
        # whose edits are all scored does no annotation work at all).
        if annotator is not None and any(e.requires and (clip.id, e.name) not in done for e in edits):
            annotations[clip.id] = annotator.annotate_clip(clip)
    for edit in edits:
        items = []
        for clip, frames in ready:
            if (clip.id, edit.name) in done:
                continue
            items.append((clip.id, _apply(edit, clip, frames, annotations.get(clip.id), seed,
                                          max_missing_face)))
            if isinstance(items[-1][1], str):
                db.add_skipped(clip.id, edit.name, items.pop()[1])
        score(edit.name, items)


def _apply(edit: Perturbation, clip: Clip, frames: torch.Tensor, annotations: Any, seed: int,
           max_missing_face: float) -> torch.Tensor | str:
    """The edited frames, or the reason the edit does not apply to this clip."""
    rng = np.random.default_rng(clip_seed(seed, clip.id, edit.name))
    try:
        return edit(frames, annotations, rng=rng, max_missing_face=max_missing_face).frames
    except NotApplicable as exc:
        return exc.reason
    except Exception as exc:  # one clip an edit chokes on must not abort the whole table
        return f"{edit.name} failed on this clip: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


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
        edited = _apply(edit, clip, frames, annotations, seed, max_missing_face)
        if isinstance(edited, str):
            continue
        edited = edited[middle].numpy()
        gap = np.full((clip.frames.shape[1], 4, 3), 255, np.uint8)
        out[edit.name] = np.concatenate([clip.frames[middle], gap, edited], axis=1)
    return out
