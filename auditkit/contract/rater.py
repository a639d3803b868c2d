"""The rater contract every other part of auditkit relies on.

A rater has ``trait_names`` and ``input`` (an :class:`InputSpec`) and is called with float32
``[B, T, 3, H, W]`` RGB in [0, 1] (already sampled to ``input.frames`` frames and resized to
``input.size``), returning ``[B, K]`` scores, K = ``len(trait_names)``. A rater that listens
declares ``input.audio`` (an :class:`AudioSpec`) and is called ``rater(frames, audio)`` with
float32 ``[B, C, S]`` in [-1, 1]: the clip's sound over the window its frames come from. How a rater is loaded
from a file or a URL is the adapters' business (:mod:`auditkit.raters`); this module knows only
what a loaded rater must look like and how its output is checked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import torch
from torch import nn

from .errors import RaterError
from .paths import file_digest

OCEAN = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
CROPS = ("full", "face")
INPUT_KEYS = ("size", "frames", "crop", "crop_margin", "audio", "fps", "seconds")
MAX_FPS = 240.0
DEFAULT_CROP_MARGIN = 0.6  # of the face box's side, on each side: the training recipe's face crop


AUDIO_KEYS = ("sample_rate", "channels", "seconds")


@dataclass(frozen=True)
class AudioSpec:
    """What a rater hears: ``channels`` of sound at ``sample_rate`` Hz over ``seconds`` centred in
    the clip (the frames are then sampled inside that window; past the clip's end the sound is
    zero), or over the whole clip when ``seconds`` is ``None`` — then every clip's sound has its
    own length, and all of one clip's conditions go to the rater in one call."""

    sample_rate: int = 16000
    channels: int = 1
    seconds: float | None = None

    def __post_init__(self) -> None:
        rate, channels, seconds = self.sample_rate, self.channels, self.seconds
        if not (isinstance(rate, int) and not isinstance(rate, bool) and 1000 <= rate <= 192000):
            raise RaterError(f"rater input audio sample_rate must be an integer in [1000, 192000] Hz, got {rate!r}")
        if not (isinstance(channels, int) and not isinstance(channels, bool) and 1 <= channels <= 8):
            raise RaterError(f"rater input audio channels must be an integer in [1, 8], got {channels!r}")
        if seconds is not None:
            ok = isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and 0 < seconds <= 3600
            if not ok:
                raise RaterError(f"rater input audio seconds must be a number in (0, 3600] or null "
                                 f"(the whole clip), got {seconds!r}")
            object.__setattr__(self, "seconds", float(seconds))

    @classmethod
    def from_mapping(cls, data: Any) -> "AudioSpec":
        if not isinstance(data, Mapping):
            raise RaterError(f"rater input audio must be an object with {', '.join(AUDIO_KEYS)}, got {data!r}")
        unknown = set(data) - set(AUDIO_KEYS)
        if unknown:
            raise RaterError(f"rater input audio has unknown key(s) {sorted(unknown)}; "
                             f"allowed: {', '.join(AUDIO_KEYS)}")
        return cls(**{k: data[k] for k in AUDIO_KEYS if k in data})

    def samples(self, seconds: float) -> int:
        """How many samples ``seconds`` of sound are at this rate."""
        return max(1, round(seconds * self.sample_rate))

    def to_dict(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "channels": self.channels, "seconds": self.seconds}


@dataclass(frozen=True)
class InputSpec:
    """What a rater wants to see: ``size`` (height, width), ``frames`` per clip and ``crop``:
    the ``"full"`` frame, or ``"face"`` — a square around the face, the union of the clip's face
    boxes grown by ``crop_margin`` of its side on each side, fixed for the clip so that head motion
    does not move it (the same crop ``auditkit.models.train --face-crop`` trains on). ``audio``:
    what the rater hears (an :class:`AudioSpec`, or a mapping of its fields), ``None`` for a rater
    that only watches. ``seconds``: the window, centred in the clip, that the frames come from
    (``None``: the whole clip, or the sound's window when the rater listens). ``fps``: frames by
    rate rather than by count — every frame at this rate over the window (which it needs), so
    ``frames`` is ``seconds × fps``: for raters that watch motion."""

    size: tuple[int, int] = (224, 224)
    frames: int = 8
    crop: str = "full"
    crop_margin: float = DEFAULT_CROP_MARGIN
    audio: AudioSpec | None = None
    fps: float | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        size = self.size
        if isinstance(size, int):
            size = (size, size)
        size = tuple(int(s) for s in size)
        if len(size) != 2 or min(size) < 8:
            raise RaterError(f"rater input size must be (height, width) of at least 8, got {self.size!r}")
        object.__setattr__(self, "size", size)
        if int(self.frames) < 1:
            raise RaterError(f"rater input frames must be >= 1, got {self.frames!r}")
        object.__setattr__(self, "frames", int(self.frames))
        if self.crop not in CROPS:
            raise RaterError(f"rater input crop {self.crop!r} is not supported; use one of {', '.join(CROPS)}")
        try:
            margin = float(self.crop_margin)
        except (TypeError, ValueError):
            margin = float("nan")
        if not -0.45 <= margin <= 5:  # below -0.45 the square shrinks past the face box's middle
            raise RaterError(f"rater input crop_margin must be a number in [-0.45, 5], got {self.crop_margin!r}")
        object.__setattr__(self, "crop_margin", margin)
        if self.audio is not None and not isinstance(self.audio, AudioSpec):
            object.__setattr__(self, "audio", AudioSpec.from_mapping(self.audio))
        for key, high in (("seconds", 3600.0), ("fps", MAX_FPS)):
            value = getattr(self, key)
            if value is None:
                continue
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= high):
                raise RaterError(f"rater input {key} must be a number in (0, {high:g}] or null, got {value!r}")
            object.__setattr__(self, key, float(value))
        heard = self.audio.seconds if self.audio is not None else None
        if self.seconds is not None and heard is not None and heard != self.seconds:
            raise RaterError(f"rater input seconds ({self.seconds:g}) and audio seconds ({heard:g}) must be "
                             "the same window: frames and sound come from one")
        if self.fps is not None:
            if self.window is None:
                raise RaterError("rater input fps needs a window (seconds, or the sound's seconds): every frame "
                                 "at a rate over a whole clip has no fixed count")
            object.__setattr__(self, "frames", max(1, round(self.window * self.fps)))

    @property
    def listens(self) -> bool:
        return self.audio is not None

    @property
    def window(self) -> float | None:
        """Seconds of the clip, centred, that frames and sound come from; ``None``: all of it."""
        if self.seconds is not None:
            return self.seconds
        return self.audio.seconds if self.audio is not None else None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str) -> "InputSpec":
        unknown = set(data) - {*INPUT_KEYS, "trait_names"}
        if unknown:
            raise RaterError(f"{where}: unknown input metadata {sorted(unknown)}; "
                             f"allowed: {', '.join(INPUT_KEYS)}, trait_names")
        kwargs = {k: data[k] for k in INPUT_KEYS if k in data}
        try:
            spec = cls(**kwargs)
        except (TypeError, ValueError, RaterError) as exc:
            raise RaterError(f"{where}: bad input metadata ({exc})") from None
        if spec.fps is not None and "frames" in data and data["frames"] != spec.frames:
            raise RaterError(f"{where}: bad input metadata (frames {data['frames']!r} is not seconds x fps = "
                             f"{spec.frames}; give one or the other)")
        return spec

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": list(self.size), "frames": self.frames, "crop": self.crop}
        if self.crop == "face":
            out["crop_margin"] = self.crop_margin
        for key in ("fps", "seconds"):  # absent unless set: older records read the same
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.audio is not None:  # absent for a rater that only watches: older records read the same
            out["audio"] = self.audio.to_dict()
        return out


@runtime_checkable
class Rater(Protocol):
    trait_names: tuple[str, ...]
    input: InputSpec

    def __call__(self, x: torch.Tensor, audio: torch.Tensor | None = None) -> torch.Tensor: ...


def file_hash(path: str | Path) -> str:
    """``sha256:<hex>`` of a file's bytes: the identity of a rater loaded from a file."""
    return "sha256:" + file_digest(path)


def module_hash(module: Any) -> str:
    """``sha256:<hex>`` of a module's class name and every tensor of its state."""
    h = hashlib.sha256(type(module).__qualname__.encode())
    if isinstance(module, nn.Module):
        for key, tensor in sorted(module.state_dict().items()):
            h.update(key.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return "sha256:" + h.hexdigest()


def rater_identity(rater: Any) -> dict[str, Any]:
    """What the audit records about the rater: its spec/name, a hash, traits and input."""
    ident = getattr(rater, "identity", "") or module_hash(getattr(rater, "module", rater))
    out = {"spec": getattr(rater, "name", type(rater).__name__), "hash": ident,
           "traits": list(rater.trait_names), "input": rater.input.to_dict()}
    recording = getattr(rater, "recording", None)  # a vendor that takes recordings (format "video")
    if recording is not None:
        out["recording"] = {k: getattr(recording, k, None) for k in ("fps", "seconds", "max_side")}
    return out


def check_scores(out: Any, rater: Any, clip_ids: Sequence[str]) -> torch.Tensor:
    """Validate a rater's output for a batch; the error names the rater and the clips."""
    name = getattr(rater, "name", type(rater).__name__)
    if not isinstance(out, torch.Tensor):
        try:
            out = torch.as_tensor(np.asarray(out, dtype=np.float32))
        except (TypeError, ValueError):
            raise RaterError(f"rater {name} returned {type(out).__name__} for clip(s) "
                             f"{', '.join(clip_ids)}; expected a [B, K] tensor") from None
    expected = (len(clip_ids), len(rater.trait_names))
    if tuple(out.shape) != expected:
        raise RaterError(f"rater {name} returned shape {tuple(out.shape)} for clip(s) "
                         f"{', '.join(clip_ids)}; expected {expected} (batch, traits)")
    out = out.detach().float().cpu()
    bad = ~torch.isfinite(out)
    if bad.any():
        rows = sorted({int(i) for i in bad.nonzero()[:, 0]})
        raise RaterError(f"rater {name} returned NaN or inf for clip(s) "
                         f"{', '.join(clip_ids[i] for i in rows)}")
    return out
