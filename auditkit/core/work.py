"""One unit of audit work: a batch of clips decoded, annotated, edited and scored.

The same two functions run in every executor — in this process, on annotation worker processes
(``prepare``) and on Ray actors (both) — and return plain records that only the driver writes to
the store. So where the work ran cannot change a score: the batches are the same, the rater
calls are the same, the records are the same.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from auditkit.contract.arms import ORIGINAL
from auditkit.contract.errors import ClipError, PartialScores, RaterError, first_line
from auditkit.contract.rater import InputSpec, check_scores
from auditkit.media.audio import conform
from auditkit.media.clips import RETEST_SHIFT, Clip, ClipSource, sample_indices, with_audio
from auditkit.perturbations import NotApplicable, Perturbation, clip_seed, edits_sound
from auditkit.perturbations.annotate import Annotations, Annotator, face_crop_box


THUMB_SIDE = 256
# The rater's inputs (float32 at its own size) for one call are capped at this many bytes: the
# original and every edit of a batch of clips go to the rater together, as few calls as fit.
DEFAULT_CALL_BYTES = 64 << 20


@dataclass
class Prepared:
    """A clip decoded (or the reason it could not be) and, when an edit needs them, annotated;
    ``resampled``: for a control that samples other frames, offset → those frames (or why not)."""

    id: str
    clip: Clip | None
    error: str | None = None
    annotations: Annotations | None = None
    resampled: dict[float, np.ndarray | str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # decode, annotate: wherever it ran


@dataclass
class Outcome:
    """What scoring a batch produced, for the driver to write to the store in one transaction."""

    clips: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    scores: list[tuple[str, str, list[float]]] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    thumbs: list[tuple[str, str, bytes]] = field(default_factory=list)
    annotated: dict[str, int] = field(default_factory=dict)  # Annotator.stats increments
    sources: int = 0  # clips in the batch, for progress
    # Seconds per stage (decode, annotate; with timing: edits, input, rater), never stored.
    seconds: dict[str, float] = field(default_factory=dict)


def needs_annotation(clip_id: str, edits: Sequence[Perturbation], done: set[tuple[str, str]],
                     face_crop: bool = False) -> bool:
    """Whether a clip must be annotated: an edit still to score needs its faces or mask, or the
    rater sees face crops (every input of the clip is cropped by its face box). A resumed run
    with nothing of that kind left does no annotation work at all."""
    if face_crop:
        return any((clip_id, c) not in done for c in [ORIGINAL, *(e.name for e in edits)])
    return any(e.requires and (clip_id, e.name) not in done for e in edits)


def resample_offsets(clip_id: str, edits: Sequence[Perturbation], done: set[tuple[str, str]]) -> tuple[float, ...]:
    """The sampling offsets the controls still to be scored for this clip need decoded."""
    return tuple(sorted({e.resample for e in edits if e.resample is not None and (clip_id, e.name) not in done}))


def resampled_frames(frames: np.ndarray, num_frames: int, offset: float) -> np.ndarray:
    """For a clip given as frames in memory: the same number of frames, arranged so that the
    rater's uniform sample of ``num_frames`` lands on the positions ``offset`` intervals later."""
    here = sample_indices(len(frames), num_frames)
    later = sample_indices(len(frames), num_frames, offset)
    out = frames.copy()
    out[here] = frames[later]
    return out


def prepare(sources: Sequence[Clip | ClipSource], *, spec: InputSpec, max_side: int,
            annotator: Annotator | None, annotate: Sequence[bool],
            resample: Sequence[Sequence[float]] | None = None) -> tuple[list[Prepared], dict[str, int]]:
    """Decode each source as the rater's input ``spec`` asks (its frames, and its sound over its
    window when it listens), annotate those flagged, and decode the other samples the controls
    need; returns the annotator's stats increments."""
    before = dict(annotator.stats) if annotator is not None else {}
    frames = spec.frames
    out = []
    for i, (source, wanted) in enumerate(zip(sources, annotate)):
        start = time.perf_counter()
        try:
            if isinstance(source, Clip):
                item = Prepared(source.id, with_audio(source, spec.audio) if spec.listens else source)
            else:
                item = Prepared(source.id, source.read_for(spec, max_side))
        except ClipError as exc:
            item = Prepared(source.id, None, exc.reason)
        if not isinstance(source, Clip):
            item.seconds["decode"] = time.perf_counter() - start
        if item.clip is not None and wanted and annotator is not None:
            start = time.perf_counter()
            item.annotations = annotator.annotate_clip(item.clip)
            item.seconds["annotate"] = time.perf_counter() - start
        for offset in (resample[i] if resample is not None else ()):
            if item.clip is None:
                continue
            if isinstance(source, Clip):
                item.resampled[offset] = resampled_frames(source.frames, frames, offset)
                continue
            start = time.perf_counter()
            try:
                # A rater that watches motion (frames by rate) is retested a fraction of a second
                # later; one that takes a handful of frames, half a sampling interval later.
                again = (source.read_for(spec, max_side, shift=RETEST_SHIFT, sound=False) if spec.fps
                         else source.read_for(spec, max_side, offset=offset, sound=False))
            except ClipError as exc:
                item.resampled[offset] = exc.reason
                continue
            finally:
                item.seconds["decode"] = item.seconds.get("decode", 0.0) + time.perf_counter() - start
            item.resampled[offset] = (again.frames if again.frames.shape == item.clip.frames.shape
                                      else f"the frames sampled {offset:g} interval later have another size")
        out.append(item)
    stats = {k: v - before.get(k, 0) for k, v in annotator.stats.items()} if annotator is not None else {}
    return out, stats


def rater_input(frames: torch.Tensor, spec: Any, box: tuple[int, int, int] | None = None) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` → float ``[T', 3, h, w]`` in [0, 1] as the rater declared it;
    ``box`` (top, left, side) crops every frame first, for a face-crop rater."""
    if box is not None:
        top, left, side = box
        frames = frames[:, top:top + side, left:left + side]
    if frames.shape[0] != spec.frames:
        frames = frames.index_select(0, torch.as_tensor(sample_indices(frames.shape[0], spec.frames),
                                                        device=frames.device))
    x = frames.permute(0, 3, 1, 2)  # [T, 3, H, W] view, channels-last in memory
    if tuple(x.shape[-2:]) != tuple(spec.size):
        if x.device.type == "cpu":
            # The uint8 channels-last resize is torch's (and torchvision's) fast CPU kernel.
            x = F.interpolate(x, size=spec.size, mode="bilinear", antialias=True, align_corners=False)
        else:  # no uint8 kernel on CUDA: the same filter in float, rounded to the same 8-bit levels
            x = F.interpolate(x.float(), size=spec.size, mode="bilinear", antialias=True,
                              align_corners=False).round_().clamp_(0, 255)
    return x.contiguous().to(torch.float32).div_(255.0)


def apply_edit(edit: Perturbation, clip: Clip, frames: torch.Tensor, annotations: Any, seed: int,
               max_missing_face: float, resampled: Mapping[float, np.ndarray | str] | None = None
               ) -> torch.Tensor | str:
    """The edited frames, or the reason the edit does not apply to this clip. A control that
    samples other frames takes them from ``resampled`` (offset → frames, or why there are none)."""
    rng = np.random.default_rng(clip_seed(seed, clip.id, edit.name))
    try:
        if edit.resample is not None:
            other = (resampled or {}).get(edit.resample)
            if isinstance(other, np.ndarray):
                other = to_device(other, frames.device)
            return edit(frames, annotations, rng=rng, resampled=other).frames
        return edit(frames, annotations, rng=rng, max_missing_face=max_missing_face).frames
    except NotApplicable as exc:
        return exc.reason
    except Exception as exc:  # one clip an edit chokes on must not abort the whole table
        said = first_line(exc)
        kind = type(exc).__name__
        return f"{edit.name} failed on this clip: {kind}" + (f": {said}" if said != kind else "")


def apply_sound(edit: Perturbation, clip: Clip, spec: Any, seed: int) -> torch.Tensor | str:
    """The rater's sound under an edit of the sound: the edit works on the clip's own sound (its
    rate and channels, over the rater's window) and the rater's input is derived after it, as for
    frames. Or the reason the edit does not apply (no sound, a silent one)."""
    if clip.source_sound is None:
        return clip.audio_problem or "no audio track"
    audio, rate, seconds = clip.source_sound
    rng = np.random.default_rng(clip_seed(seed, clip.id, edit.name))
    try:
        edited = edit.hear(audio, rate, rng=rng)
    except NotApplicable as exc:
        return exc.reason
    except Exception as exc:  # as apply_edit: one clip an edit chokes on must not abort the whole table
        return f"{edit.name} failed on this clip's sound: {type(exc).__name__}: {first_line(exc)}"
    return torch.from_numpy(conform(edited, rate, spec.audio, seconds))


def thumbnail(frames: torch.Tensor) -> bytes:
    """The middle frame as a small JPEG, what the dashboard shows beside the scores."""
    import cv2

    image = frames[frames.shape[0] // 2].cpu().numpy()
    h, w = image.shape[:2]
    scale = THUMB_SIDE / max(h, w)
    if scale < 1:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else b""


def items_per_call(spec: Any, call_bytes: int = DEFAULT_CALL_BYTES) -> int:
    h, w = spec.size
    return max(1, call_bytes // (spec.frames * 3 * h * w * 4))


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    tensor = torch.from_numpy(array)
    if device.type == "cuda":  # pinned pages let the copy run asynchronously with the host
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


@contextmanager
def _stage(outcome: Outcome, name: str, device: torch.device, timing: bool) -> Iterator[None]:
    """Add the seconds spent inside to ``outcome.seconds[name]`` when ``timing``. On CUDA the
    device is synchronised at both ends, so that queued kernels count in the stage that queued
    them; that stalls the host, so it happens only when timing was asked for."""
    if not timing:
        yield
        return
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    try:
        yield
    finally:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        outcome.seconds[name] = outcome.seconds.get(name, 0.0) + time.perf_counter() - start


def score_batch(rater: Any, prepared: Sequence[Prepared], job: Any, done: set[tuple[str, str]],
                device: torch.device) -> Outcome:
    """Score the original and every edit of ``job``'s plan not yet ``done`` of each prepared clip.

    Inputs are queued in a fixed order (clip by clip: original, then each edit) and sent to the
    rater whenever ``job.per_call`` of them are waiting, so the calls are the same wherever and
    whenever the batch runs — a resumed or distributed audit gets bit-identical scores.
    ``job.timing``: also time the edits, the rater's inputs and the rater calls into
    ``Outcome.seconds`` (decoding and annotation are always timed; they cost nothing to time).
    ``job`` is an :class:`auditkit.core.executors.Job`.
    """
    edits, per_call, thumbs, timing = job.plan.edits, job.per_call, job.thumbs, job.timing
    seed, max_missing_face = job.plan.settings.seed, job.plan.settings.max_missing_face
    outcome = Outcome(sources=len(prepared))
    for item in prepared:
        for name, value in item.seconds.items():
            outcome.seconds[name] = outcome.seconds.get(name, 0.0) + value
    conditions = [ORIGINAL] + [e.name for e in edits]
    # (clip, condition, rater input, sound or None, thumbnail): the edit at source resolution is
    # dropped as soon as it is queued, so memory holds one call's inputs, not a batch of full-size edits.
    queue: list[Queued] = []
    listens = rater.input.listens
    # A whole clip's sound has the clip's own length: one call per clip, so the sounds stack.
    per_clip = listens and rater.input.window is None

    def flush() -> None:
        if queue:
            with _stage(outcome, "rater", device, timing):
                _call(rater, queue, outcome)
            queue.clear()

    for item in prepared:
        if item.clip is None:
            outcome.skipped += [(item.id, cond, item.error or "unreadable") for cond in conditions]
            continue
        clip = item.clip
        if listens and clip.audio is None:  # a rater that listens has nothing to hear
            reason = clip.audio_problem or "no audio track"
            outcome.skipped += [(clip.id, cond, reason) for cond in conditions if (clip.id, cond) not in done]
            continue
        outcome.clips.append((clip.id, {"path": str(clip.path) if clip.path else None,
                                        "content_hash": clip.content_hash, "frames": clip.source_frames,
                                        "fps": clip.fps, "metadata": dict(clip.metadata)}))
        box = None
        if rater.input.crop == "face":
            # One box for the clip, from its own annotations: the edit happens on the full frame,
            # the rater sees the same square of the original and of every edited copy.
            problem = (item.annotations.face_problem(max_missing_face) if item.annotations is not None
                       else "the clip was not annotated")
            box = None if problem else face_crop_box(item.annotations, *clip.size, rater.input.crop_margin)
            if box is None:  # the rater would see nothing of what it was built to see
                reason = f"a face-crop rater needs a face: {problem or 'no face box'}"
                outcome.skipped += [(clip.id, cond, reason) for cond in conditions if (clip.id, cond) not in done]
                continue
        with _stage(outcome, "input", device, timing):
            frames = to_device(clip.frames, device)
            # An edit of the picture: each condition hears the original's sound (an edit of the sound
            # brings its own, below).
            sound = torch.from_numpy(clip.audio) if listens else None
        if per_clip:
            flush()
        recording = getattr(rater, "recording", None)
        for edit in [None, *edits]:
            cond = ORIGINAL if edit is None else edit.name
            if (clip.id, cond) in done:
                continue
            heard = sound
            if edit is None:
                edited = frames
            elif edits_sound(edit):  # every frame stays as it is; the sound is edited
                edited = frames
                if recording is None:  # (a recording's sound is edited where it is written)
                    heard = (apply_sound(edit, clip, rater.input, seed) if listens
                             else "the rater hears nothing: its input declares no audio")
                    if isinstance(heard, str):
                        outcome.skipped.append((clip.id, cond, heard))
                        continue
            else:
                with _stage(outcome, "edits", device, timing):
                    edited = apply_edit(edit, clip, frames, item.annotations, seed, max_missing_face,
                                        item.resampled)
            if isinstance(edited, str):
                outcome.skipped.append((clip.id, cond, edited))
                continue
            with _stage(outcome, "input", device, timing):
                if recording is not None:  # a vendor that takes what a candidate uploads
                    body = _recording(clip, edit, recording, job)
                    if isinstance(body, str):
                        outcome.skipped.append((clip.id, cond, body))
                        continue
                    queued = Queued(clip.id, cond, body, None, thumbnail(edited) if thumbs else b"")
                else:
                    queued = Queued(clip.id, cond, rater_input(edited, rater.input, box), heard,
                                    thumbnail(edited) if thumbs else b"")
            queue.append(queued)
            if len(queue) >= per_call:
                flush()
    flush()
    return outcome


def _recording(clip: Clip, edit: Perturbation | None, spec: Any, job: Any) -> bytes | str:
    """The MP4 recording of ``clip`` with ``edit`` (see :mod:`auditkit.core.recording`), or why not."""
    from .recording import render

    if clip.path is None:
        return "a rater that takes recordings needs the clip's video file (this clip was given as frames)"
    try:
        return render(clip.path, edit, spec, clip_id=clip.id, seed=job.plan.settings.seed, annotator=job.annotator)
    except ClipError as exc:
        return f"the recording could not be made: {exc.reason}"
    except NotApplicable as exc:
        return exc.reason
    except Exception as exc:  # as apply_edit: one clip an edit chokes on must not abort the whole table
        name = edit.name if edit is not None else "the original"
        return f"the recording of {name} could not be made: {type(exc).__name__}: {first_line(exc)}"


@dataclass
class Queued:
    """One input waiting for the rater: a clip's condition, its frames (or, for a rater that takes
    recordings, the MP4 bytes) and (for a rater that listens) its sound, and the thumbnail to
    store beside its score."""

    clip: str
    condition: str
    frames: torch.Tensor | bytes
    sound: torch.Tensor | None
    thumb: bytes


def _call(rater: Any, queue: list[Queued], outcome: Outcome) -> None:
    labels = [f"{q.clip} ({q.condition})" for q in queue]
    failures: dict[int, str] = {}
    try:
        if isinstance(queue[0].frames, bytes):
            raw = rater.score_recordings([q.frames for q in queue])
        elif queue[0].sound is not None:
            raw = rater(torch.stack([q.frames for q in queue]), torch.stack([q.sound for q in queue]))
        else:
            raw = rater(torch.stack([q.frames for q in queue]))
    except PartialScores as exc:  # some rows failed for good (a vendor endpoint): list, never zero
        raw, failures = exc.scores, exc.failures
    except Exception as exc:  # the user's model failing is their error to read, not our bug
        name = getattr(rater, "name", type(rater).__name__)
        clips = list(dict.fromkeys(q.clip for q in queue))
        raise RaterError(f"rater {name} raised {type(exc).__name__} on clip(s) {', '.join(clips[:8])}"
                         f"{' ...' if len(clips) > 8 else ''} ({len(queue)} inputs in one call): "
                         f"{first_line(exc)}") from None
    keep = [i for i in range(len(queue)) if i not in failures]
    if failures:
        raw = torch.as_tensor(np.asarray(raw.detach().cpu() if isinstance(raw, torch.Tensor) else raw,
                                         dtype=np.float32))
        check_scores(torch.nan_to_num(raw), rater, labels)  # the shape holds even for failed rows
        raw = raw[keep]
    values = check_scores(raw, rater, [labels[i] for i in keep]).tolist()
    for i, row in zip(keep, values):
        q = queue[i]
        outcome.scores.append((q.clip, q.condition, row))
        if q.thumb:
            outcome.thumbs.append((q.clip, q.condition, q.thumb))
    for i, reason in sorted(failures.items()):
        outcome.skipped.append((queue[i].clip, queue[i].condition, f"rater failed: {reason}"))
