"""Hostile input: files that would run code when loaded, videos that are broken or not what their
name says, a clip folder that loops, output folders that cannot be written, and a run folder that
tries to make the report read elsewhere. Each is one clear line, never a traceback, and the run
goes on wherever it can."""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import pickle
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from auditkit.media.clips import discover, read_video
from auditkit.contract.errors import ClipError, ConfigError, RaterError
from auditkit.raters import load_rater
from auditkit.media.video import write_video

RATER = "builtin:constant"  # scores ignore the picture: every verdict is invariant, exit 0
FULL_8K = 4320 * 7680 * 3  # bytes of one decoded 8K frame


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditkit", *args], capture_output=True, text=True,
                          timeout=600, **kw)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("auditkit: error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------- files that run code
class RunsShell:
    """Unpickling this runs a shell command; the marker file exists only if a loader ran it."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.marker)}",))


class OpensFile:
    """The same without a shell: unpickling calls ``open(marker, "w")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


def _checkpoint_like(payload) -> dict:
    return {"format": "auditkit.ocean-checkpoint", "version": 1, "config": {}, "state_dict": {},
            "metadata": {"note": payload}}


def _torchscript_lookalike(path: Path, payload) -> None:
    """A torch.save archive with the entry names of a TorchScript file, so that the TorchScript
    loader, not the weights-only one, is the one that meets the payload."""
    plain = path.with_suffix(".plain")
    torch.save(_checkpoint_like(payload), plain)
    with zipfile.ZipFile(plain) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    root = next(iter(entries)).split("/")[0]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        archive.writestr(f"{root}/constants.pkl", entries[f"{root}/data.pkl"])
        archive.writestr(f"{root}/code/__torch__.py", "")
    plain.unlink()


WRITERS = {
    "torch.save": lambda path, payload: torch.save(_checkpoint_like(payload), path),
    "pickle protocol 2": lambda path, payload: path.write_bytes(pickle.dumps(payload, protocol=2)),
    "pickle protocol 5": lambda path, payload: path.write_bytes(pickle.dumps(payload, protocol=5)),
    "TorchScript look-alike": _torchscript_lookalike,
}


@pytest.mark.parametrize("payload", [RunsShell, OpensFile])
@pytest.mark.parametrize("writer,suffix", [("torch.save", ".pt"), ("torch.save", ".ckpt"),
                                           ("pickle protocol 2", ".pth"), ("pickle protocol 5", ".pt"),
                                           ("pickle protocol 2", ".ts"), ("TorchScript look-alike", ".pt")])
def test_a_rater_file_that_would_run_code_is_refused_and_runs_nothing(tmp_path, writer, suffix, payload):
    marker = tmp_path / "pwned"
    path = tmp_path / f"evil{suffix}"
    WRITERS[writer](path, payload(marker))
    with pytest.raises(RaterError) as info:
        load_rater(str(path))
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    if writer == "torch.save":
        assert "refused" in message and "would import or run code" in message
    assert not marker.exists()


def test_cli_refuses_a_checkpoint_that_would_run_code_in_one_line(tmp_path, sample_dir):
    marker = tmp_path / "pwned"
    # A torch.save file names the global it wants; an old-style pickle fails earlier, on an opcode
    # the weights-only reader does not take, and torch warns about its protocol on stderr.
    for name, writer, says in (("evil.pt", "torch.save", "refused — loading it would import or run code"),
                               ("old.pth", "pickle protocol 5", "not a readable checkpoint")):
        WRITERS[writer](tmp_path / name, RunsShell(marker))
        proc = cli("run", "--rater", str(tmp_path / name), "--clips", str(sample_dir), "--perturb",
                   "lighting:dim", "--out", str(tmp_path / "out"), "--quiet")
        assert_one_line_error(proc, name, says)
        assert not marker.exists()
        assert not (tmp_path / "out").exists()  # refused before anything was written


def test_backbone_weights_that_would_run_code_are_refused(tmp_path):
    from auditkit.models.ocean import OceanRegressor

    marker = tmp_path / "pwned"
    torch.save({"conv1.weight": torch.zeros(1), "x": RunsShell(marker)}, tmp_path / "imagenet.pth")
    with pytest.raises(RaterError, match=r"imagenet.pth: refused .* would import or run code"):
        OceanRegressor("resnet18", size=32, frames=1, weights=tmp_path / "imagenet.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")  # plain data, but not a state dict
    with pytest.raises(RaterError, match="list.pth: not a plain state dict"):
        OceanRegressor("resnet18", size=32, frames=1, weights=tmp_path / "list.pth")
    assert not marker.exists()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("payload,asks", [(RunsShell, "posix.system"), (OpensFile, "open")])
def test_label_pickles_that_would_run_code_are_refused_at_every_protocol(tmp_path, protocol, payload, asks):
    from auditkit.models.data import UnsafePickleError, load_plain_pickle

    marker = tmp_path / "pwned"
    path = tmp_path / "annotation_training.pkl"
    path.write_bytes(pickle.dumps({"openness": {"a.mp4": payload(marker)}}, protocol=protocol))
    with pytest.raises(UnsafePickleError, match=rf"annotation_training.pkl: refused — it asks for \S*{asks}"):
        load_plain_pickle(path)
    assert not marker.exists()


def test_first_impressions_split_with_a_code_pickle_is_a_config_error(tmp_path):
    from auditkit.models.data import load_split

    marker = tmp_path / "pwned"
    table = {t: {"a.mp4": RunsShell(marker)} for t in ("openness", "conscientiousness", "extraversion",
                                                       "agreeableness", "neuroticism")}
    (tmp_path / "annotation_training.pkl").write_bytes(pickle.dumps(table))
    with pytest.raises(ConfigError, match="refused"):
        load_split(tmp_path, "training")
    assert not marker.exists()


def test_annotation_cache_entry_holding_a_pickle_is_recomputed_not_loaded(tmp_path, frames):
    from auditkit.perturbations.annotate import Annotator

    marker = tmp_path / "pwned"
    annotator = Annotator(tmp_path / "cache")
    clip = frames.numpy()
    entry = annotator.cache_dir / f"{annotator.key('planted', clip)}.npz"
    entry.parent.mkdir(parents=True)
    payload = np.empty(1, dtype=object)
    payload[0] = RunsShell(marker)
    np.savez(entry, version=payload, mask=payload, landmarks=payload, face_found=payload, face_box=payload)

    annotations = annotator.annotate(clip, content_hash="planted")
    assert not marker.exists()
    assert annotator.stats["clips_cached"] == 0 and annotator.stats["clips_annotated"] == 1
    assert annotations.mask.shape[0] == clip.shape[0]
    annotator.annotate(clip, content_hash="planted")  # the entry was replaced by a clean one
    assert annotator.stats["clips_cached"] == 1


# --------------------------------------------------------------------------- hostile video files
def _write_8k(path: Path, count: int = 2) -> Path:
    """Frames written one at a time: the test itself should not hold gigabytes either."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (7680, 4320))
    assert writer.isOpened(), "OpenCV cannot write 8K mp4v here"
    frame = np.zeros((4320, 7680, 3), np.uint8)
    try:
        for i in range(count):
            frame[1000:3000, 2000 + 400 * i:5000 + 400 * i] = 200
            writer.write(frame)
    finally:
        writer.release()
    return path


def _ramp(path: Path, n: int = 20) -> Path:
    write_video(path, np.stack([np.full((64, 96, 3), 10 * i, np.uint8) for i in range(n)]), fps=10)
    return path


def _cut(source: Path, dest: Path) -> Path:
    data = source.read_bytes()
    dest.write_bytes(data[: len(data) // 2])
    return dest


# clip id -> what the skipped reason (and the ClipError) must say
HOSTILE = {
    "truncated": "is truncated (its 'mdat' box ends",
    "empty": "empty file (0 bytes)",
    "speck": "frames are 1x1 pixels; at least 32",
    "photo": "is a JPEG image, not a video despite its .mp4 name",
    "notes": "cannot be opened as a video",
    "knot": "is a symbolic link that leads nowhere (broken, or a loop)",
}


def _plant_hostile(folder: Path, sample_dir: Path) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    _cut(sorted(sample_dir.glob("*.mp4"))[0], folder / "truncated.mp4")
    (folder / "empty.mp4").write_bytes(b"")
    write_video(folder / "speck.avi", np.full((3, 1, 1, 3), 128, np.uint8))
    ok, jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), 90, np.uint8))
    (folder / "photo.mp4").write_bytes(jpeg.tobytes())
    (folder / "notes.mp4").write_text("interview notes, not a video\n" * 40)
    os.symlink("knot.mp4", folder / "knot.mp4")
    os.symlink(folder, folder / "loop")


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory, sample_dir) -> Path:
    """Three good sample clips, an 8K clip, and one of every kind of bad file."""
    folder = tmp_path_factory.mktemp("hostile") / "clips"
    _plant_hostile(folder, sample_dir)
    for source in sorted(sample_dir.glob("*.mp4"))[:3]:
        shutil.copy(source, folder / source.name)
    _write_8k(folder / "huge.mp4")
    return folder


@pytest.mark.parametrize("clip_id", sorted(HOSTILE))
def test_each_hostile_file_is_a_clip_error_with_its_reason(hostile_folder, clip_id):
    path = next(p for p in hostile_folder.iterdir() if p.stem == clip_id)
    with pytest.raises(ClipError) as info:
        read_video(path)
    assert HOSTILE[clip_id] in info.value.reason and info.value.path == path
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("ext", [".avi", ".webm", ".mp4"])
def test_a_video_cut_short_is_refused_even_where_ffmpeg_would_decode_its_first_half(tmp_path, ext):
    # AVI and WebM keep their headers in front, so FFmpeg happily decodes what is left; the
    # header's stated length is what gives the cut away.
    cut = _cut(_ramp(tmp_path / f"whole{ext}"), tmp_path / f"cut{ext}")
    assert read_video(tmp_path / f"whole{ext}", num_frames=4).source_frames == 20
    with pytest.raises(ClipError, match="is truncated"):
        read_video(cut, num_frames=4)


def test_images_named_as_videos_are_refused(tmp_path):
    import cv2

    image = np.full((64, 64, 3), 77, np.uint8)
    for ext, what in ((".png", "PNG"), (".bmp", "BMP"), (".tiff", "TIFF"), (".webp", "WebP")):
        ok, data = cv2.imencode(ext, image)
        assert ok
        path = tmp_path / f"still{ext}.mov"
        path.write_bytes(data.tobytes())
        with pytest.raises(ClipError, match=f"is a {what} image, not a video despite its .mov name"):
            read_video(path)


def test_an_8k_video_is_read_downscaled_one_frame_at_a_time(hostile_folder):
    tracemalloc.start()
    try:
        clip = read_video(hostile_folder / "huge.mp4", num_frames=4, max_side=640)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert clip.frames.shape == (4, 360, 640, 3) and clip.source_frames == 2
    assert clip.frames[0].max() > 150  # the bright block survived the downscale
    # One decoded 8K frame is 100 MB; two alive at once would mean a copy per frame is kept.
    assert peak < 1.5 * FULL_8K, f"peak {peak / 1e6:.0f} MB"


def test_discover_lists_real_clips_once_whatever_the_links(hostile_folder):
    ids = [s.id for s in discover(hostile_folder)]
    # The folder links to itself: a walk that followed it would list loop/..., loop/loop/...
    assert not any(i.startswith("loop") for i in ids)
    assert sorted(ids) == sorted([p.stem for p in hostile_folder.glob("*.mp4")] + ["speck"])
    assert len(ids) == len(set(ids))


def test_run_goes_on_past_every_hostile_file(hostile_folder, tmp_path):
    out = tmp_path / "run"
    proc = cli("run", "--rater", RATER, "--clips", str(hostile_folder), "--perturb", "lighting:dim",
               "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not [line for line in proc.stderr.splitlines() if line.startswith("[")], proc.stderr  # no FFmpeg logs
    data = json.loads((out / "audit.json").read_text())
    assert data["n_clips"] == 4  # three sample clips and the 8K one
    reasons = {s["clip"]: s["reason"] for s in data["skipped"]}
    assert set(reasons) == set(HOSTILE)
    for clip_id, fragment in HOSTILE.items():
        assert fragment in reasons[clip_id]
        assert f"{clip_id} / lighting:dim: " in proc.stdout


def test_a_folder_of_nothing_but_hostile_files_is_exit_2(tmp_path, sample_dir):
    _plant_hostile(tmp_path / "clips", sample_dir)
    proc = cli("run", "--rater", RATER, "--clips", str(tmp_path / "clips"), "--perturb", "lighting:dim",
               "--out", str(tmp_path / "run"), "--quiet")
    assert_one_line_error(proc, "no clip could be scored")


# --------------------------------------------------------------------------- output folders
# We may run as root (here, and in many CI containers), where file modes stop nothing. A read-only
# bind mount or tmpfs needs CAP_SYS_ADMIN; failing that, root can run the command as nobody,
# which needs everything it reads to be world-readable: tests below build in such a folder.
NOBODY = 65534


@pytest.fixture
def shared_tmp():
    """A world-readable scratch folder (pytest's own tmp folders are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="auditkit-hostile-"))
    folder.chmod(0o755)
    yield folder
    for mount in sorted(_mounts_under(folder), reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)
    shutil.rmtree(folder, ignore_errors=True)


def _mounts_under(folder: Path) -> list[str]:
    if not os.path.exists("/proc/self/mounts"):  # not Linux: the tests here mounted nothing
        return []
    with open("/proc/self/mounts") as fh:
        return [line.split()[1] for line in fh if line.split()[1].startswith(str(folder))]


def _mount(*args: str) -> str | None:
    """None when it worked, else why not."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return "mounting needs root and the mount command"
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    return None if proc.returncode == 0 else f"mount {' '.join(args)}: {proc.stderr.strip()}"


def _as_nobody_kwargs(env: dict) -> dict:
    kwargs = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
    try:
        probe = subprocess.run([sys.executable, "-c", "import auditkit.cli"], capture_output=True, text=True,
                               env=env, **kwargs)
        why = probe.stderr.strip()[-200:] if probe.returncode else ""
    except OSError as exc:  # the interpreter itself is out of reach (under /root, say)
        why = str(exc)
    if why:
        pytest.skip(f"running as root, and Python or auditkit is not usable by uid {NOBODY}, so file "
                    f"modes cannot make a folder read-only for the run: {why}")
    return kwargs


def _copy_clips(sample_dir: Path, dest: Path, count: int) -> Path:
    dest.mkdir(parents=True)
    for source in sorted(sample_dir.glob("*.mp4"))[:count]:
        shutil.copy(source, dest / source.name)
    return dest


@contextlib.contextmanager
def _read_only(folder: Path, how: str, env: dict):
    """Make ``folder`` unwritable to the auditkit process; yields extra subprocess arguments."""
    if how == "mount":
        why = _mount("--bind", str(folder), str(folder))
        if why:
            pytest.skip(f"no read-only bind mount here ({why}); the 'permissions' case covers it")
        try:
            why = _mount("-o", "remount,bind,ro", str(folder))
            if why:
                pytest.skip(f"no read-only remount here ({why})")
            yield {}
        finally:
            subprocess.run(["umount", str(folder)], check=False)
        return
    folder.chmod(0o555)
    try:
        yield {} if os.geteuid() != 0 else _as_nobody_kwargs(env)
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("how", ["permissions", "mount"])
@pytest.mark.parametrize("where", ["the folder", "its parent"])
def test_read_only_output_folder_is_one_line_before_any_work(shared_tmp, sample_dir, how, where):
    clips = _copy_clips(sample_dir, shared_tmp / "clips", 3)
    locked = shared_tmp / "locked"
    locked.mkdir()
    out = locked if where == "the folder" else locked / "run"
    env = {**os.environ, "HOME": str(shared_tmp), "AUDITKIT_CACHE": str(shared_tmp / "cache"),
           "PYTHONDONTWRITEBYTECODE": "1"}
    (shared_tmp / "cache").mkdir(mode=0o777)
    (shared_tmp / "cache").chmod(0o777)
    with _read_only(locked, how, env) as kwargs:
        proc = cli("run", "--rater", RATER, "--clips", str(clips), "--perturb", "lighting:dim",
                   "--out", str(out), "--quiet", env=env, **kwargs)
    line = assert_one_line_error(proc, str(out), "cannot write the output folder")
    assert "Read-only file system" in line or "Permission denied" in line
    assert list(locked.iterdir()) == []


def _scores(store: Path) -> dict[tuple[str, str, str], float]:
    from auditkit.core.store import Store

    with contextlib.closing(Store.open_readonly(store)) as db:  # reads the log of a cut-off run too
        return {(c, k, t): v for c, k, t, v in db.export_rows()}


def _tests(out: Path) -> list[dict]:
    return json.loads((out / "audit.json").read_text())["tests"]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, sample_dir):
    """An uninterrupted run on six clips, one clip per batch: what a resumed run must end up with."""
    base = tmp_path_factory.mktemp("reference")
    clips = _copy_clips(sample_dir, base / "clips", 6)
    out = base / "run"
    proc = cli("run", "--rater", RATER, "--clips", str(clips), "--perturb", "lighting:dim", "--out", str(out),
               "--batch-size", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    return clips, out


def _limit_file_size(limit: int):
    def apply() -> None:
        # Python already ignores SIGXFSZ, so a write past the limit fails with EFBIG instead of
        # killing the process: the same errors a full disk gives, for one process only.
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def _assert_full_then_resumed(out: Path, first: subprocess.CompletedProcess, rerun, reference: Path) -> None:
    line = assert_one_line_error(first, str(out), "cannot write",
                                 "the scores committed so far are kept in", "the same command, run again")
    kept = _scores(out / "results.sqlite")
    expected = _scores(reference / "results.sqlite")
    assert 0 < len(kept) <= len(expected), line
    assert all(expected[k] == v for k, v in kept.items())
    second = rerun()
    assert second.returncode == 0, second.stderr
    assert _scores(out / "results.sqlite") == expected
    assert _tests(out) == _tests(reference)


def test_a_disk_that_fills_up_mid_run_keeps_the_scores_and_the_rerun_continues(tmp_path, reference_run):
    clips, reference = reference_run
    out = tmp_path / "run"
    args = ("run", "--rater", RATER, "--clips", str(clips), "--perturb", "lighting:dim", "--out", str(out),
            "--batch-size", "1", "--quiet")
    # Half the finished store's size: the store's write-ahead log outgrows it part-way through.
    limit = (reference / "results.sqlite").stat().st_size // 2
    first = cli(*args, preexec_fn=_limit_file_size(limit), env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    _assert_full_then_resumed(out, first, lambda: cli(*args), reference)


def test_a_full_tmpfs_output_folder_keeps_the_scores_and_the_rerun_continues(shared_tmp, reference_run):
    clips, reference = reference_run
    disk = shared_tmp / "disk"
    disk.mkdir()
    # The finished store's size: with its write-ahead log and shared-memory index beside it, the
    # store outgrows that part-way through, and the report would not fit after it anyway.
    size = (reference / "results.sqlite").stat().st_size
    why = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk))
    if why:
        pytest.skip(f"no tmpfs here ({why}); the file-size limit case covers a full disk")
    out = disk / "run"
    args = ("run", "--rater", RATER, "--clips", str(clips), "--perturb", "lighting:dim", "--out", str(out),
            "--batch-size", "1", "--quiet")
    first = cli(*args)

    def with_room() -> subprocess.CompletedProcess:
        assert _mount("-o", f"remount,size={size * 20}", str(disk)) is None
        return cli(*args)

    _assert_full_then_resumed(out, first, with_room, reference)


# --------------------------------------------------------------------------- the report stays home
_OPENED: list[str] | None = None


def _record_opens(event: str, args: tuple) -> None:
    if _OPENED is not None and event in ("open", "sqlite3.connect", "os.scandir", "os.listdir") and args:
        target = args[0]
        if isinstance(target, (str, bytes, os.PathLike)):
            text = os.fsdecode(target).removeprefix("file://").split("?")[0]
            _OPENED.append(os.path.realpath(text))


@contextlib.contextmanager
def _opened_paths():
    """Every file and folder this process opens while inside: the real thing, seen by the
    interpreter's audit hooks (which cannot be removed, so the hook idles outside this block)."""
    global _OPENED
    if not getattr(_record_opens, "installed", False):
        sys.addaudithook(_record_opens)
        _record_opens.installed = True
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


def _render(audit: Path, dest: Path) -> str:
    from auditkit.cli import main

    assert main(["report", str(audit), "--out", str(dest)]) == 0
    return dest.read_text()


def test_report_reads_nothing_outside_the_folder_it_was_given(tmp_path, reference_run):
    import base64

    _, reference = reference_run
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = b"\x89PNG\r\n\x1a\nOUTSIDE-SECRET"
    for name in ("lighting_dim.png", "escape.png"):
        (outside / name).write_bytes(secret)
    shutil.copy(reference / "results.sqlite", outside / "results.sqlite")
    leaked = base64.b64encode(secret).decode()[:24]

    def render(audit: Path) -> tuple[str, list[str]]:
        with _opened_paths() as opened:
            html = _render(audit, tmp_path / "report.html")
        return html, list(opened)

    # Edits named like paths in audit.json: the report looks nothing up by those names.
    data = json.loads((run / "audit.json").read_text())
    data["tests"][0]["perturbation"] = str(outside / "escape")
    data["tests"][1]["perturbation"] = "../outside/escape"
    (run / "audit.json").write_text(json.dumps(data))
    html, opened = render(run / "audit.json")
    assert "data:image/png;base64," in html and leaked not in html  # the run's own preview only
    assert any(p.endswith("results.sqlite") for p in opened)  # and its own store, for the dots

    # audit.json linked from another folder: that folder is the one given, and it has no previews.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "audit.json").symlink_to(run / "audit.json")
    html, opened = render(elsewhere / "audit.json")
    assert "data:image/png;base64," not in html
    assert not [p for p in opened if p.startswith(str(run / "previews"))], opened

    tampered = [
        lambda: (run / "previews" / "escape.png").symlink_to(outside / "escape.png"),
        lambda: (shutil.rmtree(run / "previews"),
                 (run / "previews").symlink_to(outside, target_is_directory=True)),
        lambda: ((run / "results.sqlite").unlink(), (run / "results.sqlite").symlink_to(outside / "results.sqlite")),
    ]
    for tamper in tampered:  # each on top of the one before
        tamper()
        html, opened = render(run / "audit.json")
        assert leaked not in html
        assert not [p for p in opened if p.startswith(str(outside))], opened


def test_report_ignores_a_linked_store_journal(tmp_path, reference_run):
    _, reference = reference_run
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "wal").write_bytes(b"OUTSIDE-SECRET" * 100)
    (run / "results.sqlite-wal").symlink_to(outside / "wal")
    (run / "results.sqlite-shm").write_bytes(b"")
    with _opened_paths() as opened:
        html = _render(run / "audit.json", tmp_path / "r.html")
    assert "<h1>Counterfactual fairness audit</h1>" in html
    assert not [p for p in opened if p.startswith(str(outside))], opened
    assert (outside / "wal").read_bytes() == b"OUTSIDE-SECRET" * 100
