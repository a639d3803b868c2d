"""Counterfactual edits of interview clips. ``get(name)`` and ``available()`` are the registry."""

from .base import (DEFAULT_MAX_MISSING_FACE, Edit, NotApplicable, Perturbation, as_frames,
                   available, clip_seed, families, get, register, resolve)
from . import background, glasses, headwear, lighting, quality  # noqa: F401  (each registers its family)
from . import rooms  # noqa: F401  (registers the rendered scenes "office" and "bookshelf")

__all__ = ["DEFAULT_MAX_MISSING_FACE", "Edit", "NotApplicable", "Perturbation", "as_frames",
           "available", "clip_seed", "families", "get", "register", "resolve"]
