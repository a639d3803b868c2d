"""Errors a user can cause and fix. The CLI prints them as one line and exits 2."""

from __future__ import annotations


class AuditkitError(Exception):
    """A mistake in the user's input (files, arguments, configuration, rater)."""


class ClipError(AuditkitError):
    """A clip that cannot be read. Inside a folder it becomes a ``skipped`` entry, not a stop."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class RaterError(AuditkitError):
    """A rater that cannot be loaded, or that returned something unusable."""


class ConfigError(AuditkitError):
    """A configuration file or argument that does not fit."""


class PartialScores(Exception):
    """Raised by a rater that scored some rows of a batch but not others (a vendor endpoint whose
    request for one clip finally failed). The audit keeps the rows that were scored and lists
    each failed row in ``skipped`` with its reason; a failed row is never scored as zero.

    ``scores``: ``[B, K]`` (any values in failed rows); ``failures``: row index -> reason.
    """

    def __init__(self, scores: object, failures: dict[int, str]) -> None:
        super().__init__(f"{len(failures)} row(s) of the batch could not be scored")
        self.scores = scores
        self.failures = dict(failures)


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first non-blank line of an exception's message, or its type's name when it has none
    (a bare ``assert``, ``ValueError()``): what a one-line reason quotes."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return type(exc).__name__


def last_line(exc: BaseException, limit: int = 300) -> str:
    """The last non-blank line of an exception's message (where a nested traceback says why), or
    its type's name when it has none."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1][:limit] if lines else type(exc).__name__
