"""Public names that were merged into another keep working for a release, with a warning."""

from __future__ import annotations

import warnings
from typing import Any


def merged(module: str, old: str, new: str, value: Any) -> Any:
    """``value`` (now ``new``), with a DeprecationWarning that ``module.old`` is going away."""
    warnings.warn(f"{module}.{old} is deprecated and will be removed in the next release; use {new}",
                  DeprecationWarning, stacklevel=3)
    return value
