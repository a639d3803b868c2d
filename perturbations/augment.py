"""Training-time augmentation built on the audit's own edits — the fix that ships with the test.

``RandomBackgroundSwap`` and ``CounterfactualAugment`` are torchvision ``transforms.v2``
transforms: they draw their random parameters once per clip in ``make_params`` (one background,
one glasses style per clip, not one per batch or per frame) and apply them in ``transform``.
They take ``tv_tensors.Video`` batches ``[B, T, C, H, W]`` (or one clip ``[T, C, H, W]``), uint8
or float in [0, 1], on any device, and return the same type, shape, dtype and device.

``RandomRoom``, ``RandomNoise`` and ``RandomMic`` are their twins for the sound (the background
swap of the ears): callables on float sound ``[B, C, S]`` (or one clip ``[C, S]``) in [-1, 1] at a
stated sample rate, returning the same shape, dtype and device. Each clip draws its own room,
noise (and SNR) or microphone, so the sound's channel carries nothing about the label.

Randomness comes from the ``generator`` each transform is given, never from global state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from . import scenes
from .annotate import Annotations, Annotator
from .background import person_alpha
from .base import NotApplicable, Perturbation, resolve


def _as_batch(video: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """[T, C, H, W] → [1, T, C, H, W]; says whether it added the batch axis."""
    return (video.unsqueeze(0), True) if video.ndim == 4 else (video, False)


def _find(flat_inputs: list[Any], kind: type) -> list[Any]:
    return [x for x in flat_inputs if isinstance(x, kind)]


class BackgroundBank:
    """Backgrounds to draw from: generated scenes (several seeds each) and the user's images,
    rendered once per frame size and kept on the device as uint8 ``[N, H, W, 3]``."""

    def __init__(self, scene_names: Sequence[str] = ("plain", "bookshelf", "office"),
                 per_scene: int = 4, images_dir: str | Path | None = None, seed: int = 0) -> None:
        for name in scene_names:
            if name not in scenes.SCENES:
                raise ValueError(f"unknown scene {name!r}; choose from {', '.join(scenes.SCENES)}")
        self.scene_names = tuple(scene_names)
        self.per_scene = int(per_scene)
        self.images = scenes.load_user_scenes(images_dir) if images_dir is not None else []
        self.seed = seed
        self._cache: dict[tuple[int, int, str], torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.scene_names) * self.per_scene + len(self.images)

    def render(self, height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
        key = (height, width, str(device))
        if key not in self._cache:
            rng = np.random.default_rng(self.seed)
            items = [scenes.make_scene(n, height, width, rng=rng)
                     for n in self.scene_names for _ in range(self.per_scene)]
            items += [scenes.user_scene(p, height, width) for p in self.images]
            self._cache[key] = torch.from_numpy(np.stack(items)).to(device)
        return self._cache[key]


class RandomBackgroundSwap(v2.Transform):
    """Put each clip's person in front of a background drawn from ``bank`` (with probability
    ``p``). Person masks come with the sample as a ``tv_tensors.Mask`` ``[B, T, H, W]`` (person
    probability or 0/1), or are computed with MediaPipe when absent. Pixels where the person
    mask is at least 0.99 are left exactly as they were."""

    def __init__(self, bank: BackgroundBank | None = None, *, p: float = 1.0,
                 generator: torch.Generator | None = None, annotator: Annotator | None = None) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.bank = bank if bank is not None else BackgroundBank()
        self.p = p
        self.generator = generator or torch.Generator().manual_seed(0)
        self.annotator = annotator

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        videos = _find(flat_inputs, tv_tensors.Video)
        if len(videos) != 1:
            raise ValueError(f"RandomBackgroundSwap needs exactly one tv_tensors.Video, got {len(videos)}")
        video, _ = _as_batch(videos[0])
        b = video.shape[0]
        masks = _find(flat_inputs, tv_tensors.Mask)
        mask = (masks[0].unsqueeze(0) if masks[0].ndim == 3 else masks[0]) if masks else self._masks(video)
        if tuple(mask.shape) != (b, video.shape[1], *video.shape[-2:]):
            raise ValueError(f"mask shape {tuple(mask.shape)} does not fit video {tuple(video.shape)}")
        choice = torch.randint(len(self.bank), (b,), generator=self.generator)
        apply = torch.rand(b, generator=self.generator) < self.p
        return {"choice": choice, "apply": apply, "mask": mask}

    def _masks(self, video: torch.Tensor) -> torch.Tensor:
        annotator = self.annotator or Annotator()
        frames = _to_uint8_hwc(video)
        return torch.stack([annotator.annotate(f.cpu().numpy()).mask for f in frames]).to(video.device)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, tv_tensors.Video):
            return inpt
        video, added = _as_batch(inpt.as_subclass(torch.Tensor))
        b, t, c, h, w = video.shape
        bank = self.bank.render(h, w, video.device)                      # [N, H, W, 3] uint8
        scene = bank[params["choice"].to(video.device)].permute(0, 3, 1, 2)  # [B, 3, H, W]
        mask = params["mask"].to(video.device, torch.float32)
        alpha = person_alpha(mask.reshape(b * t, h, w)).reshape(b, t, 1, h, w)
        if video.dtype == torch.uint8:
            x = video.to(torch.float32)
            swapped = (x * alpha + scene.unsqueeze(1).to(torch.float32) * (1 - alpha)).round_().clamp_(0, 255)
            swapped = swapped.to(torch.uint8)
        else:
            swapped = video * alpha + (scene.unsqueeze(1).to(video.dtype) / 255.0) * (1 - alpha)
        keep = (alpha >= 1.0) | ~params["apply"].to(video.device).view(b, 1, 1, 1, 1)
        out = torch.where(keep, video, swapped)
        return tv_tensors.wrap(out[0] if added else out, like=inpt)


def _to_uint8_hwc(video: torch.Tensor) -> torch.Tensor:
    """[B, T, C, H, W] (uint8 or float in [0, 1]) → uint8 [B, T, H, W, C]."""
    x = video if video.dtype == torch.uint8 else (video.clamp(0, 1) * 255).round().to(torch.uint8)
    return x.permute(0, 1, 3, 4, 2)


class CounterfactualAugment(v2.Transform):
    """Any registered edit as a label-preserving augmentation: each clip, with probability
    ``p``, gets one of ``perturbations`` (a name, a family such as ``"glasses"``, or instances)
    with parameters drawn for that clip. Edits that need annotations take them from an
    ``Annotations`` (or a list of them, one per clip) passed in the same sample; a clip the
    edit cannot apply to (no face) stays unedited."""

    # Annotations ride along in the sample; listing them here makes v2 show them to make_params.
    _transformed_types = (torch.Tensor, Annotations)

    def __init__(self, perturbations: str | Sequence[str | Perturbation], *, p: float = 0.5,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p}")
        names = [perturbations] if isinstance(perturbations, str) else list(perturbations)
        self.edits: list[Perturbation] = []
        for item in names:
            self.edits += [item] if isinstance(item, Perturbation) else resolve(item)
        self.p = p
        self.generator = generator or torch.Generator().manual_seed(0)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        videos = _find(flat_inputs, tv_tensors.Video)
        if len(videos) != 1:
            raise ValueError(f"CounterfactualAugment needs exactly one tv_tensors.Video, got {len(videos)}")
        b = _as_batch(videos[0])[0].shape[0]
        annotations = _find(flat_inputs, Annotations)
        if any(e.requires for e in self.edits) and len(annotations) != b:
            raise ValueError(f"{', '.join(e.name for e in self.edits if e.requires)} need annotations: "
                             f"pass {b} Annotations with the video (got {len(annotations)})")
        return {"edit": torch.randint(len(self.edits), (b,), generator=self.generator).tolist(),
                "apply": (torch.rand(b, generator=self.generator) < self.p).tolist(),
                "seed": torch.randint(2**31 - 1, (b,), generator=self.generator).tolist(),
                "annotations": annotations}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, tv_tensors.Video):
            return inpt
        video, added = _as_batch(inpt.as_subclass(torch.Tensor))
        frames = _to_uint8_hwc(video)
        out = []
        for i in range(video.shape[0]):
            clip = video[i]
            if params["apply"][i]:
                edit = self.edits[params["edit"][i]]
                ann = params["annotations"][i] if params["annotations"] else None
                try:
                    edited = edit(frames[i], ann, seed=params["seed"][i]).frames.permute(0, 3, 1, 2)
                    clip = edited if video.dtype == torch.uint8 else edited.to(video.dtype) / 255.0
                except NotApplicable:  # no face in this clip: it stays as it is
                    pass
            out.append(clip)
        result = torch.stack(out)
        return tv_tensors.wrap(result[0] if added else result, like=inpt)


class SoundAugment(torch.nn.Module):
    """Each clip of a batch of sound, with probability ``p``, goes through one of ``edits`` (edits
    of the sound, see :mod:`.sound`) drawn for that clip, with its own seed. A clip the edit cannot
    apply to (silence, for a noise at an SNR) stays as it is. Works on any device (the edit runs on
    the CPU) and in DataLoader workers (it pickles with its generator)."""

    def __init__(self, edits: Sequence[str | Perturbation], sample_rate: int, *, p: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        from .base import get
        from .sound import edits_sound

        if not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
        self.edits = [e if isinstance(e, Perturbation) else get(e) for e in edits]
        if not self.edits:
            raise ValueError("no edit of the sound given")
        seen = [e.name for e in self.edits if not edits_sound(e)]
        if seen:
            raise ValueError(f"{', '.join(seen)} edit the picture, not the sound: use CounterfactualAugment")
        self.sample_rate, self.p = sample_rate, p
        self.generator = generator or torch.Generator().manual_seed(0)

    def draw(self, b: int) -> list[tuple[Perturbation | None, int]]:
        """(edit or ``None``, seed) for each of ``b`` clips."""
        which = torch.randint(len(self.edits), (b,), generator=self.generator).tolist()
        apply = (torch.rand(b, generator=self.generator) < self.p).tolist()
        seeds = torch.randint(2**31 - 1, (b,), generator=self.generator).tolist()
        return [(self.edits[w] if a else None, s) for w, a, s in zip(which, apply, seeds)]

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if not isinstance(audio, torch.Tensor) or audio.ndim not in (2, 3) or not audio.is_floating_point():
            raise ValueError(f"{type(self).__name__} takes float sound [B, C, S] or [C, S], got "
                             f"{getattr(audio, 'dtype', type(audio))} {tuple(getattr(audio, 'shape', ()))}")
        batch = audio.unsqueeze(0) if audio.ndim == 2 else audio
        out = []
        for clip, (edit, seed) in zip(batch, self.draw(batch.shape[0])):
            if edit is not None:
                try:
                    heard = edit.hear(clip.detach().float().cpu().numpy(), self.sample_rate, seed=seed)
                    clip = torch.from_numpy(heard).to(device=clip.device, dtype=clip.dtype)
                except NotApplicable:
                    pass
            out.append(clip)
        result = torch.stack(out)
        return result[0] if audio.ndim == 2 else result


class RandomRoom(SoundAugment):
    """Each clip heard in a room drawn from ``rooms`` (``room:*`` by default): what room a candidate
    records in stops saying anything about the label."""

    def __init__(self, sample_rate: int, rooms: Sequence[str] = ("office", "kitchen", "hall", "closet"), *,
                 p: float = 1.0, generator: torch.Generator | None = None) -> None:
        super().__init__([f"room:{r}" for r in rooms], sample_rate, p=p, generator=generator)


class RandomNoise(SoundAugment):
    """Each clip with a background noise drawn from ``kinds``, at an SNR drawn uniformly from
    ``snr`` (dB, BS.1770 loudness)."""

    def __init__(self, sample_rate: int, kinds: Sequence[str] = ("hvac", "street", "babble", "keyboard"), *,
                 snr: tuple[float, float] = (5.0, 25.0), p: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        from .noise import Noise

        if not (len(snr) == 2 and snr[0] <= snr[1]):
            raise ValueError(f"snr must be (low, high) in dB, got {snr!r}")
        super().__init__([Noise(k) for k in kinds], sample_rate, p=p, generator=generator)
        self.snr = (float(snr[0]), float(snr[1]))

    def draw(self, b: int) -> list[tuple[Perturbation | None, int]]:
        from .noise import Noise

        drawn = super().draw(b)
        levels = (self.snr[0] + (self.snr[1] - self.snr[0]) * torch.rand(b, generator=self.generator)).tolist()
        return [(Noise(e.kind, level) if e is not None else None, s) for (e, s), level in zip(drawn, levels)]


class RandomMic(SoundAugment):
    """Each clip through a microphone and codec drawn from ``mics`` (``mic:*`` by default)."""

    def __init__(self, sample_rate: int, mics: Sequence[str] = ("laptop", "phone", "headset"), *,
                 p: float = 1.0, generator: torch.Generator | None = None) -> None:
        super().__init__([f"mic:{m}" for m in mics], sample_rate, p=p, generator=generator)


def consistency_loss(scores: torch.Tensor, edited_scores: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between a clip's scores and its edited copy's: the penalty that
    teaches a rater to ignore what the edit changed (add it to the task loss with a weight)."""
    if scores.shape != edited_scores.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and edited_scores {tuple(edited_scores.shape)} differ")
    return (scores - edited_scores).pow(2).mean()


__all__ = ["BackgroundBank", "CounterfactualAugment", "RandomBackgroundSwap", "RandomMic", "RandomNoise", "RandomRoom",
           "SoundAugment", "consistency_loss"]
