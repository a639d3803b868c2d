"""Raters that listen: the clip's sound decoded beside its frames, over one window, handed to
every rater kind as ``rater(frames, audio)``; visual edits leave the sound exactly as it was."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from auditkit import run_audit
from auditkit.contract.errors import RaterError
from auditkit.contract.rater import AudioSpec, InputSpec
from auditkit.core.store import Store
from auditkit.media.audio import conform, read_audio
from auditkit.media.clips import Clip, Timing, discover, read_video
from auditkit.media.video import write_video
from auditkit.raters import load_rater, save_torchscript
from auditkit.raters.torchscript import save_exported
from conftest import LISTENER_TRAITS, LISTENING, BrightnessRater, Listener, save_listener_onnx

# Every edit of the picture, one or more of each family: none may touch what the rater hears.
VISUAL = ["lighting:dim", "lighting:warm", "background:plain", "background:office", "background:sham",
          "background:blurred", "bookshelf:insert", "glasses:thick", "headwear:headscarf", "quality:jpeg",
          "quality:blur", "region:face", "region:background"]
BACKGROUND = [e for e in VISUAL if e.startswith("background:") and e != "background:sham"]


# ------------------------------------------------------------------------------ the contract

def test_what_a_rater_hears_is_checked_in_one_line():
    spec = InputSpec.from_mapping({"frames": 4, "audio": {"sample_rate": 22050, "channels": 2, "seconds": 3}},
                                  where="r.pt")
    assert spec.audio == AudioSpec(22050, 2, 3.0) and spec.listens and spec.window == 3.0
    assert spec.to_dict()["audio"] == {"sample_rate": 22050, "channels": 2, "seconds": 3.0}
    assert InputSpec.from_mapping(spec.to_dict(), where="again") == spec
    # A rater that only watches writes what it always wrote.
    assert "audio" not in InputSpec(frames=4).to_dict() and not InputSpec().listens
    for bad, said in (({"sample_rate": 8}, "sample_rate must be an integer in \\[1000, 192000\\]"),
                      ({"sample_rate": 16000, "channels": 0}, "channels must be an integer in \\[1, 8\\]"),
                      ({"sample_rate": 16000, "seconds": -1}, "seconds must be a number in \\(0, 3600\\] or null"),
                      ({"rate": 16000}, "unknown key\\(s\\) \\['rate'\\]"),
                      ("16k", "must be an object with sample_rate, channels, seconds")):
        with pytest.raises(RaterError, match=f"^r.pt: bad input metadata .*{said}"):
            InputSpec.from_mapping({"audio": bad}, where="r.pt")


# ------------------------------------------------------------------------------------ sound

def _tone(rate: int, seconds: float, hz: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return np.repeat((0.5 * np.sin(2 * np.pi * hz * t))[None], channels, axis=0).astype(np.float32)


def _write(path: Path, *, seconds: float = 2.0, fps: int = 10, size: tuple[int, int] = (64, 48),
           sound: np.ndarray | None = None, rate: int = 48000, start: float = 0.0, codec: str = "aac",
           picture: tuple[str, str] = ("libx264", "yuv420p")) -> Path:
    """A test video written with PyAV: grey frames that brighten, and ``sound`` starting ``start``
    seconds after the first frame, in ``codec``; the picture in ``picture`` (codec, pixel format)."""
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        video = out.add_stream(picture[0], rate=fps)
        video.width, video.height, video.pix_fmt = w, h, picture[1]
        audio = None
        if sound is not None:
            audio = out.add_stream(codec, rate=rate, layout="mono" if sound.shape[0] == 1 else "stereo")
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 40 + 4 * i, np.uint8), format="rgb24")
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if audio is not None:
            fmt = audio.codec_context.codec.audio_formats[0].name
            step = audio.codec_context.frame_size or 1024
            for i in range(0, sound.shape[1], step):
                chunk = sound[:, i:i + step]
                if fmt.startswith("s16"):
                    chunk = (chunk * 32767).astype(np.int16)
                if not fmt.endswith("p"):
                    chunk = chunk.T.reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=fmt,
                                                   layout="mono" if sound.shape[0] == 1 else "stereo")
                frame.sample_rate, frame.time_base = rate, Fraction(1, rate)
                frame.pts = round(start * rate) + i
                for packet in audio.encode(frame):
                    out.mux(packet)
            for packet in audio.encode(None):
                out.mux(packet)
    return path


def _energy(audio: np.ndarray, rate: int, a: float, b: float) -> float:
    return float(np.sqrt(np.mean(audio[:, round(a * rate):round(b * rate)] ** 2)))


def test_sound_that_starts_late_and_ends_early_is_silence_around_it(tmp_path):
    path = _write(tmp_path / "late.mp4", sound=_tone(48000, 1.0), start=0.5)
    audio, rate = read_audio(path)
    assert rate == 48000 and audio.shape == (1, 96000)  # the video's two seconds
    assert _energy(audio, rate, 0.0, 0.45) < 1e-3 and _energy(audio, rate, 1.56, 2.0) < 1e-3
    assert _energy(audio, rate, 0.6, 1.4) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)
    # A window asks for only its part, on the same timeline.
    part, _ = read_audio(path, 1.0, 0.4)
    assert part.shape == (1, 19200) and _energy(part, rate, 0.0, 0.4) == pytest.approx(0.354, rel=0.05)


@pytest.mark.parametrize("codec,ext", [("flac", ".mkv"), ("pcm_s16le", ".mov"), ("libopus", ".mkv")])
def test_source_audio_in_another_codec_is_heard(tmp_path, codec, ext):
    path = _write(tmp_path / f"{codec}{ext}", sound=_tone(48000, 2.0, channels=2), codec=codec)
    clip = read_video(path, num_frames=4, audio=AudioSpec(16000, 1, None))
    assert clip.sample_rate == 16000 and clip.audio.shape == (1, 32000)
    assert _energy(clip.audio, 16000, 0.2, 1.8) == pytest.approx(0.354, rel=0.05)


def test_sound_is_conformed_to_what_the_rater_hears():
    stereo = np.stack([_tone(48000, 1.0, 440)[0], _tone(48000, 1.0, 440)[0] * 0.5])
    mono = conform(stereo, 48000, AudioSpec(16000, 1, None), 1.5)
    assert mono.shape == (1, 24000) and mono.dtype == np.float32
    assert np.all(mono[:, 16100:] == 0)  # past the sound's end: zeros
    peak = np.abs(np.fft.rfft(mono[0, :16000])).argmax()  # 1 s at 16 kHz: bins are 1 Hz
    assert peak == 440
    assert _energy(mono, 16000, 0.1, 0.9) == pytest.approx(0.75 * 0.5 / np.sqrt(2), rel=0.02)
    both = conform(_tone(16000, 1.0), 16000, AudioSpec(16000, 2, 0.5), 0.5)
    assert both.shape == (2, 8000) and np.array_equal(both[0], both[1])


def test_frames_and_sound_come_from_one_window_centred_in_the_clip(tmp_path):
    path = _write(tmp_path / "w.mp4", sound=_tone(48000, 2.0), seconds=4.0)  # tone over the first 2 s
    whole = read_video(path, num_frames=40, max_side=64)
    middle = read_video(path, num_frames=4, max_side=64, timing=Timing(2.0), audio=AudioSpec(8000, 1, 2.0))
    assert middle.window == pytest.approx((1.0, 2.0)) and middle.audio.shape == (1, 16000)
    # Frames are numbered by brightness (40 + 4 i): the window holds frames 10 to 29.
    index = (middle.frames[:, 0, 0, 0].astype(int) - 40) / 4
    assert index.min() >= 9.5 and index.max() <= 29.5
    assert middle.content_hash != whole.content_hash
    # The tone ends 1 s into the window.
    assert _energy(middle.audio, 8000, 0.1, 0.9) > 0.3 and _energy(middle.audio, 8000, 1.1, 2.0) < 1e-3


def test_the_sample_clips_speak(sample_dir):
    for source in discover(sample_dir):
        audio, rate = read_audio(source.path)
        assert audio.shape[1] == 2 * rate, source.id
        # Speech, not a tone or silence: its loudness comes and goes, and its spectrum moves.
        hop = rate // 50
        frames = audio[0, : audio.shape[1] // hop * hop].reshape(-1, hop)
        rms = np.sqrt((frames ** 2).mean(axis=1))
        voiced = rms > 0.02
        assert 0.4 < voiced.mean() < 0.98, source.id
        spectra = np.abs(np.fft.rfft(frames[voiced], axis=1))
        centroid = (spectra * np.fft.rfftfreq(hop, 1 / rate)).sum(axis=1) / spectra.sum(axis=1)
        assert rms[voiced].std() / rms[voiced].mean() > 0.3 and centroid.std() > 150, source.id


# ------------------------------------------------------------------------- raters that listen

@pytest.fixture(scope="module")
def listeners(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("listeners")
    return {"torchscript": str(save_torchscript(Listener(), folder / "l.pt", trait_names=LISTENER_TRAITS,
                                                 input=LISTENING)),
            "export": str(save_exported(Listener(), folder / "l.pt2", trait_names=LISTENER_TRAITS,
                                         input=LISTENING)),
            "onnx": str(save_listener_onnx(folder / "l.onnx"))}


@pytest.mark.parametrize("kind", ["torchscript", "export", "onnx"])
def test_a_rater_that_listens_hears_the_sound_and_no_visual_edit_changes_it(kind, listeners, sample_dir,
                                                                             tmp_path):
    rater = load_rater(listeners[kind])
    assert rater.input == LISTENING and rater.trait_names == LISTENER_TRAITS
    clips = discover(sample_dir)[::3]
    edits = VISUAL if kind == "torchscript" else ["lighting:dim", "background:plain", "glasses:thick"]
    result = run_audit(listeners[kind], clips, edits, unit="clip", store=tmp_path / "s.sqlite")
    assert not result.skipped
    assert result.rater["input"]["audio"] == {"sample_rate": 16000, "channels": 1, "seconds": 2.0}
    with Store(tmp_path / "s.sqlite") as store:
        loud = store.scores("original", "loudness")
        corners = store.scores("original", "corners")
        assert len(loud) == len(clips) and min(loud.values()) > 0.01
        for edit in [*edits, "control:retest"]:
            assert store.scores(edit, "loudness") == loud, edit  # exactly: the same samples
        for edit in (e for e in edits if e in BACKGROUND):
            moved = store.scores(edit, "corners")
            assert all(moved[c] != corners[c] for c in corners), edit


def test_a_clip_without_sound_is_skipped_only_for_a_rater_that_listens(listeners, sample_dir, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    speaking = discover(sample_dir)[:2]
    for source in speaking:
        shutil.copy(source.path, folder / source.path.name)
    silent = read_video(speaking[0].path, num_frames=30)
    write_video(folder / "silent.mp4", silent.frames, 15)
    result = run_audit(listeners["torchscript"], folder, ["lighting:dim"], unit="clip", retest=False)
    assert [(s.clip, s.perturbation, s.reason) for s in result.skipped] == [
        ("silent", "lighting:dim", "no audio track")]
    assert result.n_clips == 2
    watcher = run_audit(BrightnessRater(), folder, ["lighting:dim"], unit="clip", retest=False)
    assert not watcher.skipped and watcher.n_clips == 3


def test_clips_in_memory_carry_their_sound(listeners, sample_dir):
    sources = discover(sample_dir)[:2]
    on_disk = run_audit(listeners["export"], sources, ["lighting:dim"], unit="clip", retest=False)
    clips = []
    for source in sources:
        clip = read_video(source.path, num_frames=30)
        clips.append(Clip.from_frames(source.id, clip.frames, clip.fps, audio=read_audio(source.path)))
    in_memory = run_audit(listeners["export"], clips, ["lighting:dim"], unit="clip", retest=False)
    for a, b in zip(on_disk.tests, in_memory.tests):
        if a.trait == "loudness":
            assert b.mean_shift == a.mean_shift == 0
    assert not in_memory.skipped


class _WholeClip(nn.Module):
    """Hears the whole clip, whatever its length: the mean of its sound's absolute value."""

    def forward(self, frames: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return torch.stack([audio.abs().mean(dim=(1, 2)), frames.mean(dim=(1, 2, 3, 4))], 1)


def test_a_rater_that_hears_the_whole_clip_gets_each_clip_in_its_own_call(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for seconds in (1.0, 2.0, 3.0):
        _write(folder / f"c{seconds:g}.mp4", seconds=seconds, sound=_tone(48000, seconds), rate=48000)
    spec = InputSpec(size=(32, 32), frames=3, audio={"sample_rate": 8000, "channels": 1, "seconds": None})
    path = save_exported(_WholeClip(), tmp_path / "whole.pt2", trait_names=("sound", "light"), input=spec)
    calls = []
    rater = load_rater(str(path))
    inner = rater.module

    class Spy:
        def __call__(self, frames, audio):
            calls.append(tuple(audio.shape))
            return inner(frames, audio)

        def to(self, device):
            return self

    rater.module = Spy()
    result = run_audit(rater, folder, ["lighting:dim", "background:plain"], unit="clip", retest=False,
                       batch_size=3)
    assert not result.skipped
    assert sorted(calls) == [(3, 1, 8000), (3, 1, 16000), (3, 1, 24000)]


def test_a_listening_file_that_does_not_say_what_it_hears_is_refused(tmp_path):
    import onnx

    path = save_listener_onnx(tmp_path / "l.onnx")
    model = onnx.load(str(path))
    model.graph.input[1].name = "sound"
    for node in model.graph.node:
        node.input[:] = ["sound" if i == "audio" else i for i in node.input]
    onnx.save(model, str(tmp_path / "misnamed.onnx"))
    with pytest.raises(RaterError, match="two inputs names them 'frames' .* and 'audio' .*; this one has "
                                         "'frames', 'sound'"):
        load_rater(str(tmp_path / "misnamed.onnx"))
    model = onnx.load(str(path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = "auditkit", json.dumps({"frames": 4})
    onnx.save(model, str(tmp_path / "mute.onnx"))
    with pytest.raises(RaterError, match="has an 'audio' input but its metadata_props 'auditkit' states no audio"):
        load_rater(str(tmp_path / "mute.onnx"))
    watcher = save_exported(BrightnessRater(), tmp_path / "w.pt2", input=InputSpec(size=(32, 32), frames=2))
    assert not load_rater(str(watcher)).input.listens
    # The archive's metadata says it listens; its program takes frames only.
    import zipfile

    with zipfile.ZipFile(watcher) as src, zipfile.ZipFile(tmp_path / "liar.pt2", "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("auditkit.json"):
                data = json.dumps({"size": [32, 32], "frames": 2, "audio": {"sample_rate": 16000}}).encode()
            dst.writestr(item, data)
    with pytest.raises(RaterError, match="the program takes 1 input\\(s\\) but its auditkit.json declares audio"):
        load_rater(str(tmp_path / "liar.pt2"))


def test_explain_runs_for_a_rater_that_listens(listeners, sample_dir):
    from auditkit.core.explain import ExplainSettings, explain
    from auditkit.raters import TorchRater

    clips = discover(sample_dir)[:1]
    for method in ("ablation", "integrated_gradients"):
        rater = TorchRater(Listener(), LISTENER_TRAITS, LISTENING, name="listener")
        found = explain(rater, clips, ExplainSettings(method=method, clips=1, frames=1, steps=4))
        assert not found.skipped and len(found.clips) == 1, method


# ------------------------------------------------------------------ frames by rate, not by count

def test_frames_by_rate_are_checked_and_counted():
    spec = InputSpec(size=(32, 32), fps=5, seconds=2)
    assert spec.frames == 10 and spec.window == 2.0 and spec.to_dict()["fps"] == 5.0
    assert InputSpec.from_mapping(spec.to_dict(), where="r.pt2") == spec
    listening = InputSpec(fps=10, audio={"sample_rate": 16000, "seconds": 1.5})
    assert listening.frames == 15 and listening.window == 1.5
    for bad, said in (({"fps": 5}, "fps needs a window"),
                      ({"fps": 0, "seconds": 1}, "fps must be a number in \\(0, 240\\]"),
                      ({"seconds": 2, "audio": {"sample_rate": 16000, "seconds": 3}}, "must be the same window"),
                      ({"fps": 5, "seconds": 2, "frames": 8}, "frames 8 is not seconds x fps = 10")):
        with pytest.raises(RaterError, match=f"^r.pt2: bad input metadata .*{said}"):
            InputSpec.from_mapping(bad, where="r.pt2")


def test_frames_by_rate_are_every_frame_at_that_rate_inside_the_window(tmp_path):
    path = _write(tmp_path / "numbered.mp4", seconds=2.0, fps=25)  # frame i has grey level 40 + 4 i
    def numbers(frames: np.ndarray) -> list[int]:
        return np.round((frames.reshape(len(frames), -1).mean(axis=1) - 40) / 4).astype(int).tolist()

    # A 1.2 s window centred in 2 s starts at 0.4 s (frame 10); at 5 fps, every fifth frame.
    clip = read_video(path, num_frames=6, timing=Timing(1.2, fps=5), max_side=64)
    assert numbers(clip.frames) == [10, 15, 20, 25, 30, 35] and clip.window == pytest.approx((0.4, 1.2))
    later = read_video(path, num_frames=6, timing=Timing(1.2, fps=5, shift=0.2), max_side=64)
    assert numbers(later.frames) == [15, 20, 25, 30, 35, 40] and later.content_hash != clip.content_hash


class _Motion(nn.Module):
    """Watches motion: the first and last frames' brightness, and their difference."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, last = x[:, 0].mean(dim=(1, 2, 3)), x[:, -1].mean(dim=(1, 2, 3))
        return torch.stack([first, last, last - first], 1)


def test_a_rater_that_watches_motion_is_retested_a_fraction_of_a_second_later(tmp_path, sample_dir):
    folder = tmp_path / "clips"
    folder.mkdir()
    for k in range(3):
        _write(folder / f"n{k}.mp4", seconds=2.0, fps=25, size=(64 + 16 * k, 48))
    spec = InputSpec(size=(32, 32), fps=5, seconds=1.0)
    path = save_exported(_Motion(), tmp_path / "motion.pt2", trait_names=("first", "last", "change"), input=spec)
    result = run_audit(str(path), folder, ["lighting:dim"], unit="clip")
    assert not result.skipped
    # The retest's window starts 0.2 s (five frames, 20 grey levels) later: its first frame too.
    assert result.test("control:retest", "first").mean_shift == pytest.approx(20 / 255, abs=2 / 255)
    assert result.test("control:retest", "change").mean_shift == pytest.approx(0, abs=2 / 255)
    assert not run_audit(str(path), discover(sample_dir)[:2], ["glasses:thick"], unit="clip").skipped
