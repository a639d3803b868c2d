"""What one test of an audit compares: an :class:`Arm`.

A test's identity is never parsed back out of its name: the name is for people, the fields are
for code. ``arm`` is the condition whose scores are "after", ``base`` the condition they are
compared with (``original``, or the other edit of a contrast), ``family`` the edit's registered
family (``contrast`` for a contrast), ``role`` the question the test answers. Arms are made by the
perturbation registry (``auditkit.perturbations.arm_of`` and ``contrast_arm``), the one place
that knows how names are built.
"""

from __future__ import annotations

from dataclasses import dataclass

ORIGINAL = "original"       # the unedited clip: the base of every edit's test
CONTRAST = "contrast"       # the family of a test that compares two edits directly
RETEST = "control:retest"   # the rater's own noise: every audit adds it unless told not to
# "fairness": an edit that must not matter for a hiring decision, whose verdict can fail an audit;
# "attribution": an edit that asks where the rater looks (region:*), which a rater is expected to
# react to: judged as a family of its own and never a failure.
ROLES = ("fairness", "attribution")


@dataclass(frozen=True)
class Arm:
    """One test of an audit: ``arm`` − ``base`` per candidate, named ``name``."""

    name: str
    arm: str
    base: str = ORIGINAL
    family: str = ""
    role: str = "fairness"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {self.role!r}")

    @property
    def is_contrast(self) -> bool:
        return self.base != ORIGINAL

    @property
    def conditions(self) -> tuple[str, str]:
        """(base, arm): the two conditions whose scores the test pairs."""
        return self.base, self.arm
