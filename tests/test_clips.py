from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from auditkit.media.clips import Clip, discover, load_clips, read_video, sample_indices
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
