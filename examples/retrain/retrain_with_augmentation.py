"""Retrain your own video rater with auditkit's edits as augmentation — a script to copy.

    python retrain_with_augmentation.py [--clips DIR --labels CSV] [--epochs 5] [--out rater.pt]

A plain PyTorch training loop (your model, your optimizer, your batches; not auditkit's own
trainer) that shows each clip twice: as it is, and as an edited copy with a new background
(``RandomBackgroundSwap``, from the person mask) and, for half the clips, one of the audit's face
and lighting edits (``CounterfactualAugment``, from the face landmarks). The task loss is on the
original; ``consistency_loss`` pulls the edited copy's scores onto the original's, which teaches
the model that a bookshelf or a pair of glasses is no evidence of a personality.

Person masks and face landmarks come from auditkit's annotation cache: MediaPipe runs once per
clip, on the first run, and the audit of the trained model reuses the same cache entries.

Without ``--clips`` it trains on auditkit's built-in sample clips with made-up targets
(``STAND_IN_TARGETS``) so that it runs anywhere; those numbers mean nothing. ``--labels`` is a
CSV with a ``clip_id`` column (the clip's file name, or its path inside ``--clips`` without the
extension) and one column per trait, scores in [0, 1]. The trained model is saved as TorchScript
with the input it expects, ready for ``auditkit run --rater rater.pt``.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from auditkit import AuditkitError, ClipError, ClipSource, discover
from auditkit.media.samples import sample_clips
from auditkit.perturbations.annotate import Annotations, Annotator
from auditkit.perturbations.augment import BackgroundBank, CounterfactualAugment, RandomBackgroundSwap, consistency_loss
from auditkit.raters import OCEAN, InputSpec, save_torchscript

# Stand-ins for real labels, one set per person in the sample clips (metadata.csv's subject_id).
# They are invented: the sample clips only make the script run end to end without your data.
STAND_IN_TARGETS = {
    "hopper": (0.62, 0.71, 0.48, 0.55, 0.38),
    "collins": (0.58, 0.66, 0.57, 0.61, 0.33),
}


class SmallVideoRater(nn.Module):
    """Stands in for your model: a small CNN on every frame, averaged over time, one sigmoid
    output per trait. Input float ``[B, T, 3, H, W]`` RGB in [0, 1] (what the audit feeds a
    rater), output ``[B, K]``. Anything ``torch.jit.script`` accepts can replace it."""

    def __init__(self, num_traits: int, width: int = 32) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.frame_encoder = nn.Sequential(block(3, width), block(width, 2 * width),
                                           block(2 * width, 4 * width), block(4 * width, 4 * width),
                                           nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * width, num_traits)
        # Normalisation lives inside the model, so the saved rater takes the audit's [0, 1] input.
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[0], x.shape[1]
        features = self.frame_encoder((x.flatten(0, 1) - self.mean) / self.std)
        return torch.sigmoid(self.head(features.view(b, t, -1).mean(dim=1)))


Labels = dict[str, list[float]]  # clip id -> one score per trait


def read_labels(path: Path, sources: Sequence[ClipSource], root: Path) -> tuple[tuple[str, ...], Labels]:
    """Trait names (the CSV's columns after clip_id) and each labelled clip's scores."""
    by_name = {s.path.relative_to(root).as_posix(): s.id for s in sources}
    ids = {s.id for s in sources}
    labels: Labels = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [c.strip() for c in reader.fieldnames or []]
            if "clip_id" not in header:
                raise ValueError(f"{path}: needs a clip_id column (found: {', '.join(header) or 'no header'})")
            traits = tuple(c for c in header if c != "clip_id")
            if not traits or not all(traits) or len(set(traits)) != len(traits):
                raise ValueError(f"{path}: needs one named column per trait after clip_id (found: {', '.join(header)})")
            reader.fieldnames = header
            for row in reader:
                line = reader.line_num
                key = (row["clip_id"] or "").strip()
                clip_id = key if key in ids else by_name.get(key)
                if clip_id is None:
                    raise ValueError(f"{path}, line {line}: clip_id {key!r} matches no video in {root}")
                if clip_id in labels:
                    raise ValueError(f"{path}, line {line}: clip_id {key!r} appears twice")
                try:
                    values = [float(row[t]) for t in traits]
                except (TypeError, ValueError):
                    raise ValueError(f"{path}, line {line}: every trait needs a number") from None
                if not all(0.0 <= v <= 1.0 for v in values):  # the model's sigmoid reaches no further
                    raise ValueError(f"{path}, line {line}: scores must be in [0, 1], got {values}")
                labels[clip_id] = values
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise ValueError(f"{path}: not a valid CSV file ({exc})") from None
    if not labels:
        raise ValueError(f"{path}: no labelled clips")
    return traits, labels


def stand_in_labels(sources: Sequence[ClipSource]) -> tuple[tuple[str, ...], Labels]:
    return OCEAN, {s.id: list(STAND_IN_TARGETS[s.metadata["subject_id"]]) for s in sources}


class ClipDataset(Dataset):
    """One item per labelled clip: frames ``tv_tensors.Video`` uint8 ``[T, 3, H, W]`` at the
    clip's own resolution, its person mask ``tv_tensors.Mask`` ``[T, H, W]``, its
    ``Annotations`` (landmarks for the face edits) and its label. Clips are decoded when asked
    for and their annotations read from the cache, so a large set need not fit in memory."""

    def __init__(self, sources: Sequence[ClipSource], labels: Labels, frames: int,
                 annotator: Annotator) -> None:
        self.sources = list(sources)
        self.labels = labels
        self.frames = frames
        self.annotator = annotator

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i: int) -> tuple[tv_tensors.Video, tv_tensors.Mask, Annotations, torch.Tensor]:
        source = self.sources[i]
        # The same frames the audit will sample: it decodes `frames` frames (the rater's input)
        # spread over the clip, at most 640 pixels a side, and edits them before resizing.
        clip = source.read(num_frames=self.frames)
        annotations = self.annotator.annotate_clip(clip)
        video = tv_tensors.Video(torch.from_numpy(clip.frames).permute(0, 3, 1, 2))
        return video, tv_tensors.Mask(annotations.mask), annotations, torch.tensor(self.labels[source.id])


def model_input(video: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``[T, 3, H, W]`` → float ``[T, 3, size, size]`` in [0, 1]. The audit resizes the
    same way (bilinear with antialiasing, aspect ratio not kept), so training sees what the
    audit will show the model."""
    x = v2.functional.resize(video.as_subclass(torch.Tensor), [size, size], antialias=True)
    return v2.functional.to_dtype(x, torch.float32, scale=True)


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available here (use auto or cpu)")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


def check_scriptable(model: nn.Module) -> None:
    """Fail before training, not after it, when the model cannot be saved as TorchScript."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch >= 2.9 marks TorchScript deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            torch.jit.script(model)
        except Exception as exc:  # TorchScript raises its own error types
            raise ValueError(f"the model cannot be saved as TorchScript: {str(exc).strip().splitlines()[0]}") from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", metavar="DIR", help="folder of videos (default: auditkit's sample clips)")
    parser.add_argument("--labels", metavar="CSV", help="clip_id and one column per trait, scores in [0, 1]")
    parser.add_argument("--out", default="rater.pt", help="TorchScript file to write (default rater.pt)")
    parser.add_argument("--epochs", type=int, default=5, help="default 5")
    parser.add_argument("--batch-size", type=int, default=4, help="clips per step (default 4)")
    parser.add_argument("--lr", type=float, default=3e-3, help="AdamW learning rate (default 3e-3)")
    parser.add_argument("--size", type=int, default=112, help="model input height and width (default 112)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (default 8)")
    parser.add_argument("--edits", default="glasses,lighting", metavar="NAME[,NAME...]",
                        help="audit edits applied to half the edited copies (default glasses,lighting)")
    parser.add_argument("--scenes", metavar="DIR", help="your own background images, beside the generated rooms")
    parser.add_argument("--consistency", type=float, default=0.5, metavar="W",
                        help="weight of the consistency loss (default 0.5)")
    parser.add_argument("--no-augment", action="store_true",
                        help="train on the originals only: the baseline to audit against")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader processes decoding clips (default 0)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name, low in (("epochs", 1), ("batch_size", 1), ("size", 16), ("frames", 1), ("workers", 0)):
        if getattr(args, name) < low:
            parser.error(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr must be a positive number, got {args.lr}")
    if not (math.isfinite(args.consistency) and args.consistency >= 0):
        parser.error(f"--consistency must be a number >= 0, got {args.consistency}")
    if (args.clips is None) != (args.labels is None):
        parser.error("--clips and --labels go together (without both: the sample clips with stand-in targets)")
    if args.labels is not None and not Path(args.labels).is_file():
        parser.error(f"--labels {args.labels}: no such file")
    if args.scenes is not None and not Path(args.scenes).is_dir():
        parser.error(f"--scenes {args.scenes}: not a folder")
    if Path(args.out).is_dir():
        parser.error(f"--out {args.out}: is a folder; give a file name such as rater.pt")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prog = Path(sys.argv[0]).name
    try:
        device = pick_device(args.device)
        root = Path(args.clips) if args.clips else sample_clips()
        sources = discover(root)
        traits, labels = read_labels(Path(args.labels), sources, root) if args.labels else stand_in_labels(sources)
        swap = edits = None
        if not args.no_augment:
            try:
                bank = BackgroundBank(images_dir=args.scenes, seed=args.seed)
            except ValueError as exc:  # a folder without images
                raise ValueError(f"--scenes {args.scenes}: {exc}") from None
            swap = RandomBackgroundSwap(bank, generator=torch.Generator().manual_seed(args.seed))
            try:
                edits = CounterfactualAugment(args.edits, p=0.5, generator=torch.Generator().manual_seed(args.seed + 1))
            except KeyError as exc:  # an unknown name; the message lists the known ones
                raise ValueError(f"--edits {args.edits}: {exc.args[0]}") from None
        torch.manual_seed(args.seed)  # the model's initial weights
        model = SmallVideoRater(len(traits))
        check_scriptable(model)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
    except (AuditkitError, ValueError, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2

    # Annotate every clip once before training (later runs and the audit read the cache), and
    # leave out clips that cannot be decoded, saying why.
    annotator = Annotator()
    usable = []
    for source in sources:
        if source.id not in labels:
            continue
        try:
            annotator.annotate_clip(source.read(num_frames=args.frames))
        except ClipError as exc:
            print(f"left out {source.id}: {exc.reason}")
            continue
        usable.append(source)
    unlabelled = len(sources) - len(labels)
    print(f"{len(usable)} clips from {root}" + (f" ({unlabelled} without a label left out)" if unlabelled else "")
          + f"; annotations: {annotator.stats['clips_annotated']} computed, {annotator.stats['clips_cached']} cached")
    if not usable:
        print(f"{prog}: error: no clip to train on", file=sys.stderr)
        return 2

    data = ClipDataset(usable, labels, args.frames, annotator)
    # Clips differ in size, and the edits run at each clip's own resolution: a batch is a list.
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, collate_fn=list,
                        num_workers=args.workers, generator=torch.Generator().manual_seed(args.seed))
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * len(loader))

    for epoch in range(1, args.epochs + 1):
        model.train()
        start = time.perf_counter()
        task_sum = consistency_sum = 0.0
        swapped_count = edited_count = 0
        for batch in loader:
            originals, copies, targets = [], [], []
            for video, mask, clip_annotations, label in batch:
                video, mask = video.to(device), mask.to(device)
                originals.append(model_input(video, args.size))
                targets.append(label)
                if swap is None:
                    continue
                # The edits run at the clip's own resolution, before the resize, as in the audit:
                # the annotations' pixel coordinates are the source frames'.
                swapped, _ = swap(video, mask)
                edited, _ = edits(swapped, [clip_annotations.to(device)])
                swapped_count += bool((swapped != video).any())
                edited_count += bool((edited != swapped).any())
                copies.append(model_input(edited, args.size))
            x = torch.stack(originals)
            y = torch.stack(targets).to(device)
            if copies:
                scores, edited_scores = model(torch.cat([x, torch.stack(copies)])).chunk(2)
                consistency = consistency_loss(scores, edited_scores)
            else:
                scores, consistency = model(x), torch.zeros((), device=device)
            task = F.mse_loss(scores, y)
            loss = task + args.consistency * consistency
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            task_sum += task.item() * len(batch)
            consistency_sum += consistency.item() * len(batch)
        n = len(data)
        # The counts show the augmentation reaching the clips: the face edits skip a clip in which
        # MediaPipe found no face, so a count far below half (p=0.5) points at the annotations.
        copies_note = ("" if swap is None else f", consistency {consistency_sum / n:.5f}; edited copies: "
                       f"{swapped_count}/{n} new background, {edited_count}/{n} {args.edits}")
        print(f"epoch {epoch}/{args.epochs}: task loss {task_sum / n:.4f}{copies_note} "
              f"({time.perf_counter() - start:.1f} s)", flush=True)

    save_torchscript(model.eval().cpu(), out, trait_names=traits,
                     input=InputSpec(size=(args.size, args.size), frames=args.frames))
    print(f"wrote {out}: TorchScript, traits {', '.join(traits)}, input {args.size}x{args.size}, "
          f"{args.frames} frames")
    clips_arg = f" --clips {args.clips}" if args.clips else ""
    other = "with augmentation" if args.no_augment else "with --no-augment"
    print(f"audit it, and the same model trained {other} to compare:\n"
          f"  auditkit run --rater {out}{clips_arg} --perturb glasses,background,lighting --out audit-{out.stem}")
    return 0


if __name__ == "__main__":  # the guard DataLoader workers need
    sys.exit(main())
