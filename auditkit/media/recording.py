"""A clip as a candidate uploads it: every frame at the clip's own rate (or a stated lower one), for
its whole length (or a stated window), at its own size (or a stated cap), written as H.264 with
its sound in MP4.

Frames are decoded and written one at a time (a minute of 640x360 is a gigabyte of pixels), so
memory holds what the caller keeps, never the clip. The sound is the original's stream copied
packet for packet when the caller does not change it and MP4 can carry its codec; otherwise it is
encoded as AAC.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from auditkit.contract.errors import ClipError, first_line

COPYABLE = ("aac", "mp3", "alac")  # audio codecs an MP4 carries as they are
TIME_BASE = Fraction(1, 90000)     # the written video's clock: variable frame rates keep their times
CRF = 18                           # x264 quality: visually lossless, about what a phone uploads at
AAC_BITRATE = 128_000              # sound that is encoded (edited, or a codec MP4 cannot carry)


@dataclass(frozen=True)
class RecordingSpec:
    """What a recording holds: ``fps`` (``None``: the clip's own rate; a lower one drops frames),
    ``seconds`` (``None``: the whole clip; else a window that long, centred), ``max_side`` (``None``:
    the clip's own size; else the longer side capped) and ``shift``: seconds the window starts
    later (the retest control of a rater that watches motion)."""

    fps: float | None = None
    seconds: float | None = None
    max_side: int | None = None
    shift: float = 0.0


@dataclass(frozen=True)
class Source:
    """What the container says about a clip's picture and sound."""

    fps: float
    duration: float       # seconds of picture
    start: float          # seconds from the container's zero to the first frame
    size: tuple[int, int]  # (height, width) as displayed (rotation applied)
    audio_codec: str | None


def probe(path: str | Path) -> Source:
    import av

    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ClipError(path, "has no video stream")
            video = container.streams.video[0]
            rate = float(video.average_rate or video.guessed_rate or 25)
            start = float((video.start_time or 0) * video.time_base) if video.time_base else 0.0
            duration = (float(video.duration * video.time_base) if video.duration and video.time_base
                        else float(container.duration or 0) / 1_000_000)
            h, w = video.codec_context.height, video.codec_context.width
            audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
    except ClipError:
        raise
    except (av.FFmpegError, OSError) as exc:
        raise ClipError(path, f"cannot be read as a recording ({first_line(exc, 120)})") from None
    return Source(rate, duration, start, (h, w), audio)


def window_of(source: Source, spec: RecordingSpec) -> tuple[float, float]:
    """(start, seconds) of the recording within the clip, from its first frame."""
    if spec.seconds is None or spec.seconds >= source.duration:
        start, seconds = 0.0, source.duration
    else:
        start, seconds = (source.duration - spec.seconds) / 2, spec.seconds
    shift = min(spec.shift, max(seconds - 1e-3, 0.0))
    return start + shift, seconds - shift if spec.seconds is None else seconds


def iter_frames(path: str | Path, spec: RecordingSpec = RecordingSpec()) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds from the recording's start, RGB uint8 frame) of every frame the recording holds,
    decoded one at a time: inside the window, at most ``spec.fps`` a second, displayed upright."""
    import av
    import cv2

    path = Path(path)
    source = probe(path)
    start, seconds = window_of(source, spec)
    step = 1.0 / spec.fps if spec.fps and spec.fps < source.fps else 0.0
    next_due = 0.0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if start > 1.0:
                container.seek(int((source.start + start - 0.5) / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base) - source.start - start
                if t < -1e-6:
                    continue
                if t >= seconds - 1e-6:
                    break
                if step and t + 1e-6 < next_due:
                    continue
                next_due = (np.floor(t / step + 1e-6) + 1) * step if step else 0.0
                rgb = frame.to_ndarray(format="rgb24")
                turn = int(getattr(frame, "rotation", 0) or 0) % 360
                if turn:  # the display matrix turns counter-clockwise by this many degrees
                    rgb = np.ascontiguousarray(np.rot90(rgb, turn // 90))
                if spec.max_side and max(rgb.shape[:2]) > spec.max_side:
                    scale = spec.max_side / max(rgb.shape[:2])
                    size = (max(2, round(rgb.shape[1] * scale)), max(2, round(rgb.shape[0] * scale)))
                    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
                yield t, rgb
    except (av.FFmpegError, OSError) as exc:
        raise ClipError(path, f"could not be decoded ({first_line(exc, 120)})") from None


def write_recording(out: str | Path, frames: Iterable[tuple[float, np.ndarray]], *, fps: float,
                    sound_from: str | Path | None, window: tuple[float, float],
                    sound: tuple[np.ndarray, int] | None = None) -> None:
    """Write ``frames`` ((seconds, RGB frame), in order) as H.264 in MP4 at ``fps`` (each frame at
    its own time), with the sound of ``sound_from`` over ``window`` (start, seconds from its first
    frame) copied packet for packet, or encoded as AAC when its codec cannot go in MP4; or with
    ``sound`` (float32 ``[C, S]``, rate) encoded as AAC when given (an edit of the sound)."""
    import itertools

    import av

    out = Path(out)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"{out}: no frames to write")
    h, w = first[1].shape[:2]
    with av.open(str(out), "w", format="mp4") as dst:
        video = dst.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height = w + w % 2, h + h % 2
        video.pix_fmt = "yuv420p"
        video.time_base = TIME_BASE
        video.codec_context.time_base = TIME_BASE
        video.options = {"crf": str(CRF), "preset": "veryfast"}
        track = _Sound(dst, sound_from, window, sound)  # every stream exists before the first packet
        try:
            for t, frame in itertools.chain([first], frames):
                if frame.shape[0] % 2 or frame.shape[1] % 2:  # 4:2:0 H.264 needs even sides: repeat the edge
                    frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")
                picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                picture.pts = round(t / TIME_BASE)
                picture.time_base = TIME_BASE
                for packet in video.encode(picture):
                    dst.mux(packet)
            for packet in video.encode(None):
                dst.mux(packet)
            track.write()
        finally:
            track.close()


class _Sound:
    """The recording's sound: the source's stream copied, or samples encoded as AAC."""

    def __init__(self, dst, sound_from, window: tuple[float, float], sound) -> None:
        import av

        self.dst, self.window, self.src, self.stream, self.samples = dst, window, None, None, None
        if sound is None and sound_from is not None:
            src = av.open(str(sound_from))
            if src.streams.audio and src.streams.audio[0].codec_context.name in COPYABLE:
                self.src = src
                self.stream = dst.add_stream_from_template(src.streams.audio[0])
                return
            src.close()
            from .audio import read_audio

            sound = read_audio(sound_from, window[0], window[1])
        if sound is not None:
            audio, rate = sound
            self.samples = (audio[:2] if audio.shape[0] > 2 else audio, rate)
            self.layout = "mono" if self.samples[0].shape[0] == 1 else "stereo"
            self.stream = dst.add_stream("aac", rate=rate, layout=self.layout)
            self.stream.bit_rate = AAC_BITRATE

    def write(self) -> None:
        if self.samples is not None:
            from .audio import encode_audio

            encode_audio(self.dst, self.stream, self.samples[0], self.samples[1], self.layout)
        elif self.src is not None:
            self._copy()

    def _copy(self) -> None:
        src, (start, seconds) = self.src, self.window
        ain = src.streams.audio[0]
        video = src.streams.video[0] if src.streams.video else None
        zero = float((video.start_time or 0) * video.time_base) if video is not None and video.time_base else 0.0
        tb = ain.time_base
        offset, end = round((zero + start) / tb), round((zero + start + seconds) / tb)
        if start > 1.0:
            src.seek(int(max(zero + start - 0.5, 0) / tb), stream=ain, backward=True)
        for packet in src.demux(ain):
            if packet.pts is None or packet.size == 0:
                continue
            # From the clip's start every packet goes, the encoder's priming (before zero) too.
            if start > 0 and packet.pts + (packet.duration or 0) <= offset:
                continue
            if packet.pts >= end:
                break
            packet.pts -= offset
            packet.dts = packet.pts if packet.dts is None else packet.dts - offset
            packet.stream = self.stream
            self.dst.mux(packet)

    def close(self) -> None:
        if self.src is not None:
            self.src.close()
            self.src = None


def recording_bytes(write) -> bytes:
    """Run ``write(path)`` on a temporary MP4 file and return its bytes."""
    import tempfile

    fd, tmp = tempfile.mkstemp(suffix=".mp4", prefix="auditkit-recording-")
    os.close(fd)
    try:
        write(Path(tmp))
        return Path(tmp).read_bytes()
    finally:
        os.unlink(tmp)
