"""Reading TOML files (settings, suites, rater descriptions) with one set of messages.

It lives in the bottom layer so that rater kinds, which may not import the core, read their
description files the same way the core reads ``auditkit.toml``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["read_toml", "tomllib"]


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; unreadable or invalid files are one line naming the file."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
