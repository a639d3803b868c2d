"""Writing an audit's files: atomically, with one clear line when the folder cannot be written."""

from __future__ import annotations

import errno
import os
import secrets
import sqlite3
from pathlib import Path

from auditkit.contract.errors import AuditkitError
from auditkit.contract.rater import InputSpec


def write_bytes(path: Path, data: bytes) -> None:
    """Write through a temporary file and rename, so a full disk leaves the previous file (or
    none) behind, never half of one that a dashboard or a CI step would then read as broken."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask's mode, as open() gives
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


# A disk that is full, read-only or failing: the user's to fix, not a bug in auditkit.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
_SQLITE_WRITE = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN")
_SQLITE_WRITE_TEXT = ("database or disk is full", "disk I/O error", "readonly database",
                      "unable to open database file")


def cannot_write(exc: OSError | sqlite3.Error, where: Path, store: Path) -> BaseException:
    """One line naming what could not be written, for an output folder that filled up or turned
    read-only mid-run; any other error comes back unchanged (it is a bug to report)."""
    if isinstance(exc, OSError):
        if exc.errno not in _WRITE_ERRNOS:
            return exc
        path, why = exc.filename or where, exc.strerror or str(exc)
    else:
        name = getattr(exc, "sqlite_errorname", "") or ""  # Python 3.11+
        if not (name.startswith(_SQLITE_WRITE) or any(t in str(exc) for t in _SQLITE_WRITE_TEXT)):
            return exc
        path, why = store, str(exc)
    return AuditkitError(f"{path}: cannot write ({why}); the scores committed so far are kept in {store}, "
                         "and the same command, run again once it can write, continues from them")


def write_previews(result, sources, edits, folder: Path, config) -> dict[str, Path]:
    """Original | edited for each edit, from the first clip that edit could be applied to."""
    import cv2

    from auditkit.core.engine import preview

    skipped = {(s.clip, s.perturbation) for s in result.skipped}
    unscored = {s.clip for s in result.skipped if s.reason.startswith("original not scored")}
    todo = list(edits)
    out: dict[str, Path] = {}
    for source in sources:
        if not todo:
            break
        wanted = [e for e in todo if (source.id, e.name) not in skipped and source.id not in unscored]
        if not wanted:
            continue
        # Read as the audit read it: the rater's frames, inside its window, by count or by rate.
        spec = InputSpec.from_mapping(result.rater["input"], where="audit.json rater input")
        clip = source.read_for(spec, config.max_side, sound=False)
        folder.mkdir(exist_ok=True)
        for name, image in preview(clip, wanted, seed=config.seed,
                                   max_missing_face=config.max_missing_face).items():
            path = folder / f"{name.replace(':', '_')}.png"
            # Encoded here and written by Python: cv2.imwrite reports a full disk only as False.
            ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            if not ok:
                raise AuditkitError(f"{path}: the preview image could not be encoded")
            write_bytes(path, png.tobytes())
            out[name] = path
        todo = [e for e in todo if e.name not in out]
    return out
