"""Batching across edits, annotation on worker processes, Ray, partial rater failures, thumbnails.

Every executor must give the same numbers: the tests compare whole ``audit.json`` test lists,
not a tolerance.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from auditkit import run_audit
from auditkit.contract.errors import ConfigError, PartialScores
from auditkit.raters import TorchRater
from auditkit.core.store import Store
from conftest import SMALL, BrightnessRater

# Clips as the unit and no retest control, unless a test is about them: these tests are about
# scoring, resuming and skipping, and the sample set's two people would make every verdict
# "inconclusive" with people as the unit.
PLAIN = {"unit": "clip", "retest": False}

# One Ray at a time on this machine: every Ray test runs on the same xdist worker, in turn.
pytestmark = pytest.mark.xdist_group("ray")


def audit(*args, **kwargs):
    return run_audit(*args, **{**PLAIN, **kwargs})


FACE_AND_LIGHT = ["lighting:dim", "glasses:thick", "background:plain"]


def _tests(result):
    return [t.to_dict() for t in result.tests]


class RecordingRater(TorchRater):
    """Remembers the batch size of every call."""

    def __init__(self, **kw):
        super().__init__(BrightnessRater(), input=SMALL, name="recording", **kw)
        self.sizes: list[int] = []

    def __call__(self, x):
        self.sizes.append(len(x))
        return super().__call__(x)


def test_original_and_every_edit_of_a_batch_go_to_the_rater_together(sample_dir):
    rater = RecordingRater()
    audit(rater, sample_dir, ["lighting:dim", "lighting:bright"], batch_size=4)
    assert rater.sizes == [12, 12, 12]  # 4 clips x (original + 2 edits), one call per batch


def test_calls_are_split_by_the_memory_cap_and_the_scores_do_not_change(sample_dir):
    whole, split = RecordingRater(), RecordingRater()
    one_input = SMALL.frames * 3 * SMALL.size[0] * SMALL.size[1] * 4
    a = audit(whole, sample_dir, ["lighting:dim", "lighting:bright"], batch_size=4)
    b = audit(split, sample_dir, ["lighting:dim", "lighting:bright"], batch_size=4,
                  call_bytes=5 * one_input)
    assert split.sizes == [5, 5, 2] * 3 and max(split.sizes) * one_input <= 5 * one_input
    assert _tests(a) == _tests(b)


def test_annotation_on_a_worker_process_gives_the_same_audit(sample_dir, tmp_path):
    from auditkit.perturbations.annotate import Annotator

    here = Annotator(tmp_path / "here")
    a = audit("builtin:appearance", sample_dir, FACE_AND_LIGHT, annotator=here, workers=0)
    pooled = Annotator(tmp_path / "pooled")
    b = audit("builtin:appearance", sample_dir, FACE_AND_LIGHT, annotator=pooled, workers=1)
    assert _tests(a) == _tests(b) and a.skipped == b.skipped
    # The workers' annotation work is counted where the caller can see it.
    assert pooled.stats["clips_annotated"] == here.stats["clips_annotated"] == 12
    assert len(list((tmp_path / "pooled").glob("*.npz"))) == 12


def test_workers_must_be_a_count():
    with pytest.raises(ConfigError, match="workers must be an integer >= 0"):
        audit("builtin:constant", [], ["lighting:dim"], workers=-1)
    with pytest.raises(ConfigError, match="executor must be one of local, ray"):
        audit("builtin:constant", [], ["lighting:dim"], executor="dask")


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_executor_gives_the_identical_audit(sample_dir, tmp_path, local_ray):
    from auditkit.perturbations.annotate import Annotator

    # The headscarf's shading runs exp/sin/atan2 kernels whose last bit depends on the thread
    # count: the actors must run with the thread count of this process for the scores to agree.
    edits = FACE_AND_LIGHT + ["headwear:headscarf"]
    local = audit("builtin:appearance", sample_dir, edits, annotator=Annotator(tmp_path / "a"),
                      store=tmp_path / "local.sqlite")
    spread = audit("builtin:appearance", sample_dir, edits, annotator=Annotator(tmp_path / "b"),
                       store=tmp_path / "ray.sqlite", executor="ray", workers=2)
    assert _tests(local) == _tests(spread)
    assert local.skipped == spread.skipped and local.n_clips == spread.n_clips == 12
    with Store(tmp_path / "local.sqlite") as a, Store(tmp_path / "ray.sqlite") as b:
        assert list(a.export_rows()) == list(b.export_rows())  # every per-clip score, bit for bit


def test_ray_actor_errors_come_back_as_one_line(sample_dir, local_ray, tmp_path):
    from auditkit.contract.errors import RaterError

    with pytest.raises(RaterError, match=r"rater .*nan\.py:make returned NaN or inf for clip\(s\)"):
        factory = tmp_path / "nan.py"
        factory.write_text(
            "import torch\nfrom auditkit.raters import TorchRater, InputSpec\n"
            "class M(torch.nn.Module):\n    def forward(self, x):\n"
            "        return torch.full((x.shape[0], 5), float('nan'))\n"
            "def make():\n    return TorchRater(M(), input=InputSpec(size=(32, 32), frames=2))\n")
        audit(f"{factory}:make", sample_dir, ["lighting:dim"], executor="ray", workers=1)


class HalfFailing(TorchRater):
    """A vendor-like rater whose request for some clips finally failed: PartialScores."""

    def __init__(self, bad: set[str]):
        super().__init__(BrightnessRater(), input=SMALL, name="vendor")
        self.bad = bad
        self.current: list[str] = []

    def __call__(self, x):
        out = super().__call__(x)
        failures = {i: "http: 503 Service Unavailable after 4 attempts" for i, brightness in
                    enumerate(x.mean(dim=(1, 2, 3, 4)).tolist()) if round(brightness, 6) in self.bad}
        if failures:
            out = out.clone()
            out[list(failures)] = float("nan")
            raise PartialScores(out, failures)
        return out


def test_rows_a_rater_could_not_score_are_skipped_with_the_reason_never_scored(sample_dir, tmp_path):
    # Fail every lighting:dim input of the first clip, identified by its exact mean brightness.
    probe = RecordingRater()
    db = tmp_path / "probe.sqlite"
    audit(probe, sample_dir, ["lighting:dim"], store=db)
    with Store(db) as store:
        first = store.clip_ids()[0]
        o_bright = store.scores("lighting:dim", "openness")[first]  # openness = mean brightness
    rater = HalfFailing({round(o_bright, 6)})
    result = audit(rater, sample_dir, ["lighting:dim"], store=tmp_path / "r.sqlite")
    assert [(s.clip, s.perturbation) for s in result.skipped] == [(first, "lighting:dim")]
    assert result.skipped[0].reason == "rater failed: http: 503 Service Unavailable after 4 attempts"
    assert result.test("lighting:dim", "openness").n == 11
    with Store(tmp_path / "r.sqlite") as store:
        assert first not in store.scores("lighting:dim", "openness")  # no zero, no NaN stored


def test_each_scored_input_keeps_its_middle_frame_for_the_dashboard(sample_dir, tmp_path):
    audit("builtin:appearance", sample_dir, ["lighting:dim"], store=tmp_path / "r.sqlite")
    with Store(tmp_path / "r.sqlite") as store:
        cid = store.clip_ids()[0]
        original = cv2.imdecode(np.frombuffer(store.thumb(cid, "original"), np.uint8), cv2.IMREAD_COLOR)
        dim = cv2.imdecode(np.frombuffer(store.thumb(cid, "lighting:dim"), np.uint8), cv2.IMREAD_COLOR)
        assert store.thumb(cid, "glasses:thick") is None
    assert original.shape == dim.shape and max(original.shape[:2]) <= 256
    assert dim.mean() < original.mean() - 10  # the edited frame, not a copy of the original


def test_an_annotator_that_has_run_still_travels_to_other_processes(sample_dir, tmp_path):
    import pickle

    from auditkit.perturbations.annotate import Annotator

    used = Annotator(tmp_path / "a")
    audit("builtin:appearance", sample_dir, ["glasses:thick"], annotator=used)  # MediaPipe loaded
    copy = pickle.loads(pickle.dumps(used))
    assert copy.cache_dir == used.cache_dir and copy.stats == used.stats


def test_ray_actors_run_with_the_thread_count_of_the_process_that_started_the_audit(sample_dir, tmp_path,
                                                                                    local_ray):
    # Some CPU kernels round differently depending on how many threads split a tensor (see
    # executors.Job.threads), so an actor with another thread count could score differently.
    factory = tmp_path / "threads.py"
    factory.write_text(
        "import torch\nfrom auditkit.raters import TorchRater, InputSpec\n"
        "class M(torch.nn.Module):\n    def forward(self, x):\n"
        "        return torch.full((x.shape[0], 5), torch.get_num_threads() / 100.0)\n"
        "def make():\n    return TorchRater(M(), input=InputSpec(size=(32, 32), frames=2), identity='threads')\n")
    import torch

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)  # not what Ray would give an actor of one CPU
        audit(f"{factory}:make", sample_dir, ["lighting:dim"], executor="ray", workers=2,
                  store=tmp_path / "r.sqlite")
    finally:
        torch.set_num_threads(threads)
    with Store(tmp_path / "r.sqlite") as store:
        assert {round(v, 4) for v in store.scores("original", "openness").values()} == {0.03}


def _rows(path):
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return {table: db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                for table in ("clips", "scores", "skipped", "thumbs")}
    finally:
        db.close()


def test_timing_the_stages_changes_no_record(sample_dir, tmp_path):
    from dataclasses import replace

    from auditkit.core.executors import LocalExecutor

    class Timed(LocalExecutor):
        """What bench/audit_speed.py and bench/gpu_check.py do: ask every batch to time its stages."""

        def __init__(self):
            super().__init__(workers=0)
            self.seconds: dict[str, float] = {}

        def run(self, job, batches):
            for outcome in super().run(replace(job, timing=True), batches):
                for stage, value in outcome.seconds.items():
                    self.seconds[stage] = self.seconds.get(stage, 0.0) + value
                yield outcome

    edits = ["lighting:dim", "glasses:thick"]
    plain = run_audit(RecordingRater(), sample_dir, edits, store=tmp_path / "plain.sqlite")
    timed = Timed()
    again = run_audit(RecordingRater(), sample_dir, edits, store=tmp_path / "timed.sqlite", executor=timed)
    assert _tests(plain) == _tests(again)
    assert _rows(tmp_path / "plain.sqlite") == _rows(tmp_path / "timed.sqlite")
    assert set(timed.seconds) == {"decode", "annotate", "edits", "input", "rater"}
    assert all(value > 0 for value in timed.seconds.values())
