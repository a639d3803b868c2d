"""The OCEAN regressor, its checkpoints, First Impressions data and the trainer."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from auditkit import run_audit
from auditkit.contract.errors import ConfigError, RaterError
from auditkit.raters import OCEAN, load_rater
from auditkit.models.checkpoint import load_checkpoint, save_checkpoint
from auditkit.models.data import UnsafePickleError, data_hash, load_plain_pickle, load_split
from auditkit.models.ocean import BACKBONES, OceanRegressor


@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_backbone_scores_in_unit_range(backbone):
    model = OceanRegressor(backbone, pooling="attention", size=64, frames=2).eval()
    with torch.inference_mode():
        out = model(torch.rand(3, 2, 3, 64, 64))
    assert out.shape == (3, 5) and bool(((out > 0) & (out < 1)).all())
    assert model.trait_names == OCEAN and model.input.frames == 2


def test_mean_pooling_is_order_free_and_attention_is_a_convex_mix():
    model = OceanRegressor("resnet18", size=32, frames=3).eval()
    x = torch.rand(1, 3, 3, 32, 32)
    with torch.inference_mode():
        assert torch.allclose(model(x), model(x.flip(1)), atol=1e-6)
    attentive = OceanRegressor("resnet18", pooling="attention", size=32, frames=3).eval()
    torch.manual_seed(0)
    torch.nn.init.normal_(attentive.attention.weight, std=0.5)  # weights far from uniform
    with torch.inference_mode():
        frames = ((x.reshape(3, 3, 32, 32) - attentive.mean) / attentive.std)
        feats = attentive.backbone(frames).reshape(1, 3, -1)
        weights = torch.softmax(attentive.attention(feats), dim=1)
        assert torch.allclose(weights.sum(dim=1), torch.ones(1, 1)) and bool((weights > 0).all())
        assert weights.max() - weights.min() > 0.05  # it does weigh frames, not average them
        pooled = (weights * feats).sum(dim=1)
        lo, hi = feats.min(dim=1).values, feats.max(dim=1).values
        assert bool(((pooled >= lo - 1e-5) & (pooled <= hi + 1e-5)).all())  # inside the frames' hull
        assert torch.allclose(attentive(x), torch.sigmoid(attentive.head(pooled)), atol=1e-6)
        assert torch.allclose(attentive(x), attentive(x.flip(1)), atol=1e-5)  # still order-free
        mean_pooled = torch.sigmoid(attentive.head(feats.mean(dim=1)))
        assert not torch.allclose(attentive(x), mean_pooled, atol=1e-4)


def test_checkpoint_round_trip_and_rater(tmp_path, sample_dir):
    model = OceanRegressor("resnet18", size=48, frames=2).eval()
    path = save_checkpoint(model, tmp_path / "r.pt", metadata={"augment": ["background-swap"], "note": "x"})
    loaded, meta = load_checkpoint(path)
    assert meta["augment"] == ["background-swap"]
    x = torch.rand(2, 2, 3, 48, 48)
    with torch.inference_mode():
        assert torch.allclose(loaded(x), model(x))
    rater = load_rater(str(path))
    assert rater.input.size == (48, 48) and rater.identity.startswith("sha256:")
    result = run_audit(str(path), sample_dir, ["lighting:dim"], retest=False)
    assert result.n_clips == 12 and len(result.tests) == 5


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo should-never-run",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "auditkit.ocean-checkpoint", "payload": Payload()}, path)
    with pytest.raises(RaterError, match="refused .* would import or run code.*posix.system"):
        load_checkpoint(path)
    with pytest.raises(RaterError, match="refused"):
        load_rater(str(path))


def test_user_backbone_weights_are_loaded_safely(tmp_path):
    source = OceanRegressor("resnet18", size=32, frames=1)
    torch.save(source.backbone.state_dict(), tmp_path / "imagenet.pth")
    model = OceanRegressor("resnet18", size=32, frames=1, weights=tmp_path / "imagenet.pth")
    for a, b in zip(model.backbone.state_dict().values(), source.backbone.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(RaterError, match="does not fit backbone"):
        OceanRegressor("mobilenet_v3_small", size=32, frames=1, weights=tmp_path / "imagenet.pth")


def make_first_impressions(root: Path, sample_dir: Path, *, seed: int = 0) -> Path:
    """A First Impressions-shaped folder: clips in two sub-folders, three annotation pickles
    ``{trait: {clip.mp4: score}}`` with the five traits plus interview."""
    rng = np.random.default_rng(seed)
    clips = sorted(sample_dir.glob("*.mp4"))
    splits = {"training": clips[:8], "validation": clips[8:10], "test": clips[10:]}
    for split, files in splits.items():
        folder = root / f"{split}80_01"
        folder.mkdir(parents=True)
        table = {t: {} for t in (*OCEAN, "interview")}
        for f in files:
            name = f"{f.stem}.mp4"
            shutil.copy(f, folder / name)
            for t in table:
                table[t][name] = np.float64(rng.uniform(0.2, 0.8))  # numpy scalars, as published
        with open(root / f"annotation_{split}.pkl", "wb") as fh:
            pickle.dump(table, fh)
    return root


def test_first_impressions_layout_is_read(tmp_path, sample_dir):
    root = make_first_impressions(tmp_path / "fi", sample_dir)
    items = load_split(root, "training")
    assert len(items) == 8 and all(len(i.labels) == 5 for i in items)
    assert data_hash(items) == data_hash(load_split(root, "training"))
    with pytest.raises(ConfigError, match="annotation file of the test split"):
        load_split(tmp_path, "test")


class Sneaky:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("payload,message", [
    ({"openness": {"a.mp4": Sneaky()}}, "asks for posix.system"),
    ({"openness": {"a.mp4": {1, 2}}}, "set at"),
    ({"openness": ("a", 1.0)}, "tuple at"),
    ({"openness": {"a.mp4": b"bytes"}}, "bytes at"),
])
def test_label_pickles_with_anything_but_plain_data_are_refused(tmp_path, payload, message):
    path = tmp_path / "annotation_training.pkl"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(UnsafePickleError, match=message):
        load_plain_pickle(path)


def test_train_end_to_end_on_a_first_impressions_fixture(tmp_path, sample_dir):
    root = make_first_impressions(tmp_path / "fi", sample_dir)
    out = tmp_path / "rater.pt"
    cmd = [sys.executable, "-m", "auditkit.models.train", "--data", str(root), "--out", str(out),
           "--size", "32", "--frames", "2", "--epochs", "2", "--batch-size", "4",
           "--augment", "background-swap", "--augment", "counterfactual:lighting", "--consistency", "0.5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 2/2" in proc.stdout and "mean accuracy" in proc.stdout
    model, meta = load_checkpoint(out)
    assert meta["augment"] == ["background-swap", "counterfactual:lighting"]
    assert meta["input"] == {"size": [32, 32], "frames": 2} and meta["traits"] == list(OCEAN)
    assert set(meta["metrics"]["pearson_r"]) == set(OCEAN) and 0 < meta["metrics"]["mean_accuracy"] <= 1
    assert meta["data_hash"].startswith("sha256:")
    json.dumps(meta)  # plain data only
    bad = subprocess.run([sys.executable, "-m", "auditkit.models.train", "--data", str(tmp_path / "none"),
                          "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "error:" in bad.stderr and "Traceback" not in bad.stderr


def test_face_crop_is_a_square_around_the_face_for_the_whole_clip(annotated_samples):
    from auditkit.models.data import face_crop

    clip, ann = next((c, a) for c, a in annotated_samples if c.id == "collins_08_wide")
    # A wide framing: the crop around the face is much smaller than the frame.
    crop = face_crop(clip, ann)
    assert crop.shape[0] == clip.num_frames and crop.shape[1] == crop.shape[2]
    assert crop.shape[1] < 0.9 * min(clip.size)
    fw = float((ann.face_box[:, 2] - ann.face_box[:, 0]).max())
    assert crop.shape[1] >= fw  # the whole face fits


def test_label_values_of_the_wrong_type_are_named(tmp_path, sample_dir):
    root = make_first_impressions(tmp_path / "fi", sample_dir)
    table = load_plain_pickle(root / "annotation_training.pkl")
    first = sorted(table["openness"])[0]
    table["openness"][first] = "high"
    (root / "annotation_training.pkl").write_bytes(pickle.dumps(table))
    with pytest.raises(ConfigError, match=f"clip '{first}' has no valid openness score .got 'high'"):
        load_split(root, "training")
    table["openness"] = [1, 2]
    (root / "annotation_training.pkl").write_bytes(pickle.dumps(table))
    with pytest.raises(ConfigError, match="scores of 'openness' must be a dict"):
        load_split(root, "training")
