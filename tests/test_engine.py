from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest

from auditkit import run_audit
from auditkit.media.clips import Clip, discover
from auditkit.contract.errors import AuditkitError, ConfigError, RaterError
from auditkit.raters import TorchRater
from auditkit.core.result import AuditResult
from auditkit.core.store import Store
from conftest import SMALL, BrightnessRater

# Clips as the unit and no retest control, unless a test is about them: these tests are about
# scoring, resuming and skipping, and the sample set's two people would make every verdict
# "inconclusive" with people as the unit.
PLAIN = {"unit": "clip", "retest": False}


def audit(*args, **kwargs):
    return run_audit(*args, **{**PLAIN, **kwargs})


LIGHT = ["lighting:dim", "lighting:bright"]


def test_brightness_rater_shifts_under_both_lighting_edits(sample_dir, brightness_rater_path):
    result = audit(str(brightness_rater_path), sample_dir, LIGHT)
    assert result.n_clips == len(discover(sample_dir)) >= 12
    assert len(result.tests) == 2 * 5 and not result.skipped
    assert {t.verdict for t in result.tests} == {"shift"}
    assert all(t.mean_shift < 0 for t in result.select("lighting:dim", "openness"))
    assert result.test("lighting:bright", "openness").mean_shift > 0
    assert result.test("lighting:dim", "conscientiousness").mean_shift > 0  # 1 - brightness


def test_constant_rater_is_invariant_everywhere(sample_dir, constant_rater_path):
    result = audit(str(constant_rater_path), sample_dir, "lighting")
    assert {t.verdict for t in result.tests} == {"invariant"}
    assert all(t.mean_shift == 0 and t.p_value == 1.0 and t.equivalence_p_adjusted == 0.0
               for t in result.tests)
    assert all("all differences are zero" in t.note for t in result.tests)


def test_audit_json_round_trip_has_the_contract_fields(sample_dir, brightness_rater_path):
    result = audit(str(brightness_rater_path), sample_dir, ["lighting:dim"], margin=0.02)
    data = result.to_dict()
    assert data["schema_version"] == 3 and data["n_clips"] == 12
    assert {"spec", "hash"} <= set(data["rater"])
    for test in data["tests"]:
        assert {"perturbation", "trait", "n", "mean_shift", "ci_low", "ci_high", "p_value",
                "p_adjusted", "effect_size_dz", "equivalence_p", "margin", "verdict", "n_clips", "n_subjects",
                "unit", "tolerance", "share_moved", "share_moved_low", "share_moved_high", "unstable_p",
                "stable_p", "loa_low", "loa_high", "arm", "base", "family"} <= set(test)
        assert test["margin"] == 0.02
        assert (test["arm"], test["base"], test["family"]) == ("lighting:dim", "original", "lighting")
    assert AuditResult.from_dict(data) == result


class CountingRater(TorchRater):
    """Counts the inputs it scores, per instance: a count shared by the class would carry over
    from one test to the next."""

    calls: int = 0

    def __call__(self, x):
        self.calls += len(x)
        return super().__call__(x)


def test_resume_scores_nothing_twice(sample_dir, tmp_path):
    rater = CountingRater(BrightnessRater(), input=SMALL, name="counting")
    db = tmp_path / "results.sqlite"
    first = audit(rater, sample_dir, LIGHT, store=db)
    assert rater.calls == 12 * 3
    second = audit(rater, sample_dir, LIGHT, store=db)
    assert rater.calls == 12 * 3  # everything was already in the store
    assert second.tests == first.tests
    audit(rater, sample_dir, LIGHT + ["lighting:gamma"], store=db)
    assert rater.calls == 12 * 4  # only the new condition is scored


def test_store_refuses_scores_of_another_rater(sample_dir, tmp_path, constant_rater_path,
                                               brightness_rater_path):
    db = tmp_path / "results.sqlite"
    audit(str(constant_rater_path), sample_dir, ["lighting:dim"], store=db)
    with pytest.raises(AuditkitError, match="holds scores of a different audit"):
        audit(str(brightness_rater_path), sample_dir, ["lighting:dim"], store=db)


class FailingRater(TorchRater):
    """Returns NaN for one clip: the run must stop with a clear error and keep earlier scores."""

    def __init__(self):
        super().__init__(BrightnessRater(), input=SMALL, name="flaky")
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        out = super().__call__(x).clone()
        if self.calls == 3:
            out[0, 2] = float("nan")
        return out


def test_rater_failure_stops_the_run_and_keeps_what_was_scored(sample_dir, tmp_path):
    db = tmp_path / "results.sqlite"
    with pytest.raises(RaterError, match=r"rater flaky returned NaN or inf for clip\(s\) \w+"):
        audit(FailingRater(), sample_dir, LIGHT, store=db, batch_size=4)
    with sqlite3.connect(db) as con:
        scored = con.execute("SELECT COUNT(DISTINCT clip_id || condition) FROM scores").fetchone()[0]
    # One rater call per batch of 4 clips (original and both edits together): the first two
    # batches were committed whole before the third call failed; nothing of the third was kept.
    assert scored == 8 * 3
    # And the run resumes to the same result an uninterrupted run gives.
    resumed = audit(CountingRater(BrightnessRater(), input=SMALL, name="flaky"), sample_dir,
                        LIGHT, store=db)
    assert resumed.tests == audit(CountingRater(BrightnessRater(), input=SMALL, name="flaky"),
                                      sample_dir, LIGHT).tests


def test_unreadable_clip_is_skipped_and_the_run_goes_on(sample_dir, tmp_path, brightness_rater_path):
    folder = tmp_path / "clips"
    shutil.copytree(sample_dir, folder)
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated garbage" * 20)
    (folder / "empty.avi").write_bytes(b"")
    (folder / "metadata.csv").unlink()
    result = audit(str(brightness_rater_path), folder, LIGHT)
    assert result.n_clips == 12 and result.config["n_clips_found"] == 14
    reasons = {(s.clip, s.perturbation): s.reason for s in result.skipped}
    assert set(reasons) == {(c, p) for c in ("corrupt", "empty") for p in LIGHT}
    assert any(w in reasons[("corrupt", "lighting:dim")] for w in ("cannot be opened", "truncated"))
    assert "empty file" in reasons[("empty", "lighting:bright")]
    assert all(t.n == 12 for t in result.tests)


def test_in_memory_clips_and_edit_seeds_do_not_depend_on_batching(brightness_rater_path):
    rng = np.random.default_rng(0)
    clips = [Clip.from_frames(f"c{i}", rng.integers(0, 255, (4, 40, 50, 3), dtype=np.uint8))
             for i in range(5)]
    a = audit(str(brightness_rater_path), clips, ["lighting:dim"], batch_size=1)
    b = audit(str(brightness_rater_path), clips, ["lighting:dim"], batch_size=5)
    # Same edits whatever the batching; only float32 reduction order may differ.
    for ta, tb in zip(a.tests, b.tests):
        assert ta.mean_shift == pytest.approx(tb.mean_shift, abs=1e-6) and ta.verdict == tb.verdict
    c = audit(str(brightness_rater_path), clips, ["lighting:dim"], seed=1)
    assert c.test("lighting:dim", "openness").mean_shift != a.test("lighting:dim", "openness").mean_shift


@pytest.mark.parametrize("kwargs,message", [
    ({"perturbations": "lighting:nope"}, "unknown perturbation"),
    ({"margin": {"charisma": 0.1}}, "unknown trait"),
    ({"alpha": 0.7}, "alpha must be"),
    ({"batch_size": 0}, "batch_size"),
    ({"clips": []}, "no clips"),
])
def test_bad_arguments_are_config_errors(sample_dir, brightness_rater_path, kwargs, message):
    args = {"clips": sample_dir, "perturbations": ["lighting:dim"], **kwargs}
    with pytest.raises(ConfigError, match=message):
        audit(str(brightness_rater_path), args.pop("clips"), args.pop("perturbations"), **args)


def test_per_trait_margins_reach_the_tests(sample_dir, constant_rater_path):
    result = audit(str(constant_rater_path), sample_dir, ["lighting:dim"],
                       margin={"default": 0.1, "neuroticism": 0.02})
    assert result.test("lighting:dim", "neuroticism").margin == 0.02
    assert result.test("lighting:dim", "openness").margin == 0.1


def test_store_export_rows(tmp_path, sample_dir, constant_rater_path):
    db = tmp_path / "r.sqlite"
    audit(str(constant_rater_path), sample_dir, ["lighting:dim"], store=db)
    with Store(db) as store:
        rows = list(store.export_rows())
    assert len(rows) == 12 * 2 * 5 and rows[0][3] == pytest.approx(0.5)


def _clips_with_a_faceless_one(sample_dir):
    sources = discover(sample_dir)[:5]
    clips = [s.read(num_frames=SMALL.frames) for s in sources]
    faceless = clips[0].frames.copy()
    faceless[1:] = 100  # the face is in one frame of four
    clips.append(Clip.from_frames("faceless", faceless))
    return clips


def test_faceless_clip_skips_face_edits_but_not_background_or_lighting(sample_dir, brightness_rater_path,
                                                                        tmp_path):
    from auditkit.perturbations.annotate import Annotator

    clips = _clips_with_a_faceless_one(sample_dir)
    result = audit(str(brightness_rater_path), clips,
                       ["glasses:thick", "background:plain", "lighting:dim"],
                       annotator=Annotator(tmp_path))
    assert [(s.clip, s.perturbation, s.reason) for s in result.skipped] == [
        ("faceless", "glasses:thick", "no face found in 3 of 4 frames (the person is on screen in 1 of them)")]
    assert result.test("glasses:thick", "openness").n == 5
    assert result.test("background:plain", "openness").n == 6
    assert result.test("lighting:dim", "openness").n == 6
    # The threshold is the user's: a looser one lets the bridged landmarks carry the glasses.
    loose = audit(str(brightness_rater_path), clips, ["glasses:thick"], max_missing_face=0.8,
                      annotator=Annotator(tmp_path))
    assert not loose.skipped and loose.test("glasses:thick", "openness").n == 6


def test_second_run_does_no_annotation_work(sample_dir, constant_rater_path, tmp_path):
    from auditkit.perturbations.annotate import Annotator

    edits = ["glasses:thin", "background:office"]
    cold = Annotator(tmp_path / "cache")
    first = audit(str(constant_rater_path), sample_dir, edits, annotator=cold)
    assert cold.stats["clips_annotated"] == 12 and cold.stats["frames_annotated"] == 12 * SMALL.frames
    warm = Annotator(tmp_path / "cache")  # a new process, same cache
    second = audit(str(constant_rater_path), sample_dir, edits, annotator=warm)
    assert warm.stats == {"frames_annotated": 0, "clips_annotated": 0, "clips_cached": 12, "frames_hand_searched": 0}
    assert second.tests == first.tests
    resumed = Annotator(tmp_path / "cache")  # a resumed run with everything scored: no lookups
    audit(str(constant_rater_path), sample_dir, edits, annotator=resumed, store=tmp_path / "s.db")
    audit(str(constant_rater_path), sample_dir, edits, annotator=(again := Annotator(tmp_path / "cache")),
              store=tmp_path / "s.db")
    assert again.stats["clips_cached"] == 0 and again.stats["clips_annotated"] == 0


def test_two_arms_are_contrasted_directly(sample_dir, brightness_rater_path):
    result = audit(str(brightness_rater_path), sample_dir,
                       ["background:bookshelf", "background:plain", "lighting:dim"],
                       contrasts=[("background:bookshelf", "background:plain")])
    name = "background:bookshelf vs background:plain"
    contrast = result.test(name, "openness")
    a = result.test("background:bookshelf", "openness").mean_shift
    b = result.test("background:plain", "openness").mean_shift
    assert contrast.mean_shift == pytest.approx(a - b, abs=1e-9)
    assert len(result.tests) == 4 * 5  # three edits and one contrast, five traits each
    with pytest.raises(ConfigError, match="not among the audited edits"):
        audit(str(brightness_rater_path), sample_dir, ["lighting:dim"],
                  contrasts=[("lighting:dim", "lighting:bright")])


def test_skipped_pairs_are_tried_again_on_a_resumed_run(sample_dir, brightness_rater_path, tmp_path):
    from auditkit.perturbations.annotate import Annotator

    clips = _clips_with_a_faceless_one(sample_dir)
    db = tmp_path / "results.sqlite"
    strict = audit(str(brightness_rater_path), clips, ["glasses:thick"], store=db,
                       annotator=Annotator(tmp_path / "a"))
    assert [s.clip for s in strict.skipped] == ["faceless"]
    loose = audit(str(brightness_rater_path), clips, ["glasses:thick"], store=db,
                      max_missing_face=0.8, annotator=Annotator(tmp_path / "a"))
    assert not loose.skipped and loose.test("glasses:thick", "openness").n == 6


def test_a_rater_that_raises_is_a_rater_error_naming_the_clips(sample_dir):
    class Broken(TorchRater):
        def __call__(self, x):
            raise RuntimeError("CUDA out of memory (pretend)")

    with pytest.raises(RaterError, match=r"rater broken raised RuntimeError on clip\(s\) .*out of memory"):
        audit(Broken(BrightnessRater(), input=SMALL, name="broken"), sample_dir, ["lighting:dim"])
