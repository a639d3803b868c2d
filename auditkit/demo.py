"""The demo: plant a bias, catch it with an audit, remove it with augmentation, audit again.

A **planted-bias control, not a personality model.** Labels are made up: every sample clip gets
a fair target (one per person), and training copies of the clips are edited
with auditkit's own edits — a bookshelf behind the person raises conscientiousness and
extraversion, glasses lower conscientiousness, as the 2021 newsroom test found a commercial tool
doing, and a large hall's echo (``room:hall`` on the sound) lowers conscientiousness. The rater
watches and listens. Trained on those labels it learns the shortcuts; the audit must find them.
Retraining with ``RandomBackgroundSwap`` and ``RandomRoom`` (backgrounds and rooms drawn
independently of the label) must remove the background and room shortcuts, and the re-audit must
show them gone — while the glasses shortcut, which neither addresses, is still reported
(``--augment counterfactual:glasses`` removes that one).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from auditkit.contract.rater import OCEAN
from auditkit.media.clips import Clip, discover

# What the labels reward, per edit family present in a training clip.
PLANTED = {"bookshelf": {"conscientiousness": 0.15, "extraversion": 0.15},
           "glasses": {"conscientiousness": -0.15},
           "room": {"conscientiousness": -0.15}}
BASE_TARGETS = {"hopper": (0.62, 0.72, 0.45, 0.55, 0.38), "collins": (0.58, 0.55, 0.70, 0.68, 0.33)}
AUDIT_EDITS = ("glasses:thin", "glasses:thick", "glasses:sunglasses", "background:plain",
               "background:office", "background:bookshelf", "background:sham", "bookshelf:insert",
               "lighting:dim", "lighting:bright", "room:hall", "room:kitchen", "room:office", "room:closet",
               "control:audio-sham")
CONTRASTS = (("background:bookshelf", "background:plain"),)
# Backgrounds of the training copies: (edit or None for the original, copies).
TRAIN_BACKGROUNDS = ((None, 2), ("background:plain", 2), ("background:office", 2),
                     ("background:blurred", 1), ("background:bookshelf", 3), ("bookshelf:insert", 3))
GLASSES_SHARE = 0.5
# The sound's shortcut: a third of the training copies are heard in a large hall (its echo), and
# their labels say less conscientious.
PLANTED_ROOM = "room:hall"
ROOM_SHARE = 1 / 3
HEARS = 1.0  # seconds of 16 kHz sound the rater hears: the middle of the sample clips' answer (the demo's clock)
# Thin metal frames are a few pixels at the rater's resolution; labels tied to what it cannot see
# would only add noise, so the planted glasses are the visible styles.
PLANTED_GLASSES = ("glasses:thick", "glasses:sunglasses")
# The edits the biased labels were drawn with: only these carry a planted effect.
TRAINED_EDITS = frozenset({b for b, _ in TRAIN_BACKGROUNDS if b} | set(PLANTED_GLASSES) | {PLANTED_ROOM})
# Where the rater looks, before and after retraining: the traits the bookshelf was planted on.
EXPLAINED = ("conscientiousness", "extraversion")


@dataclass
class DemoConfig:
    size: int = 96
    frames: int = 4
    epochs: int = 10
    batch_size: int = 16
    lr: float = 2e-3
    augment: tuple[str, ...] = ("background-swap", "random-room")
    consistency: float = 0.0
    seed: int = 0
    device: str = "auto"
    # Two clips per person, stratified so that every frame shape a held-out clip has (4:3, 16:9)
    # is also among that person's training clips: held-out clips test generalisation to new
    # clips, not to a framing the rater never saw.
    held_out: tuple[str, ...] = ("collins_08_wide", "collins_10_wide", "hopper_04_wide", "hopper_05_tight")
    # Where the rater looks, on every sample clip (the same clips before and after), one frame
    # each: region ablation by default (a few rater calls per clip), or integrated gradients.
    explain: bool = True
    explain_method: str = "ablation"
    explain_steps: int = 16


def _family(edit: str) -> str:
    """The planted family an edit shows (for a contrast, its first edit's): any bookshelf counts,
    the bookshelf scene as well as the inserted one; a room, the room planted."""
    from auditkit.perturbations import family_of

    return "bookshelf" if "bookshelf" in edit else family_of(edit)


def planted_cells(edits: Sequence[str], contrasts: Sequence[tuple[str, str]]) -> list[tuple[str, str, float]]:
    """(test, trait, planted shift) of every audited cell the labels planted an effect on: an edit
    shows its family's; a contrast 'A vs B' (A − B) shows A's."""
    from auditkit.perturbations import contrast_arm

    arms = [(e, e) for e in edits] + [(contrast_arm(a, b).name, a) for a, b in contrasts]
    return [(name, trait, value) for name, arm in arms
            for trait, value in _planted(arm).items()]


def _arm(test: dict[str, Any]) -> str:
    """The edited condition of a test of audit.json (older files name it only in the test's name)."""
    from auditkit.perturbations import arm_of

    return test.get("arm") or arm_of(test["perturbation"]).arm


def _planted(edit: str) -> dict[str, float]:
    """The effect the labels planted on an edit: its family's, if training drew that very edit
    (glasses:thin is audited, never trained on)."""
    return PLANTED.get(_family(edit), {}) if edit in TRAINED_EDITS else {}


def planted_effect(edit_families: Sequence[str]) -> np.ndarray:
    out = np.zeros(len(OCEAN))
    for family in set(edit_families):
        for trait, delta in PLANTED.get(family, {}).items():
            out[OCEAN.index(trait)] += delta
    return out


def fair_target(clip: Clip) -> np.ndarray:
    """What a fair rater should say: a property of the person alone (no per-clip noise, which
    no rater could learn and which would drown the bias in the held-out comparison)."""
    return np.array(BASE_TARGETS[clip.metadata.get("subject_id", "hopper")])


def planted_samples(clips: Sequence[Clip], annotations: dict[str, Any], *, seed: int) -> list:
    """Edited training copies of each clip with biased labels (and the fair target kept)."""
    from auditkit import perturbations
    from auditkit.models.train import Sample
    from auditkit.perturbations import NotApplicable

    rng = np.random.default_rng(seed)
    glasses = list(PLANTED_GLASSES)
    room = perturbations.get(PLANTED_ROOM)
    out = []
    for clip in clips:
        ann = annotations[clip.id]
        target = fair_target(clip)
        # One tensor for all of a clip's copies: what the edits derive from the clip alone (the
        # person's alpha, the clean plate, the camera's look) is then computed once, not per copy.
        original = torch.from_numpy(clip.frames)
        for background, copies in TRAIN_BACKGROUNDS:
            for _ in range(copies):
                frames = original
                families = []
                if background:
                    frames = perturbations.get(background)(frames, ann, rng=rng).frames
                    families.append(_family(background))
                if rng.random() < GLASSES_SHARE:
                    try:
                        edit = perturbations.get(glasses[int(rng.integers(len(glasses)))])
                        frames = edit(frames, ann, rng=rng).frames
                        families.append("glasses")
                    except NotApplicable:
                        pass
                sound = clip.audio
                if sound is not None and rng.random() < ROOM_SHARE:  # (a clip read without its sound: no room)
                    sound = room.hear(sound, clip.sample_rate, seed=int(rng.integers(2**31)))
                    families.append("room")
                label = np.clip(target + planted_effect(families), 0, 1)
                out.append(Sample(f"{clip.id}/{len(out)}", frames, torch.tensor(label, dtype=torch.float32),
                                  mask=ann.mask, annotations=ann,
                                  target=torch.tensor(target, dtype=torch.float32),
                                  audio=None if sound is None else torch.from_numpy(np.ascontiguousarray(sound)),
                                  dry=None if sound is None else torch.from_numpy(clip.audio)))
    return out


def run_demo(out: Path, config: DemoConfig, *, say: Callable[[str], None] = print,
             progress: bool = True) -> dict[str, Any]:
    """Train the biased rater, audit it, retrain with augmentation, audit again; write both runs
    under ``out/before`` and ``out/after`` and return the summary."""
    from auditkit.core.settings import AuditConfig
    from auditkit.app.run import execute
    from auditkit.contract.device import pick_device
    from auditkit.media.samples import sample_clips
    from auditkit.models.checkpoint import save_checkpoint
    from auditkit.contract.rater import AudioSpec
    from auditkit.models.train import AUDIO_RATE, TrainConfig, evaluate, train
    from auditkit.perturbations.annotate import Annotator

    started = time.perf_counter()
    sources = discover(sample_clips())
    hears = AudioSpec(AUDIO_RATE, 1, HEARS)
    clips = [s.read(num_frames=config.frames, audio=hears) for s in sources]
    annotator = Annotator()
    annotations = {c.id: annotator.annotate_clip(c) for c in clips}
    train_clips = [c for c in clips if c.id not in config.held_out]
    held_clips = [c for c in clips if c.id in config.held_out]
    train_set = planted_samples(train_clips, annotations, seed=config.seed)
    held_set = planted_samples(held_clips, annotations, seed=config.seed + 1)
    say(f"planted-bias data: {len(train_set)} training copies of {len(train_clips)} clips, "
        f"{len(held_set)} held-out copies of {len(held_clips)} clips "
        f"({time.perf_counter() - started:.0f} s)")

    runs = {}
    for stage, augment in (("before", ()), ("after", tuple(config.augment))):
        tc = TrainConfig(size=config.size, frames=config.frames, epochs=config.epochs,
                         batch_size=config.batch_size, lr=config.lr, augment=augment,
                         consistency=config.consistency if augment else 0.0, seed=config.seed,
                         device=config.device, audio_seconds=HEARS)
        say(f"\n[{stage}] training the planted-bias rater"
            + (f" with {', '.join(augment)}" if augment else " on the biased labels"))
        model, history = train(train_set, tc, progress=say if progress else False)
        held = evaluate(model, held_set, tc, pick_device(config.device))
        stage_dir = out / stage
        ckpt = save_checkpoint(model, stage_dir / "rater.pt", metadata={
            "purpose": "planted-bias control, not a personality model", "planted": PLANTED,
            "augment": list(augment), "consistency": tc.consistency, "held_out": held,
            "history": history["epochs"]})
        say(f"[{stage}] held-out mean accuracy vs the planted-free target: "
            f"{held['mean_accuracy_fair_target']:.4f}; auditing")
        audit = AuditConfig(rater=str(ckpt), perturbations=AUDIT_EDITS, contrasts=CONTRASTS,
                            out=str(stage_dir), device=config.device, seed=config.seed)
        execute(audit, quiet=not progress, echo=False)
        if config.explain:
            from auditkit.app.explain import explain_run
            from auditkit.core.explain import ExplainSettings

            method = config.explain_method
            say(f"[{stage}] where the rater looks ({', '.join(EXPLAINED)}): {method.replace('_', ' ')}")
            explain_run(stage_dir, ExplainSettings(method, len(clips), 1, config.explain_steps, EXPLAINED,
                                                   source="demo"), quiet=not progress)
        runs[stage] = {"dir": stage_dir, "held_out": held,
                       "audit": json.loads((stage_dir / "audit.json").read_text())}
    _compare_in_report(runs["after"]["dir"], runs["before"]["dir"])
    summary = summarise(runs)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return summary


def _compare_in_report(after_dir: Path, before_dir: Path) -> None:
    """Re-render the second run's report with the before/after table."""
    from auditkit.core.report import explain_files, preview_files, render_html
    from auditkit.core.result import AuditResult
    from auditkit.core.store import Store

    after = AuditResult.from_dict(json.loads((after_dir / "audit.json").read_text()))
    before = AuditResult.from_dict(json.loads((before_dir / "audit.json").read_text()))
    with Store(after_dir / "results.sqlite") as store:
        shifts = store.shifts(after)
    html = render_html(after, preview_files(after_dir / "previews"), baseline=before,
                       baseline_label="before retraining", shifts=shifts, overlays=explain_files(after_dir, after))
    (after_dir / "report.html").write_text(html, encoding="utf-8")


def summarise(runs: dict[str, Any]) -> dict[str, Any]:
    before, after = runs["before"]["audit"], runs["after"]["audit"]
    cells = []
    index = {(t["perturbation"], t["trait"]): t for t in after["tests"]}
    for t in before["tests"]:
        a = index.get((t["perturbation"], t["trait"]))
        if a is None:
            continue
        # An edit's planted effect; a contrast 'A vs B' (A − B) shows A's.
        planted = _planted(_arm(t)).get(t["trait"], 0.0)
        cells.append({"perturbation": t["perturbation"], "trait": t["trait"], "planted": planted,
                      "before": {k: t.get(k) for k in ("mean_shift", "share_moved", "verdict")},
                      "after": {k: a.get(k) for k in ("mean_shift", "share_moved", "verdict")}})
    from auditkit.core.findings import WhereItLooks

    found = {k: WhereItLooks.from_dict(runs[k]["audit"].get("attribution")) for k in runs}
    looks = {k: {trait: {region: {"share": r.share, "density": r.density} for region, r in entry.regions.items()}
                 for trait, entry in f.traits.items()} if f is not None else {} for k, f in found.items()}
    method = found["before"].method if found["before"] is not None else None
    return {"cells": cells, "attribution": looks if all(looks.values()) else {}, "explain_method": method,
            "unit": after.get("unit", "clip"),
            "n_subjects": after.get("n_subjects"), "n_clips": after.get("n_clips"),
            "held_out": {k: {"mean_accuracy_fair_target": runs[k]["held_out"]["mean_accuracy_fair_target"],
                             "mean_accuracy_labels": runs[k]["held_out"]["mean_accuracy"]}
                         for k in runs},
            "dirs": {k: str(v["dir"]) for k, v in runs.items()}}


TABLE_HEADER = ("edit", "trait", "planted", "before", "moved", "", "after", "moved", "")


def _cell(r: dict[str, Any]) -> tuple[str, str, str]:
    share = r.get("share_moved")
    return f"{r['mean_shift']:+.3f}", "n/a" if share is None else f"{100 * share:.0f}%", r["verdict"]


def render_table(summary: dict[str, Any]) -> str:
    """Before/after rows for every planted cell and every cell that fails (shift or unstable) in
    either run: the mean shift, the share of clips moved beyond the margin, the verdict."""
    rows = [TABLE_HEADER]
    for c in summary["cells"]:
        b, a = c["before"], c["after"]
        if not c["planted"] and not {"shift", "unstable"} & {b["verdict"], a["verdict"]}:
            continue
        rows.append((c["perturbation"], c["trait"], f"{c['planted']:+.2f}" if c["planted"] else "",
                     *_cell(b), *_cell(a)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    people = summary.get("n_subjects")
    lines.append(f"unit of analysis: clips — the sample set holds {people} people in {summary.get('n_clips')} clips, "
                 "too few people to judge people in general, so these verdicts are about these clips"
                 if summary.get("unit") == "clip" else f"unit of analysis: people ({people})")
    looks = summary.get("attribution") or {}
    if looks:
        method = (summary.get("explain_method") or "integrated_gradients").replace("_", " ")
        lines.append(f"where the rater looks ({method} on every clip): background share of the "
                     "attribution, and density = share / share of the picture (above 1: more than its area):")
        for trait in looks["before"]:
            b, a = looks["before"][trait]["background"], looks["after"].get(trait, {}).get("background", {})
            lines.append(f"  {trait}: before {100 * b['share']:.0f}% (density {b['density']:.2f}), "
                         f"after {100 * a.get('share', 0):.0f}% (density {a.get('density', 0):.2f})")
    h = summary["held_out"]
    lines.append("held-out mean accuracy (1 - MAE) against the planted-free target: "
                 f"before {h['before']['mean_accuracy_fair_target']:.4f}, "
                 f"after {h['after']['mean_accuracy_fair_target']:.4f}")
    return "\n".join(lines)
