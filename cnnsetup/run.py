"""Every subprocess cnnsetup starts: an argument list (never a shell), a timeout, and a result
that says plainly whether the program was missing, timed out, failed or worked."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import Mapping, Sequence


@dataclass
class RunResult:
    """What happened when a program ran. `ok` is True only for exit status 0."""

    args: list[str]
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    not_found: bool = False
    timed_out: bool = False
    error: str | None = None  # OSError text when the program could not be started

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.not_found


def run(
    args: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> RunResult:
    """Run `args` and capture its output as text; never raises for the program's own failures."""
    argv = [str(a) for a in args]
    try:
        completed = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            env=dict(env) if env is not None else None,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            cwd=cwd,
        )
    except FileNotFoundError as exc:
        return RunResult(argv, not_found=True, error=str(exc))
    except subprocess.TimeoutExpired as exc:
        return RunResult(
            argv,
            timed_out=True,
            stdout=_text(exc.stdout),
            stderr=_text(exc.stderr),
        )
    except OSError as exc:  # permission denied, exec format error...
        return RunResult(argv, error=str(exc))
    return RunResult(argv, completed.returncode, completed.stdout, completed.stderr)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data
