"""A vendor that takes recordings: every pair of a ``format = "video"`` audit reaches it as the MP4
a candidate would upload — H.264 at the clip's frame rate with all its frames, and the clip's
sound (AAC, copied bit for bit when the edit leaves it alone). The test vendor decodes uploads
with PyAV, as such services do, and refuses silent video."""

from __future__ import annotations

import email.parser
import io
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from auditkit import run_audit
from auditkit.media.audio import read_audio
from auditkit.media.clips import discover, read_video
from auditkit.media.video import write_video
from auditkit.raters import load_rater
from test_listening import _tone, _write

EDITS = ["lighting:dim", "background:plain", "glasses:thick"]
TRAITS = {"openness": "scores.light", "conscientiousness": "scores.loud", "extraversion": "scores.corner",
          "agreeableness": "scores.frames", "neuroticism": "scores.fixed"}


def inspect(data: bytes) -> dict[str, Any]:
    """What a vendor's decoder finds in an upload."""
    with av.open(io.BytesIO(data)) as container:
        info: dict[str, Any] = {"format": container.format.name}
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        info["video_codec"] = video.codec_context.name if video else None
        info["fps"] = float(video.average_rate) if video else None
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)] if video else []
        info["frames"] = len(frames)
        info["size"] = frames[0].shape[:2] if frames else None
        info["duration"] = float(video.duration * video.time_base) if video and video.duration else None
        info["audio_codec"] = audio.codec_context.name if audio else None
    with av.open(io.BytesIO(data)) as container:  # the picture was read to its end: read again
        info["audio_packets"] = [bytes(p) for p in container.demux(audio=0) if p.size] if audio else []
    info["light"] = float(np.mean([f.mean() for f in frames])) / 255 if frames else 0.0
    info["corner"] = float(np.mean([f[: f.shape[0] // 4, : f.shape[1] // 4].mean() for f in frames])) / 255
    info["sound"] = read_audio(io.BytesIO(data)) if audio else None
    return info


class VideoVendor:
    """Decodes each upload with PyAV; answers 422 to one without sound, else scores it."""

    def __init__(self) -> None:
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                kind = self.headers.get("Content-Type", "")
                if kind.startswith("multipart/form-data"):
                    msg = email.parser.BytesParser().parsebytes(f"Content-Type: {kind}\r\n\r\n".encode() + body)
                    (part,) = msg.get_payload()
                    body = part.get_payload(decode=True)
                info = inspect(body)
                with vendor.lock:
                    vendor.log.append(info)
                if info["audio_codec"] is None:
                    status, answer = 422, {"error": "the upload has no audio: we score voice and video together"}
                else:
                    sound = info["sound"][0]
                    status, answer = 200, {"scores": {"light": info["light"], "corner": info["corner"],
                                                      "loud": float(np.sqrt(np.mean(sound ** 2))),
                                                      "frames": info["frames"] / 100, "fixed": 0.5}}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/interview"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def vendor():
    server = VideoVendor()
    yield server
    server.close()


def describe(folder: Path, url: str, **keys: Any) -> str:
    lines = [f'url = "{url}"', 'format = "video"', "retries = 0", "timeout = 20"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    lines.append("[traits]")
    lines += [f'{t} = "{p}"' for t, p in TRAITS.items()]
    path = folder / "vendor.toml"
    path.write_text("\n".join(lines) + "\n")
    return f"http:{path}"


def _snr(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-noise ratio (dB) of ``test`` against ``reference`` after the best alignment."""
    from scipy.signal import correlate

    a, b = reference[0], test[0]
    n = min(len(a), len(b))
    lag = int(np.argmax(correlate(b[:n], a[:n], mode="full"))) - (n - 1)
    a, b = (a[: n - lag], b[lag:n]) if lag >= 0 else (a[-lag:n], b[: n + lag])
    return float(10 * np.log10(np.sum(a ** 2) / max(np.sum((a - b) ** 2), 1e-12)))


def test_every_pair_reaches_the_vendor_as_a_recording_with_its_sound(vendor, sample_dir, tmp_path):
    clips = discover(sample_dir)[::4]
    rater = describe(tmp_path, vendor.url, video_field="upload")
    result = run_audit(rater, clips, EDITS, unit="clip")
    assert not result.skipped and result.n_clips == len(clips)
    conditions = len(EDITS) + 2  # the original, each edit, and the retest
    assert len(vendor.log) == len(clips) * conditions
    originals = {}
    for source in clips:
        with av.open(str(source.path)) as container:
            originals[source.id] = [bytes(p) for p in container.demux(audio=0) if p.size]
    full = [r for r in vendor.log if r["frames"] == 30]
    assert len(full) == len(clips) * (conditions - 1)  # all but the retest hold every frame
    for request in vendor.log:
        assert request["format"].startswith("mov,mp4") and request["video_codec"] == "h264"
        assert request["fps"] == 15 and request["audio_codec"] == "aac"
    for request in full:
        assert abs(request["duration"] - 2.0) <= 1 / 15
        # The sound of a visual edit is the original stream, copied packet for packet.
        assert any(request["audio_packets"] == packets for packets in originals.values())
    # The retest is the same recording 0.2 s later: three frames fewer at 15 fps.
    assert sorted(r["frames"] for r in vendor.log if r["frames"] != 30) == [27] * len(clips)
    # The vendor heard the same sound in every condition: loudness is exactly unchanged.
    loud = result.select(trait="conscientiousness")
    assert all(t.mean_shift == 0 for t in loud if t.perturbation != "control:retest")
    assert result.test("lighting:dim", "openness").mean_shift < 0


def test_the_endpoint_file_caps_rate_length_and_size(vendor, sample_dir, tmp_path):
    source = discover(sample_dir)[0]
    rater = describe(tmp_path, vendor.url, fps=5, seconds=1.0, max_side=160)
    result = run_audit(rater, [source], ["lighting:dim"], unit="clip", retest=False)
    assert not result.skipped
    for request in vendor.log:
        assert request["frames"] == 5 and max(request["size"]) == 160
        assert request["duration"] == pytest.approx(1.0, abs=0.21)
        assert request["sound"][0].shape[1] == pytest.approx(request["sound"][1] * 1.0, rel=0.05)


def test_a_silent_clip_is_refused_by_the_vendor_and_listed(vendor, sample_dir, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    speaking = discover(sample_dir)[0]
    shutil.copy(speaking.path, folder / speaking.path.name)
    write_video(folder / "silent.mp4", read_video(speaking.path, num_frames=30).frames, 15)
    result = run_audit(describe(tmp_path, vendor.url), folder, ["lighting:dim"], unit="clip", retest=False)
    reasons = {(s.clip, s.perturbation): s.reason for s in result.skipped}
    assert set(reasons) == {("silent", "lighting:dim")}
    assert "422" in reasons["silent", "lighting:dim"] and "no audio" in reasons["silent", "lighting:dim"]


def test_sound_in_a_codec_mp4_cannot_carry_is_encoded_as_aac(vendor, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    path = _write(folder / "pcm.mov", seconds=2.0, fps=10, size=(65, 49), sound=_tone(48000, 2.0),
                  codec="pcm_s16le", picture=("mjpeg", "yuvj444p"))  # odd sides, as cameras crop
    result = run_audit(describe(tmp_path, vendor.url), folder, ["lighting:dim"], unit="clip", retest=False)
    assert not result.skipped
    original, _ = read_audio(path)
    for request in vendor.log:
        assert request["audio_codec"] == "aac" and request["frames"] == 20
        assert request["size"] == (50, 66)  # odd sides padded to even for H.264
        assert _snr(original, request["sound"][0]) >= 15


def test_a_video_vendor_is_not_called_with_sampled_frames(vendor, tmp_path):
    import torch

    from auditkit.contract.errors import RaterError

    rater = load_rater(describe(tmp_path, vendor.url))
    with pytest.raises(RaterError, match="format 'video' sends recordings, not sampled frames"):
        rater(torch.zeros(1, 2, 3, 32, 32))


def test_a_clip_stored_sideways_is_read_upright_everywhere(tmp_path):
    # A phone's portrait clip: stored landscape with a display rotation. The rater's frames and
    # the vendor's recording both show it as a player does.
    from auditkit.media.recording import iter_frames

    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(90)
        for _ in range(10):
            image = np.zeros((48, 64, 3), np.uint8)
            image[:10, :20] = 255  # a mark in the stored picture's top-left corner
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)

    def mark(frame: np.ndarray) -> tuple[float, float]:
        ys, xs = np.nonzero(frame[..., 0] > 128)
        return float(ys.mean()), float(xs.mean())

    sampled = read_video(path, num_frames=2).frames[0]
    recorded = next(iter(iter_frames(path)))[1]
    assert sampled.shape == recorded.shape == (64, 48, 3)  # upright: taller than wide
    assert mark(sampled) == pytest.approx(mark(recorded), abs=1.5)
    assert mark(sampled)[0] > 48  # turned a quarter counter-clockwise: the mark is at the bottom left


def test_an_edit_that_fails_on_a_recording_is_that_pair_s_reason(sample_dir):
    # As with sampled frames (apply_edit): one clip an edit chokes on is a skipped pair, not a stop.
    from types import SimpleNamespace

    from auditkit.core.work import _recording
    from auditkit.media.recording import RecordingSpec
    from auditkit.perturbations import Perturbation

    class Breaks(Perturbation):
        name = "test:breaks"

        def transform(self, frames, params, annotations):
            raise ValueError("no pixels for you")

    clip = read_video(discover(sample_dir)[0].path, num_frames=4)
    job = SimpleNamespace(plan=SimpleNamespace(settings=SimpleNamespace(seed=0)), annotator=None)
    reason = _recording(clip, Breaks(), RecordingSpec(), job)
    assert reason == "the recording of test:breaks could not be made: ValueError: no pixels for you"
    assert isinstance(_recording(clip, None, RecordingSpec(), job), bytes)
