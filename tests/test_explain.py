"""Where the rater looks, checked on raters whose answer is known: one reads only the top-left
corner (background in every sample clip), one only a window over the eyes (face), one nothing.
Both ways — region ablation through a real audit, and Captum's Integrated Gradients — on the
sample clips with real MediaPipe annotations."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from auditkit import perturbations, run_audit
from auditkit.contract.errors import ConfigError, RaterError
from auditkit.core.explain import ExplainSettings as ES
from auditkit.core.explain import (Attribution, ClipAttribution, explain, from_scores, overlay_png,
                                   scores_from_store)
from auditkit.core.store import Store
from auditkit.core.work import rater_input
from auditkit.perturbations.regions import REGIONS
from auditkit.raters import InputSpec, TorchRater, load_rater, save_torchscript
from conftest import ConstantRater

# Six frames, as the annotated_samples fixture reads the clips: the audit reuses its annotations.
SPEC = InputSpec(size=(64, 64), frames=6)
CORNER_TRAIT, EYES_TRAIT = "conscientiousness", "extraversion"


class CornerAndEyes(nn.Module):
    """Conscientiousness: brightness of the top-left corner. Extraversion: contrast (standard
    deviation) in a window over the eyes of every sample framing. The rest: constant."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        corner = x[..., : int(0.15 * h), : int(0.15 * w)].mean(dim=(1, 2, 3, 4))
        eyes = x[..., int(0.26 * h): int(0.39 * h) + 1, int(0.43 * w): int(0.53 * w) + 1]
        contrast = eyes.flatten(2).std(dim=2).mean(dim=1)
        half = torch.full_like(corner, 0.5)
        return torch.stack([half, corner, contrast, half, half], dim=1)


class Counting(TorchRater):
    calls = 0

    def __call__(self, x):
        Counting.calls += 1
        return super().__call__(x)


def bands() -> TorchRater:
    return TorchRater(CornerAndEyes(), input=SPEC, name="corner-and-eyes")


@pytest.fixture(scope="module")
def clips(annotated_samples):
    return [clip for clip, _ in annotated_samples]


@pytest.fixture(scope="module")
def region_audit(sample_dir, annotator, tmp_path_factory):
    """The region family audited the ordinary way, scores kept in a store."""
    db = tmp_path_factory.mktemp("explain") / "results.sqlite"
    # Twelve clips of two people: the clip is the unit here, and no retest control is needed.
    result = run_audit(bands(), sample_dir, ["region"], annotator=annotator, store=db, unit="clip", retest=False)
    return result, db


@pytest.fixture(scope="module")
def gradients(clips, annotator):
    return explain(bands(), clips, ES("integrated_gradients", len(clips)), annotator=annotator)


def test_region_ablation_in_an_audit_finds_the_background_and_the_face(region_audit, clips, annotator):
    result, db = region_audit
    assert set(result.perturbations) == {f"region:{r}" for r in REGIONS}
    with Store(db) as store:
        shifts = store.shifts(result)
        # The share, by hand: each region's mean |shift| over clips, as part of all four.
        for trait, region in ((CORNER_TRAIT, "background"), (EYES_TRAIT, "face")):
            size = {r: float(np.mean(np.abs(shifts[(f"region:{r}", trait)]))) for r in REGIONS}
            assert size[region] / sum(size.values()) >= 0.8, (trait, size)
        # ...and per clip, averaged, with an interval: what the attribution section reports.
        ablation = from_scores(scores_from_store(store), clips, annotator, result.traits)
    assert len(ablation.clips) == len(clips) and not ablation.skipped
    assert ablation.share(CORNER_TRAIT, "background") >= 0.8
    assert ablation.share(EYES_TRAIT, "face") >= 0.8
    low, high = ablation.summary(CORNER_TRAIT)["background"].share_ci
    assert low <= ablation.share(CORNER_TRAIT, "background") <= high <= 1
    # The corner is a small part of the background and the eyes of the face: density says so.
    assert ablation.density(EYES_TRAIT, "face") > 3 > ablation.density(EYES_TRAIT, "background")


def test_explain_by_ablation_gives_what_the_audit_gives(region_audit, clips, annotator):
    result, db = region_audit
    with Store(db) as store:
        from_audit = from_scores(scores_from_store(store), clips, annotator, result.traits)
    direct = explain(bands(), clips, ES("ablation", len(clips)), annotator=annotator)
    assert [c.clip for c in direct.clips] == [c.clip for c in from_audit.clips]
    for a, b in zip(direct.clips, from_audit.clips):
        np.testing.assert_allclose(a.regions, b.regions, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(a.area, b.area)


def test_integrated_gradients_finds_the_background_and_the_face(gradients):
    assert gradients.method == "integrated_gradients" and len(gradients.clips) == 12
    assert gradients.share(CORNER_TRAIT, "background") >= 0.8
    assert gradients.share(EYES_TRAIT, "face") >= 0.8
    # Completeness: a trait's attributions add up to score(clip) − score(grey frame).
    for clip in gradients.clips:
        assert float(np.max(clip.gap / np.maximum(np.abs(clip.total), 1e-9))) < 0.05, clip.clip
    assert gradients.density(CORNER_TRAIT, "background") > 1 > gradients.density(CORNER_TRAIT, "face")


def test_the_gradients_distribute_the_whole_grey_frame_shift(gradients, annotated_samples):
    # IG's baseline is region:all's picture, so its total is that control's shift, negated.
    rater = bands()
    for (clip, ann), found in zip(annotated_samples[:3], gradients.clips):
        grey = perturbations.get("region:all")(clip.frames, ann).frames
        before = rater(rater_input(torch.from_numpy(clip.frames), SPEC)[None])[0]
        after = rater(rater_input(grey, SPEC)[None])[0]
        np.testing.assert_allclose(found.total, (before - after).numpy(), atol=1e-6)
        # Shares are of |attribution|: pixels pushing opposite ways do not cancel.
        assert bool((found.regions.sum(axis=1) >= np.abs(found.total) * 0.99 - 1e-9).all())


def test_a_torchscript_rater_gets_the_same_attribution(clips, annotator, gradients, tmp_path):
    path = save_torchscript(CornerAndEyes(), tmp_path / "bands.pt", input=SPEC)
    scripted = explain(load_rater(str(path)), clips[:3], ES("auto", 3), annotator=annotator)
    assert scripted.method == "integrated_gradients"
    for a, b in zip(scripted.clips, gradients.clips[:3]):
        np.testing.assert_allclose(a.regions, b.regions, rtol=1e-4, atol=1e-9)


def test_a_rater_that_ignores_its_input_gets_zero_and_invariant(sample_dir, clips, annotator):
    rater = TorchRater(ConstantRater(), input=SPEC, name="constant")
    result = run_audit(rater, sample_dir, ["region"], annotator=annotator, unit="clip", retest=False)
    assert {t.verdict for t in result.tests} == {"invariant"} and len(result.tests) == 4 * 5
    for method in ("integrated_gradients", "ablation"):
        found = explain(rater, clips[:4], ES(method), annotator=annotator)
        for c in found.clips:
            assert not c.regions.any() and not c.heatmaps.any(), method
        data = found.to_dict()
        json.dumps(data, allow_nan=False)  # strict JSON: no NaN anywhere
        for trait, entry in data["traits"].items():
            assert entry["n"] == 0 and entry["n_zero"] == 4 and "no attribution" in entry["note"]
            assert all(r["share"] == 0 and r["density"] == 0 for r in entry["regions"].values())


def test_traits_the_rater_does_not_compute_from_the_input_get_zero(gradients):
    data = gradients.to_dict()
    for trait in ("openness", "agreeableness", "neuroticism"):
        assert data["traits"][trait]["n"] == 0
        assert all(r["share"] == 0 for r in data["traits"][trait]["regions"].values())
    assert data["traits"][CORNER_TRAIT]["n"] == 12 and data["traits"][CORNER_TRAIT]["note"] == ""


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # the window is fixed at export, on purpose
def test_an_onnx_rater_is_refused_gradients_and_explained_by_ablation(clips, annotator, tmp_path):
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "bands.onnx"
    torch.onnx.export(CornerAndEyes(), (torch.rand(1, SPEC.frames, 3, *SPEC.size),), str(path),
                      input_names=["video"], output_names=["scores"],
                      dynamic_axes={"video": {0: "batch"}, "scores": {0: "batch"}}, dynamo=False)
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "auditkit", json.dumps({"frames": SPEC.frames})
    onnx.save(model, str(path))
    rater = load_rater(str(path))
    with pytest.raises(RaterError, match=r"^explain: rater .*bands.onnx \(OnnxRater\) is not a PyTorch "
                                         r"module, so integrated_gradients cannot run; use method='ablation'"):
        explain(rater, clips[:2], ES("integrated_gradients"), annotator=annotator)
    found = explain(rater, clips[:4], annotator=annotator)
    torch_found = explain(bands(), clips[:4], ES("ablation"), annotator=annotator)
    assert found.method == "ablation"
    for a, b in zip(found.clips, torch_found.clips):
        np.testing.assert_allclose(a.regions, b.regions, atol=1e-5)


def test_a_module_that_breaks_the_gradient_is_refused(clips, annotator):
    class Detached(nn.Module):
        def forward(self, x):
            return x.detach().mean(dim=(1, 2, 3, 4)).unsqueeze(1).expand(-1, 5)

    with pytest.raises(RaterError, match="carry no gradient .* use method='ablation'"):
        explain(TorchRater(Detached(), input=SPEC, name="detached"), clips[:1], ES("integrated_gradients"),
                annotator=annotator)


def test_cost_is_bounded_and_a_cache_hit_costs_nothing(sample_dir, annotator):
    rater = Counting(CornerAndEyes(), input=SPEC, name="counting")
    cache: dict[str, bytes] = {}
    ticks = []
    first = explain(rater, sample_dir, ES("ablation", 3, 1), annotator=annotator,
                    cache=cache, progress=ticks.append)
    assert len(first.clips) == 3 and len(cache) == 3 and sum(ticks) == 3
    # Spread over the folder, not its first three clips.
    assert [c.clip for c in first.clips] == ["collins_06_tight", "hopper_00_tight", "hopper_05_tight"]
    assert all(c.frames.shape == (1, 64, 64, 3) and c.heatmaps.shape == (5, 1, 64, 64) for c in first.clips)
    calls = Counting.calls
    again = explain(rater, sample_dir, ES("ablation", 3, 1), annotator=annotator, cache=cache)
    assert Counting.calls == calls
    assert again.to_dict() == first.to_dict()


def test_only_the_traits_asked_for_are_explained(clips, annotator, gradients):
    one = explain(bands(), clips[:2], ES("integrated_gradients", traits=[EYES_TRAIT]), annotator=annotator)
    assert one.traits == (EYES_TRAIT,) and list(one.to_dict()["traits"]) == [EYES_TRAIT]
    k = gradients.traits.index(EYES_TRAIT)
    for a, b in zip(one.clips, gradients.clips[:2]):
        assert a.regions.shape == (1, 4) and a.heatmaps.shape[0] == 1
        np.testing.assert_allclose(a.regions[0], b.regions[k], rtol=1e-4, atol=1e-9)


def test_the_result_round_trips_through_bytes(gradients):
    back = Attribution.from_bytes(gradients.to_bytes())
    assert back.to_dict() == gradients.to_dict()
    clip = gradients.clips[0]
    np.testing.assert_array_equal(back.heatmap(clip.clip, EYES_TRAIT), gradients.heatmap(clip.clip, EYES_TRAIT))
    np.testing.assert_array_equal(ClipAttribution.from_bytes(clip.to_bytes()).frames, clip.frames)
    assert gradients.to_dict()["traits"][EYES_TRAIT]["regions"]["face"]["share_ci"][1] <= 1
    assert len(json.dumps(gradients.to_dict())) < 20_000  # compact: no pixels in audit.json


def test_overlays_show_the_frame_beside_its_heatmap(gradients):
    clip = gradients.clips[0]
    png = gradients.overlay(clip.clip, EYES_TRAIT, frame=1, side=128)
    image = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert image.shape == (128, 2 * 128 + 4, 3)
    left, right = image[:, :128].astype(int), image[:, 132:].astype(int)
    assert np.abs(left - cv2.resize(clip.frames[1], (128, 128), interpolation=cv2.INTER_NEAREST)).max() == 0
    # The heat is over the eyes: the right panel differs from the dimmed frame there, not in the corner.
    dimmed = np.round(left * 0.45)
    assert np.abs(right - dimmed)[40:50, 55:68].mean() > 20
    assert np.abs(right - dimmed)[:15, :15].max() <= 1
    zero = overlay_png(clip.frames[0], np.zeros(clip.frames.shape[1:3]), side=64)
    flat = cv2.imdecode(np.frombuffer(zero, np.uint8), cv2.IMREAD_COLOR)
    assert flat.shape == (64, 132, 3)


def test_bad_options_are_one_line_each(clips, annotator):
    with pytest.raises(ConfigError, match="explain: method must be one of auto, integrated_gradients, "
                                          "ablation, got 'shap'"):
        ES("shap")
    for name in ("clips", "frames", "steps"):
        with pytest.raises(ConfigError, match=f"explain: {name} must be an integer >= "):
            ES(**{name: 0})
    with pytest.raises(ConfigError, match="explain: traits must be distinct names among openness, "
                                          "conscientiousness, .*, got 'grit'"):
        explain(bands(), clips, ES(traits=["grit"]), annotator=annotator)
    with pytest.raises(KeyError, match="no trait 'grit'"):
        explain(bands(), clips[:1], ES("ablation"), annotator=annotator).share("grit", "face")
