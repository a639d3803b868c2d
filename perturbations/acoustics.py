"""The room and the microphone a candidate records in: reverberation from a physical room model,
and microphones and codecs through real encoders.

Rooms are shoebox rooms simulated by the image-source method (pyroomacoustics): the walls' energy
absorption is set so that Sabine's formula, RT60 = 0.161 V / (S a) (V the volume in m³, S the
surface in m², a the absorption coefficient), gives the stated reverberation time; the impulse
response is computed once per room and sample rate (a few tenths of a second) and kept, never per
clip. The edit convolves the sound with it, takes out the direct path's delay (the talker is no
later than before, only reverberant) and matches the original's loudness, so that a room is not
also a change of level (``loudness:*`` is that).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .base import register
from .sound import codec_round_trip, fit, match_loudness, resample, SoundEdit


@dataclass(frozen=True)
class Room:
    """A shoebox room: ``size`` (m), the RT60 stated by Sabine's formula (s), and where the talker
    and the microphone stand (as fractions of the room's length and width, heights in m)."""

    name: str
    description: str
    size: tuple[float, float, float]
    rt60: float
    talker: tuple[float, float, float]
    mic: tuple[float, float, float]

    def position(self, where: tuple[float, float, float]) -> list[float]:
        return [where[0] * self.size[0], where[1] * self.size[1], where[2]]


ROOMS = {
    "office": Room("office", "a furnished office (5 x 4 x 2.8 m, RT60 0.45 s)", (5.0, 4.0, 2.8), 0.45,
                   (0.40, 0.55, 1.2), (0.56, 0.50, 1.1)),
    "kitchen": Room("kitchen", "a hard, tiled kitchen (4 x 3 x 2.6 m, RT60 0.8 s)", (4.0, 3.0, 2.6), 0.80,
                    (0.40, 0.55, 1.5), (0.60, 0.50, 1.3)),
    "hall": Room("hall", "a large hall (20 x 12 x 8 m, RT60 1.6 s)", (20.0, 12.0, 8.0), 1.60,
                 (0.30, 0.40, 1.5), (0.37, 0.42, 1.3)),
    "closet": Room("closet", "a small closet damped by clothes (2 x 1.5 x 2.4 m, RT60 0.2 s)", (2.0, 1.5, 2.4),
                   0.20, (0.40, 0.55, 1.5), (0.60, 0.50, 1.3)),
}
# The small room a laptop sits in (its own microphone a desk's width from the talker).
DESK = Room("desk", "a small study (3.5 x 3 x 2.5 m, RT60 0.3 s)", (3.5, 3.0, 2.5), 0.30,
            (0.45, 0.50, 1.2), (0.58, 0.52, 0.9))


def sabine_absorption(room: Room) -> float:
    """The walls' energy absorption coefficient that gives ``room.rt60`` by Sabine's formula."""
    x, y, z = room.size
    volume, surface = x * y * z, 2 * (x * y + y * z + x * z)
    return 0.161 * volume / (surface * room.rt60)


@functools.lru_cache(maxsize=None)
def impulse_response(room: Room, rate: int) -> np.ndarray:
    """The room's impulse response from the talker to the microphone at ``rate`` (float32, the
    direct path first: its delay taken out), by the image-source method to the reflection order
    that reaches the RT60."""
    import pyroomacoustics as pra

    _, order = pra.inverse_sabine(room.rt60, list(room.size))
    shoebox = pra.ShoeBox(list(room.size), fs=rate, materials=pra.Material(sabine_absorption(room)),
                          max_order=int(order), air_absorption=False)
    shoebox.add_source(room.position(room.talker))
    shoebox.add_microphone(room.position(room.mic))
    shoebox.compute_rir()
    h = np.asarray(shoebox.rir[0][0], dtype=np.float64)
    direct = int(np.argmax(np.abs(h)))  # the direct path: the nearest and strongest arrival
    h = h[direct:]
    return (h / np.abs(h[0])).astype(np.float32)


def reverberate(audio: np.ndarray, rate: int, room: Room) -> np.ndarray:
    """``audio`` as heard in ``room``: convolved with its impulse response, the direct path
    aligned with the original, the tail past the clip's end cut."""
    from scipy.signal import fftconvolve

    h = impulse_response(room, rate)
    return fftconvolve(audio, h[None], axes=-1)[:, :audio.shape[1]].astype(np.float32)


class RoomEdit(SoundEdit):
    def __init__(self, room: Room) -> None:
        self.room = room
        self.name = f"room:{room.name}"
        self.description = f"the candidate heard in {room.description}; loudness kept"

    def edit_sound(self, audio, rate, params):
        return match_loudness(reverberate(audio, rate, self.room), audio, rate)


for _room in ROOMS.values():
    register(f"room:{_room.name}", lambda room=_room: RoomEdit(room))


# -- microphones --------------------------------------------------------------------------------

def _sos(kind: str, rate: int, *args, **kwargs) -> np.ndarray:
    from scipy.signal import butter

    return butter(*args, btype=kind, fs=rate, output="sos", **kwargs)


def peaking(rate: int, freq: float, gain_db: float, q: float) -> np.ndarray:
    """A peaking equaliser (the Audio EQ Cookbook's biquad) as one second-order section."""
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * freq / rate
    alpha = np.sin(w) / (2 * q)
    b = [1 + alpha * a, -2 * np.cos(w), 1 - alpha * a]
    d = [1 + alpha / a, -2 * np.cos(w), 1 - alpha / a]
    return np.array([[b[0] / d[0], b[1] / d[0], b[2] / d[0], 1.0, d[1] / d[0], d[2] / d[0]]])


def filtered(audio: np.ndarray, sos: np.ndarray) -> np.ndarray:
    """Zero-phase filtering (forwards and backwards): a response with no delay to compensate."""
    from scipy.signal import sosfiltfilt

    if audio.shape[1] <= 3 * (2 * len(sos) + 1):
        return audio
    return sosfiltfilt(sos, audio, axis=-1).astype(np.float32)


class Laptop(SoundEdit):
    """A laptop's built-in microphone: its response (a 2nd-order high-pass at 200 Hz: no body
    below; a +6 dB presence peak at 4 kHz, Q 1; a 2nd-order low-pass at 10 kHz) and the small
    room it sits in (``DESK``, RT60 0.3 s, the microphone half a metre away). Loudness kept."""

    name = "mic:laptop"
    description = ("a laptop's microphone: high-pass 200 Hz, +6 dB presence peak at 4 kHz, low-pass 10 kHz, "
                   "in a small study (RT60 0.3 s); loudness kept")

    def edit_sound(self, audio, rate, params):
        out = reverberate(audio, rate, DESK)
        sos = [_sos("highpass", rate, 2, 200.0), peaking(rate, 4000.0, 6.0, 1.0)]
        if rate > 2 * 10_000:
            sos.append(_sos("lowpass", rate, 2, 10_000.0))
        out = filtered(out, np.concatenate(sos))
        return match_loudness(out, audio, rate)


class Phone(SoundEdit):
    """A mobile phone call: narrowband 300-3400 Hz (a 4th-order Butterworth band-pass), at 8 kHz
    through the AMR-NB codec at 12.2 kb/s (the GSM/UMTS voice codec; PyAV's libopencore encoder and
    decoder) and back to the clip's rate; mono, as a call is. Loudness kept."""

    name = "mic:phone"
    description = "a phone call: 300-3400 Hz, AMR-NB 12.2 kb/s at 8 kHz, mono; loudness kept"
    codec_rate = 8000

    def edit_sound(self, audio, rate, params):
        mono = audio.mean(axis=0, keepdims=True)
        band = filtered(mono, _sos("bandpass", rate, 4, [300.0, 3400.0]))
        narrow = resample(band, rate, self.codec_rate)
        coded = codec_round_trip(narrow, self.codec_rate, "libopencore_amrnb", bit_rate=12_200, decoder="amrnb")
        # Back at the clip's rate, what the codec put near 4 kHz is cut again (a phone's receive filter).
        back = filtered(fit(resample(coded, self.codec_rate, rate), audio.shape[1]),
                        _sos("lowpass", rate, 8, 3400.0)) if rate > 8000 else coded
        out = np.repeat(fit(back, audio.shape[1]), audio.shape[0], axis=0)
        return match_loudness(out, audio, rate)


class Headset(SoundEdit):
    """A Bluetooth headset on a call: its close-talking microphone (a 2nd-order high-pass at
    100 Hz) through mSBC, the wideband speech codec of the Bluetooth Hands-Free Profile (SBC at
    16 kHz, about 60 kb/s; PyAV's ``sbc`` encoder in its ``msbc`` mode), and back to the clip's
    rate; mono. Loudness kept."""

    name = "mic:headset"
    description = "a Bluetooth headset: high-pass 100 Hz, mSBC (16 kHz, ~60 kb/s), mono; loudness kept"
    codec_rate = 16000

    def edit_sound(self, audio, rate, params):
        mono = filtered(audio.mean(axis=0, keepdims=True), _sos("highpass", rate, 2, 100.0))
        coded = codec_round_trip(resample(mono, rate, self.codec_rate), self.codec_rate, "sbc",
                                 options={"msbc": "1"})
        out = np.repeat(fit(resample(coded, self.codec_rate, rate), audio.shape[1]), audio.shape[0], axis=0)
        return match_loudness(out, audio, rate)


register("mic:laptop", Laptop)
register("mic:phone", Phone)
register("mic:headset", Headset)
