"""The bottom layer: what a rater is, the errors a user can cause, where caches live.

Everything else in auditkit may import this package; it imports nothing of auditkit.
"""

from .errors import AuditkitError, ClipError, ConfigError, PartialScores, RaterError
from .rater import OCEAN, InputSpec, Rater, check_scores, rater_identity

__all__ = ["AuditkitError", "ClipError", "ConfigError", "PartialScores", "RaterError", "OCEAN",
           "InputSpec", "Rater", "check_scores", "rater_identity"]
