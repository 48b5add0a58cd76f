"""Domain errors, each with its exit code. `cnnsetup.cli.main` is the one place they become
messages on stderr and exit statuses: 0 success, 1 failure, 2 usage error."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CnnsetupError(Exception):
    """A failure the user can act on; the message is already translated and says what to do."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(CnnsetupError):
    """The command line asked for something that does not exist (an unknown mirror name...)."""

    exit_code = EXIT_USAGE


class ConfigError(CnnsetupError):
    """A configuration file cnnsetup refuses to touch (broken YAML, wrong types, bad bytes)."""


class FileSafetyError(CnnsetupError):
    """A file operation that would risk the user's data (edited since our write, unwritable)."""
