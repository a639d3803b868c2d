"""An edited clip as the recording a candidate would upload: every frame at the rate the vendor
takes, edited in short chunks (memory holds a chunk, never the clip), written as
H.264 with the clip's sound copied, not re-encoded, since a visual edit never touches it; an edit
of the sound keeps every frame as the original's and its sound is encoded as AAC (at 128 kb/s,
``AAC_BITRATE``: the settings ``control:audio-sham`` stands for).

The original goes through the same path with no edit, so that original and edit differ only by
the edit (the same decoder, scaler and encoder). The retest control of a rater that takes
recordings is the same recording starting ``RETEST_SHIFT`` seconds later: a vendor sees a clip
trimmed by a fraction of a second, not a frame shifted by half a frame (which would be no
change at all).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from auditkit.contract.paths import file_digest
from auditkit.media.clips import RETEST_SHIFT
from auditkit.media.recording import RecordingSpec, iter_frames, probe, recording_bytes, window_of, write_recording
from auditkit.media.audio import read_audio
from auditkit.perturbations import NotApplicable, Perturbation, clip_seed, edits_sound
from auditkit.perturbations.annotate import Annotator

# Frames edited together: memory follows the chunk (an edit holds several float copies of it; 16
# frames of 640x360 keep a recording under 2 GiB), and each chunk sees one frame of its
# neighbours on either side, so smoothing runs on across the seams as it does inside a chunk.
CHUNK = 16
CONTEXT = 1


def render(path: Path, edit: Perturbation | None, spec: RecordingSpec, *, clip_id: str, seed: int,
           annotator: Annotator | None) -> bytes:
    """The MP4 bytes of ``path`` recorded as ``spec`` says, with ``edit`` applied to every frame
    (``None``: the original; a control that samples other frames: the shifted recording)."""
    source = probe(path)
    if edit is not None and edit.resample is not None:
        spec, edit = replace(spec, shift=spec.shift + RETEST_SHIFT), None
    window = window_of(source, spec)
    fps = min(spec.fps, source.fps) if spec.fps else source.fps
    sound = None
    if edit is not None and edits_sound(edit):  # the picture as the original's, the sound edited
        sound = edited_sound(path, edit, window, clip_id=clip_id, seed=seed)
        edit = None
    frames = edited_frames(path, edit, spec, clip_id=clip_id, seed=seed, annotator=annotator)
    return recording_bytes(lambda out: write_recording(out, frames, fps=fps, sound_from=path, window=window,
                                                       sound=sound))


def edited_sound(path: Path, edit: Perturbation, window: tuple[float, float], *, clip_id: str,
                 seed: int) -> tuple[np.ndarray, int]:
    """The recording's sound over ``window`` with ``edit`` applied at the clip's own rate (the
    same generator as the sampled audit's, so the same noise), to be encoded as AAC."""
    found = read_audio(path, *window)
    if found is None:
        raise NotApplicable("no audio track")
    audio, rate = found
    rng = np.random.default_rng(clip_seed(seed, clip_id, edit.name))
    return edit.hear(audio, rate, rng=rng, encoded_after=True), rate


def edited_frames(path: Path, edit: Perturbation | None, spec: RecordingSpec, *, clip_id: str, seed: int,
                  annotator: Annotator | None) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds, RGB frame) of every frame of the recording, with ``edit`` applied: what
    :func:`render` encodes."""
    frames = iter_frames(path, spec)
    if edit is None:
        return frames
    state = np.random.default_rng(clip_seed(seed, clip_id, edit.name)).bit_generator.state
    return _edited(frames, edit, state, annotator or Annotator(), f"{file_digest(path)}:{spec!r}")


def _edited(frames: Iterator[tuple[float, np.ndarray]], edit: Perturbation, state: Any, annotator: Annotator,
            key: str) -> Iterator[tuple[float, np.ndarray]]:
    """The frames edited chunk by chunk, each with ``CONTEXT`` frames of its neighbours (edited
    too, then dropped). Every chunk draws the edit's parameters from the same generator state, so
    the scene, the frame style and the fabric are the clip's, not the chunk's."""
    frames = iter(frames)
    before: list[tuple[float, np.ndarray]] = []
    chunk = list(itertools.islice(frames, CHUNK))
    for index in itertools.count():
        if not chunk:
            return
        after = list(itertools.islice(frames, CHUNK))
        seen = before + chunk + after[:CONTEXT]
        times = np.array([t for t, _ in seen])
        pixels = np.stack([f for _, f in seen])
        annotations = None
        if edit.requires:
            annotations = annotator.annotate(pixels, content_hash=f"{key}:chunk{index}", times=times)
        rng = np.random.default_rng()
        rng.bit_generator.state = state
        try:
            # A chunk where the person is missing is left as it is, frame by frame, by the edit
            # itself; only a chunk with no face at all is refused, and then stays unedited.
            out = edit(torch.from_numpy(pixels), annotations, rng=rng, max_missing_face=1.0).frames.numpy()
        except NotApplicable:
            out = pixels
        keep = slice(len(before), len(before) + len(chunk))
        yield from zip(times[keep].tolist(), out[keep])
        before, chunk = chunk[-CONTEXT:], after
