"""Background noise at a stated signal-to-noise ratio: what is going on around a candidate.

The SNR is a loudness difference (ITU-R BS.1770 via pyloudnorm): the clip's integrated loudness
minus the noise's, in dB (LU). 15 dB unless the name sets another (``noise:street@5``). Where each
noise comes from:

- ``hvac``: procedural. An air handler's fan is broadband noise falling with frequency (pink,
  -3 dB an octave, rolled off above 1 kHz), with the tonal hum of its blades and the mains
  (120 and 240 Hz) on top. Stationary.
- ``street``: procedural. Distant traffic is a steady low rumble (brown noise, -6 dB an octave,
  below 500 Hz); vehicles passing nearby swell and fade over a second or two (tyre and engine
  noise, 150 Hz to 2.5 kHz, under a Gaussian envelope), a few every ten seconds.
- ``babble``: six voices talking at once, recorded (synthetic speech; see ``sounds/README.md``),
  a loop from which each clip takes its own stretch.
- ``keyboard``: procedural. Someone typing nearby: runs of key strokes (about seven a second,
  a few seconds a run, pauses between), each a click of decaying noise in the 1.5-6 kHz band
  with its key's release a tenth of a second later.

Each clip draws its own stretch of noise from its generator (the same seed, the same noise); the
noise is the same on every channel.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from .base import register
from .sound import SoundEdit, level_of, loudness, resample

DEFAULT_SNR = 15.0
BABBLE = Path(__file__).with_name("sounds") / "babble.wav"


def _shaped(n: int, rate: int, rng: np.random.Generator, gain) -> np.ndarray:
    """White noise of ``n`` samples shaped in frequency by ``gain(f)`` (f in Hz), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / rate)
    f[0] = f[1] if n > 1 else 1.0
    out = np.fft.irfft(spectrum * gain(f), n)
    return out / max(float(np.sqrt(np.mean(out ** 2))), 1e-12)


def hvac(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    fan = _shaped(n, rate, rng, lambda f: 1 / np.sqrt(f) / np.sqrt(1 + (f / 1000) ** 4))
    t = np.arange(n) / rate
    phase = rng.uniform(0, 2 * np.pi, 2)
    hum = 0.25 * np.sin(2 * np.pi * 120 * t + phase[0]) + 0.1 * np.sin(2 * np.pi * 240 * t + phase[1])
    return fan + hum


def street(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    rumble = _shaped(n, rate, rng, lambda f: (1 / f) / np.sqrt(1 + (f / 500) ** 4))
    tyres = _shaped(n, rate, rng, lambda f: ((f > 150) & (f < 2500)) / np.sqrt(f))
    seconds = n / rate
    envelope = np.zeros(n)
    t = np.arange(n) / rate
    at = -rng.uniform(0, 4)  # a vehicle may be passing as the clip starts
    while at < seconds + 2:
        width = rng.uniform(0.6, 1.2)
        envelope += rng.uniform(0.6, 1.6) * np.exp(-0.5 * ((t - at) / width) ** 2)
        at += rng.exponential(3.5) + 1.0
    return 0.5 * rumble + tyres * envelope


@functools.lru_cache(maxsize=8)
def _babble_loop(rate: int) -> np.ndarray:
    from scipy.io import wavfile

    source, loop = wavfile.read(BABBLE)  # 16-bit PCM, mono
    return resample(loop[None].astype(np.float32) / 32768.0, int(source), rate)[0].astype(np.float64)


def babble(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    loop = _babble_loop(rate)
    start = int(rng.integers(0, len(loop)))
    return np.resize(np.roll(loop, -start), n)  # the loop has no seam: its voices wrap around


def keyboard(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import butter, fftconvolve, sosfilt

    strokes = np.zeros(n)
    at = rng.uniform(0, 1.0)
    seconds = n / rate
    while at < seconds:
        run_end = at + rng.uniform(1.5, 4.0)
        while at < min(run_end, seconds):
            i = int(at * rate)
            strokes[i] += rng.uniform(0.6, 1.0)
            release = int((at + rng.uniform(0.08, 0.12)) * rate)
            if release < n:
                strokes[release] += rng.uniform(0.2, 0.4)
            at += max(0.04, rng.normal(1 / 7, 0.04))
        at += rng.uniform(0.5, 2.0)
    length = max(8, int(0.03 * rate))
    click = rng.standard_normal(length) * np.exp(-np.arange(length) / (0.006 * rate))
    out = fftconvolve(strokes, click)[:n]
    top = min(6000.0, 0.45 * rate)
    if top > 1600:
        out = sosfilt(butter(2, [1500.0, top], btype="bandpass", fs=rate, output="sos"), out)
    return out


SOURCES = {"hvac": hvac, "street": street, "babble": babble, "keyboard": keyboard}
WHAT = {"hvac": "an air handler's fan and hum", "street": "street traffic with passing vehicles",
        "babble": "six people talking at once", "keyboard": "someone typing nearby"}


def parse_snr(at: str | None) -> float:
    if at is None:
        return DEFAULT_SNR
    try:
        value = float(at)
    except ValueError:
        raise ValueError(f"the SNR after '@' must be a number of dB (e.g. noise:street@5), got {at!r}") from None
    if not math.isfinite(value) or not -20.0 <= value <= 60.0:
        raise ValueError(f"the SNR after '@' must be between -20 and 60 dB, got {at!r}")
    return value


class Noise(SoundEdit):
    """``kind`` of noise added at ``snr`` dB below the clip's loudness."""

    def __init__(self, kind: str, snr: float = DEFAULT_SNR, at: str | None = None) -> None:
        self.kind, self.snr = kind, snr
        self.name = f"noise:{kind}" + (f"@{at}" if at is not None else "")
        self.description = f"{WHAT[kind]}, {snr:g} dB below the candidate (BS.1770 loudness)"

    def make_sound_params(self, audio, rate, rng):
        return {"noise": SOURCES[self.kind](audio.shape[1], rate, rng)}

    def edit_sound(self, audio, rate, params):
        level = level_of(audio, rate, f"the noise at {self.snr:g} dB SNR")
        noise = np.broadcast_to(params["noise"].astype(np.float32), audio.shape)
        heard = loudness(noise, rate)
        if not np.isfinite(heard):  # a keyboard quiet for the whole of a short clip
            return audio
        return audio + noise * np.float32(10 ** ((level - self.snr - heard) / 20))


for _kind in SOURCES:
    register(f"noise:{_kind}", lambda at=None, kind=_kind: Noise(kind, parse_snr(at), at))
