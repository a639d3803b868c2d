"""Controls: conditions that carry no meaning, against which the edits are read.

``control:retest`` is the same clip given to the rater again, sampled half a sampling interval
later: the same person, the same room and light, a moment apart — what a repeat recording of the
same answer would be (the 2021 newsroom test used repeat recordings for this). Every frame the
rater sees is another frame of the clip (but for the last, which cannot move past the end), so a
rater that reacts to blinks, mouth shapes or small head movements moves here; its share of
candidates moved beyond the margin is its own noise, the baseline every edit's instability is read
against. A re-encode at high quality was the other candidate: it changes almost nothing a rater
sees, so it would understate that noise.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from auditkit.contract.arms import RETEST

from .base import DEFAULT_MAX_MISSING_FACE, Edit, NotApplicable, Perturbation, as_frames, register

RETEST_OFFSET = 0.5


class Retest(Perturbation):
    name = RETEST
    description = "the same clip sampled half a sampling interval later: the rater's own noise"
    resample = RETEST_OFFSET

    def __call__(self, frames: torch.Tensor | np.ndarray, annotations: Any = None, *,
                 rng: np.random.Generator | None = None, seed: int | None = None,
                 max_missing_face: float = DEFAULT_MAX_MISSING_FACE,
                 resampled: torch.Tensor | np.ndarray | str | None = None) -> Edit:
        """``resampled``: the clip's frames at the shifted positions (or why there are none)."""
        frames = as_frames(frames)
        if resampled is None or isinstance(resampled, str):
            raise NotApplicable(resampled or "a retest needs the clip's frames between the sampled "
                                             "ones (decode it from its file)")
        resampled = as_frames(resampled)
        if resampled.shape != frames.shape:
            raise ValueError(f"{self.name}: resampled frames {tuple(resampled.shape)} do not match the clip's "
                             f"{tuple(frames.shape)}")
        return Edit(frames=resampled.to(frames.device), original=frames, params={"offset": self.resample})

    def transform(self, frames: torch.Tensor, params: Mapping[str, Any], annotations: Any) -> torch.Tensor:
        raise NotApplicable("a retest is not a pixel edit: call it with resampled= frames")


register(RETEST, Retest)
