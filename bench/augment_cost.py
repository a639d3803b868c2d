"""Cost of ``RandomBackgroundSwap`` inside training.

Prints, for a batch of 16 clips x 8 frames at 112 px on the CPU:
- one training step of the reference regressor (resnet18, forward + backward + AdamW step);
- the swap on the same batch, as a fraction of that step;
- a per-frame OpenCV/numpy loop doing the same swap (same feathering, same backgrounds), and how
  much faster the batched torch transform is.

    python bench/augment_cost.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torchvision import tv_tensors

from auditkit.media.clips import discover
from auditkit.media.samples import sample_clips
from auditkit.models.ocean import OceanRegressor
from auditkit.perturbations.annotate import Annotator
from auditkit.perturbations.augment import BackgroundBank, RandomBackgroundSwap
from auditkit.perturbations.background import EDGE_HIGH, EDGE_LOW, FEATHER, INSIDE

B, T, S = 16, 8, 112


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def numpy_swap(video: np.ndarray, masks: np.ndarray, bank: np.ndarray, choice: np.ndarray) -> np.ndarray:
    """The same composite, one frame at a time with OpenCV and numpy."""
    out = np.empty_like(video)
    sigma = max(0.8, FEATHER * S)
    for i in range(video.shape[0]):
        scene = bank[choice[i]].astype(np.float32)
        for t in range(video.shape[1]):
            m = masks[i, t]
            core = np.clip((m - EDGE_LOW) / (EDGE_HIGH - EDGE_LOW), 0, 1)
            alpha = np.clip(cv2.GaussianBlur(core, (0, 0), sigma, borderType=cv2.BORDER_REFLECT), 0, 1)
            alpha[m >= INSIDE] = 1.0
            frame = video[i, t].astype(np.float32)
            blend = np.clip(np.round(frame * alpha[..., None] + scene * (1 - alpha[..., None])), 0, 255)
            out[i, t] = np.where(alpha[..., None] >= 1.0, video[i, t], blend.astype(np.uint8))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    sources = discover(sample_clips())
    annotator = Annotator()
    clips, masks = [], []
    for i in range(B):
        clip = sources[i % len(sources)].read(num_frames=T)
        ann = annotator.annotate_clip(clip)
        x = torch.from_numpy(clip.frames).permute(0, 3, 1, 2).float()
        clips.append(F.interpolate(x, size=(S, S), mode="bilinear", antialias=True).round().to(torch.uint8))
        masks.append(F.interpolate(ann.mask.unsqueeze(1), size=(S, S), mode="bilinear").squeeze(1))
    video = torch.stack(clips)                      # [B, T, 3, S, S] uint8
    mask = torch.stack(masks)                       # [B, T, S, S]

    model = OceanRegressor("resnet18", size=S, frames=T).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    target = torch.rand(B, 5)

    def step() -> None:
        loss = F.mse_loss(model(video.float() / 255), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    bank = BackgroundBank()
    swap = RandomBackgroundSwap(bank, generator=torch.Generator().manual_seed(0))
    bank.render(S, S)  # rendered once per size, as in training
    step()             # warm-up
    step_s = best_of(step, args.repeats)
    swap_s = best_of(lambda: swap(tv_tensors.Video(video), tv_tensors.Mask(mask)), args.repeats)
    choice = np.random.default_rng(0).integers(len(bank), size=B)
    bank_np = bank.render(S, S).numpy()
    video_np = video.permute(0, 1, 3, 4, 2).contiguous().numpy()
    loop_s = best_of(lambda: numpy_swap(video_np, mask.numpy(), bank_np, choice), args.repeats)

    print(f"batch: {B} clips x {T} frames at {S} px, CPU threads {torch.get_num_threads()}")
    print(f"training step (resnet18 fwd+bwd+AdamW)   {step_s * 1000:8.1f} ms")
    print(f"RandomBackgroundSwap (batched torch)     {swap_s * 1000:8.1f} ms  "
          f"= {swap_s / step_s:.1%} of a training step")
    print(f"per-frame OpenCV/numpy loop, same swap   {loop_s * 1000:8.1f} ms  "
          f"(batched transform is {loop_s / swap_s:.1f}x faster)")


if __name__ == "__main__":
    main()
