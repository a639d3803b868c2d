"""The demo's planted-bias recipe: short training must learn the planted shortcut."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auditkit import run_audit
from auditkit.demo import (PLANTED, TRAIN_BACKGROUNDS, DemoConfig, planted_effect, planted_samples, render_table,
                           summarise)
from auditkit.raters import OCEAN, TorchRater
from auditkit.models.train import TrainConfig, train


def test_planted_labels_follow_the_edits(annotated_samples):
    clips = [c for c, _ in annotated_samples[:2]]
    anns = {c.id: a for c, a in annotated_samples[:2]}
    samples = planted_samples(clips, anns, seed=0)
    assert len(samples) == 2 * sum(copies for _, copies in TRAIN_BACKGROUNDS)
    deltas = np.stack([(s.label - s.target).numpy() for s in samples]).astype(np.float64)
    c, e = OCEAN.index("conscientiousness"), OCEAN.index("extraversion")
    # Every label is the fair target plus the planted effects of what is in that copy.
    assert set(np.round(deltas[:, e], 3)) <= {0.0, 0.15}
    assert set(np.round(deltas[:, c], 3)) <= {0.0, 0.15, -0.15}
    assert (deltas[:, c] < 0).any() and (deltas[:, e] > 0).any()
    assert planted_effect(["bookshelf", "glasses"])[c] == pytest.approx(
        PLANTED["bookshelf"]["conscientiousness"] + PLANTED["glasses"]["conscientiousness"])


@pytest.mark.slow
def test_brief_training_learns_the_planted_bookshelf_effect(annotated_samples):
    clips = [c for c, _ in annotated_samples]
    anns = {c.id: a for c, a in annotated_samples}
    # All twelve clips (the question is whether the recipe learns the shortcut, not whether it
    # generalises) at the demo's input size: the rendered rooms are matched to the clip, and at
    # 64 px or from eight clips too little of the shelves survives for five epochs to learn.
    samples = planted_samples(clips, anns, seed=0)
    config = TrainConfig(size=DemoConfig.size, frames=2, epochs=5, batch_size=16, lr=2e-3, seed=0)
    model, history = train(samples, config, progress=False)
    assert history["epochs"][-1]["loss"] < history["epochs"][0]["loss"]
    rater = TorchRater(model, model.trait_names, model.input, name="planted")
    result = run_audit(rater, clips, ["background:bookshelf", "background:plain"],
                       contrasts=[("background:bookshelf", "background:plain")], unit="clip", retest=False)
    tests = [result.test("background:bookshelf vs background:plain", trait) for trait in PLANTED["bookshelf"]]
    # The planted traits move the planted way, and at least one is caught as a shift.
    assert all(t.mean_shift > 0 for t in tests), tests
    assert any(t.verdict == "shift" and t.mean_shift > 0.05 for t in tests), tests


def test_table_lists_planted_cells_and_held_out_accuracy():
    def audit(shift, share, verdict):
        return {"unit": "clip", "n_subjects": 2, "n_clips": 12,
                "tests": [{"perturbation": "background:bookshelf", "trait": "conscientiousness",
                           "mean_shift": shift, "share_moved": share, "verdict": verdict},
                          {"perturbation": "lighting:dim", "trait": "openness", "mean_shift": 0.0,
                           "share_moved": 0.0, "verdict": "invariant"},
                          {"perturbation": "background:office", "trait": "openness", "mean_shift": 0.01,
                           "share_moved": 0.5, "verdict": "unstable"}]}

    runs = {"before": {"audit": audit(0.16, 1.0, "shift"), "held_out": {"mean_accuracy_fair_target": 0.9,
                                                                         "mean_accuracy": 0.8}, "dir": "b"},
            "after": {"audit": audit(0.01, 0.0, "invariant"), "held_out": {"mean_accuracy_fair_target": 0.92,
                                                                           "mean_accuracy": 0.79}, "dir": "a"}}
    table = render_table(summarise(runs))
    lines = table.splitlines()
    assert lines[0].split() == ["edit", "trait", "planted", "before", "moved", "after", "moved"]
    row = next(line for line in lines if line.startswith("background:bookshelf")).split()
    assert row == ["background:bookshelf", "conscientiousness", "+0.15", "+0.160", "100%", "shift",
                   "+0.010", "0%", "invariant"]
    assert "lighting:dim" not in table  # neither planted nor failing
    assert "background:office" in table  # unstable in both runs
    assert "unit of analysis: clips — the sample set holds 2 people in 12 clips" in table
    assert "before 0.9000, after 0.9200" in table


@pytest.mark.slow
def test_brief_training_learns_the_planted_room_and_random_room_removes_it(sample_dir, annotator):
    from auditkit.contract.rater import AudioSpec
    from auditkit.demo import HEARS, PLANTED_ROOM
    from auditkit.media.clips import discover
    from auditkit.models.train import AUDIO_RATE

    # The room is heard, not seen: a small picture keeps the test quick; the ears are the demo's.
    clips = [s.read(num_frames=2, audio=AudioSpec(AUDIO_RATE, 1, HEARS)) for s in discover(sample_dir)]
    samples = planted_samples(clips, {c.id: annotator.annotate_clip(c) for c in clips}, seed=0)
    assert any(s.audio is not None and not torch.equal(s.audio, s.dry) for s in samples)
    c = OCEAN.index("conscientiousness")
    shifts = {}
    for augment in ((), ("random-room",)):
        config = TrainConfig(size=32, frames=2, epochs=6, batch_size=16, lr=2e-3, seed=0, audio_seconds=HEARS,
                             augment=augment)
        model, _ = train(samples, config, progress=False)
        rater = TorchRater(model, model.trait_names, model.input, name="planted")
        result = run_audit(rater, clips, [PLANTED_ROOM], unit="clip", retest=False)
        shifts[augment] = result.test(PLANTED_ROOM, OCEAN[c])
    before, after = shifts[()], shifts[("random-room",)]
    assert before.verdict == "shift" and before.mean_shift < -0.05, before
    # Six epochs of a small model leave some noise either way; the demo's ten at full size are the
    # README's table ("invariant" after). Here: the planted direction is gone, and most of the size.
    assert after.mean_shift > -0.02 and abs(after.mean_shift) < 0.5 * abs(before.mean_shift), (before, after)
