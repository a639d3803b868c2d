"""The statistics of an audit, at their public address (``auditkit.stats.paired_shift_test``).

The implementation lives in :mod:`auditkit.core.stats`; this module is what users import.
"""

from typing import Any

from auditkit.core import stats as _stats
from auditkit.core.stats import (CORRECTIONS, DEFAULT_TOLERANCE, MIN_N, UNITS, LimitsOfAgreement, adjust_pvalues,
                                 clips_needed, correct, limits_of_agreement, paired_shift_test, pool_units,
                                 tolerance_confidence, tolerance_factor, unit_differences, verdict, verdict_of)

__all__ = ["CORRECTIONS", "DEFAULT_TOLERANCE", "MIN_N", "UNITS", "LimitsOfAgreement", "adjust_pvalues",
           "clips_needed", "correct", "limits_of_agreement", "paired_shift_test", "pool_units",
           "tolerance_confidence", "tolerance_factor", "unit_differences", "verdict", "verdict_of"]


def __getattr__(name: str) -> Any:
    if name in _stats._MERGED:  # merged into another name; kept for a release, with a warning
        from auditkit.contract.deprecation import merged

        return merged(__name__, name, *_stats._MERGED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
