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
