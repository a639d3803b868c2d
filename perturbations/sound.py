"""Edits of what the rater hears: the picture stays exactly as it was, the sound is changed.

An edit of the sound works on the clip's own sound (its sample rate and channels, float32
``[C, S]`` in [-1, 1]); the rater's input is derived after it, as for frames. Every edit returns
sound of the same length, aligned with the original sample for sample: a codec's priming and
delay and a room's direct-path delay are measured and taken out, so an edit never doubles as a
time shift.

Levels are loudness as ITU-R BS.1770 measures it (``pyloudnorm``): integrated, gated, in LUFS.
A clip whose sound is silent has no loudness (−∞): an edit that sets a level against it (noise at
an SNR, a loudness change) does not apply and says so.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from math import gcd
from typing import Any, Mapping

import numpy as np
import torch

from .base import DEFAULT_MAX_MISSING_FACE, Edit, NotApplicable, Perturbation, as_frames, register

AUDIO_SHAM = "control:audio-sham"
SHAM_BITRATE = 128_000  # what an edited recording's sound is encoded at (auditkit.media.recording)
MIN_SECONDS = 0.4       # BS.1770's gating block: shorter sound has no integrated loudness


def as_sound(audio: np.ndarray | torch.Tensor, rate: int) -> np.ndarray:
    """Validate float ``[C, S]`` sound and its rate; returns float32 (a copy only when needed)."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    if not isinstance(audio, np.ndarray) or audio.ndim != 2 or audio.shape[0] < 1 or audio.shape[1] < 1:
        raise ValueError(f"sound must be a float array [channels, samples], got {getattr(audio, 'shape', type(audio))}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"sound must be float in [-1, 1], got {audio.dtype}")
    if not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise ValueError(f"sample rate must be a positive integer, got {rate!r}")
    return np.asarray(audio, dtype=np.float32)


def loudness(audio: np.ndarray, rate: int) -> float:
    """Integrated loudness (LUFS, ITU-R BS.1770-4 via pyloudnorm) of float ``[C, S]`` sound:
    ``-inf`` when it is silent (every block below the absolute gate). Shorter than one 400 ms
    block there is nothing to measure: ``ValueError``."""
    import pyloudnorm

    audio = as_sound(audio, rate)
    if audio.shape[1] < round(MIN_SECONDS * rate):
        raise ValueError(f"loudness needs at least {MIN_SECONDS} s of sound, got {audio.shape[1] / rate:.3f} s")
    with np.errstate(divide="ignore"):
        value = pyloudnorm.Meter(rate).integrated_loudness(audio.T.astype(np.float64))
    return float(value)


def level_of(audio: np.ndarray, rate: int, name: str) -> float:
    """The clip's loudness, or why an edit that sets a level against it cannot apply."""
    if audio.shape[1] < round(MIN_SECONDS * rate):
        raise NotApplicable(f"its sound is shorter than {MIN_SECONDS} s: no loudness to set {name} against")
    value = loudness(audio, rate)
    if not np.isfinite(value):
        raise NotApplicable(f"its sound is silent (loudness -inf): no level to set {name} against")
    return value


def match_loudness(edited: np.ndarray, original: np.ndarray, rate: int) -> np.ndarray:
    """``edited`` scaled to ``original``'s loudness (unchanged when either is silent or too short),
    so that an edit of the room or the microphone is not also an edit of the level."""
    if original.shape[1] < round(MIN_SECONDS * rate):
        return edited
    want, have = loudness(original, rate), loudness(edited, rate)
    if not (np.isfinite(want) and np.isfinite(have)):
        return edited
    return edited * np.float32(10 ** ((want - have) / 20))


def resample(audio: np.ndarray, rate: int, to: int) -> np.ndarray:
    """``[C, S]`` from ``rate`` to ``to`` (polyphase, scipy's Kaiser-windowed anti-alias filter)."""
    from scipy.signal import resample_poly

    if rate == to:
        return audio
    g = gcd(int(rate), int(to))
    return resample_poly(audio, to // g, rate // g, axis=-1).astype(np.float32)


def fit(audio: np.ndarray, samples: int) -> np.ndarray:
    """Cut or zero-pad ``[C, S]`` to ``samples``."""
    if audio.shape[-1] >= samples:
        return audio[..., :samples]
    return np.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(0, samples - audio.shape[-1])])


# -- codecs -------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _codec_delay(codec: str, rate: int, bit_rate: int | None, options: tuple[tuple[str, str], ...],
                 decoder: str | None) -> int:
    """Samples by which ``codec``'s round trip delays its input (encoder priming, filter delay),
    measured once per setting by cross-correlation on a probe: a speech-band chirp in noise. A
    codec's delay is a property of its settings, not of what it carries; a silent clip could not
    show it."""
    from scipy.signal import chirp, correlate

    rng = np.random.default_rng(1770)
    t = np.arange(rate) / rate
    probe = (0.3 * chirp(t, 200, 1.0, 3000) + 0.05 * rng.standard_normal(rate)).astype(np.float32)
    probe = np.concatenate([np.zeros(rate // 4, np.float32), probe * np.hanning(rate).astype(np.float32)])
    out = _raw_round_trip(probe[None], rate, codec, bit_rate, dict(options), decoder)[0]
    lags = correlate(out, probe, mode="full", method="fft")
    return int(np.argmax(lags) - (len(probe) - 1))


def codec_round_trip(audio: np.ndarray, rate: int, codec: str, *, bit_rate: int | None = None,
                     options: Mapping[str, str] | None = None, decoder: str | None = None) -> np.ndarray:
    """``[C, S]`` encoded with PyAV's ``codec`` at ``rate`` and decoded again, each channel on its
    own, with the codec's delay taken out: the same length, aligned with the input."""
    options = tuple(sorted((options or {}).items()))
    delay = _codec_delay(codec, rate, bit_rate, options, decoder)
    out = _raw_round_trip(audio, rate, codec, bit_rate, dict(options), decoder)
    return fit(out[:, max(delay, 0):], audio.shape[1])


def _raw_round_trip(audio: np.ndarray, rate: int, codec: str, bit_rate: int | None, options: dict,
                    decoder: str | None) -> np.ndarray:
    import av

    channels = []
    for channel in audio:
        enc = av.CodecContext.create(codec, "w")
        enc.sample_rate, enc.layout = rate, "mono"
        fmt = enc.codec.audio_formats[0].name
        enc.format = fmt
        if bit_rate:
            enc.bit_rate = bit_rate
        if options:
            enc.options = dict(options)
        enc.time_base = Fraction(1, rate)
        enc.open()
        dec = av.CodecContext.create(decoder or enc.codec.name, "r")
        dec.sample_rate, dec.layout = rate, "mono"
        if enc.extradata:
            dec.extradata = enc.extradata
        step = enc.frame_size or 1024
        clipped = np.clip(channel, -1.0, 1.0)
        pcm = (np.round(clipped * 32767)).astype(np.int16) if fmt.startswith("s16") else clipped.astype(np.float32)
        pieces: list[np.ndarray] = []

        def take(packets, dec=dec, pieces=pieces) -> None:
            for packet in packets:
                for frame in dec.decode(packet):
                    got = frame.to_ndarray().reshape(-1)
                    pieces.append(got.astype(np.float32) / 32768.0 if got.dtype == np.int16 else got.astype(np.float32))

        for start in range(0, len(pcm), step):
            block = pcm[start:start + step]
            if len(block) < step:  # a codec with a fixed frame takes whole frames: pad the last
                block = np.pad(block, (0, step - len(block)))
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block[None]), format=fmt, layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            take(enc.encode(frame))
        take(enc.encode(None))
        channels.append(np.concatenate(pieces) if pieces else np.zeros(0, np.float32))
    n = max(len(c) for c in channels)
    return np.stack([np.pad(c, (0, n - len(c))) for c in channels])


# -- the edit interface -------------------------------------------------------------------------

class SoundEdit(Perturbation):
    """An edit of the sound: ``edit_sound`` changes float32 ``[C, S]`` sound at the clip's own rate;
    the frames are returned untouched. ``make_sound_params`` draws its random parameters once per
    clip (a noise's recording, where a babble starts), from the clip's generator."""

    touches = "sound"

    def transform(self, frames: torch.Tensor, params: Mapping[str, Any], annotations: Any) -> torch.Tensor:
        return frames

    def __call__(self, frames: torch.Tensor | np.ndarray, annotations: Any = None, *,
                 rng: np.random.Generator | None = None, seed: int | None = None,
                 max_missing_face: float = DEFAULT_MAX_MISSING_FACE) -> Edit:
        frames = as_frames(frames)
        return Edit(frames=frames, original=frames)

    def make_sound_params(self, audio: np.ndarray, rate: int, rng: np.random.Generator) -> dict[str, Any]:
        return {}

    def edit_sound(self, audio: np.ndarray, rate: int, params: Mapping[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def hear(self, audio: np.ndarray | torch.Tensor, rate: int, *, rng: np.random.Generator | None = None,
             seed: int | None = None, encoded_after: bool = False) -> np.ndarray:
        """The edited sound: float32 ``[C, S]`` of the input's shape, in [-1, 1]; the input is never
        written to. ``encoded_after``: the caller encodes the result with a lossy codec anyway (a
        recording), so an edit that is nothing but that round trip (the sham) leaves it to it.
        Raises :class:`NotApplicable` when the edit cannot apply to this sound (silence)."""
        audio = as_sound(audio, rate)
        if rng is None:
            rng = np.random.default_rng(0 if seed is None else seed)
        params = dict(self.make_sound_params(audio, rate, rng))
        params["encoded_after"] = encoded_after
        out = np.asarray(self.edit_sound(audio.copy(), rate, params), dtype=np.float32)
        if out.shape != audio.shape:
            raise RuntimeError(f"{self.name}: edit_sound returned {out.shape}, expected {audio.shape}")
        if not np.isfinite(out).all():
            raise RuntimeError(f"{self.name}: edit_sound returned values that are not finite")
        return np.clip(out, -1.0, 1.0)


def edits_sound(edit: Perturbation) -> bool:
    return getattr(edit, "touches", "picture") in ("sound", "both")


# -- the control --------------------------------------------------------------------------------

class AudioSham(SoundEdit):
    """The sound's compositing sham: an AAC encode and decode at the settings an edited recording
    is written with (128 kb/s, the clip's own rate and channels), delay compensated, and nothing
    else. Every other edit of the sound reaches a vendor through that same encoder, so what this
    arm moves is the encoder's share of every other arm's shift."""

    name = AUDIO_SHAM
    description = "an AAC round trip at the upload's settings, nothing else: the audio twin of background:sham"

    def edit_sound(self, audio, rate, params):
        if params.get("encoded_after"):
            return audio  # the recording's own AAC encode is this edit's round trip
        return codec_round_trip(audio, rate, "aac", bit_rate=SHAM_BITRATE)


register(AUDIO_SHAM, AudioSham)


# -- loudness -----------------------------------------------------------------------------------

TRUE_PEAK_CEILING = -1.0  # dBTP: the ceiling the broadcast recommendations (EBU R 128) allow
_LOOKAHEAD = 0.005        # seconds the limiter sees a peak coming
_RELEASE = 0.05           # seconds over which its gain recovers


def true_peak_limit(audio: np.ndarray, rate: int, ceiling_db: float = TRUE_PEAK_CEILING) -> np.ndarray:
    """A look-ahead limiter on the true peak (the peak of the sound 4x oversampled, as BS.1770
    Annex 2 measures it): the gain each sample needs to stay under ``ceiling_db`` is held over the
    look-ahead and release spans and smoothed, so the gain falls before a peak and recovers after
    it instead of clipping it."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d
    from scipy.signal import resample_poly

    ceiling = 10 ** (ceiling_db / 20)
    over = np.abs(resample_poly(audio, 4, 1, axis=-1)).max(axis=0)  # 4 x S: each sample's 4 sub-samples
    peak = over[:4 * audio.shape[1]].reshape(-1, 4).max(axis=1)
    need = np.minimum(1.0, ceiling / np.maximum(peak, 1e-12))
    if need.min() >= 1.0:
        return audio
    span = max(1, round(_LOOKAHEAD * rate))
    held = minimum_filter1d(need, size=2 * span + 1 + round(_RELEASE * rate), mode="nearest")
    gain = np.minimum(uniform_filter1d(held, size=2 * span + 1, mode="nearest"), need)
    return np.clip(audio * gain.astype(np.float32), -ceiling, ceiling)


class Loudness(SoundEdit):
    """The candidate heard louder or quieter: the whole sound scaled by ``change`` LU of loudness;
    a louder one then goes through a true-peak limiter (as a recording chain would), and its gain
    is found again so that the loudness measured after the limiter is the stated change."""

    def __init__(self, variant: str, change: float) -> None:
        self.name = f"loudness:{variant}"
        self.change = change
        self.description = f"the sound {abs(change):g} LU {'louder' if change > 0 else 'quieter'} (BS.1770)" + (
            f", through a true-peak limiter at {TRUE_PEAK_CEILING:g} dBTP" if change > 0 else "")

    def edit_sound(self, audio, rate, params):
        before = level_of(audio, rate, "a loudness change")
        gain = 10 ** (self.change / 20)
        if self.change <= 0:
            return audio * np.float32(gain)
        target = before + self.change

        def limited(g: float) -> tuple[np.ndarray, float]:
            out = true_peak_limit(audio * np.float32(g), rate)
            return out, loudness(out, rate)

        # The limiter takes some of the gain back, the more the louder: find, by bisection on the
        # gain in dB (loudness after the limiter grows with it), the gain that lands on the change.
        lo, hi = 0.0, 20 * np.log10(gain)
        out, got = limited(gain)
        while got < target - 0.02:
            lo, hi = hi, hi + 6.0
            if hi > 40.0:
                raise NotApplicable(f"its sound cannot be made {self.change:g} LU louder under a "
                                    f"{TRUE_PEAK_CEILING:g} dBTP ceiling")
            out, got = limited(10 ** (hi / 20))
        for _ in range(30):
            if abs(got - target) <= 0.02:
                break
            mid = (lo + hi) / 2
            out, got = limited(10 ** (mid / 20))
            lo, hi = (mid, hi) if got < target else (lo, mid)
        return out


register("loudness:quiet", lambda: Loudness("quiet", -12.0))
register("loudness:loud", lambda: Loudness("loud", 6.0))

