"""``auditkit explain``: where the rater of a saved run looks, added to that run.

It reads the run (``audit.json`` for the rater spec and the clips folder, ``results.sqlite`` for
the shifts), explains the clips that moved most, keeps each clip's attribution in the store (a
second call computes nothing again), writes the overlays (original | heatmap, one per clip and
trait) under ``explain/`` beside the run, puts the ``attribution`` section into ``audit.json`` and
renders the report again with its "where the rater looks" section.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from auditkit.contract.errors import AuditkitError

from .outputs import write_bytes
from .run import load_audit, write_run

EXPLAIN_DIR = "explain"


def overlay_name(clip_id: str, trait: str) -> str:
    """``explain/<clip>/<trait>.png`` relative to the run; a clip in a sub-folder keeps one level."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", clip_id.replace("/", "__"))
    return f"{EXPLAIN_DIR}/{safe}/{re.sub(r'[^A-Za-z0-9._-]+', '_', trait)}.png"


def moved_most(store: Any, result: Any, n: int) -> list[str]:
    """The clips whose scores moved most under the audit's fairness edits: each clip's largest
    |shift| over the margin, across edits and traits (the retest control left out)."""
    from auditkit.contract.arms import ORIGINAL, RETEST

    worst: dict[str, float] = {}
    for t in result.fairness:
        if t.arm == RETEST or t.base != ORIGINAL:
            continue
        before, after = store.scores(ORIGINAL, t.trait), store.scores(t.arm, t.trait)
        for clip, value in after.items():
            if clip in before:
                worst[clip] = max(worst.get(clip, 0.0), abs(value - before[clip]) / t.margin)
    return [c for c, _ in sorted(worst.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def explain_run(out: str | Path, settings: Any = None, *, rater: Any = None, quiet: bool = False) -> Any:
    """Explain the saved run in ``out`` as ``settings`` say (an ``ExplainSettings``; default: its
    defaults) and add what was found to it; returns the ``Attribution``. ``rater``: the loaded
    rater (default: loaded again from the spec the run recorded)."""
    from auditkit.contract.device import pick_device
    from auditkit.core.explain import ExplainSettings, explain
    from auditkit.core.store import Store
    from auditkit.media.clips import discover
    from auditkit.media.samples import sample_clips
    from auditkit.raters import load_rater

    from auditkit.core.settings import AuditConfig

    out = Path(out)
    result = load_audit(out / "audit.json")
    recorded = AuditConfig.from_record(result.config)
    spec = result.config.get("rater") or result.rater.get("spec")
    if rater is None:
        if not isinstance(spec, str) or not spec:
            raise AuditkitError(f"{out / 'audit.json'}: records no rater spec to load; pass the rater")
        rater = load_rater(spec, device=pick_device(recorded.device))
    from auditkit.contract.rater import rater_identity

    if result.rater.get("hash") not in (None, rater_identity(rater)["hash"]):
        raise AuditkitError(f"{spec}: is not the rater this run audited (its hash differs); "
                            "explain needs the same rater")
    folder = result.config.get("clips")
    clips_dir = Path(folder) if isinstance(folder, str) and folder != "(objects)" else sample_clips()
    if not clips_dir.is_dir():
        raise AuditkitError(f"{clips_dir}: the run's clips folder is gone; explain reads the clips again")
    with Store(out / "results.sqlite") as store:
        settings = settings or ExplainSettings()
        picked = moved_most(store, result, settings.clips)
        by_id = {s.id: s for s in discover(clips_dir)}
        sources = [by_id[c] for c in picked if c in by_id] or list(by_id.values())
        attribution = explain(rater, sources, settings, max_side=recorded.max_side, progress=not quiet,
                              cache=store.explain_cache())
    overlays: dict[str, dict[str, str]] = {}
    for clip in attribution.clips:
        if not clip.frame_index:
            continue
        for trait in attribution.traits:
            name = overlay_name(clip.clip, trait)
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(path, attribution.overlay(clip.clip, trait))
            overlays.setdefault(clip.clip, {})[trait] = name
    section = {**attribution.to_dict(), "overlays": overlays, "picked": "the clips whose scores moved most"}
    updated = dataclasses.replace(result, attribution=section)
    from auditkit.core.report import preview_files

    write_run(updated, out, store=out / "results.sqlite", previews=preview_files(out / "previews"))
    return attribution
