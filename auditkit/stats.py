"""The statistics of an audit, at their public address (``auditkit.stats.paired_shift_test``).

The implementation lives in :mod:`auditkit.core.stats`; this module is what users import.
"""

from auditkit.core.stats import (ADJUST_METHODS, adjust_pvalues, clips_needed, correct,
                                 paired_shift_test, verdict)

__all__ = ["ADJUST_METHODS", "adjust_pvalues", "clips_needed", "correct", "paired_shift_test", "verdict"]
