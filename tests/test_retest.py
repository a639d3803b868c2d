"""The retest control: the same clip sampled half an interval later, the rater's own noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auditkit import perturbations, run_audit
from auditkit.core.work import resampled_frames
from auditkit.media.clips import Clip, discover, read_video, sample_indices
from auditkit.perturbations.base import NotApplicable
from conftest import SMALL, BrightnessRater, JitterRater


def test_offset_positions_sit_between_the_sampled_frames():
    assert sample_indices(30, 4).tolist() == [0, 10, 19, 29]
    later = sample_indices(30, 4, 0.5)
    # Half an interval (29/3 frames) later, rounded half up, the last clamped to the clip's end.
    assert later.tolist() == [5, 15, 24, 29]
    assert sample_indices(31, 16, 0.5).tolist()[:3] == [1, 3, 5]  # 0.5 rounds up, never back to 0
    assert sample_indices(30, 1, 0.5).tolist() == [15]


def test_the_control_returns_the_other_sample_and_touches_nothing():
    retest = perturbations.get("control:retest")
    assert retest.family == "control" and retest.resample == 0.5 and not retest.requires
    frames = torch.zeros(4, 8, 8, 3, dtype=torch.uint8)
    other = torch.full((4, 8, 8, 3), 9, dtype=torch.uint8)
    edit = retest(frames, resampled=other.numpy())
    assert torch.equal(edit.frames, other) and torch.equal(frames, torch.zeros_like(frames))
    assert bool(edit.changed.all())
    with pytest.raises(NotApplicable, match="frames between the sampled ones"):
        retest(frames)
    with pytest.raises(NotApplicable, match="cannot be read"):
        retest(frames, resampled="cannot be read")
    with pytest.raises(ValueError, match="do not match"):
        retest(frames, resampled=other[:2])


def test_in_memory_frames_are_arranged_for_the_raters_sample():
    frames = np.arange(12, dtype=np.uint8)[:, None, None, None].repeat(2, 1).repeat(2, 2).repeat(3, 3)
    out = resampled_frames(frames, 4, 0.5)
    # What the rater samples from the arranged frames is what lies half an interval later.
    assert out[sample_indices(12, 4)][:, 0, 0, 0].tolist() == sample_indices(12, 4, 0.5).tolist()


def test_a_file_is_decoded_again_at_the_later_positions(sample_dir):
    path = discover(sample_dir)[0].path
    now, later = read_video(path, num_frames=8), read_video(path, num_frames=8, offset=0.5)
    assert now.frames.shape == later.frames.shape and now.source_frames == later.source_frames
    assert not np.array_equal(now.frames, later.frames)  # another moment of the same clip


def test_every_audit_reads_its_edits_against_the_raters_own_noise(sample_dir):
    result = run_audit(BrightnessRater(), sample_dir, ["lighting:dim"], unit="clip")
    assert "control:retest" in result.perturbations
    retest = {t.trait: t for t in result.tests if t.perturbation == "control:retest"}
    assert all(t.n == 12 for t in retest.values())
    for t in result.select("lighting:dim"):
        assert t.retest_share_moved == retest[t.trait].share_moved
    # The sample clips move a little between frames: the retest is not zero, yet small.
    assert any(t.mean_shift != 0 for t in retest.values())
    assert max(abs(t.mean_shift) for t in retest.values()) < 0.02
    assert "control:retest" not in run_audit(BrightnessRater(), sample_dir, ["lighting:dim"], retest=False,
                                             unit="clip").perturbations


def test_instability_no_larger_than_the_retest_is_called_the_raters_noise(sample_dir):
    from auditkit.raters import TorchRater

    rater = TorchRater(JitterRater(), input=SMALL, name="jitter")
    result = run_audit(rater, sample_dir, ["lighting:bright"], unit="clip")
    unstable = [t for t in result.select("lighting:bright") if t.verdict == "unstable"]
    assert unstable
    assert all("the rater's own retest moves" in t.note for t in unstable
               if t.share_moved_low <= t.retest_share_moved)


def test_clips_too_short_to_resample_still_get_a_retest_of_neighbouring_frames():
    rng = np.random.default_rng(0)
    clips = [Clip.from_frames(f"c{i}", rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)) for i in range(3)]
    result = run_audit(BrightnessRater(), clips, ["lighting:dim"], unit="clip")
    assert not result.skipped and result.test("control:retest", "openness").n == 3
