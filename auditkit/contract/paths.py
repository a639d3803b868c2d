"""Where auditkit keeps what it computes once and reuses (annotations, the sample clips)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_root() -> Path:
    """``$AUDITKIT_CACHE``, else ``$XDG_CACHE_HOME/auditkit``, else ``~/.cache/auditkit``."""
    env = os.environ.get("AUDITKIT_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "auditkit"


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex), read in chunks: clip content hashes and rater identities."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
