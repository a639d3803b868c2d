"""Where the rater looks: attribution per region (face, hair, body, background) and heatmaps.

Two methods answer the same counterfactual — "the region becomes uninformative flat grey" — at two
resolutions:

- ``integrated_gradients`` (Captum), for raters whose scores are differentiable in their input (a
  ``TorchRater``: torch modules, TorchScript, checkpoints). The baseline is the region ablation's
  own fill (:data:`auditkit.perturbations.regions.GREY`) over the whole input, so by IG's
  completeness the per-pixel attributions of a trait add up to ``score(clip) − score(grey frame)``,
  the shift of the ``region:all`` control; a blurred baseline would keep the low frequencies (the
  wall's colour, the lighting) and hide exactly the shortcuts an audit looks for. It gives a map per
  pixel and frame, for the overlays; its cost is ``steps`` forward and backward passes per trait.
- ``ablation``, for every rater (ONNX, HTTP, factories too): the four ``region:*`` edits are scored
  through the audit's own scoring path (:func:`auditkit.core.work.score_batch`); a region's
  attribution is ``|score(region ablated) − score(original)|``. Five rater inputs per clip, no
  gradients, no map finer than the regions (its heatmap paints each region's density). An audit
  that ran the ``region`` family already holds these scores: :func:`from_scores` reads them
  without calling the rater again.

Per trait and region, a clip's **share** is the region's part of the clip's total |attribution|
(IG: ``Σ weight·|a|`` over the region's soft mask, channels and frames; ablation: the region's
|shift| over the sum of the four, which is not the ``region:all`` shift when the regions interact),
and its **density** is share ÷ the region's share of the picture's area: 1 everywhere for a rater
that reads every pixel alike, above 1 where it looks more than the area would explain. Reported:
the mean over clips with a 95% t interval (clips are the unit, as in the audit's tests; with the
few clips explain samples a percentile bootstrap covers too little), clipped to the possible range.
A clip on which a trait's attribution is exactly zero has no share to give: it is left out of the
means and counted (``n_zero``); when every clip is, the trait's shares and densities are 0 with a
note, never NaN.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, MutableMapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from auditkit.contract.errors import ClipError, ConfigError, RaterError
from auditkit.contract.rater import rater_identity
from auditkit.media.clips import DEFAULT_MAX_SIDE, Clip, ClipSource, as_sources, sample_indices, with_audio
from auditkit.perturbations import DEFAULT_MAX_MISSING_FACE, get as get_edit
from auditkit.perturbations.annotate import ANNOTATOR_VERSION, Annotations, Annotator, face_crop_box
from auditkit.perturbations.regions import GREY, REGIONS, region_masks

from auditkit.contract.arms import ORIGINAL
from auditkit.contract.params import Maybe, Names, Number, OneOf, check

from .executors import Job
from .findings import RegionSummary
from .plan import AuditPlan
from .settings import COMMAND_LINE, AuditConfig
from .work import Prepared, items_per_call, rater_input, score_batch

METHODS = ("auto", "integrated_gradients", "ablation")
DEFAULT_CLIPS = 8
DEFAULT_FRAMES = 2
DEFAULT_STEPS = 16
# How each setting of an explanation is checked, wherever it was given (the API, the command line).
EXPLAIN_RULES = {"method": OneOf(METHODS), "clips": Number(1, None, integer=True),
                 "frames": Number(1, None, integer=True), "steps": Number(2, None, integer=True),
                 "traits": Maybe(Names())}


@dataclass(frozen=True)
class ExplainSettings:
    """What ``explain`` does: ``method`` (``integrated_gradients``, ``ablation``, or ``auto``: the
    first for a torch rater, else the second); ``clips`` explained; ``frames`` per clip kept for
    the overlays; IG's integration ``steps``; the ``traits`` to explain (``None``: all)."""

    method: str = "auto"
    clips: int = DEFAULT_CLIPS
    frames: int = DEFAULT_FRAMES
    steps: int = DEFAULT_STEPS
    traits: tuple[str, ...] | None = None
    source: str = field(default="explain", compare=False)  # where they were given, for messages

    def __post_init__(self) -> None:
        # On the command line the message names the flag the user typed.
        label = (lambda key: {"traits": "--trait"}.get(key, f"--{key}")) if self.source == COMMAND_LINE else None
        for name, rule in EXPLAIN_RULES.items():
            value = getattr(self, name)
            if name == "traits" and isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, check(name, value, rule, where=self.source, label=label))
CONFIDENCE = 0.95
EXPLAIN_VERSION = 1  # part of every cache key: a change of method or regions invalidates old entries
_EPS = 1e-12


@dataclass(frozen=True, eq=False)
class ClipAttribution:
    """One clip's attribution. ``regions``: float64 ``[K, R]`` |attribution| per trait and region;
    ``area``: float64 ``[R]`` each region's share of the picture; ``total``: float64 ``[K]`` the
    signed sum (IG: ≈ score − score of the grey frame; ablation: NaN); ``gap``: float64 ``[K]``
    IG's completeness error |Σa − (score − score(grey))| (0 for ablation); ``frames``: uint8
    ``[F, h, w, 3]`` the rater input frames kept for overlays, at positions ``frame_index``;
    ``heatmaps``: float16 ``[K, F, h, w]`` |attribution| per pixel (summed over channels)."""

    clip: str
    regions: np.ndarray
    area: np.ndarray
    total: np.ndarray
    gap: np.ndarray
    frame_index: tuple[int, ...]
    frames: np.ndarray
    heatmaps: np.ndarray

    def shares(self) -> np.ndarray:
        """float64 ``[K, R]``; a trait with zero attribution on this clip has shares of 0."""
        total = self.regions.sum(axis=1, keepdims=True)
        return np.divide(self.regions, total, out=np.zeros_like(self.regions), where=total > 0)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, clip=np.array(self.clip), regions=self.regions, area=self.area,
                            total=self.total, gap=self.gap, frame_index=np.array(self.frame_index, np.int64),
                            frames=self.frames, heatmaps=self.heatmaps)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "ClipAttribution":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(clip=str(z["clip"]), regions=z["regions"], area=z["area"], total=z["total"],
                       gap=z["gap"], frame_index=tuple(int(i) for i in z["frame_index"]),
                       frames=z["frames"], heatmaps=z["heatmaps"])


@dataclass(frozen=True, eq=False)
class Attribution:
    """What :func:`explain` found: per-clip attributions and, per trait and region, their
    summary. ``to_dict()`` is the compact ``attribution`` section of ``audit.json`` (no pixels);
    ``to_bytes()``/``from_bytes()`` keep everything, heatmaps included, for the run's store."""

    method: str
    traits: tuple[str, ...]
    clips: tuple[ClipAttribution, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    skipped: tuple[tuple[str, str], ...] = ()
    regions: tuple[str, ...] = REGIONS

    def clip(self, clip_id: str) -> ClipAttribution:
        for c in self.clips:
            if c.clip == clip_id:
                return c
        raise KeyError(f"no clip {clip_id!r} in this attribution; it has {', '.join(c.clip for c in self.clips)}")

    def _trait_index(self, trait: str) -> int:
        if trait not in self.traits:
            raise KeyError(f"no trait {trait!r} in this attribution; it has {', '.join(self.traits)}")
        return self.traits.index(trait)

    def summary(self, trait: str) -> dict[str, RegionSummary]:
        k = self._trait_index(trait)
        live = [c for c in self.clips if c.regions[k].sum() > 0]
        out = {}
        for r, region in enumerate(self.regions):
            area = float(np.mean([c.area[r] for c in self.clips])) if self.clips else 0.0
            if not live:
                out[region] = RegionSummary(0.0, (0.0, 0.0), 0.0, (0.0, 0.0), area)
                continue
            shares = np.array([c.shares()[k, r] for c in live])
            densities = np.array([c.shares()[k, r] / c.area[r] for c in live if c.area[r] > 0])
            share, share_ci = _mean_ci(shares, 0.0, 1.0)
            density, density_ci = _mean_ci(densities, 0.0, math.inf)
            out[region] = RegionSummary(share, share_ci, density, density_ci, area)
        return out

    def share(self, trait: str, region: str) -> float:
        if region not in self.regions:
            raise KeyError(f"no region {region!r}; regions are {', '.join(self.regions)}")
        return self.summary(trait)[region].share

    def density(self, trait: str, region: str) -> float:
        if region not in self.regions:
            raise KeyError(f"no region {region!r}; regions are {', '.join(self.regions)}")
        return self.summary(trait)[region].density

    def heatmap(self, clip_id: str, trait: str) -> np.ndarray:
        """float32 ``[F, h, w]`` |attribution| of the kept frames of one clip and trait."""
        return self.clip(clip_id).heatmaps[self._trait_index(trait)].astype(np.float32)

    def overlay(self, clip_id: str, trait: str, frame: int = 0, *, side: int = 256) -> bytes:
        """PNG bytes: the rater's input frame | its heatmap. One colour scale for all kept frames
        of the clip and trait (its 99.5th percentile: a few extreme pixels would wash the rest out)."""
        c = self.clip(clip_id)
        heat = self.heatmap(clip_id, trait)
        if not 0 <= frame < len(c.frame_index):
            raise IndexError(f"frame must be in 0..{len(c.frame_index) - 1} (the kept frames), got {frame}")
        scale = float(np.quantile(heat, 0.995)) or float(heat.max())
        return overlay_png(c.frames[frame], heat[frame], scale=scale, side=side)

    def to_dict(self) -> dict[str, Any]:
        traits: dict[str, Any] = {}
        for k, trait in enumerate(self.traits):
            totals = np.array([c.regions[k].sum() for c in self.clips])
            n_zero = int((totals == 0).sum())
            entry: dict[str, Any] = {
                "n": len(self.clips) - n_zero, "n_zero": n_zero,
                "mean_abs_attribution": round(float(totals.mean()), 9) if len(totals) else 0.0,
                "regions": {r: s.to_dict() for r, s in self.summary(trait).items()},
                "note": ""}
            if self.clips and n_zero == len(self.clips):
                entry["note"] = (f"no attribution on any of {n_zero} clips: this trait's score does not "
                                 "depend on the input here; shares and densities are 0")
            elif n_zero:
                entry["note"] = f"{n_zero} clip(s) without any attribution are left out of the means"
            gaps = [float(c.gap[k]) for c in self.clips if np.isfinite(c.total[k])]
            if self.method == "integrated_gradients" and gaps:
                scale = max(float(np.mean([abs(c.total[k]) for c in self.clips])), _EPS)
                entry["completeness_gap"] = round(float(np.mean(gaps)) / scale, 6)
            traits[trait] = entry
        return {
            "method": self.method,
            "baseline": f"flat grey {GREY}/255 (the region:* fill)",
            "interval": f"{CONFIDENCE:.0%} t interval over clips, clipped to the possible range",
            "regions": list(self.regions),
            "n_clips": len(self.clips),
            "options": dict(self.options),
            "traits": traits,
            "clips": [{"clip": c.clip, "area": _rounded(dict(zip(self.regions, c.area))),
                       "share": {t: _rounded(dict(zip(self.regions, c.shares()[k])))
                                 for k, t in enumerate(self.traits)}} for c in self.clips],
            "skipped": [{"clip": cid, "reason": why} for cid, why in self.skipped],
        }

    def to_bytes(self) -> bytes:
        head = {"method": self.method, "traits": list(self.traits), "regions": list(self.regions),
                "options": dict(self.options), "skipped": [list(s) for s in self.skipped],
                "version": EXPLAIN_VERSION}
        blobs = [c.to_bytes() for c in self.clips]
        buf = io.BytesIO()
        np.savez(buf, head=np.array(json.dumps(head)),
                 **{f"clip{i}": np.frombuffer(b, np.uint8) for i, b in enumerate(blobs)})
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Attribution":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            head = json.loads(str(z["head"]))
            if head.get("version") != EXPLAIN_VERSION:
                raise ValueError(f"attribution bytes of version {head.get('version')}, this reads {EXPLAIN_VERSION}")
            n = sum(1 for name in z.files if name.startswith("clip"))
            clips = tuple(ClipAttribution.from_bytes(z[f"clip{i}"].tobytes()) for i in range(n))
        return cls(method=head["method"], traits=tuple(head["traits"]), clips=clips, options=head["options"],
                   skipped=tuple((a, b) for a, b in head["skipped"]), regions=tuple(head["regions"]))


def _rounded(d: Mapping[str, float]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in d.items()}


def _mean_ci(values: np.ndarray, low: float, high: float) -> tuple[float, tuple[float, float] | None]:
    if values.size == 0:
        return 0.0, None
    mean = float(values.mean())
    if values.size < 2:
        return mean, None
    from scipy import stats

    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size))
    return mean, (max(low, mean - half), min(high, mean + half))


def input_masks(masks: torch.Tensor, spec: Any) -> torch.Tensor:
    """Region weights ``[T, R, H, W]`` at source resolution → ``[T', R, h, w]`` at the rater's
    input, frames sampled and resized with the filter :func:`auditkit.core.work.rater_input` uses
    (bilinear with antialias: weights that sum to one still do)."""
    if masks.shape[0] != spec.frames:
        masks = masks.index_select(0, torch.as_tensor(sample_indices(masks.shape[0], spec.frames)))
    if tuple(masks.shape[-2:]) != tuple(spec.size):
        masks = F.interpolate(masks, size=spec.size, mode="bilinear", antialias=True, align_corners=False)
    return masks.clamp_(0, 1)


def overlay_png(frame: np.ndarray, heat: np.ndarray, *, scale: float | None = None, side: int = 256) -> bytes:
    """PNG of ``frame`` (uint8 ``[h, w, 3]``) beside the same frame, dimmed, under ``heat``
    (``[h, w]``, ≥ 0) in the inferno colour map; ``scale`` is the heat drawn at full colour
    (default: this map's maximum). A map of zeros shows the dimmed frame alone."""
    import cv2

    frame = np.asarray(frame)
    heat = np.asarray(heat, np.float32)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"frame must be uint8 [h, w, 3], got {frame.dtype} {frame.shape}")
    if heat.shape != frame.shape[:2]:
        raise ValueError(f"heat must be [h, w] = {frame.shape[:2]}, got {heat.shape}")
    h, w = frame.shape[:2]
    size = (max(1, round(w * side / h)), side)
    big = cv2.resize(frame, size, interpolation=cv2.INTER_NEAREST if side >= h else cv2.INTER_AREA)
    top = float(heat.max()) if scale is None else float(scale)
    level = np.clip(heat / top, 0, 1) if top > 0 else np.zeros_like(heat)
    level = cv2.resize(level, size, interpolation=cv2.INTER_LINEAR)
    colour = cv2.cvtColor(cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
    alpha = np.sqrt(level)[..., None]  # faint attribution still visible, strong one opaque
    dimmed = big.astype(np.float32) * 0.45
    right = (dimmed * (1 - alpha) + colour.astype(np.float32) * alpha).round().astype(np.uint8)
    gap = np.full((side, 4, 3), 255, np.uint8)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.concatenate([big, gap, right], 1), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("OpenCV could not encode the overlay as PNG")
    return buf.tobytes()


def is_differentiable(rater: Any) -> bool:
    """Whether gradient methods can run: a torch module (``rater.module``) behind the rater."""
    return isinstance(getattr(rater, "module", None), torch.nn.Module)


def cache_key(rater_hash: str, clip: Clip, *, method: str, frames: int, steps: int, spec: Any,
              traits: Sequence[str]) -> str:
    """What a clip's attribution depends on; the run's store keeps :class:`ClipAttribution` bytes
    under it (``explain(cache=...)``)."""
    text = json.dumps([EXPLAIN_VERSION, ANNOTATOR_VERSION, rater_hash, clip.content_hash,
                       list(clip.frames.shape), method, frames, steps if method == "integrated_gradients" else 0,
                       spec.to_dict(), list(traits)])
    return "explain:" + hashlib.sha256(text.encode()).hexdigest()[:40]


def explain(rater: Any, clips: str | os.PathLike | Iterable[Clip | ClipSource],
            settings: ExplainSettings | None = None, *, annotator: Annotator | None = None,
            max_side: int = DEFAULT_MAX_SIDE, progress: bool | Callable[[int], None] = False,
            cache: MutableMapping[str, bytes] | None = None) -> Attribution:
    """Attribution of ``rater``'s scores to the regions of ``clips``, as ``settings`` say.

    ``clips``: a folder or clips; ``settings.clips`` of them are explained, spread evenly over the
    order given (to choose them — the clips that move most, for their overlays — pass just
    those). Each is read as the audit reads it (the rater's frame count, ``max_side``), so the
    audit's cached annotations are reused. ``settings.frames``: how many of the rater's input
    frames (at most all) keep a heatmap for the overlays; attribution is always over all of them —
    the rater sees them together, so fewer would not cost less. IG costs about
    ``clips × traits × steps`` forward and backward passes, ablation five rater inputs per clip.
    ``cache``: a mapping (the run's store) holding each clip's result by :func:`cache_key`; a clip
    found there costs nothing. ``progress``: a tqdm bar, or a callable given the number of clips
    done.
    """
    settings = settings or ExplainSettings()
    method, max_clips, frames, steps, traits = (settings.method, settings.clips, settings.frames, settings.steps,
                                                settings.traits)
    if method == "auto":
        method = "integrated_gradients" if is_differentiable(rater) else "ablation"
    elif method == "integrated_gradients" and not is_differentiable(rater):
        name = getattr(rater, "name", type(rater).__name__)
        raise RaterError(f"explain: rater {name} ({type(rater).__name__}) is not a PyTorch module, so "
                         "integrated_gradients cannot run; use method='ablation', which works for every rater")
    spec = rater.input
    frames = min(frames, spec.frames)
    sources = _pick(as_sources(clips), max_clips)
    annotator = annotator or Annotator()
    ident = rater_identity(rater)["hash"]
    if traits is None:
        traits = tuple(rater.trait_names)
    else:
        unknown = [t for t in traits if t not in rater.trait_names]
        if unknown or len(set(traits)) != len(traits):
            head = "--trait" if settings.source == COMMAND_LINE else f"{settings.source}: traits"
            raise ConfigError(f"{head} must be distinct names among {', '.join(rater.trait_names)}, "
                              f"got {', '.join(map(repr, traits)) or 'none'}")
    index = [list(rater.trait_names).index(t) for t in traits]
    done: list[ClipAttribution] = []
    skipped: list[tuple[str, str]] = []
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(sources), unit="clip", desc=f"explaining ({method})", dynamic_ncols=True)
    try:
        for source in sources:
            try:
                clip = source if isinstance(source, Clip) else source.read_for(spec, max_side)
                if spec.listens and isinstance(source, Clip):
                    clip = with_audio(clip, spec.audio)
                if spec.listens and clip.audio is None:
                    raise ClipError(source.id, clip.audio_problem or "no audio track")
            except ClipError as exc:
                skipped.append((source.id, exc.reason))
            else:
                key = cache_key(ident, clip, method=method, frames=frames, steps=steps, spec=spec, traits=traits)
                hit = cache.get(key) if cache is not None else None
                if hit is not None:
                    done.append(ClipAttribution.from_bytes(hit))
                else:
                    result = _explain_clip(rater, clip, annotator.annotate_clip(clip), method=method,
                                           frames=frames, steps=steps, index=index)
                    if isinstance(result, str):
                        skipped.append((clip.id, result))
                    else:
                        done.append(result)
                        if cache is not None:
                            cache[key] = result.to_bytes()
            if bar is not None:
                bar.update(1)
            elif callable(progress):
                progress(1)
    finally:
        if bar is not None:
            bar.close()
    options = {"clips": max_clips, "frames": frames, "max_side": max_side}
    if method == "integrated_gradients":
        options["steps"] = steps
    return Attribution(method, traits, tuple(done), options, tuple(skipped))


def _pick(sources: Sequence[Clip | ClipSource], n: int) -> list[Clip | ClipSource]:
    if len(sources) <= n:
        return list(sources)
    return [sources[i] for i in np.unique(np.round(np.linspace(0, len(sources) - 1, n)).astype(int))]


def _explain_clip(rater: Any, clip: Clip, annotations: Annotations, *, method: str, frames: int,
                  steps: int, index: Sequence[int]) -> ClipAttribution | str:
    spec = rater.input
    device = getattr(rater, "device", torch.device("cpu"))
    masks = region_masks(annotations)                       # [T, R, H, W], source resolution
    box = None
    if spec.crop == "face":  # the rater sees the square around the face: so do its regions
        problem = annotations.face_problem(DEFAULT_MAX_MISSING_FACE)
        box = None if problem else face_crop_box(annotations, *clip.size, spec.crop_margin)
        if box is None:
            return f"a face-crop rater needs a face: {problem or 'no face box'}"
        top, left, side = box
        masks = masks[..., top:top + side, left:left + side]
    small = input_masks(masks.clone(), spec)                # [T', R, h, w], what the rater sees
    x = rater_input(torch.from_numpy(clip.frames), spec, box)  # [T', 3, h, w]
    keep = tuple(int(i) for i in sample_indices(spec.frames, frames))
    kept = (x[list(keep)] * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    if method == "ablation":
        area = masks.mean(dim=(0, 2, 3)).double().numpy()
        shifts = _ablation_shifts(rater, clip, annotations, device)
        if isinstance(shifts, str):
            return shifts
        regions = np.abs(shifts[list(index)])
        # No finer map than the regions: each pixel gets its regions' attribution per unit area.
        per_area = regions / np.maximum(area, _EPS)[None, :]                           # [K, R]
        heat = torch.einsum("kr,frhw->kfhw", torch.from_numpy(per_area).float(), small[list(keep)])
        k = len(index)
        return ClipAttribution(clip.id, regions, area, np.full(k, np.nan), np.zeros(k), keep, kept,
                               heat.numpy().astype(np.float16))
    sound = torch.from_numpy(clip.audio).to(device) if spec.listens else None
    attr, total, gap = _integrated_gradients(rater, x.to(device), steps, index, sound)   # [K, T', 3, h, w]
    amap = attr.abs().sum(dim=2)                                                   # [K, T', h, w]
    regions = torch.einsum("kthw,trhw->kr", amap.double(), small.double()).numpy()
    area = small.double().mean(dim=(0, 2, 3)).numpy()
    return ClipAttribution(clip.id, regions, area, total, gap, keep, kept,
                           amap[:, list(keep)].numpy().astype(np.float16))


def _ablation_shifts(rater: Any, clip: Clip, annotations: Annotations, device: torch.device) -> np.ndarray | str:
    """``[K, R]`` score(region ablated) − score(original), scored as the audit scores."""
    edits = tuple(get_edit(f"region:{r}") for r in REGIONS)
    plan = AuditPlan(AuditConfig(seed=0, max_missing_face=DEFAULT_MAX_MISSING_FACE), tuple(e.arm for e in edits), edits)
    job = Job(rater=rater, rater_spec=rater, plan=plan, done=set(), device=device,
              per_call=items_per_call(rater.input), annotator=None, thumbs=False)
    outcome = score_batch(rater, [Prepared(clip.id, clip, annotations=annotations)], job, set(), device)
    if outcome.skipped:
        return "; ".join(f"{cond}: {why}" for _, cond, why in outcome.skipped)
    rows = {cond: np.asarray(row, np.float64) for _, cond, row in outcome.scores}
    return np.stack([rows[e.name] - rows[ORIGINAL] for e in edits], axis=1)


def _integrated_gradients(rater: Any, x: torch.Tensor, steps: int, index: Sequence[int],
                          sound: torch.Tensor | None = None) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """IG of the traits at ``index`` at once (the input repeated per trait, one target each),
    from the grey baseline. Returns attributions ``[K, T, 3, h, w]`` on the CPU,
    ``score − score(grey)`` and the completeness gap per trait. A rater that listens hears the
    clip's ``sound`` ``[C, S]`` throughout: the picture's attribution, the sound held fixed."""
    from captum.attr import IntegratedGradients

    if sound is None:
        module = rater.module
    else:
        def module(frames: torch.Tensor) -> torch.Tensor:
            return rater.module(frames, sound.expand(frames.shape[0], *sound.shape))
    name = getattr(rater, "name", type(rater).__name__)
    k = len(index)
    baseline = torch.full_like(x, GREY / 255.0)
    with torch.enable_grad():
        probe = x.unsqueeze(0).clone().requires_grad_(True)
        out = module(probe)
        with torch.no_grad():
            diff = (out.float() - module(baseline.unsqueeze(0)).float())[0, list(index)].cpu().double().numpy()
        if not out.requires_grad:
            if np.any(diff != 0):
                raise RaterError(f"explain: rater {name}'s scores change with its input but carry no gradient "
                                 "(it detaches or leaves torch); use method='ablation'")
            # Scores that record no dependence on the input and equal those of the grey frame: the
            # rater ignores its input, and IG has nothing to distribute. Exactly zero, not 0/0.
            return torch.zeros((k,) + tuple(x.shape)), diff, np.zeros(k)
        inputs = x.unsqueeze(0).expand(k, *x.shape).contiguous()
        ig = IntegratedGradients(lambda inp: module(inp).float())
        attr, delta = ig.attribute(inputs, baselines=baseline.unsqueeze(0).expand_as(inputs).contiguous(),
                                   target=list(index), n_steps=steps,
                                   # Captum steps all K rows together, so a chunk holds at least K inputs.
                                   internal_batch_size=max(k, items_per_call(rater.input) // 2),
                                   return_convergence_delta=True)
    return attr.detach().float().cpu(), diff, delta.detach().abs().cpu().double().numpy()


def from_scores(scores: Mapping[tuple[str, str], Sequence[float]], clips: Iterable[Clip],
                annotator: Annotator, traits: Sequence[str]) -> Attribution:
    """The ablation attribution of scores already made, ``{(clip id, condition): [K scores]}``
    with conditions ``original`` and each ``region:*`` (an audit's store holds them: see
    :func:`scores_from_store`). ``clips`` read as the audit read them (the rater's frame count,
    the audit's ``max_side``): their annotations give the regions' areas. Clips lacking a
    condition (no face: face, hair and body were not applicable) are listed in ``skipped``."""
    out, skipped = [], []
    traits = tuple(traits)
    for clip in clips:
        rows = {cond: scores.get((clip.id, cond)) for cond in [ORIGINAL] + [f"region:{r}" for r in REGIONS]}
        missing = [c for c, v in rows.items() if v is None]
        if missing:
            skipped.append((clip.id, f"not scored: {', '.join(missing)}"))
            continue
        base = np.asarray(rows[ORIGINAL], np.float64)
        shifts = np.stack([np.asarray(rows[f"region:{r}"], np.float64) - base for r in REGIONS], axis=1)
        area = region_masks(annotator.annotate_clip(clip)).mean(dim=(0, 2, 3)).double().numpy()
        # No frames kept: the overlays come from explain(), which reads the clip at the rater's size.
        out.append(ClipAttribution(clip.id, np.abs(shifts), area, np.full(len(traits), np.nan),
                                   np.zeros(len(traits)), (), np.zeros((0, 1, 1, 3), np.uint8),
                                   np.zeros((len(traits), 0, 1, 1), np.float16)))
    return Attribution("ablation", traits, tuple(out), {"from": "audit scores"}, tuple(skipped))


def scores_from_store(store: Any) -> dict[tuple[str, str], list[float]]:
    """``{(clip, condition): scores in trait order}`` of the original and ``region:*`` conditions
    an audit's :class:`auditkit.core.store.Store` holds."""
    traits = store.traits
    by_cond: dict[tuple[str, str], list[float]] = {}
    for cond in [ORIGINAL] + [f"region:{r}" for r in REGIONS]:
        columns = [store.scores(cond, t) for t in traits]
        for clip_id in columns[0]:
            if all(clip_id in col for col in columns):
                by_cond[(clip_id, cond)] = [col[clip_id] for col in columns]
    return by_cond
