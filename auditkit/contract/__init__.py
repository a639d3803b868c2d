"""The bottom layer: what a rater is, the errors a user can cause, where caches live.

Everything else in auditkit may import this package; it imports nothing of auditkit. Its names
are imported on first use (PEP 562): a module that needs only the errors, the rules or the arms
(the statistics, the reports) does not load torch with :mod:`.rater`.
"""

from __future__ import annotations

from .lazy import lazy_exports

_EXPORTS = {"AuditkitError": "errors", "ClipError": "errors", "ConfigError": "errors",
            "PartialScores": "errors", "RaterError": "errors", "OCEAN": "rater", "InputSpec": "rater",
            "AudioSpec": "rater", "Rater": "rater", "check_scores": "rater", "rater_identity": "rater"}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
