from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from auditkit.media.clips import Clip, decode_sampled, discover, load_clips, read_video, sample_indices
from auditkit.contract.errors import ClipError, ConfigError
from auditkit.media.video import write_video


def _ramp_video(path: Path, n: int = 20, size=(96, 64)) -> Path:
    """Frame i is a flat grey of level 10 * i, so the decoded level tells which frame came back."""
    w, h = size
    frames = np.stack([np.full((h, w, 3), 10 * i, np.uint8) for i in range(n)])
    write_video(path, frames, fps=10)
    return path


@pytest.mark.parametrize("ext", [".mp4", ".avi", ".mov", ".webm"])
def test_read_video_formats_and_uniform_sampling(tmp_path, ext):
    clip = read_video(_ramp_video(tmp_path / f"ramp{ext}"), num_frames=5)
    assert clip.frames.shape == (5, 64, 96, 3) and clip.frames.dtype == np.uint8
    assert clip.source_frames == 20
    assert clip.id == "ramp" and clip.fps == pytest.approx(10, abs=0.5)
    levels = clip.frames.reshape(5, -1).mean(axis=1)
    expected = 10 * sample_indices(20, 5)  # frames 0, 5, 10, 14, 19
    np.testing.assert_allclose(levels, expected, atol=6)  # lossy codecs move levels a little


def test_short_clip_repeats_frames_and_large_frames_are_capped(tmp_path):
    clip = read_video(_ramp_video(tmp_path / "short.avi", n=3, size=(800, 400)), num_frames=6, max_side=200)
    assert clip.frames.shape == (6, 100, 200, 3)
    assert sorted(set(sample_indices(3, 6).tolist())) == [0, 1, 2]


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"),
    (b"this is not a video at all" * 50, "cannot be opened"),
])
def test_unreadable_files_raise_clip_error_with_reason(tmp_path, content, reason):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(ClipError, match=reason) as info:
        read_video(path)
    assert info.value.path == path


def test_wrong_extension_and_missing_file(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ClipError, match="not a video file"):
        read_video(tmp_path / "notes.txt")
    with pytest.raises(ClipError, match="no such file"):
        read_video(tmp_path / "missing.mp4")


def test_discover_errors_name_the_folder(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        discover(tmp_path / "nope")
    with pytest.raises(ConfigError, match="no video files found"):
        discover(tmp_path)
    _ramp_video(tmp_path / "a.mp4")
    _ramp_video(tmp_path / "a.avi")
    with pytest.raises(ConfigError, match="share the clip id 'a'"):
        discover(tmp_path)


def test_metadata_csv_rows_attach_and_bad_rows_are_refused(tmp_path):
    _ramp_video(tmp_path / "one.mp4")
    _ramp_video(tmp_path / "two.mp4")
    (tmp_path / "metadata.csv").write_text("clip_id,subject_id,group\none,s1,a\ntwo.mp4,s2,b\n")
    sources = discover(tmp_path)
    assert [(s.id, dict(s.metadata)) for s in sources] == [
        ("one", {"subject_id": "s1", "group": "a"}), ("two", {"subject_id": "s2", "group": "b"})]
    assert load_clips(tmp_path, num_frames=2)[1].metadata["group"] == "b"

    (tmp_path / "metadata.csv").write_text("clip_id,subject_id\nthree,s3\n")
    with pytest.raises(ConfigError, match=r"metadata.csv, line 2: clip_id 'three' matches no video"):
        discover(tmp_path)
    (tmp_path / "metadata.csv").write_text("clip,subject_id\none,s1\n")
    with pytest.raises(ConfigError, match="needs a 'clip_id' column"):
        discover(tmp_path)


def test_clip_validates_frames():
    with pytest.raises(ValueError, match="uint8"):
        Clip.from_frames("x", np.zeros((2, 8, 8, 3), np.float32))
    clip = Clip.from_frames("x", np.zeros((2, 8, 8, 3), np.uint8))
    assert clip.num_frames == 2 and clip.size == (8, 8) and len(clip.content_hash) == 64


def test_sample_set_is_real_video_of_real_faces_with_motion(sample_dir):
    import mediapipe as mp

    sources = discover(sample_dir)
    assert len(sources) >= 12
    assert all(s.path.suffix == ".mp4" for s in sources)
    assert {s.metadata["subject_id"] for s in sources} == {"hopper", "collins"}
    sizes = set()
    with mp.solutions.face_detection.FaceDetection(model_selection=1) as detector:
        for source in sources:
            clip = source.read(num_frames=6)
            sizes.add(clip.size)
            assert clip.source_frames >= 24
            # Mild head motion: frames differ, but not wildly.
            diff = np.abs(clip.frames[0].astype(int) - clip.frames[3].astype(int)).mean()
            assert 0.3 < diff < 40, (source.id, diff)
            assert detector.process(clip.frames[2]).detections, f"no face in {source.id}"
    assert len(sizes) >= 3  # varied framing


def test_tiny_frames_and_excel_bom_metadata(tmp_path):
    tiny = tmp_path / "tiny.avi"
    write_video(tiny, np.full((5, 8, 8, 3), 100, np.uint8))
    with pytest.raises(ClipError, match="frames are 8x8 pixels; at least 32"):
        read_video(tiny)
    tiny.unlink()
    _ramp_video(tmp_path / "one.mp4")
    (tmp_path / "metadata.csv").write_bytes("clip_id,group\none,a\n".encode("utf-8-sig"))
    assert dict(discover(tmp_path)[0].metadata) == {"group": "a"}


# ------------------------------------------------------------------ decoding what is sampled

def _numbered_frames(n: int, size=(160, 120)) -> np.ndarray:
    """Textured frames, each different (the texture slides), with the index drawn in binary."""
    w, h = size
    base = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    frames = np.stack([np.roll(base, 3 * i, axis=1) for i in range(n)])
    frames[:, :16] = 0
    for b in range(min(10, w // 16)):
        frames[(np.arange(n) >> b) & 1 == 1, :16, 16 * b:16 * (b + 1)] = 255
    return frames


def _sequential(path: Path) -> list[np.ndarray]:
    """The reference: every frame, grabbed and retrieved in order, as RGB."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    out = []
    try:
        while cap.grab():
            out.append(cv2.cvtColor(cap.retrieve()[1], cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    return out


def _assert_same_as_sequential(path: Path, num_frames: int, offset: float = 0.0):
    reference = _sequential(path)
    sampled = decode_sampled(path, num_frames, max_side=4096, offset=offset)
    expected = sample_indices(len(reference), num_frames, offset)
    assert sampled.total == len(reference)
    assert sampled.indices.tolist() == expected.tolist()
    for i in expected.tolist():
        assert np.array_equal(sampled.frames[i], reference[i]), f"frame {i} differs ({sampled.report})"
    return sampled.report


def _pyav_video(path: Path, codec: str, stamps: list[int], *, rate: int = 30, b_frames: int = 0,
                options: dict | None = None) -> Path:
    """A video written by PyAV with the given presentation timestamps (in 1/30000 s)."""
    import fractions

    import av

    frames = _numbered_frames(len(stamps))
    base = fractions.Fraction(1, 30000)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.time_base = base
        if b_frames:
            stream.codec_context.max_b_frames = b_frames
        for frame, stamp in zip(frames, stamps):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts, picture.time_base = stamp, base
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("ext", [".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm"])
@pytest.mark.parametrize("num_frames,offset", [(4, 0.0), (16, 0.0), (5, 0.5), (1, 0.0), (7, 0.9)])
def test_sampled_frames_are_those_of_a_sequential_read_in_every_container_we_write(tmp_path, ext, num_frames, offset):
    path = tmp_path / f"numbered{ext}"
    write_video(path, _numbered_frames(150), fps=30)
    report = _assert_same_as_sequential(path, num_frames, offset)
    assert report.mode == "timeline", report.reason
    if num_frames in (4, 5):  # samples about 37 frames apart: most found by seeking, not by reading on
        assert report.seeks >= 3


@pytest.mark.parametrize("codec,b_frames,ext", [("libx264", 3, ".mp4"), ("libx264", 3, ".mkv"),
                                                ("mpeg4", 2, ".mp4"), ("mpeg4", 2, ".mkv")])
def test_b_frames_are_found_in_presentation_order(tmp_path, codec, b_frames, ext):
    import av

    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec} encoder")
    options = {"g": "30", "bf": str(b_frames)} if codec == "libx264" else {"g": "30"}
    path = _pyav_video(tmp_path / f"bframes{ext}", codec, [1000 * i for i in range(200)],
                       b_frames=b_frames, options=options)
    for num_frames, offset in ((4, 0.0), (6, 0.5), (16, 0.0)):
        assert _assert_same_as_sequential(path, num_frames, offset).mode == "timeline"


def test_variable_frame_rate_is_found_by_time_where_opencv_frame_seek_is_not_exact(tmp_path):
    import cv2

    # A stall (frame 20 shown for ten intervals), then a burst at twice the rate that catches
    # up: the count and the duration agree with 30 fps, so nothing but the frames' own times
    # shows that frame k is not at k / 30 s.
    stamps, t = [], 0
    for i in range(300):
        stamps.append(t)
        t += 10000 if i == 20 else (500 if 150 <= i < 168 else 1000)
    path = _pyav_video(tmp_path / "vfr.mp4", "mpeg4", stamps, options={"g": "12"})
    reference = _sequential(path)
    cap = cv2.VideoCapture(str(path))
    landed_elsewhere = 0
    for i in (60, 100, 140):
        cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        cap.grab()
        landed_elsewhere += not np.array_equal(cv2.cvtColor(cap.retrieve()[1], cv2.COLOR_BGR2RGB), reference[i])
    cap.release()
    assert landed_elsewhere == 3  # what seeking by frame number alone would have sampled
    for num_frames, offset in ((6, 0.0), (9, 0.3), (16, 0.5)):
        assert _assert_same_as_sequential(path, num_frames, offset).mode == "timeline"


def _lying_avi(source: Path, dest: Path, extra: int) -> Path:
    """The same AVI with the frame count in its main header (avih dwTotalFrames) and stream
    header (strh dwLength) changed by ``extra``: packets and index untouched."""
    import struct

    data = bytearray(source.read_bytes())
    for tag, field_at in ((b"avih", 16), (b"strh", 32)):
        at = data.index(tag) + 8 + field_at
        struct.pack_into("<I", data, at, struct.unpack_from("<I", data, at)[0] + extra)
    dest.write_bytes(bytes(data))
    return dest


@pytest.mark.parametrize("extra", [-40, 25])
def test_a_header_that_lies_about_the_frame_count_is_caught_and_the_frames_are_counted(tmp_path, extra):
    import cv2

    honest = tmp_path / "honest.avi"
    write_video(honest, _numbered_frames(100), fps=30)
    lying = _lying_avi(honest, tmp_path / "lying.avi", extra)
    cap = cv2.VideoCapture(str(lying))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 100 + extra  # OpenCV believes the header
    cap.release()
    assert _assert_same_as_sequential(honest, 4).mode == "timeline"
    report = _assert_same_as_sequential(lying, 4)
    assert report.mode == "count" and f"states {100 + extra} frames but holds 100" in report.reason
    assert read_video(lying, num_frames=4).source_frames == 100


def test_decoding_work_follows_the_frames_sampled_not_the_duration(tmp_path):
    reports = {}
    for seconds in (10, 20):
        path = tmp_path / f"long{seconds}.mp4"
        write_video(path, _numbered_frames(30 * seconds, size=(96, 64)), fps=30)
        reports[seconds] = decode_sampled(path, 8).report
    short, long_ = reports[10], reports[20]
    assert short.mode == long_.mode == "timeline"
    assert (short.total, long_.total) == (300, 600)
    # One grab per sampled frame plus the one that finds nothing after the last frame, a seek per
    # sample after the first, whatever the duration (a sequential read grabs every frame twice).
    # Each seek also decodes inside OpenCV, from the keyframe at or before 16 frames earlier:
    # at most 16 frames plus one keyframe interval (12 frames as OpenCV writes mp4v).
    assert short.grabs == long_.grabs == 9
    assert short.seeks == long_.seeks == 7
    # A short clip is read once, in order, not counted first and read again.
    path = tmp_path / "short.mp4"
    write_video(path, _numbered_frames(30, size=(96, 64)), fps=15)
    report = decode_sampled(path, 16).report
    assert report.mode == "timeline" and report.grabs == 31 and report.seeks == 0


def test_offset_shifts_every_position_by_a_share_of_the_interval_and_clamps_at_the_end(tmp_path):
    assert sample_indices(101, 5).tolist() == [0, 25, 50, 75, 100]
    assert sample_indices(101, 5, 0.5).tolist() == [13, 38, 63, 88, 100]  # halves round up, away from the frame before
    assert sample_indices(101, 5, 0.99).tolist() == [25, 50, 75, 100, 100]
    assert sample_indices(11, 1, 0.5).tolist() == [5]  # one position: the interval is the clip
    assert sample_indices(3, 6, 0.5).max() == 2
    for bad in (-0.1, 1.0, float("nan"), "0.5"):
        with pytest.raises(ValueError, match="offset must be a number in"):
            sample_indices(10, 4, bad)
    path = tmp_path / "numbered.mp4"
    write_video(path, _numbered_frames(90), fps=30)
    _assert_same_as_sequential(path, 8, 0.5)
    plain, shifted = read_video(path, num_frames=8), read_video(path, num_frames=8, offset=0.5)
    assert shifted.source_frames == plain.source_frames == 90
    assert not np.array_equal(plain.frames[0], shifted.frames[0])
    assert np.array_equal(plain.frames[-1], shifted.frames[-1])  # both end on the last frame
    # The annotation cache is keyed by content hash and frame shape: shifted frames must not
    # find the unshifted frames' annotations.
    assert shifted.content_hash != plain.content_hash
    with pytest.raises(ValueError, match="offset must be a number in"):
        read_video(path, offset=1.5)


@pytest.mark.parametrize("workers", [1, 2])
def test_long_sample_clips_are_the_twelve_people_at_the_asked_length_written_once(tmp_path, workers):
    from auditkit.media.samples import long_sample_clips

    written = []
    folder = long_sample_clips(seconds=2, size=(96, 64), fps=10, dest=tmp_path / "long", workers=workers,
                               progress=lambda done, total, clip_id: written.append((done, total)))
    assert written[-1] == (12, 12)
    sources = discover(folder)
    assert len(sources) == 12 and {s.metadata["subject_id"] for s in sources} == {"hopper", "collins"}
    clip = sources[0].read(num_frames=4)
    assert clip.source_frames == 20 and clip.size == (64, 96) and clip.fps == pytest.approx(10)
    stamp = folder.stat().st_mtime_ns
    assert long_sample_clips(seconds=2, size=(96, 64), fps=10, dest=folder) == folder
    assert folder.stat().st_mtime_ns == stamp and len(written) == 12  # found, not written again


def test_gpu_check_skips_in_one_line_without_cuda():
    import subprocess
    import sys

    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: bench/gpu_check.py would run in full")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, str(root / "bench" / "gpu_check.py")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout == "gpu_check: skipped (no CUDA device)\n"
