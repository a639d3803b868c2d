"""Counterfactual edits of interview clips. ``get(name)`` and ``available()`` are the registry."""

from .base import (DEFAULT_MAX_MISSING_FACE, Edit, NotApplicable, Perturbation, as_frames,
                   available, clip_seed, families, get, register, resolve)
# Each module registers its family when imported ("rooms": the rendered scenes office and bookshelf).
from . import background, controls, glasses, headwear, lighting, quality, regions, rooms  # noqa: F401

__all__ = ["DEFAULT_MAX_MISSING_FACE", "Edit", "NotApplicable", "Perturbation", "as_frames",
           "available", "clip_seed", "families", "get", "register", "resolve"]
