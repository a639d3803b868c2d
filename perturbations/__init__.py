"""Counterfactual edits of interview clips. ``get(name)`` and ``available()`` are the registry."""

from .base import (DEFAULT_MAX_MISSING_FACE, Edit, NotApplicable, Perturbation, as_frames,
                   available, clip_seed, families, get, register, resolve)
from . import background, glasses, headwear, lighting, quality, regions  # noqa: F401  (each registers its family)

__all__ = ["DEFAULT_MAX_MISSING_FACE", "Edit", "NotApplicable", "Perturbation", "as_frames",
           "available", "clip_seed", "families", "get", "register", "resolve"]
