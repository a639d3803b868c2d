"""Background edits: swap what is behind the person, insert a bookshelf, or — as a control —
re-composite the original background through the same mask pipeline.

The person's alpha comes from the segmentation mask, its edge snapped to the frame's own edges
by a guided filter (the segmentation is coarse: on dark clothing against a dark wall its edge
wanders, and a feather alone leaves it jagged), lightly smoothed over time; wherever the mask is
at least 0.99 the alpha is exactly 1, so pixels inside the person stay bit-identical. Only the
background and the edge band change.

A generated or user scene is taken into the clip's camera before compositing (:func:`match`):
the exposure and white balance of a white surface in the clip, the blur of the original
background (depth of field) and the clip's sensor noise, all estimated from the clip itself
(:func:`look.camera_look`), so the new room is neither cleaner, sharper nor brighter than the
person standing in it.

The sham control (``background:sham``) swaps the background for itself: the scene is the
original frame, with the region behind the person filled from the surrounding background. The
composite then differs from the original only in the edge band, where a real swap shows its
segmentation artefacts too, so a rater's reaction to the sham measures artefacts alone.
"""

from __future__ import annotations

import functools

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from . import scenes
from .base import Perturbation, per_clip, register
from .kernels import (coarse_step, dilate, frames_to_planes, gaussian_blur, guided_filter, normalised_fill,
                      planes_to_frames)
from .look import CameraLook, clip_look, linear_to_srgb, srgb8_to_linear
from .shots import smooth_masks

INSIDE = 0.99            # mask value from which a pixel belongs to the person, untouched
FEATHER = 0.004          # feather sigma, as a fraction of the frame's longer side
EDGE_LOW, EDGE_HIGH = 0.5, 0.9   # mask values mapped to alpha 0 and 1 before feathering
GUIDE_RADIUS = 0.01      # guided filter window radius, as a fraction of the frame's longer side
GUIDE_EPS = 3e-3         # how faint an edge the alpha follows (variance of [0, 1] colour): not the
                         # 8x8 blocks of a compressed stream
PLATE_SIGMA = 0.02       # the local background behind the edge band (for its colour), likewise
SCENE_BLUR = 0.7         # the generated scenes' own blur (their camera finish), pixels at 360 lines
SCENE_NOISE = 1.7        # and their own noise, in 8-bit levels


def person_alpha(mask: torch.Tensor, feather: float = FEATHER,
                 frames: torch.Tensor | None = None, linked: torch.Tensor | None = None) -> torch.Tensor:
    """float ``[T, H, W]`` alpha of the person, exactly 1 where the mask is at least ``INSIDE``.
    With ``frames`` (uint8 ``[T, H, W, 3]``) its edge follows the frame's own edges (a colour
    guided filter on the mask), smoothed lightly over time between ``linked`` frames (same shot,
    close in time: :func:`auditkit.perturbations.shots.links`) where the picture stayed the same;
    without, the mask feathered."""
    t, h, w = mask.shape
    # Segmentation is soft over several pixels at the boundary, and its 0.5-0.9 band still holds
    # much of the old background (a light halo round the hair); tighten it before feathering.
    core = ((mask - EDGE_LOW) / (EDGE_HIGH - EDGE_LOW)).clamp(0, 1)
    soft = gaussian_blur(core.unsqueeze(1), max(0.8, feather * max(h, w))).squeeze(1).clamp(0, 1)
    if frames is not None:
        radius = max(2, round(GUIDE_RADIUS * max(h, w)))
        # Only the edge band moves: far from it the feathered mask stands (the filter can leak
        # along a long edge of the same colour on both sides).
        edge = (soft > 0.002) & (soft < 0.998)
        band = dilate(edge.float().unsqueeze(1), radius).squeeze(1) > 0
        refined = soft.clone()
        rows, cols = edge.any(0).any(1).nonzero(), edge.any(0).any(0).nonzero()
        if rows.numel():
            # The filter runs on the box round every frame's edge band, with a margin its two
            # window means and the blur below reach across: inside the band the values are
            # those of the whole frame, at a fraction of the cost.
            m = 3 * radius + 4
            y0, y1 = max(0, int(rows.min()) - m), min(h, int(rows.max()) + 1 + m)
            x0, x1 = max(0, int(cols.min()) - m), min(w, int(cols.max()) + 1 + m)
            guide = frames[:, y0:y1, x0:x1].permute(0, 3, 1, 2).to(torch.float32) / 255.0
            # At full resolution: the local models fitted on a coarser grid leave stair steps
            # along a long diagonal edge such as a shoulder.
            snapped = guided_filter(guide, soft[:, y0:y1, x0:x1].unsqueeze(1), radius, GUIDE_EPS)
            # A touch of blur: the filter's local models meet in faint steps along a long edge.
            snapped = gaussian_blur(snapped, 0.6).squeeze(1)
            inside = band[:, y0:y1, x0:x1]
            refined[:, y0:y1, x0:x1] = torch.where(inside, snapped.clamp(0, 1), soft[:, y0:y1, x0:x1])
        # A light [1, 2, 1] filter over time keeps the edge from flickering, only between frames
        # of one shot a fraction of a second apart, and only where the picture did not change
        # (so a person who moved or left leaves no ghost in the neighbouring frame).
        if linked is None:
            linked = torch.ones(t, dtype=torch.bool)
        soft = torch.from_numpy(smooth_masks(refined.cpu().numpy(), frames.cpu().numpy(),
                                             linked.cpu().numpy())).to(mask.device)
    return torch.where(mask >= INSIDE, torch.ones_like(soft), soft)


@functools.lru_cache(maxsize=8)
def _rendered_scene(name: str, height: int, width: int, seed: int) -> np.ndarray:
    """A generated scene, rendered once for every call with the same (name, size, seed): a long
    clip edited chunk by chunk, or several edits of one clip, draw it from here (read-only)."""
    image = scenes.make_scene(name, height, width, rng=np.random.default_rng(seed))
    image.flags.writeable = False
    return image


def _extra_blur(look: CameraLook, size: tuple[int, int], blur: float | None) -> float:
    """How much blur a generated scene needs on top of its own to look like this clip's
    background."""
    target = blur if blur is not None else look.background_blur
    if not np.isfinite(target):
        # No edges in the original background to measure (a plain backdrop): a room behind a
        # person in focus is softer than the person.
        target = 1.5 * (look.person_blur if np.isfinite(look.person_blur) else 0.8)
    own = SCENE_BLUR * max(size) / 640.0
    return float(np.sqrt(max(0.0, target ** 2 - own ** 2)))


def _noise_to_add(look: CameraLook, extra: float) -> float:
    # The scene's own noise shrinks with the blur (by about 1/(2 sqrt(pi) sigma)); top it up to
    # the clip's.
    left = SCENE_NOISE * min(1.0, 1.0 / (2 * np.sqrt(np.pi) * max(extra, 0.3)))
    return float(np.sqrt(max(0.0, look.noise ** 2 - left ** 2))) / 255.0


def _grain(shape: tuple[int, ...], sigma: float, seed: int, device) -> torch.Tensor:
    """Gaussian noise ``[T, H, W, 1]`` drawn on the CPU: the same numbers on every device."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(tuple(shape[:3]) + (1,), generator=gen).to(device) * sigma


def _ycc_mean(x: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Mean (Y', Cb, Cr) of sRGB float pixels ``x`` [..., 3] in [0, 1] where ``where``, in float64
    (the same sum whatever the thread count), over every other row and column (a mean over a
    region: a quarter of its pixels tell it as well)."""
    sub = where[:, ::2, ::2]
    px = (x[:, ::2, ::2][sub] if int(sub.sum()) >= 50 else x[where]).double()
    y = px @ torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64, device=x.device)
    return torch.stack([y.mean(), (0.564 * (px[:, 2] - y)).mean(), (0.713 * (px[:, 0] - y)).mean()])


def near_person(mask: torch.Tensor, width: float = 0.12) -> torch.Tensor:
    """bool ``[T, H, W]``: background (mask < 0.05) within ``width`` of the frame's height of the
    person (mask > 0.5): the background a viewer compares the person with."""
    t, h, w = mask.shape
    r = max(2, int(round(width * h)))
    # Grown on a grid four times coarser (a region for statistics, not an edge: a few pixels
    # more of background are as good), then brought back by repetition.
    s = 4 if min(h, w) >= 64 else 1
    person = (mask > 0.5).float().unsqueeze(1)
    coarse = F.max_pool2d(person, s, s, ceil_mode=True) if s > 1 else person
    near = dilate(coarse, -(-r // s))
    if s > 1:
        near = near.repeat_interleave(s, -2).repeat_interleave(s, -1)[..., :h, :w]
    return (near.squeeze(1) > 0) & (mask < 0.05)


def harmonise(x: torch.Tensor, reference: torch.Tensor, where: torch.Tensor, *, tone: float = 1.0,
              colour: float = 0.75) -> torch.Tensor:
    """``x`` (sRGB float ``[T, H, W, 3]``) moved towards ``reference`` (the original frames, same
    layout) over the pixels ``where``: its mean luma (``tone``: the share of the difference, in
    log; darker by a gain, brighter by a power curve that lifts the shadows and never clips the
    highlights), then its mean chroma by a shift (``colour``). The original background tells the
    clip's exposure and white balance: a new background keeps its own content and contrast, but
    not a brightness or a colour cast the room around the person did not have. ``x`` may be one
    frame standing for all of them (a still scene): it is measured as if repeated, and moved
    once."""
    if int(where.sum()) < 50:
        return x
    seen = x.expand(reference.shape)
    ref, cur = _ycc_mean(reference, where), _ycc_mean(seen, where)
    target = float(cur[0].clamp(min=1e-3)) * float((ref[0].clamp(min=1e-3) / cur[0].clamp(min=1e-3)) ** tone)
    if target <= float(cur[0]):
        # Darker: a gain (it cannot clip).
        x = x * (target / max(float(cur[0]), 1e-6))
    else:
        # Brighter: a power curve that lifts the shadows and never clips a highlight; its
        # exponent by bisection (the mean of x^g falls as g grows).
        lo, hi = 0.2, 1.0
        sample = seen[where][:: max(1, int(where.sum()) // 20000)].clamp(0, 1).double()
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64, device=x.device)
        for _ in range(24):
            g = 0.5 * (lo + hi)
            if float((sample ** g @ weights).mean()) > target:
                lo = g
            else:
                hi = g
        x = x.clamp(0, 1) ** (0.5 * (lo + hi))
    cur = _ycc_mean(x.expand(reference.shape), where)
    dcb, dcr = (float(v) * colour for v in (ref[1:] - cur[1:]))
    shift = torch.tensor([1.403 * dcr, -0.344 * dcb - 0.714 * dcr, 1.773 * dcb], dtype=x.dtype, device=x.device)
    return x + shift


def match(scene: torch.Tensor, look: CameraLook, *, blur: float | None = None,
          seed: int = 0, reference: torch.Tensor | None = None, where: torch.Tensor | None = None) -> torch.Tensor:
    """A generated or user scene (uint8 ``[N, H, W, 3]``, exposed as a neutral camera would: a
    white wall near 255) taken into this clip's camera: its white balance and exposure (scaled by
    the clip's white), its background blur (added to the scene's own) and its sensor noise (fresh
    per frame). With ``reference`` frames and a region ``where``, it is then brought to the
    original background's tone and colour there (:func:`harmonise`). A still scene is one frame
    (``N`` = 1): it is taken into the camera once and gets a frame of noise per reference frame."""
    x = srgb8_to_linear(scene)
    x = x * torch.tensor(look.white, dtype=torch.float32, device=scene.device)
    extra = _extra_blur(look, tuple(scene.shape[1:3]), blur)
    if extra > 0.3:
        x = gaussian_blur(x.permute(0, 3, 1, 2), extra).permute(0, 2, 3, 1)
    out = linear_to_srgb(x)
    if reference is not None and where is not None:
        out = harmonise(out, reference.to(torch.float32) / 255.0, where)
    if reference is not None:
        out = out.expand(reference.shape)
    add = _noise_to_add(look, extra)
    if add > 0:
        out = out + _grain(out.shape, add, seed, out.device)
    return (out * 255.0).round_().clamp_(0, 255).to(torch.uint8)


def composite(frames: torch.Tensor, scene: torch.Tensor, alpha: torch.Tensor,
              plate: torch.Tensor | None = None) -> torch.Tensor:
    """The person (``frames``, uint8 ``[T, H, W, 3]``) over ``scene`` (uint8 ``[T or 1, H, W, 3]``).
    With ``plate`` (the original background behind the person, uint8 like ``frames``), edge
    pixels lose the old background's colour first (``F = (I - (1 - a) B) / a``): without it a
    blue wall leaves a blue fringe round the hair on the new one."""
    # Only the edge band mixes: inside the person the frame stays, outside it the scene is taken
    # as it is (the same pixels the mix gives at alpha 0 and 1, without computing it everywhere).
    out = torch.where((alpha >= 1.0).unsqueeze(-1), frames, scene.expand_as(frames))
    # The band's pixels by flat index (a boolean mask would be searched again at every use).
    where = ((alpha > 0) & (alpha < 1.0)).view(-1).nonzero().squeeze(1)
    if where.numel() == 0:
        return out

    def band(x: torch.Tensor) -> torch.Tensor:
        # A still scene (one frame for all) is indexed within its one frame.
        idx = where if x.shape[0] == frames.shape[0] else where.remainder(x[0, ..., 0].numel())
        return x.reshape(-1, 3).index_select(0, idx).to(torch.float32)

    a = alpha.reshape(-1).index_select(0, where).unsqueeze(-1)
    fg = band(frames)
    if plate is not None:
        unmixed = ((fg - (1 - a) * band(plate)) / a.clamp(min=1e-3)).clamp_(0, 255)
        # Where the person is only a trace, the estimate is noise: keep the frame there.
        trust = ((a - 0.05) / 0.25).clamp(0, 1)
        fg = fg + (unmixed - fg) * trust
    mixed = (fg * a + band(scene) * (1 - a)).round_().clamp_(0, 255).to(torch.uint8)
    out.view(-1, 3).index_copy_(0, where, mixed)
    return out


def fill_behind_person(frames: torch.Tensor, mask: torch.Tensor, sigma_frac: float) -> torch.Tensor:
    """The background with the person's region filled from around it (normalised convolution):
    a blurred "clean plate". Returns uint8 frames."""
    h, w = mask.shape[-2:]
    weight = (1.0 - mask).clamp(0, 1).unsqueeze(1)
    sigma = max(1.0, sigma_frac * max(h, w))
    # A wide blur: on a coarser grid (see gaussian_blur), brought back to full size once.
    fill = normalised_fill(frames_to_planes(frames), weight, sigma, coarse_step(sigma, h, w))
    return planes_to_frames(fill)


def _edge_terms(frames: torch.Tensor, annotations: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The person's refined alpha and the clean plate behind their edge: the same for every
    background edit of a clip, computed once (``per_clip``)."""
    mask = annotations.mask
    return (per_clip(frames, annotations, "alpha", lambda: person_alpha(mask, frames=frames, linked=annotations.links)),
            per_clip(frames, annotations, "plate", lambda: fill_behind_person(frames, mask, PLATE_SIGMA)))


class BackgroundSwap(Perturbation):
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

    def scene_frames(self, frames: torch.Tensor, params: Mapping[str, Any], mask: torch.Tensor,
                     look: CameraLook, near: torch.Tensor) -> torch.Tensor:
        t, h, w = frames.shape[:3]
        if self.scene == "sham":
            plate = fill_behind_person(frames, mask, 0.06)
            return torch.where(mask.unsqueeze(-1) >= 0.5, plate, frames)
        if self.scene == "blurred":
            return fill_behind_person(frames, mask, 0.025)
        if self.scene == "user":
            image = scenes.user_scene(params["image"], h, w)
        else:
            image = _rendered_scene(self.scene, h, w, params["scene_seed"])
        scene = torch.from_numpy(np.array(image)).to(frames.device).unsqueeze(0)
        # One scene for the clip, with fresh sensor noise on every frame.
        return match(scene, look, seed=params["scene_seed"], reference=frames, where=near)

    def transform(self, frames, params, annotations):
        mask = annotations.mask
        # What every background edit of a clip derives from the clip alone is computed once.
        alpha, plate = _edge_terms(frames, annotations)
        near = per_clip(frames, annotations, "near", lambda: near_person(mask))
        scene = self.scene_frames(frames, params, mask, clip_look(frames, annotations), near)
        return composite(frames, scene, alpha, plate=plate)


class BookshelfInsert(Perturbation):
    """A generated bookshelf standing against the wall behind the person, to one side; the rest
    of the original background stays. The wall next to it gets the shelf's soft shadow."""

    name = "bookshelf:insert"
    description = "a bookshelf placed behind the person, beside them, in the original room"
    requires = frozenset({"mask"})

    def make_params(self, frames, annotations, rng):
        return {"scene_seed": int(rng.integers(2**31)), "side": str(rng.choice(["left", "right"])),
                "width": float(rng.uniform(0.38, 0.48)), "top": float(rng.uniform(0.0, 0.12))}

    def transform(self, frames, params, annotations):
        t, h, w = frames.shape[:3]
        sw, top = max(8, int(params["width"] * w)), int(params["top"] * h)
        unit = scenes.bookshelf_unit(h - top, sw, rng=np.random.default_rng(params["scene_seed"]))
        unit = torch.from_numpy(np.ascontiguousarray(unit)).to(frames.device).unsqueeze(0)
        x0 = 0 if params["side"] == "left" else w - sw
        # The shelf stands in this room: exposed and white-balanced as the clip, as soft as the
        # wall it stands against (blurred together with it, so its edges are as soft as the
        # room's), as noisy as the rest.
        look = clip_look(frames, annotations)
        white = torch.tensor(look.white, dtype=torch.float32, device=frames.device)
        extra = _extra_blur(look, (h, w), None)
        margin = int(np.ceil(3 * extra)) + 1 if extra > 0.3 else 0
        # Everything below happens in the shelf's footprint and the blur's margin round it: the
        # rest of the room is the frames' own.
        ya, xa, xb = max(0, top - margin), max(0, x0 - margin), min(w, x0 + sw + margin)
        room = frames[:, ya:, xa:xb]
        shelf = (slice(None), slice(top - ya, None), slice(x0 - xa, x0 - xa + sw))
        canvas = srgb8_to_linear(room)
        canvas[shelf] = srgb8_to_linear(unit) * white
        if margin:
            canvas = gaussian_blur(canvas.permute(0, 3, 1, 2), extra).permute(0, 2, 3, 1)
        canvas = linear_to_srgb(canvas)
        # Against the wall it stands on: mostly its tone, and its colour cast (a shelf is a
        # little darker than a white wall, but lit by the same lamp).
        footprint = torch.zeros(canvas.shape[:3], dtype=torch.bool, device=frames.device)
        footprint[shelf] = True
        background = footprint & (annotations.mask[:, ya:, xa:xb] < 0.05)
        harmonised = harmonise(canvas, room.to(torch.float32) / 255.0, background, tone=0.85)
        canvas = torch.where(footprint.unsqueeze(-1), harmonised, canvas)
        canvas = canvas + _grain(canvas.shape, _noise_to_add(look, extra), params["scene_seed"], frames.device)
        scene = frames.clone()
        scene[:, ya:, xa:xb] = (canvas * 255.0).round_().clamp_(0, 255).to(torch.uint8)
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
        covered[ya:, xa:xb] = True
        scene = torch.where(covered.view(1, h, w, 1), scene, shaded)
        # The person's edge pixels are unmixed from the wall the camera saw behind them (the
        # clip's own clean plate, shared with the swaps), not from the shelf drawn there now.
        alpha, plate = _edge_terms(frames, annotations)
        return composite(frames, scene, alpha, plate=plate)


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
