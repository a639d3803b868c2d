"""The statistics of an audit, at their public address (``auditkit.stats.paired_shift_test``).

The implementation lives in :mod:`auditkit.core.stats`; this module is what users import.
"""

from auditkit.core.stats import (ADJUST_METHODS, DEFAULT_TOLERANCE, UNITS, adjust_pvalues, clips_needed,
                                 correct, limits_of_agreement, paired_shift_test, tolerance_confidence,
                                 tolerance_factor, unit_differences, verdict, verdict_of)

__all__ = ["ADJUST_METHODS", "DEFAULT_TOLERANCE", "UNITS", "adjust_pvalues", "clips_needed", "correct",
           "limits_of_agreement", "paired_shift_test", "tolerance_confidence", "tolerance_factor",
           "unit_differences", "verdict", "verdict_of"]
