"""A clip's sound: decoded with PyAV over the window the rater's frames come from, conformed to
the rater's sample rate and channels, and written back beside the picture.

Time zero is the first frame of the video stream, so sound that starts late in the container
starts late here too (silence before it), and sound that ends early is silence after it.
"""

from __future__ import annotations

import wave
from fractions import Fraction
from math import gcd
from pathlib import Path
from typing import BinaryIO

import numpy as np

from auditkit.contract.errors import ClipError, first_line

# PyAV's sample formats and the scale that brings each into [-1, 1].
_SCALE = {"u8": None, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0,
          "flt": 1.0, "dbl": 1.0}


def read_audio(path: str | Path | BinaryIO, start: float = 0.0, seconds: float | None = None
               ) -> tuple[np.ndarray, int] | None:
    """The first audio stream of ``path`` (a file, or an open binary file object) from ``start``
    seconds (after the video's first frame) for ``seconds`` (to the video's end when ``None``):
    float32 ``[C, S]`` in [-1, 1] at the stream's own rate, and that rate; ``None`` when the file
    has no audio stream. Only the packets around the window are decoded."""
    import av

    opened = path if hasattr(path, "read") else str(path)
    path = Path(getattr(path, "name", "upload") if hasattr(path, "read") else path)
    try:
        with av.open(opened) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            rate = int(stream.codec_context.sample_rate or stream.rate or 0)
            channels = int(stream.codec_context.channels or 0)
            if rate <= 0 or channels <= 0:
                raise ClipError(path, "its audio stream states no sample rate or no channels")
            zero = _video_start(container)
            if seconds is None:
                seconds = max(_video_seconds(container) - start, 0.0)
            out = np.zeros((channels, max(1, round(seconds * rate))), dtype=np.float32)
            first = zero + start
            if start > 1.0:  # seek to a little before the window; decoding from the start costs the clip's length
                container.seek(int(max(first - 0.5, 0) / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                at = float(frame.pts * frame.time_base) - first
                pos = round(at * rate)
                if pos >= out.shape[1]:
                    break
                samples = _samples(frame, channels)
                lo = max(0, -pos)
                hi = min(samples.shape[1], out.shape[1] - pos)
                if hi > lo:
                    out[:, pos + lo:pos + hi] = samples[:, lo:hi]
    except ClipError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise ClipError(path, f"its audio could not be decoded ({first_line(exc, 120)})") from None
    return out, rate


def _video_start(container) -> float:
    """Seconds from the container's start to the video stream's first frame (0 without video)."""
    if not container.streams.video:
        return 0.0
    stream = container.streams.video[0]
    return float((stream.start_time or 0) * stream.time_base) if stream.time_base else 0.0


def _video_seconds(container) -> float:
    for stream in (*container.streams.video, *container.streams.audio):
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
    return float(container.duration or 0) / 1_000_000


def _samples(frame, channels: int) -> np.ndarray:
    """One decoded audio frame as float32 ``[C, n]`` in [-1, 1]."""
    name = frame.format.name
    raw = frame.to_ndarray()
    if not frame.format.is_planar:  # interleaved: one row of n * C values
        raw = raw.reshape(-1, channels).T
    base = name.rstrip("p")
    scale = _SCALE.get(base)
    if base == "u8":
        return (raw.astype(np.float32) - 128.0) / 128.0
    if scale is None:
        raise ValueError(f"unsupported sample format {name}")
    return (raw.astype(np.float32) / np.float32(scale)) if scale != 1.0 else raw.astype(np.float32)


def conform(audio: np.ndarray, rate: int, spec, seconds: float) -> np.ndarray:
    """Sound ``[C, S]`` at ``rate`` as an :class:`~auditkit.contract.rater.AudioSpec` wants it:
    resampled to its rate, downmixed to mono (the mean of the channels) or that duplicated to its
    channel count, cut or zero-padded to ``seconds``, and clipped to [-1, 1]."""
    from scipy.signal import resample_poly

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[0] < 1:
        raise ValueError(f"audio must be [channels, samples], got shape {audio.shape}")
    if audio.shape[0] != spec.channels:
        mono = audio.mean(axis=0, keepdims=True) if audio.shape[0] > 1 else audio
        audio = np.repeat(mono, spec.channels, axis=0) if spec.channels > 1 else mono
    if rate != spec.sample_rate and audio.shape[1] > 1:
        g = gcd(int(rate), int(spec.sample_rate))
        audio = resample_poly(audio, spec.sample_rate // g, rate // g, axis=1).astype(np.float32)
    want = spec.samples(seconds)
    if audio.shape[1] >= want:
        audio = audio[:, :want]
    else:
        audio = np.pad(audio, ((0, 0), (0, want - audio.shape[1])))
    return np.ascontiguousarray(np.clip(audio, -1.0, 1.0), dtype=np.float32)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV file as float32 ``[C, S]`` in [-1, 1], and its rate."""
    with wave.open(str(path), "rb") as fh:
        if fh.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is read here, got {8 * fh.getsampwidth()}-bit")
        data = np.frombuffer(fh.readframes(fh.getnframes()), dtype="<i2")
        channels, rate = fh.getnchannels(), fh.getframerate()
    return (data.reshape(-1, channels).T.astype(np.float32) / 32768.0), rate


def mux_audio(video: str | Path, audio: np.ndarray, rate: int, out: str | Path, *, bitrate: int = 96_000) -> None:
    """``out``: the picture of ``video`` copied packet for packet (not re-encoded) beside
    ``audio`` (float32 ``[C, S]``, 1 or 2 channels) encoded as AAC and starting with the first
    frame."""
    import av

    audio = np.ascontiguousarray(np.clip(audio, -1.0, 1.0), dtype=np.float32)
    if audio.ndim != 2 or audio.shape[0] not in (1, 2):
        raise ValueError(f"audio must be [1 or 2 channels, samples], got shape {audio.shape}")
    layout = "mono" if audio.shape[0] == 1 else "stereo"
    with av.open(str(video)) as src, av.open(str(out), "w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        aout = dst.add_stream("aac", rate=rate, layout=layout)
        aout.bit_rate = bitrate
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            dst.mux(packet)
        encode_audio(dst, aout, audio, rate, layout)


def encode_audio(dst, stream, audio: np.ndarray, rate: int, layout: str) -> None:
    import av

    step = 1024  # AAC's frame length
    for start in range(0, audio.shape[1], step):
        chunk = audio[:, start:start + step]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        for packet in stream.encode(frame):
            dst.mux(packet)
    for packet in stream.encode(None):
        dst.mux(packet)
