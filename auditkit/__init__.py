"""auditkit: counterfactual fairness audits of video-based personality raters.

Names are imported on first use (PEP 562), so that ``import auditkit`` — which pytest does for
the plugin in every session of an environment where auditkit is installed — costs nothing until
an audit actually runs.
"""

from __future__ import annotations

from auditkit.contract.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Clip": "media.clips", "ClipSource": "media.clips", "discover": "media.clips",
    "load_clips": "media.clips", "read_video": "media.clips", "run_audit": "core.engine",
    "AuditkitError": "contract.errors", "ClipError": "contract.errors", "ConfigError": "contract.errors",
    "RaterError": "contract.errors", "OCEAN": "contract.rater", "InputSpec": "contract.rater",
    "AudioSpec": "contract.rater", "Rater": "contract.rater", "TorchRater": "raters", "load_rater": "raters",
    "AuditResult": "core.result", "ShiftTest": "core.result", "Skipped": "core.result",
    "assert_invariant": "pytest_plugin", "assert_no_shift": "pytest_plugin",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
