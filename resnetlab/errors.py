"""Project error types. Every message says what went wrong, where, and how to fix it."""

from __future__ import annotations


class ResnetlabError(Exception):
    """Base class of every error resnetlab raises on purpose."""


class ConfigError(ResnetlabError, ValueError):
    """An invalid model, training or dashboard configuration (names the field and the fix)."""


class DataError(ResnetlabError):
    """A dataset file that is missing, truncated, corrupt or not in the expected format."""


class CheckpointError(ResnetlabError):
    """A checkpoint that cannot be read or does not fit the model it is loaded into."""


class BackendError(ResnetlabError):
    """A plotting/GUI backend that is unknown or cannot be used in this environment."""


class JobError(ResnetlabError):
    """A background job that failed or was used in a way that would deadlock."""


class StoreError(ResnetlabError):
    """A run-store problem: unknown run id, unreadable database."""
