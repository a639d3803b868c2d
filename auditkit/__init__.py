"""auditkit: counterfactual fairness audits of video-based personality raters."""

from .clips import Clip, ClipSource, discover, load_clips, read_video
from .engine import run_audit
from .errors import AuditkitError, ClipError, ConfigError, RaterError
from .raters import OCEAN, InputSpec, Rater, TorchRater, load_rater
from .result import AuditResult, ShiftTest, Skipped

__version__ = "0.1.0"

__all__ = ["AuditResult", "AuditkitError", "Clip", "ClipError", "ClipSource", "ConfigError",
           "InputSpec", "OCEAN", "Rater", "RaterError", "ShiftTest", "Skipped", "TorchRater",
           "discover", "load_clips", "load_rater", "read_video", "run_audit"]
