"""The error types users see. Each message is one line: what was wrong, where, and the fix."""

from __future__ import annotations


class TroupeError(Exception):
    """Base class of every error troupe raises on purpose."""


class ConfigError(TroupeError):
    """A configuration file, environment variable or argument is invalid."""


class SpecError(TroupeError):
    """A persona, fragment or scenario file is invalid."""
