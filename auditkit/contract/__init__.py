"""The bottom layer: what a rater is, the errors a user can cause, where caches live.

Everything else in auditkit may import this package; it imports nothing of auditkit. Its names
are imported on first use (PEP 562): a module that needs only the errors, the rules or the arms
(the statistics, the reports) does not load torch with :mod:`.rater`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"AuditkitError": "errors", "ClipError": "errors", "ConfigError": "errors",
            "PartialScores": "errors", "RaterError": "errors", "OCEAN": "rater", "InputSpec": "rater",
            "Rater": "rater", "check_scores": "rater", "rater_identity": "rater"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
