"""Domain errors, each with its exit code and a stable code for programs.

Commands never print an error and exit themselves: they raise a `CnnsetupError` (or a subclass),
and `cnnsetup.cli` is the one place it becomes a message on stderr (or, with `--json`, the one
JSON object on stdout: `{"ok": false, "error": {"code": ..., "message": ...}}`) and an exit status:

    0  success
    1  failure (the error's message says what to do)
    2  usage error: the command line asked for something that can never be valid
    130  interrupted (Ctrl-C), the shell's convention for SIGINT

Codes are dotted, lower-case, English and stable: scripts match on them, so a code is never
renamed once released (a new situation gets a new code). `CODES` lists the ones cnnsetup itself
produces outside any command; commands add their own (`mirror.no_backup`, `report.none_found`...).
"""

from __future__ import annotations

from typing import Optional

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Codes produced by the command-line machinery itself (cnnsetup.cli), with what they mean.
CODES = {
    "failed": "a failure with no more specific code",
    "usage.invalid_value": "a value that can never be valid (an unknown mirror, a negative size)",
    "usage.no_such_option": "an option the command does not have",
    "usage.no_such_command": "a command that does not exist",
    "usage.missing_parameter": "a required argument or option is missing",
    "usage.error": "any other command-line error",
    "config.invalid": "a configuration file cnnsetup refuses to touch",
    "file.unsafe": "a file operation that would risk the user's data",
    "interrupted": "Ctrl-C (exit status 130)",
    "aborted": "a question was not answered (end of input)",
    "output.closed": "stdout was closed while cnnsetup was writing to it (`| head`)",
    "internal.error": "a bug in cnnsetup: the traceback is on stderr",
    "command.failed": "the command finished and reported a failure in its own fields",
}


class CnnsetupError(Exception):
    """A failure the user can act on; the message is already translated and says what to do.

    `code` is the stable dotted code programs see with `--json` (English, never translated);
    each class has a default, and a raise site may give a more specific one."""

    exit_code = EXIT_FAILURE
    code = "failed"

    def __init__(self, message: str, *, hint: Optional[str] = None,
                 code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code


class UsageError(CnnsetupError):
    """The command line asked for something that does not exist (an unknown mirror name...)."""

    exit_code = EXIT_USAGE
    code = "usage.invalid_value"


class ConfigError(CnnsetupError):
    """A configuration file cnnsetup refuses to touch (broken YAML, wrong types, bad bytes)."""

    code = "config.invalid"


class FileSafetyError(CnnsetupError):
    """A file operation that would risk the user's data (edited since our write, unwritable)."""

    code = "file.unsafe"


class Interrupted(CnnsetupError):
    """Ctrl-C, after the command has said what was finished and how to go on."""

    exit_code = EXIT_INTERRUPTED
    code = "interrupted"


class OutputClosed(CnnsetupError):
    """stdout was closed under the command (`cnnsetup ... | head -3`); state is saved first."""

    code = "output.closed"
