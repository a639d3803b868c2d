"""Training data in the ChaLearn First Impressions V2 layout, and the frame pipeline shared by
training and evaluation.

The layout: ``annotation_training.pkl`` / ``annotation_validation.pkl`` / ``annotation_test.pkl``
beside folders of clips, each pickle a dict ``{trait: {"clip.mp4": score}}`` over the five traits
plus ``interview``. Pickles come from outside, so they are read by a restricted unpickler that
builds only dicts, lists, strings and numbers; anything else (a class, a function, a module
global — how a pickle runs code) is refused with the name of what it asked for.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from auditkit.contract.errors import ConfigError
from auditkit.contract.rater import DEFAULT_CROP_MARGIN, OCEAN
from auditkit.media.clips import VIDEO_EXTENSIONS, Clip, Timing, read_video

SPLITS = {"training": "annotation_training.pkl", "validation": "annotation_validation.pkl",
          "test": "annotation_test.pkl"}
_NUMPY_SCALARS = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                  ("numpy", "dtype")}


class UnsafePickleError(ConfigError):
    """A pickle that asks for more than plain data."""


class _PlainDataUnpickler(pickle.Unpickler):
    """Builds dicts, lists, strings and numbers only. Numpy scalars (how many published label
    files store their floats) are allowed as numbers; every other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_SCALARS:
            return super().find_class(module, name)
        raise UnsafePickleError(f"it asks for {module}.{name}")


def load_plain_pickle(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        data = _PlainDataUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: refused — {exc}; label files must hold only dicts, lists, "
                                "strings and numbers") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a readable pickle ({exc})") from None
    _check_plain(data, path)
    return data


def _check_plain(value: Any, path: Path, where: str = "top level") -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int, float)):
                raise UnsafePickleError(f"{path}: refused — a key of type {type(k).__name__} at {where}")
            _check_plain(v, path, f"{where}[{k!r}]")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_plain(v, path, f"{where}[{i}]")
    elif isinstance(value, (str, int, float, np.floating, np.integer)) and not isinstance(value, bool):
        return
    else:
        raise UnsafePickleError(f"{path}: refused — {type(value).__name__} at {where}; label files "
                                "must hold only dicts, lists, strings and numbers")


@dataclass(frozen=True)
class LabelledClip:
    path: Path
    labels: tuple[float, ...]     # in the order of ``traits``

    @property
    def id(self) -> str:
        return self.path.stem


def load_split(root: str | os.PathLike, split: str, traits: Sequence[str] = OCEAN) -> list[LabelledClip]:
    """The labelled clips of one split. Every labelled clip must exist under ``root``."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    root = Path(root)
    path = root / SPLITS[split]
    if not path.is_file():
        raise ConfigError(f"{path}: annotation file of the {split} split does not exist")
    table = load_plain_pickle(path)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: expected a dict {{trait: {{clip: score}}}}")
    missing = [t for t in traits if t not in table]
    if missing:
        raise ConfigError(f"{path}: no scores for trait(s) {', '.join(missing)} (has {', '.join(map(str, table))})")
    for t in traits:
        if not isinstance(table[t], dict):
            raise ConfigError(f"{path}: scores of {t!r} must be a dict {{clip: score}}, "
                              f"got {type(table[t]).__name__}")
    files = {p.name: p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()}
    names = sorted(table[traits[0]])
    out = []
    for name in names:
        if name not in files:
            raise ConfigError(f"{path}: clip {name!r} is labelled but not found under {root}")
        scores = []
        for t in traits:
            value = table[t].get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not np.isfinite(float(value)):
                raise ConfigError(f"{path}: clip {name!r} has no valid {t} score (got {value!r})")
            scores.append(float(value))
        out.append(LabelledClip(files[name], tuple(scores)))
    return out


def data_hash(items: Iterable[LabelledClip]) -> str:
    """Identifies a training set by its clips' names and labels (not their bytes: fast)."""
    h = hashlib.sha256()
    for item in items:
        h.update(item.path.name.encode())
        h.update(np.asarray(item.labels, np.float64).tobytes())
    return "sha256:" + h.hexdigest()[:32]


def face_crop(clip: Clip, annotations: Any, margin: float = DEFAULT_CROP_MARGIN) -> np.ndarray:
    """The square around the face a face-crop rater sees (``face_crop_box``, the audit's own), so
    that training and audit crop alike. Falls back to the full frame when the clip has no face."""
    from auditkit.perturbations.annotate import face_crop_box

    frames = clip.frames
    box = face_crop_box(annotations, frames.shape[1], frames.shape[2], margin)
    if box is None:
        return frames
    top, left, side = box
    return np.ascontiguousarray(frames[:, top:top + side, left:left + side])


def read_clip(item: LabelledClip, *, frames: int, max_side: int = 256, audio: Any = None) -> Clip:
    """A training clip read as the audit reads it: with ``audio`` (an AudioSpec), its frames and
    sound come from the same window."""
    return read_video(item.path, num_frames=frames, max_side=max_side, audio=audio,
                      timing=Timing(audio.seconds) if audio is not None else None)
