"""Edits of what the rater hears: rooms, noise, microphones, loudness, the voice, and the sham.

Each realism check measures the edit with something other than the edit's own code (Schroeder
integration for the rooms, pyloudnorm on edited − original for the noise, an FFT for the phone
band, STOI for intelligibility, librosa's pYIN and MFCC for the voice), and each fails on a
deliberately broken edit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from auditkit import run_audit
from auditkit.contract.errors import ConfigError
from auditkit.contract.rater import InputSpec
from auditkit.media.audio import read_wav
from auditkit.media.clips import discover
from auditkit.perturbations import NotApplicable, available, edits_sound, get
from auditkit.perturbations.acoustics import ROOMS, RoomEdit
from auditkit.perturbations.noise import Noise
from auditkit.perturbations.sound import loudness, resample
from auditkit.raters import TorchRater
from conftest import EARS_TRAITS, TREBLE_HZ, Ears

SOUND = [n for f in ("room", "noise", "mic", "loudness", "voice") for n in available(f)] + ["control:audio-sham"]
# Intelligibility floors (STOI): the mild edits and the reverberant rooms.
HARSH = {"room:hall", "room:kitchen"}
EARS = InputSpec(size=(64, 64), frames=4, audio={"sample_rate": 16000, "channels": 1, "seconds": 2.0})


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    """The sample clips' spoken answer at 48 kHz with a little silence either side, as a clip's
    sound would be."""
    from importlib.resources import files

    voice, rate = read_wav(files("auditkit.media") / "speech" / "hopper.wav")
    voice = resample(voice, rate, 48000)
    pad = np.zeros((1, 12000), np.float32)
    return np.concatenate([pad, voice, pad], axis=1), 48000


def schroeder_rt60(h: np.ndarray, rate: int) -> float:
    """RT60 by Schroeder's backward integration of an impulse response: the energy decay curve's
    slope between -5 and -25 dB (T20), extrapolated to 60 dB."""
    energy = np.cumsum((h.astype(np.float64) ** 2)[::-1])[::-1]
    curve = 10 * np.log10(energy / energy[0] + 1e-30)
    start, stop = int(np.argmax(curve <= -5)), int(np.argmax(curve <= -25))
    t = np.arange(len(curve)) / rate
    slope = np.polyfit(t[start:stop], curve[start:stop], 1)[0]
    return -60.0 / slope


def measured_snr(original: np.ndarray, edited: np.ndarray, rate: int) -> float:
    import pyloudnorm

    meter = pyloudnorm.Meter(rate)
    return meter.integrated_loudness(original.T.astype(np.float64)) - meter.integrated_loudness(
        (edited - original).T.astype(np.float64))


def lag_of(original: np.ndarray, edited: np.ndarray, *, envelope: bool = False) -> int:
    """Samples by which ``edited`` lags ``original``: by their waveforms, or by their energy
    envelopes (5 ms) for an edit that changes the waveform itself (a new pitch)."""
    from scipy.ndimage import uniform_filter1d
    from scipy.signal import correlate

    a, b = original[0].astype(np.float64), edited[0].astype(np.float64)
    if envelope:
        a, b = (uniform_filter1d(x ** 2, 240) for x in (a, b))
        a, b = a - a.mean(), b - b.mean()
    c = correlate(b, a, mode="full", method="fft")
    return int(np.argmax(c)) - (len(a) - 1)


# ------------------------------------------------------------------------------ the interface

def test_every_audio_edit_keeps_length_alignment_and_the_frames(speech, frames):
    audio, rate = speech
    stereo = np.stack([audio[0], 0.5 * audio[0]])
    for name in SOUND:
        edit = get(name)
        assert edits_sound(edit) and edit.touches == "sound"
        before = stereo.copy()
        out = edit.hear(stereo, rate, seed=3)
        assert out.shape == stereo.shape and out.dtype == np.float32, name
        assert np.array_equal(stereo, before), f"{name} wrote into its input"
        assert np.abs(out).max() <= 1.0
        # Aligned to a tenth of a millisecond (a narrowband codec resolves no finer than its own 8 kHz);
        # a new pitch has no common waveform to align: by its energy envelope, to 2 ms (the vocoder's
        # resynthesis moves the envelope's peaks by about a millisecond either way, even at the same pitch).
        voice = name.startswith("voice:")
        lag = lag_of(stereo, out, envelope=voice)
        assert abs(lag) <= (rate // 500 if voice else rate // 10_000), f"{name} lags the original by {lag}"
        assert np.array_equal(out, edit.hear(stereo, rate, seed=3)), f"{name}: same seed, other sound"
        # The picture is not touched.
        assert torch.equal(edit(frames).frames, frames), name
    # At another rate and mono too (the rater's rate is derived after the edit).
    for name in SOUND:
        mono = resample(audio, rate, 22050)
        assert get(name).hear(mono, 22050, seed=1).shape == mono.shape, name


def test_a_silent_clip_has_no_level_to_set_noise_or_loudness_against():
    silent = np.zeros((1, 32000), np.float32)
    for name in available("noise") + available("loudness"):
        with pytest.raises(NotApplicable, match="silent \\(loudness -inf\\)"):
            get(name).hear(silent, 16000)
    # The others leave silence silent.
    for name in available("room") + available("mic") + available("voice") + ["control:audio-sham"]:
        assert not np.abs(get(name).hear(silent, 16000)).max() > 1e-4, name


def test_an_snr_is_set_after_the_name_and_checked():
    assert get("noise:street@5").snr == 5.0 and get("noise:street@5").name == "noise:street@5"
    assert get("noise:street").snr == 15.0
    with pytest.raises(KeyError, match="must be a number of dB"):
        get("noise:street@loud")
    with pytest.raises(KeyError, match="'room:hall' takes no parameter"):
        get("room:hall@3")


# ---------------------------------------------------------------------------------- realism

@pytest.mark.parametrize("rate", [16000, 48000])
def test_each_room_has_the_rt60_it_states(rate):
    impulse = np.zeros((1, int(rate * 2.5)), np.float32)
    impulse[0, 0] = 0.5
    for name, room in ROOMS.items():
        h = get(f"room:{name}").hear(impulse, rate)[0]
        assert schroeder_rt60(h, rate) == pytest.approx(room.rt60, rel=0.15), name
    # A broken room (twice the stated reverberation) fails the same check.
    for room in (ROOMS["office"], ROOMS["closet"]):
        broken = RoomEdit(dataclasses.replace(room, rt60=2 * room.rt60)).hear(impulse, rate)[0]
        assert schroeder_rt60(broken, rate) != pytest.approx(room.rt60, rel=0.15), room.name


def test_each_noise_is_at_the_snr_it_states(speech):
    audio, rate = speech
    for name in available("noise"):
        for at in ("", "@5"):
            edit = get(name + at)
            out = edit.hear(audio, rate, seed=11)
            assert measured_snr(audio, out, rate) == pytest.approx(edit.snr, abs=0.5), edit.name
        # A broken noise (3 dB louder than it says) fails the same check.
        broken = Noise(edit.kind, 2.0)
        assert measured_snr(audio, broken.hear(audio, rate, seed=11), rate) != pytest.approx(5.0, abs=0.5)


def high_share(audio: np.ndarray, rate: int, above: float) -> float:
    power = np.abs(np.fft.rfft(audio[0])) ** 2
    hz = np.fft.rfftfreq(audio.shape[1], 1 / rate)
    return float(power[hz > above].sum() / power.sum())


def test_the_phone_is_narrowband(speech):
    audio, rate = speech
    assert high_share(audio, rate, 3600) > 0.03  # the voice has energy up there to lose
    assert high_share(get("mic:phone").hear(audio, rate), rate, 3600) < 0.01
    # A microphone without the telephone band (the laptop's) fails the same check.
    assert high_share(get("mic:laptop").hear(audio, rate), rate, 3600) > 0.01


def test_speech_stays_intelligible(speech):
    from pystoi import stoi

    audio, rate = speech
    scores = {}
    for name in SOUND:
        if name.startswith("noise:"):
            name += "@15"
        scores[name] = stoi(audio[0], get(name).hear(audio, rate, seed=2)[0], rate, extended=False)
    print(" ".join(f"{k} {v:.2f}" for k, v in scores.items()))  # the README's table
    for name, score in scores.items():
        floor = 0.5 if name in HARSH else 0.7
        assert score >= floor, f"{name}: STOI {score:.2f} < {floor}"
    # Speech buried in babble (a broken SNR) is not intelligible by the same measure.
    assert stoi(audio[0], Noise("babble", -15.0).hear(audio, rate, seed=2)[0], rate) < 0.5


def test_the_pitch_moves_by_the_stated_semitones_with_the_formants_kept(speech):
    import librosa

    audio, rate = speech
    audio16 = resample(audio, rate, 16000)[0]

    def f0(x: np.ndarray) -> np.ndarray:
        found, voiced, _ = librosa.pyin(x, fmin=80, fmax=600, sr=16000, frame_length=1024)
        return np.where(voiced, found, np.nan)

    def envelope(x: np.ndarray) -> np.ndarray:
        return librosa.feature.mfcc(y=x, sr=16000, n_mfcc=13)[1:13].mean(axis=1)

    base_f0, base_env = f0(audio16), envelope(audio16)
    for name, semitones in (("voice:pitch-up", 2.0), ("voice:pitch-down", -2.0)):
        out = resample(get(name).hear(audio, rate), rate, 16000)[0]
        both = ~np.isnan(base_f0) & ~np.isnan(moved := f0(out))
        shift = 12 * np.log2(np.median(moved[both] / base_f0[both]))
        assert shift == pytest.approx(semitones, abs=0.3), name
        # A plain resampling by the same interval moves the formants with the pitch.
        plain = resample(audio16[None], round(16000 * 2 ** (semitones / 12)), 16000)[0]
        kept = np.linalg.norm(envelope(out) - base_env)
        assert kept <= 0.5 * np.linalg.norm(envelope(plain) - base_env), name


def test_the_sham_is_an_aac_round_trip_and_nothing_else(speech):
    audio, rate = speech
    out = get("control:audio-sham").hear(audio, rate)
    snr = 10 * np.log10(np.sum(audio ** 2) / np.sum((out - audio) ** 2))
    assert snr >= 25, snr
    assert not np.array_equal(out, audio)  # it did go through the codec
    # In a recording the recording's own encoder is the round trip.
    assert np.array_equal(get("control:audio-sham").hear(audio, rate, encoded_after=True), audio)


def test_loudness_is_changed_by_the_stated_lu(speech):
    audio, rate = speech
    before = loudness(audio, rate)
    quiet = get("loudness:quiet").hear(audio, rate)
    assert loudness(quiet, rate) - before == pytest.approx(-12, abs=0.05)
    loud = get("loudness:loud").hear(audio, rate)
    assert loudness(loud, rate) - before == pytest.approx(6, abs=0.1)
    over = resample(loud, rate, 4 * rate)  # the true peak, as BS.1770 measures it
    assert 20 * np.log10(np.abs(over).max()) <= -1.0 + 0.1


# ------------------------------------------------------------------------- through the audit

@pytest.fixture(scope="module")
def ears_audit(sample_dir, tmp_path_factory):
    """(result, scores): the Ears rater audited on the speaking sample clips; scores[condition][trait]
    is {clip: score}."""
    rater = TorchRater(Ears(), EARS_TRAITS, EARS, name="ears")
    store = tmp_path_factory.mktemp("ears") / "results.sqlite"
    result = run_audit(rater, sample_dir, EARS_EDITS, unit="clip", retest=False, margin=0.02, store=store)
    return result, _scores(store, EARS_EDITS, EARS_TRAITS)


EARS_EDITS = ["loudness:quiet", "mic:phone", "room:hall", "noise:street", "voice:pitch-up", "control:audio-sham",
              "background:plain"]


def _scores(store, edits, traits) -> dict[str, dict[str, dict[str, float]]]:
    from auditkit.core.store import Store

    db = Store(store)
    try:
        return {c: {t: db.scores(c, t) for t in traits} for c in ["original", *edits]}
    finally:
        db.close()


def ratio(scores, condition: str, trait: str) -> np.ndarray:
    before, after = scores["original"][trait], scores[condition][trait]
    return np.array([after[c] / before[c] for c in sorted(before)])


def test_a_rater_hears_each_audio_edit_and_sees_none(ears_audit):
    result, scores = ears_audit
    assert not result.skipped and len(scores["original"]["loudness"]) == result.n_clips
    assert np.all(np.asarray(list(scores["original"]["loudness"].values())) > 0.01)
    assert np.allclose(ratio(scores, "loudness:quiet", "loudness"), 0.25, atol=0.03)
    phone = result.test("mic:phone", "treble")
    assert phone.mean_shift < 0 and phone.verdict == "shift"
    for name in EARS_EDITS[:-1]:
        for trait in ("corners", "mean"):  # the frames are untouched: exactly the original's scores
            assert scores[name][trait] == scores["original"][trait], (name, trait)
    for trait in EARS_TRAITS:
        assert result.test("control:audio-sham", trait).verdict == "invariant", trait
    # A picture edit leaves the sound exactly as it was.
    assert scores["background:plain"]["loudness"] == scores["original"]["loudness"]
    assert result.test("background:plain", "corners").mean_shift != 0


def test_a_rater_that_hears_nothing_is_refused_audio_edits(sample_dir, brightness_rater_path):
    with pytest.raises(ConfigError, match="^--perturb: room:office edit the sound, but rater .* hears none"):
        run_audit(str(brightness_rater_path), sample_dir, ["lighting:dim", "room:office"])


def test_the_vendor_hears_the_edited_sound(sample_dir, tmp_path):
    from test_vendor_video import VideoVendor, describe

    edits = ["loudness:quiet", "mic:phone", "control:audio-sham"]
    server = VideoVendor()
    try:
        clips = discover(sample_dir)[::4]
        result = run_audit(describe(tmp_path, server.url), clips, edits, unit="clip", retest=False,
                           store=tmp_path / "r.sqlite")
    finally:
        server.close()
    assert not result.skipped and len(server.log) == 4 * len(clips)
    scores = _scores(tmp_path / "r.sqlite", edits, ["conscientiousness", "extraversion"])
    # conscientiousness is the vendor's loudness (RMS of what it decoded), extraversion its corners.
    assert np.allclose(ratio(scores, "loudness:quiet", "conscientiousness"), 0.25, atol=0.03)
    assert np.allclose(ratio(scores, "control:audio-sham", "conscientiousness"), 1.0, atol=0.02)
    for name in edits:  # the picture went through the same decoder and encoder as the original's
        assert result.test(name, "extraversion").mean_shift == pytest.approx(0, abs=2e-3), name


def test_an_edited_recording_keeps_its_sound_aligned_and_its_length(sample_dir):
    from auditkit.core.recording import render
    from auditkit.media.recording import RecordingSpec
    from test_vendor_video import inspect

    source = discover(sample_dir)[0]
    original = inspect(render(source.path, None, RecordingSpec(), clip_id=source.id, seed=0, annotator=None))
    for name in ("control:audio-sham", "room:office", "noise:hvac"):
        edited = inspect(render(source.path, get(name), RecordingSpec(), clip_id=source.id, seed=0, annotator=None))
        a, b = original["sound"][0], edited["sound"][0]
        assert edited["frames"] == original["frames"] and edited["duration"] == original["duration"]
        assert abs(a.shape[1] - b.shape[1]) <= 1024  # one AAC frame
        n = min(a.shape[1], b.shape[1])
        assert lag_of(a[:, :n], b[:, :n]) == 0, name
        if name == "control:audio-sham":
            assert 10 * np.log10(np.sum(a[:, :n] ** 2) / np.sum((a[:, :n] - b[:, :n]) ** 2)) >= 25


def test_treble_reads_above_the_telephone_band():
    x = torch.zeros(1, 1, 16000)
    t = torch.arange(16000) / 16000
    low, high = torch.sin(2 * torch.pi * 440 * t), torch.sin(2 * torch.pi * (TREBLE_HZ + 600) * t)
    frames = torch.zeros(1, 4, 3, 64, 64)
    assert Ears()(frames, (low + high)[None, None])[0, 1] == pytest.approx(0.5, abs=0.01)
    assert Ears()(frames, x + low)[0, 1] < 0.01


def test_the_dashboard_plays_an_audio_edit_beside_the_original(sample_dir):
    from auditkit.dashboard.data import _playback
    from test_vendor_video import inspect

    source = discover(sample_dir)[0]
    original = _playback(str(source.path), "h-sound-test", "original", 0, source.id)
    hall = _playback(str(source.path), "h-sound-test", "room:hall", 0, source.id)
    assert isinstance(original, bytes) and isinstance(hall, bytes), (original, hall)
    a, b = inspect(original), inspect(hall)
    assert a["frames"] == b["frames"] and a["light"] == pytest.approx(b["light"], abs=1e-3)  # the same picture
    n = min(a["sound"][0].shape[1], b["sound"][0].shape[1])
    assert not np.allclose(a["sound"][0][:, :n], b["sound"][0][:, :n], atol=1e-2)  # another sound
