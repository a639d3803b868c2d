"""Counterfactual edits of interview clips. ``get(name)`` and ``available()`` are the registry."""

from .base import (Edit, NotApplicable, Perturbation, as_frames, available, clip_seed, families,
                   get, register, resolve)
from . import lighting  # noqa: F401  (registers the lighting family)

__all__ = ["Edit", "NotApplicable", "Perturbation", "as_frames", "available", "clip_seed",
           "families", "get", "register", "resolve"]
