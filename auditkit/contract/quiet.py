"""Keep native libraries' own logging off the user's terminal."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2 while a native library (MediaPipe, ffmpeg) runs: its C++ side
    logs info and warnings there before any logging setup can reach it, and a user of the command
    line should see auditkit's messages, not those. Python exceptions are unaffected."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (some embedded interpreters): nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def captured_stderr():
    """Like :func:`quiet_stderr`, but what the native library wrote is kept: the context yields a
    function that returns it (read once the block is left), so a one-line error can say why."""
    import tempfile

    text = {"value": ""}
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield lambda: ""
        return
    sink = tempfile.TemporaryFile()
    try:
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: text["value"]
        finally:
            os.dup2(saved, 2)
            sink.seek(0)
            text["value"] = sink.read().decode("utf-8", "replace")
    finally:
        os.close(saved)
        sink.close()
