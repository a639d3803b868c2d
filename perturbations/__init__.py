"""Counterfactual edits of interview clips. ``get(name)`` and ``available()`` are the registry."""

from .base import (DEFAULT_MAX_MISSING_FACE, Edit, NotApplicable, Perturbation, arm_of, as_frames,
                   available, clip_seed, contrast_arm, contrast_pair, families, family_of, get, register, resolve,
                   variant_of)
# Each module registers its family when imported ("rooms": the rendered scenes office and bookshelf;
# "acoustics": the rooms and microphones the candidate is heard through).
from . import background, controls, glasses, headwear, lighting, quality, regions, rooms  # noqa: F401
from . import acoustics, noise, sound, voice  # noqa: F401
from .sound import SoundEdit, edits_sound
from .controls import RETEST

__all__ = ["DEFAULT_MAX_MISSING_FACE", "RETEST", "Edit", "SoundEdit", "edits_sound",
           "NotApplicable", "Perturbation", "arm_of", "as_frames",
           "available", "clip_seed", "contrast_arm", "contrast_pair", "families", "family_of", "get", "register",
           "resolve", "variant_of"]
