"""Preview sheets: every edit of a family on every clip, one image per family, so a reviewer can
judge the counterfactuals before trusting an audit built on them. Rows are clips (the original
first, then each edit's middle frame, exactly as an audit with the same seed edits it); an edit
that does not apply to a clip shows its reason in place of the frame.

``examples/make_previews.py`` renders the README's sheets with it, ``auditkit perturb --sheet``
a user's own clips. An edit of the sound is shown as a spectrogram of the clip's sound (0-8 kHz,
time left to right, 80 dB of range on the original's scale), the original's first: the echo of
a room smears it to the right, a noise fills its gaps, a phone cuts everything above 3.4 kHz.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from auditkit.core.work import apply_edit
from auditkit.media.clips import Clip
from auditkit.perturbations import DEFAULT_MAX_MISSING_FACE, NotApplicable, Perturbation, clip_seed, edits_sound
from auditkit.perturbations.annotate import Annotator

TILE_HEIGHT = 150
GAP = 4
LABEL = 18
MAX_WIDTH = 1900   # rows of clips wrap into side-by-side blocks up to this width


def _label(width: int, text: str, *, dark: bool = False) -> np.ndarray:
    import cv2

    bar = np.full((LABEL, width, 3), 40 if dark else 255, np.uint8)
    cv2.putText(bar, text[: max(4, width // 7)], (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (235, 235, 235) if dark else (20, 20, 20), 1, cv2.LINE_AA)
    return bar


def _tile(frame: np.ndarray, height: int) -> np.ndarray:
    import cv2

    w = max(1, int(round(frame.shape[1] * height / frame.shape[0])))
    return cv2.resize(frame, (w, height), interpolation=cv2.INTER_AREA)


def _reason(width: int, height: int, text: str) -> np.ndarray:
    import cv2

    tile = np.full((height, width, 3), 225, np.uint8)
    words, line, y = text.split(), "", 16
    for word in words + [""]:
        if word and len(line) + len(word) + 1 <= max(8, width // 7):
            line = f"{line} {word}".strip()
            continue
        cv2.putText(tile, line, (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (60, 60, 60), 1, cv2.LINE_AA)
        line, y = word, y + 15
        if y > height - 4:
            break
    return tile


def clip_row(clip: Clip, edits: Sequence[Perturbation], annotations, *, seed: int,
             height: int = TILE_HEIGHT, max_missing_face: float = DEFAULT_MAX_MISSING_FACE) -> list[np.ndarray]:
    """The tiles of one clip: the original middle frame, then each edit's (or why it does not
    apply), each with its label above."""
    frames = torch.from_numpy(clip.frames)
    middle = clip.num_frames // 2
    original = _tile(clip.frames[middle], height)
    tiles = [np.concatenate([_label(original.shape[1], clip.id, dark=True), original])]
    for edit in edits:
        edited = apply_edit(edit, clip, frames, annotations, seed, max_missing_face)
        body = (_reason(original.shape[1], height, edited) if isinstance(edited, str)
                else _tile(edited[middle].cpu().numpy(), height))
        tiles.append(np.concatenate([_label(body.shape[1], edit.name), body]))
    return tiles


SPECTRUM_TOP = 8000.0  # Hz: where speech lives; the telephone band's edge (3.4 kHz) is in view
SPECTRUM_RANGE = 80.0  # dB below the original's loudest bin that still shows
SPECTRUM_ASPECT = 1.8  # a sheet's spectrogram tile: this much wider than high, whatever the clip's length


def clip_sound(clip: Clip) -> tuple[np.ndarray, int] | None:
    """The clip's sound as it has it (its rate and channels), over the span of its frames."""
    if clip.source_sound is not None:
        return clip.source_sound[0], clip.source_sound[1]
    if clip.audio is not None:
        return clip.audio, clip.sample_rate
    if clip.path is None:
        return None
    from auditkit.media.audio import read_audio

    return read_audio(clip.path, *clip.window)


def spectrogram(audio: np.ndarray, rate: int, height: int, width: int, *,
                ref: float | None = None) -> tuple[np.ndarray, float]:
    """An RGB spectrogram tile of ``audio`` (mono mix; 0-8 kHz bottom to top, its whole length
    left to right) and the reference power it was drawn against (give the original's to the
    edits so that a quieter edit looks quieter)."""
    import cv2
    from scipy.signal import spectrogram as stft_power

    mono = audio.mean(axis=0).astype(np.float64)
    window = max(16, round(0.025 * rate))
    f, _, power = stft_power(mono, fs=rate, nperseg=window, noverlap=window * 3 // 4, scaling="spectrum")
    power = power[f <= SPECTRUM_TOP]
    if ref is None:
        ref = float(power.max()) if power.size and power.max() > 0 else 1.0
    db = 10 * np.log10(np.maximum(power, 1e-20) / ref)
    level = np.clip((db + SPECTRUM_RANGE) / SPECTRUM_RANGE, 0, 1)
    image = (level[::-1] * 255).astype(np.uint8)  # low frequencies at the bottom
    image = cv2.resize(image, (max(8, width), height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(cv2.applyColorMap(image, cv2.COLORMAP_MAGMA), cv2.COLOR_BGR2RGB), ref


def sound_row(clip: Clip, edits: Sequence[Perturbation], *, seed: int, height: int = TILE_HEIGHT) -> list[np.ndarray]:
    """The tiles of one clip for edits of the sound: the original's spectrogram, then each edit's
    (the same sound an audit with the same seed gives the rater, at the clip's own rate)."""
    sound = clip_sound(clip)
    if sound is None:
        tile = _reason(round(SPECTRUM_ASPECT * height), height, "no audio track")
        return [np.concatenate([_label(tile.shape[1], clip.id, dark=True), tile])] + [
            np.concatenate([_label(tile.shape[1], e.name), tile]) for e in edits]
    audio, rate = sound
    original, ref = spectrogram(audio, rate, height, round(SPECTRUM_ASPECT * height))
    tiles = [np.concatenate([_label(original.shape[1], f"{clip.id} (0-8 kHz)", dark=True), original])]
    for edit in edits:
        try:
            heard = edit.hear(audio, rate, rng=np.random.default_rng(clip_seed(seed, clip.id, edit.name)))
            body = spectrogram(heard, rate, height, original.shape[1], ref=ref)[0]
        except NotApplicable as exc:
            body = _reason(original.shape[1], height, exc.reason)
        tiles.append(np.concatenate([_label(body.shape[1], edit.name), body]))
    return tiles


def layout(rows: list[list[np.ndarray]], max_width: int = MAX_WIDTH) -> np.ndarray:
    """Rows of tiles into one image: each row left to right, rows top to bottom, and when a row
    is narrow, several rows side by side up to ``max_width``."""
    def hcat(tiles: list[np.ndarray]) -> np.ndarray:
        h = max(t.shape[0] for t in tiles)
        parts = []
        for t in tiles:
            parts += [np.pad(t, ((0, h - t.shape[0]), (0, 0), (0, 0)), constant_values=255),
                      np.full((h, GAP, 3), 255, np.uint8)]
        return np.concatenate(parts[:-1], axis=1)

    strips = [hcat(r) for r in rows]
    row_w = max(s.shape[1] for s in strips)
    per_line = max(1, (max_width + 3 * GAP) // (row_w + 3 * GAP))
    blocks = []
    for i in range(0, len(strips), per_line):
        group = [np.pad(s, ((0, 0), (0, row_w - s.shape[1]), (0, 0)), constant_values=255)
                 for s in strips[i:i + per_line]]
        while len(group) < per_line and i:
            group.append(np.full_like(group[0], 255))
        parts = []
        for g in group:
            parts += [g, np.full((g.shape[0], 3 * GAP, 3), 255, np.uint8)]
        blocks.append(np.concatenate(parts[:-1], axis=1))
    width = max(b.shape[1] for b in blocks)
    lines = []
    for b in blocks:
        lines += [np.pad(b, ((0, 0), (0, width - b.shape[1]), (0, 0)), constant_values=255),
                  np.full((GAP, width, 3), 255, np.uint8)]
    return np.concatenate(lines[:-1], axis=0)


def family_sheets(clips: Sequence[Clip], edits: Sequence[Perturbation], *, seed: int = 0,
                  annotator: Annotator | None = None, height: int = TILE_HEIGHT,
                  max_missing_face: float = DEFAULT_MAX_MISSING_FACE) -> dict[str, np.ndarray]:
    """One sheet (RGB uint8) per family of ``edits``: a row per clip (frames for the edits of the
    picture, spectrograms for those of the sound). Clips are annotated once (from the annotator's
    cache when it has them)."""
    families: dict[str, list[Perturbation]] = {}
    for e in edits:
        families.setdefault(e.family, []).append(e)
    annotator = annotator or Annotator()
    rows: dict[str, list[list[np.ndarray]]] = {f: [] for f in families}
    for clip in clips:
        annotations = annotator.annotate_clip(clip) if any(e.requires for e in edits) else None
        for family, members in families.items():
            heard = [e for e in members if edits_sound(e)]
            seen = [e for e in members if not edits_sound(e)]
            if heard:  # a family that edits the sound (control: may hold the retest too, on rows of its own)
                rows[family].append(sound_row(clip, heard, seed=seed, height=height))
            if seen:
                rows[family].append(clip_row(clip, seen, annotations, seed=seed, height=height,
                                             max_missing_face=max_missing_face))
    return {family: layout(r) for family, r in rows.items()}


def timeline_sheet(clips: Sequence[Clip], edits: Sequence[Perturbation], *, seed: int = 0,
                   annotator: Annotator | None = None, height: int = TILE_HEIGHT, columns: int = 6,
                   max_missing_face: float = DEFAULT_MAX_MISSING_FACE) -> np.ndarray:
    """One sheet across time: for each clip, a row for the original and one per edit, each
    ``columns`` frames spread over the clip — what an edit does at a cut, a fade or where the
    person leaves, which a middle frame cannot show."""
    from auditkit.media.clips import sample_indices

    annotator = annotator or Annotator()
    rows: list[list[np.ndarray]] = []
    for clip in clips:
        annotations = annotator.annotate_clip(clip) if any(e.requires for e in edits) else None
        frames = torch.from_numpy(clip.frames)
        picks = sample_indices(clip.num_frames, columns).tolist()
        versions: list[tuple[str, np.ndarray | str]] = [(clip.id, clip.frames)]
        for edit in edits:
            edited = apply_edit(edit, clip, frames, annotations, seed, max_missing_face)
            versions.append((edit.name, edited if isinstance(edited, str) else edited.cpu().numpy()))
        for name, pixels in versions:
            tiles = []
            for k, i in enumerate(picks):
                body = (_reason(_tile(clip.frames[i], height).shape[1], height, pixels) if isinstance(pixels, str)
                        else _tile(pixels[i], height))
                text = name if k == 0 else f"{clip.times[i]:.2f} s"
                tiles.append(np.concatenate([_label(body.shape[1], text, dark=pixels is clip.frames), body]))
            rows.append(tiles)
    return layout(rows, max_width=0)  # one row under the other


def write_sheet(path: str | os.PathLike, sheet: np.ndarray, quality: int = 80) -> Path:
    """A sheet as a JPEG (written to a temporary name and renamed: a reader never sees half)."""
    import cv2

    path = Path(path)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"{path}: OpenCV could not encode the sheet")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.tobytes())
    os.replace(tmp, path)
    return path
