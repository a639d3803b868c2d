"""Background edits: swap what is behind the person, insert a bookshelf, or — as a control —
re-composite the original background through the same mask pipeline.

The person's alpha comes from the segmentation mask with a feathered edge; wherever the mask is
at least 0.99 the alpha is exactly 1, so pixels inside the person stay bit-identical. Only the
background and the feathered edge band change.

The sham control (``background:sham``) swaps the background for itself: the scene is the
original frame, with the region behind the person filled from the surrounding background. The
composite then differs from the original only in the edge band, where a real swap shows its
segmentation artefacts too, so a rater's reaction to the sham measures artefacts alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from . import scenes
from .base import Perturbation, register
from .kernels import frames_to_planes, gaussian_blur, planes_to_frames

INSIDE = 0.99            # mask value from which a pixel belongs to the person, untouched
FEATHER = 0.004          # feather sigma, as a fraction of the frame's longer side
EDGE_LOW, EDGE_HIGH = 0.5, 0.9   # mask values mapped to alpha 0 and 1 before feathering


def person_alpha(mask: torch.Tensor, feather: float = FEATHER) -> torch.Tensor:
    """float ``[T, H, W]`` alpha of the person: the mask, feathered, exactly 1 inside it."""
    t, h, w = mask.shape
    # Segmentation is soft over several pixels at the boundary, and its 0.5-0.9 band still holds
    # much of the old background (a light halo round the hair); tighten it before feathering.
    core = ((mask - EDGE_LOW) / (EDGE_HIGH - EDGE_LOW)).clamp(0, 1)
    soft = gaussian_blur(core.unsqueeze(1), max(0.8, feather * max(h, w))).squeeze(1).clamp(0, 1)
    return torch.where(mask >= INSIDE, torch.ones_like(soft), soft)


def composite(frames: torch.Tensor, scene: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The person (``frames``, uint8 ``[T, H, W, 3]``) over ``scene`` (uint8 ``[T or 1, H, W, 3]``)."""
    a = alpha.unsqueeze(-1)
    out = (frames.to(torch.float32) * a + scene.to(torch.float32) * (1 - a)).round_().clamp_(0, 255)
    return torch.where(a >= 1.0, frames, out.to(torch.uint8))


def fill_behind_person(frames: torch.Tensor, mask: torch.Tensor, sigma_frac: float) -> torch.Tensor:
    """The background with the person's region filled from around it (normalised convolution):
    a blurred "clean plate". Returns uint8 frames."""
    t, h, w = mask.shape
    x = frames_to_planes(frames)
    weight = (1.0 - mask).clamp(0, 1).unsqueeze(1)
    sigma = max(1.0, sigma_frac * max(h, w))
    num = gaussian_blur(x * weight, sigma)
    den = gaussian_blur(weight, sigma)
    # Where no background is near (a frame filled by the person), use the frame's background mean.
    mean = (x * weight).sum(dim=(2, 3), keepdim=True) / weight.sum(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    fill = torch.where(den > 1e-3, num / den.clamp_min(1e-6), mean)
    return planes_to_frames(fill)


class BackgroundSwap(Perturbation):
    family = "background"
    requires = frozenset({"mask"})

    def __init__(self, scene: str, description: str, scenes_dir: str | Path | None = None) -> None:
        self.scene = scene
        self.name = f"background:{scene}"
        self.description = description
        self.images: list[Path] = []
        if scene == "user":
            if scenes_dir is None:
                raise ValueError("background:user needs a folder of images (--scenes DIR or "
                                 "scenes_dir in the configuration)")
            self.images = scenes.load_user_scenes(scenes_dir)

    def make_params(self, frames, annotations, rng: np.random.Generator) -> dict[str, Any]:
        params: dict[str, Any] = {"scene_seed": int(rng.integers(2**31))}
        if self.images:
            params["image"] = str(self.images[int(rng.integers(len(self.images)))])
        return params

    def scene_frames(self, frames: torch.Tensor, params: Mapping[str, Any], mask: torch.Tensor) -> torch.Tensor:
        t, h, w = frames.shape[:3]
        if self.scene == "sham":
            plate = fill_behind_person(frames, mask, 0.06)
            return torch.where(mask.unsqueeze(-1) >= 0.5, plate, frames)
        if self.scene == "blurred":
            return fill_behind_person(frames, mask, 0.025)
        if self.scene == "user":
            image = scenes.user_scene(params["image"], h, w)
        else:
            image = scenes.make_scene(self.scene, h, w, rng=np.random.default_rng(params["scene_seed"]))
        return torch.from_numpy(np.ascontiguousarray(image)).to(frames.device).unsqueeze(0)

    def transform(self, frames, params, annotations):
        mask = annotations.mask
        return composite(frames, self.scene_frames(frames, params, mask), person_alpha(mask))


class BookshelfInsert(Perturbation):
    """A generated bookshelf standing against the wall behind the person, to one side; the rest
    of the original background stays. The wall next to it gets the shelf's soft shadow."""

    name = "bookshelf:insert"
    family = "bookshelf"
    description = "a bookshelf placed behind the person, beside them, in the original room"
    requires = frozenset({"mask"})

    def make_params(self, frames, annotations, rng):
        return {"scene_seed": int(rng.integers(2**31)), "side": str(rng.choice(["left", "right"])),
                "width": float(rng.uniform(0.38, 0.48)), "top": float(rng.uniform(0.0, 0.12))}

    def transform(self, frames, params, annotations):
        t, h, w = frames.shape[:3]
        sw, top = max(8, int(params["width"] * w)), int(params["top"] * h)
        unit = scenes.bookshelf_unit(h - top, sw, rng=np.random.default_rng(params["scene_seed"]))
        unit = torch.from_numpy(np.ascontiguousarray(unit)).to(frames.device)
        x0 = 0 if params["side"] == "left" else w - sw
        scene = frames.clone()
        scene[:, top:, x0:x0 + sw] = unit
        # A soft contact shadow on the wall along the shelf's inner edge and above it.
        xs = torch.arange(w, device=frames.device, dtype=torch.float32)
        ys = torch.arange(h, device=frames.device, dtype=torch.float32)
        inner = (xs - (x0 + sw)) if params["side"] == "left" else (x0 - 1 - xs)
        reach = 0.03 * w
        side_shadow = torch.exp(-inner.clamp(min=0) / reach) * (inner >= 0)
        above = (top - 1 - ys).clamp(min=0)
        top_shadow = torch.exp(-above / reach) * (ys < top) * (top > 0)
        in_x = torch.zeros_like(xs)
        in_x[x0:x0 + sw] = 1.0
        shade = 1.0 - 0.35 * torch.maximum(side_shadow.view(1, -1) * (ys >= top).view(-1, 1),
                                            top_shadow.view(-1, 1) * in_x.view(1, -1))
        shaded = (scene.to(torch.float32) * shade.view(1, h, w, 1)).round_().clamp_(0, 255).to(torch.uint8)
        covered = torch.zeros(h, w, dtype=torch.bool, device=frames.device)
        covered[top:, x0:x0 + sw] = True
        scene = torch.where(covered.view(1, h, w, 1), scene, shaded)
        return composite(frames, scene, person_alpha(annotations.mask))


_DESCRIPTIONS = {
    "plain": "a plain painted wall behind the person",
    "bookshelf": "a full wall of bookshelves behind the person",
    "office": "an office behind the person",
    "blurred": "the original background, blurred (as video-call blur does)",
    "sham": "control: the original background re-composited through the same mask pipeline",
}

for _scene, _text in _DESCRIPTIONS.items():
    register(f"background:{_scene}", lambda s=_scene, d=_text: BackgroundSwap(s, d))
register("background:user",
         lambda scenes_dir=None: BackgroundSwap("user", "an image of the user's behind the person",
                                                scenes_dir),
         in_family=False)
register("bookshelf:insert", BookshelfInsert)
