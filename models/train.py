"""Train an :class:`OceanRegressor`, optionally with the audit's edits as augmentation.

    python -m auditkit.models.train --data FIRST_IMPRESSIONS_ROOT --out rater.pt \\
        [--backbone resnet18] [--size 112] [--frames 8] [--epochs 10] \\
        [--augment background-swap] [--augment counterfactual:glasses] [--consistency 0.5]

(also ``auditkit train``). AdamW with a warm-up and cosine schedule, autocast on CUDA, a
checkpoint with its metadata (traits, input, augmentation recipe, data hash, metrics), and
evaluation with the challenge metric — mean accuracy, 1 − mean absolute error — and per-trait
Pearson r.

Augmentations:
- ``background-swap``: :class:`auditkit.perturbations.augment.RandomBackgroundSwap` puts each clip in
  front of a random generated scene (or the user's images, ``--scenes DIR``).
- ``counterfactual:<edit or family>``: :class:`auditkit.perturbations.augment.CounterfactualAugment`
  applies that edit to half the clips.
- ``random-room``, ``random-noise``, ``random-mic`` (a model that listens, ``--audio-seconds``):
  :class:`~auditkit.perturbations.augment.RandomRoom`, ``RandomNoise`` (5-25 dB SNR) and
  ``RandomMic`` give each clip's sound a room, a noise or a microphone drawn for it.
``--consistency W`` adds W × the squared score difference between two independently augmented
copies of each clip, which teaches the model to ignore what the augmentation changes.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchvision import tv_tensors

from auditkit.contract.device import pick_device
from auditkit.contract.errors import AuditkitError, ConfigError
from auditkit.contract.rater import OCEAN, AudioSpec

from .checkpoint import save_checkpoint
from .ocean import BACKBONES, POOLINGS, OceanRegressor, check_model

AUDIO_RATE = 16000  # what the reference regressor listens at: speech carries little above 8 kHz


@dataclass
class Sample:
    """One training clip: uint8 frames ``[T, H, W, 3]`` at source resolution, its labels, and
    what augmentation needs (person mask ``[T, H, W]``, annotations). ``target``: the score a
    fair rater should give, when it differs from the label (planted-bias experiments)."""

    id: str
    frames: torch.Tensor
    label: torch.Tensor
    mask: torch.Tensor | None = None
    annotations: Any = None
    target: torch.Tensor | None = None
    audio: torch.Tensor | None = None  # float [C, S]: the sound over the frames' window, for a model that listens
    # The voice before the room it was heard in (a close-talking recording), when known: what
    # random-room re-records in a room of its own draw, as background-swap re-composites the person
    # from ``mask`` (a planted-bias control keeps it; real data is usually near dry already).
    dry: torch.Tensor | None = None


@dataclass
class TrainConfig:
    backbone: str = "resnet18"
    pooling: str = "mean"
    size: int = 112
    frames: int = 8
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    augment: tuple[str, ...] = ()
    consistency: float = 0.0
    seed: int = 0
    device: str = "auto"
    traits: tuple[str, ...] = OCEAN
    scenes_dir: str | None = None
    crop: str = "full"          # "face": the samples are face crops, and the rater says so
    audio_seconds: float | None = None  # a model that listens too, to this many seconds of 16 kHz sound

    def __post_init__(self) -> None:
        for name in ("backbone", "pooling"):
            try:
                check_model(name, getattr(self, name), label=f"--{name}")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        for key in ("size", "frames", "epochs", "batch_size"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"--{key.replace('_', '-')} must be >= 1, got {getattr(self, key)}")
        if self.lr <= 0 or self.consistency < 0:
            raise ConfigError("--lr must be > 0 and --consistency >= 0")
        for aug in self.augment:
            if aug not in ("background-swap", *SOUND_AUGMENTS) and not aug.startswith("counterfactual:"):
                raise ConfigError(f"--augment {aug!r}: use background-swap, counterfactual:<edit>, "
                                  f"or (a model that listens) {', '.join(SOUND_AUGMENTS)}")
            if aug in SOUND_AUGMENTS and self.audio_seconds is None:
                raise ConfigError(f"--augment {aug}: edits the sound, but the model hears none (give --audio-seconds)")
        if self.consistency > 0 and not self.augment:
            raise ConfigError("--consistency needs an --augment to compare against")
        if self.crop not in ("full", "face"):
            raise ConfigError(f"crop must be full or face, got {self.crop!r}")
        if self.audio_seconds is not None and not (0 < float(self.audio_seconds) <= 600):
            raise ConfigError(f"--audio-seconds must be a number in (0, 600], got {self.audio_seconds}")

    @property
    def hears(self) -> AudioSpec | None:
        """What a model trained with these settings listens to (16 kHz mono), if anything."""
        return AudioSpec(AUDIO_RATE, 1, float(self.audio_seconds)) if self.audio_seconds else None
        self.augment = tuple(self.augment)
        self.traits = tuple(self.traits)


def cosine_schedule(optimizer: torch.optim.Optimizer, total: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


SOUND_AUGMENTS = ("random-room", "random-noise", "random-mic")


class Augmenter:
    """The recipe's augmentations, applied to a batch at model resolution (background swap)
    and per clip at source resolution (counterfactual edits)."""

    def __init__(self, recipe: Sequence[str], *, seed: int, scenes_dir: str | None = None) -> None:
        from auditkit.perturbations.augment import BackgroundBank, CounterfactualAugment, RandomBackgroundSwap

        from auditkit.perturbations.augment import RandomMic, RandomNoise, RandomRoom

        self.swap = None
        self.edits = []
        self.sound = []
        gen = torch.Generator().manual_seed(seed)
        sound = {"random-room": RandomRoom, "random-noise": RandomNoise, "random-mic": RandomMic}
        for item in recipe:
            if item in sound:
                # Rooms for four clips in five: the fifth stays as it was recorded, so that the sound
                # of a clip as it comes (as an audit's originals are) is not new to the model.
                self.sound.append(sound[item](AUDIO_RATE, p=0.8, generator=gen))
            elif item == "background-swap":
                self.swap = RandomBackgroundSwap(BackgroundBank(images_dir=scenes_dir, seed=seed),
                                                 generator=gen)
            else:
                name = item.split(":", 1)[1]
                try:
                    self.edits.append(CounterfactualAugment(name, p=0.5, generator=gen))
                except KeyError as exc:
                    raise ConfigError(f"--augment {item}: {exc.args[0]}") from None

    @property
    def needs_masks(self) -> bool:
        return self.swap is not None

    @property
    def needs_annotations(self) -> bool:
        return any(e.requires for aug in self.edits for e in aug.edits)

    def clip(self, frames: torch.Tensor, annotations: Any) -> torch.Tensor:
        """Source-resolution edits of one clip (uint8 [T, H, W, 3])."""
        for aug in self.edits:
            video = tv_tensors.Video(frames.permute(0, 3, 1, 2))
            extra = [annotations] if annotations is not None else []
            out = aug(video, extra)[0] if extra else aug(video)
            frames = out.as_subclass(torch.Tensor).permute(0, 2, 3, 1)
        return frames

    def hear(self, audio: torch.Tensor | None, dry: torch.Tensor | None = None) -> torch.Tensor | None:
        """The sound's augmentations, each drawn per clip, of float [B, C, S] at 16 kHz. ``dry``:
        the voice before its room, where the samples keep it: a new room replaces the old one
        rather than echoing on top of it."""
        from auditkit.perturbations.augment import RandomRoom

        if audio is None:
            return None
        for aug in self.sound:
            audio = aug(dry if isinstance(aug, RandomRoom) and dry is not None else audio)
        return audio

    def batch(self, x: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        """Model-resolution background swap of uint8 [B, T, 3, S, S]."""
        if self.swap is None:
            return x
        out, _ = self.swap(tv_tensors.Video(x), tv_tensors.Mask(masks))
        return out.as_subclass(torch.Tensor)


def _resize(frames: torch.Tensor, size: int, count: int) -> torch.Tensor:
    """uint8 [T, H, W, 3] → uint8 [count, 3, size, size], frames sampled uniformly."""
    from auditkit.media.clips import sample_indices

    index = torch.as_tensor(sample_indices(frames.shape[0], count), device=frames.device)
    x = frames.index_select(0, index).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def _resize_mask(mask: torch.Tensor, size: int, count: int) -> torch.Tensor:
    from auditkit.media.clips import sample_indices

    index = torch.as_tensor(sample_indices(mask.shape[0], count), device=mask.device)
    m = mask.index_select(0, index).unsqueeze(1).float()
    return F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False).squeeze(1)


def make_batch(samples: Sequence[Sample], config: TrainConfig, augmenter: Augmenter | None,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Model input float [B, T, 3, S, S] in [0, 1], and the masks when augmentation needs them."""
    clips, masks = [], []
    for s in samples:
        frames = s.frames.to(device)
        if augmenter is not None and augmenter.edits:
            frames = augmenter.clip(frames, s.annotations)
        clips.append(_resize(frames, config.size, config.frames))
        if augmenter is not None and augmenter.needs_masks:
            if s.mask is None:
                raise ConfigError(f"sample {s.id}: background-swap needs a person mask")
            masks.append(_resize_mask(s.mask.to(device), config.size, config.frames))
    x = torch.stack(clips)
    m = torch.stack(masks) if masks else None
    if augmenter is not None:
        x = augmenter.batch(x, m)
    return x.float().div_(255.0), m


def batch_dry(samples: Sequence[Sample], device: torch.device) -> torch.Tensor | None:
    """The samples' voices before their rooms, where every sample keeps one (else ``None``)."""
    if not samples or any(s.dry is None for s in samples):
        return None
    return torch.stack([s.dry for s in samples]).to(device).float()


def batch_audio(samples: Sequence[Sample], device: torch.device) -> torch.Tensor | None:
    """The samples' sound ``[B, C, S]`` for a model that listens (``None`` when they carry none)."""
    if not samples or samples[0].audio is None:
        return None
    missing = [s.id for s in samples if s.audio is None]
    if missing:
        raise ConfigError(f"sample(s) {', '.join(missing)} carry no sound; a model that listens needs it")
    return torch.stack([s.audio for s in samples]).to(device).float()


def _forward(model: OceanRegressor, x: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
    return model(x) if model.ears is None else model(x, audio)


def evaluate(model: OceanRegressor, samples: Sequence[Sample], config: TrainConfig,
             device: torch.device) -> dict[str, Any]:
    """Mean accuracy (1 − MAE) against the labels and, where given, the fair targets; per-trait
    Pearson r against the labels."""
    model.eval()
    preds = []
    with torch.inference_mode():
        for i in range(0, len(samples), config.batch_size):
            chunk = samples[i:i + config.batch_size]
            x, _ = make_batch(chunk, config, None, device)
            preds.append(_forward(model, x, batch_audio(chunk, device)).float().cpu())
    pred = torch.cat(preds)
    labels = torch.stack([s.label for s in samples]).float()
    out: dict[str, Any] = {"n": len(samples), "mean_accuracy": float(1 - (pred - labels).abs().mean())}
    if all(s.target is not None for s in samples):
        targets = torch.stack([s.target for s in samples]).float()
        out["mean_accuracy_fair_target"] = float(1 - (pred - targets).abs().mean())
    r = {}
    for k, trait in enumerate(config.traits):
        a, b = pred[:, k].numpy(), labels[:, k].numpy()
        r[trait] = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else None
    out["pearson_r"] = r
    return out


def train(samples: Sequence[Sample], config: TrainConfig, *, val: Sequence[Sample] = (),
          progress: bool | Callable[[str], None] = True) -> tuple[OceanRegressor, dict[str, Any]]:
    """Train a fresh model on ``samples``; returns it (in eval mode) and its history."""
    if not samples:
        raise ConfigError("no training samples")
    device = pick_device(config.device)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG state untouched
        torch.manual_seed(config.seed)
        model = OceanRegressor(config.backbone, pooling=config.pooling, traits=config.traits,
                               size=config.size, frames=config.frames, crop=config.crop,
                               audio=config.hears).to(device)
    augmenter = Augmenter(config.augment, seed=config.seed, scenes_dir=config.scenes_dir) \
        if config.augment else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(samples) / config.batch_size)
    total = steps_per_epoch * config.epochs
    scheduler = cosine_schedule(optimizer, total, warmup=max(1, steps_per_epoch // 2))
    order = torch.Generator().manual_seed(config.seed)
    history: dict[str, Any] = {"epochs": []}
    say = progress if callable(progress) else (print if progress else (lambda _m: None))
    start = time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        perm = torch.randperm(len(samples), generator=order).tolist()
        running = 0.0
        for i in range(0, len(perm), config.batch_size):
            batch = [samples[j] for j in perm[i:i + config.batch_size]]
            x, masks = make_batch(batch, config, augmenter, device)
            y = torch.stack([s.label for s in batch]).to(device).float()
            heard, dry = batch_audio(batch, device), batch_dry(batch, device)
            sound = augmenter.hear(heard, dry) if augmenter is not None else heard
            pred = _forward(model, x, sound)
            loss = F.mse_loss(pred, y)
            if config.consistency > 0:
                # A second, independently augmented copy (picture and sound) must get the same scores.
                x2, _ = make_batch(batch, config, augmenter, device)
                from auditkit.perturbations.augment import consistency_loss

                sound2 = augmenter.hear(heard, dry) if augmenter is not None else heard
                loss = loss + config.consistency * consistency_loss(pred, _forward(model, x2, sound2))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += loss.item() * len(batch)
        entry = {"epoch": epoch + 1, "loss": running / len(samples),
                 "seconds": round(time.perf_counter() - start, 1)}
        if val:
            entry["val"] = evaluate(model, val, config, device)
        history["epochs"].append(entry)
        acc = f", val accuracy {entry['val']['mean_accuracy']:.3f}" if val else ""
        say(f"epoch {epoch + 1}/{config.epochs}: loss {entry['loss']:.4f}{acc} ({entry['seconds']} s)")
    model.eval()
    return model, history


def load_first_impressions(root: str | Path, split: str, config: TrainConfig, *,
                           max_clips: int | None = None, face_crop: bool = False) -> list[Sample]:
    """Decoded, labelled clips of one split. ``face_crop``: a square around the face (from the
    annotation cache), which drops the background — and with it any background shortcut."""
    from auditkit.perturbations.annotate import Annotator

    from .data import face_crop as crop, load_split, read_clip

    items = load_split(root, split, config.traits)[:max_clips]
    annotator = Annotator() if (config.augment or face_crop) else None
    samples = []
    for item in items:
        clip = read_clip(item, frames=config.frames, audio=config.hears)
        ann = annotator.annotate_clip(clip) if annotator else None
        sound = torch.from_numpy(clip.audio) if clip.audio is not None else None
        if config.hears is not None and sound is None:
            raise ConfigError(f"{item.path}: {clip.audio_problem}; --audio-seconds trains a model that listens")
        if face_crop:
            samples.append(Sample(item.id, torch.from_numpy(crop(clip, ann)), torch.tensor(item.labels), audio=sound))
            continue
        samples.append(Sample(item.id, torch.from_numpy(clip.frames), torch.tensor(item.labels),
                              mask=ann.mask if ann else None, annotations=ann, audio=sound))
    return samples


def main(argv: Sequence[str] | None = None, prog: str = "python -m auditkit.models.train") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="First Impressions root (annotation_*.pkl + clips)")
    parser.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    parser.add_argument("--backbone", default="resnet18", choices=BACKBONES)
    parser.add_argument("--pooling", default="mean", choices=POOLINGS)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--augment", action="append", default=[],
                        help="background-swap or counterfactual:<edit or family> (repeatable)")
    parser.add_argument("--consistency", type=float, default=0.0)
    parser.add_argument("--scenes", help="folder of background images for background-swap")
    parser.add_argument("--max-clips", type=int, help="use at most this many clips per split")
    parser.add_argument("--face-crop", action="store_true",
                        help="train on a square crop around the face (not with augmentations)")
    parser.add_argument("--audio-seconds", type=float, metavar="S",
                        help="also listen: an audio branch on S seconds of each clip's sound (16 kHz), "
                             "the frames sampled inside the same window")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.max_clips is not None and args.max_clips < 1:
            raise ConfigError(f"--max-clips must be >= 1, got {args.max_clips}")
        config = TrainConfig(backbone=args.backbone, pooling=args.pooling, size=args.size,
                             frames=args.frames, epochs=args.epochs, batch_size=args.batch_size,
                             lr=args.lr, augment=tuple(args.augment), consistency=args.consistency,
                             seed=args.seed, device=args.device, scenes_dir=args.scenes,
                             crop="face" if args.face_crop else "full", audio_seconds=args.audio_seconds)
        from .data import data_hash, load_split

        if args.face_crop and config.augment:
            raise ConfigError("--face-crop and --augment do not mix: a face crop has no background to swap")
        train_set = load_first_impressions(args.data, "training", config, max_clips=args.max_clips,
                                           face_crop=args.face_crop)
        val_root = Path(args.data) / "annotation_validation.pkl"
        val_set = (load_first_impressions(args.data, "validation", config, max_clips=args.max_clips,
                                          face_crop=args.face_crop) if val_root.is_file() else [])
        model, history = train(train_set, config, val=val_set)
        metrics = evaluate(model, val_set or train_set, config, pick_device(config.device))
        hears = {"audio": config.hears.to_dict()} if config.hears is not None else {}
        meta = {"traits": list(config.traits), "input": {"size": [config.size, config.size],
                                                          "frames": config.frames, **hears},
                "augment": list(config.augment), "consistency": config.consistency,
                "face_crop": bool(args.face_crop),
                "train_config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
                "data_hash": data_hash(load_split(args.data, "training", config.traits)[:args.max_clips]),
                "metrics": metrics, "metrics_split": "validation" if val_set else "training",
                "history": history["epochs"]}
        path = save_checkpoint(model, args.out, metadata=meta)
    except AuditkitError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}: mean accuracy {metrics['mean_accuracy']:.4f} on {metrics['n']} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Sample", "TrainConfig", "batch_audio", "evaluate", "make_batch", "train", "main"]
