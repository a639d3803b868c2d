"""Counterfactuals of the person's voice: the same words, the same timing, the same vocal tract,
a higher or lower pitch. Like the headscarf, these change the candidate, not the room: a rater
that moves here moves with a trait of the person that says nothing about their personality.

The WORLD vocoder (pyworld) splits the sound into its fundamental frequency (F0, by DIO refined by
StoneMask), its spectral envelope (CheapTrick: the formants, which the vocal tract shapes) and
its aperiodicity (D4C), and resynthesises it with F0 scaled by 2^(semitones/12) and the envelope
as it was: the pitch moves, the formants do not, so the voice sounds like the same speaker
speaking higher or lower, not like a sped-up recording.
"""

from __future__ import annotations

import importlib.metadata
import sys
import types

import numpy as np

from .base import register
from .sound import SoundEdit, fit, match_loudness

SEMITONES = 2.0
F0_FLOOR, F0_CEIL = 60.0, 600.0  # Hz: the range DIO searches, wide enough for any adult voice
FRAME = 5.0                       # ms between WORLD's analysis frames


def _pyworld():
    try:
        import pyworld
    except ModuleNotFoundError as exc:
        if exc.name != "pkg_resources":
            raise
        # pyworld 0.3.5 reads its own version through pkg_resources, which setuptools 81 and later no
        # longer ship: give it the one function it calls, for the time of the import.
        shim = types.ModuleType("pkg_resources")
        shim.get_distribution = lambda name: types.SimpleNamespace(version=importlib.metadata.version(name))
        sys.modules["pkg_resources"] = shim
        try:
            import pyworld
        finally:
            sys.modules.pop("pkg_resources", None)
    return pyworld


def shift_pitch(audio: np.ndarray, rate: int, semitones: float) -> np.ndarray:
    """Each channel's pitch moved by ``semitones``, its spectral envelope and aperiodicity kept."""
    pw = _pyworld()
    out = np.empty_like(audio)
    for c, channel in enumerate(audio.astype(np.float64)):
        if not np.any(channel):
            out[c] = channel
            continue
        f0, t = pw.dio(channel, rate, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=FRAME)
        f0 = pw.stonemask(channel, f0, t, rate)
        size = pw.get_cheaptrick_fft_size(rate, F0_FLOOR)
        envelope = pw.cheaptrick(channel, f0, t, rate, f0_floor=F0_FLOOR, fft_size=size)
        aperiodicity = pw.d4c(channel, f0, t, rate, fft_size=size)
        voiced = pw.synthesize(f0 * 2 ** (semitones / 12), envelope, aperiodicity, rate, frame_period=FRAME)
        out[c] = fit(voiced[None].astype(np.float32), audio.shape[1])[0]
    return out


class Pitch(SoundEdit):
    def __init__(self, direction: str, semitones: float) -> None:
        self.name = f"voice:pitch-{direction}"
        self.semitones = semitones
        self.description = (f"the candidate's voice {abs(semitones):g} semitones {direction}, formants kept "
                            "(WORLD vocoder), loudness kept: a counterfactual of the person")

    def edit_sound(self, audio, rate, params):
        return match_loudness(shift_pitch(audio, rate, self.semitones), audio, rate)


register("voice:pitch-up", lambda: Pitch("up", SEMITONES))
register("voice:pitch-down", lambda: Pitch("down", -SEMITONES))
