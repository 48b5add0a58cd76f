"""Commands a user pastes, quoted for the shell they paste them into.

Three shells matter: POSIX shells (bash, zsh, fish, Git Bash), Windows `cmd.exe` (also the
Anaconda Prompt) and PowerShell. They quote differently: a path with a space is `"C:\\Program
Files\\..."` in cmd, but a quoted string at the start of a PowerShell line is a value, not a
program, so PowerShell needs the call operator: `& 'C:\\Program Files\\...'`.

    >>> python_command("/home/li/venv/bin/python", ["-m", "pip", "install", "numpy"], "posix")
    '"/home/li/venv/bin/python" -m pip install numpy'
    >>> python_command(r"C:\\Users\\Li Lei\\python.exe", ["-V"], "powershell")
    "& 'C:\\\\Users\\\\Li Lei\\\\python.exe' -V"

Every fix that runs Python names the interpreter by its full path through `python_command`, so
the command runs in that interpreter whatever `python` on PATH is. `pip_install` adds the pip
mirror's index when one is configured. Which shell: `CNNSETUP_SHELL` (posix | cmd | powershell),
else the nearest shell among the parent processes (psutil), else PowerShell on Windows (the
default of Windows Terminal) and POSIX elsewhere.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import sys
from typing import Mapping, Optional, Sequence

POSIX, CMD, POWERSHELL = "posix", "cmd", "powershell"
SHELLS = (POSIX, CMD, POWERSHELL)

_PROCESS_SHELLS = {
    "cmd.exe": CMD, "cmd": CMD,
    "powershell.exe": POWERSHELL, "pwsh.exe": POWERSHELL, "pwsh": POWERSHELL,
    "powershell": POWERSHELL,
    "bash": POSIX, "bash.exe": POSIX, "zsh": POSIX, "sh": POSIX, "dash": POSIX, "fish": POSIX,
    "ksh": POSIX, "sh.exe": POSIX,
}
_PLAIN = re.compile(r"^[A-Za-z0-9_@%+:,./\\-]+$")


def detect(platform: str = sys.platform, env: Optional[Mapping[str, str]] = None) -> str:
    """The user's shell: CNNSETUP_SHELL when it names one, else the nearest shell process above
    this one, else PowerShell on Windows and POSIX elsewhere."""
    env = os.environ if env is None else env
    chosen = (env.get("CNNSETUP_SHELL") or "").strip().lower()
    if chosen in SHELLS:
        return chosen
    found = _parent_shell()
    if found == POSIX or (found and platform == "win32"):
        return found
    return POWERSHELL if platform == "win32" else POSIX


@functools.lru_cache(maxsize=1)
def _parent_shell() -> Optional[str]:
    try:
        import psutil

        for process in psutil.Process().parents()[:8]:
            kind = _PROCESS_SHELLS.get(process.name().lower())
            if kind:
                return kind
    except Exception:  # no psutil, or a parent that cannot be read: fall back to the platform
        return None
    return None


class PathArg(str):
    """An argument that is a path: always quoted, so it reads as one thing whatever it holds."""


def quote(word: str, shell: str = POSIX) -> str:
    """`word` as one argument in `shell`; plain words stay as they are (a PathArg never)."""
    if isinstance(word, PathArg):
        return quote_always(word, shell)
    if word and _PLAIN.match(word) and not (shell == POSIX and "\\" in word):
        return word
    return quote_always(word, shell)


def quote_always(word: str, shell: str = POSIX) -> str:
    """`word` in quotes even when it needs none (a path reads as one thing)."""
    if shell == POWERSHELL:
        return "'" + word.replace("'", "''") + "'"
    if shell == CMD:
        return '"' + word.replace('"', '""') + '"'
    if re.search(r'[$`"\\!]', word):
        return shlex.quote(word)
    return f'"{word}"'


def program(path: str, shell: str = POSIX) -> str:
    """A program named by its path, ready to be followed by arguments."""
    quoted = quote_always(path, shell)
    return f"& {quoted}" if shell == POWERSHELL else quoted


def command(path: str, args: Sequence[str], shell: str = POSIX) -> str:
    """`path args...` for `shell`: the program by its quoted full path, each argument quoted
    as needed."""
    return " ".join([program(path, shell), *(quote(a, shell) for a in args)])


def python_command(python: Optional[str], args: Sequence[str], shell: str = POSIX) -> str:
    """`"<python>" args...`; without a known interpreter, `python args...`."""
    if not python:
        return " ".join(["python", *(quote(a, shell) for a in args)])
    return command(python, args, shell)


def pip_install(python: Optional[str], packages: Sequence[str], shell: str = POSIX, *,
                index_url: Optional[str] = None, extra: Sequence[str] = ()) -> str:
    """`"<python>" -m pip install PACKAGES [extra] [-i INDEX]`: `index_url` is the pip mirror's
    PyPI index when one is configured (None: pip's own setting)."""
    args = ["-m", "pip", "install", *packages, *extra]
    if index_url:
        args += ["-i", index_url]
    return python_command(python, args, shell)


def remove_folder(path: str, shell: str = POSIX) -> str:
    """The command that deletes the folder `path` and everything in it."""
    if shell == POWERSHELL:
        return f"Remove-Item -Recurse -Force {quote_always(path, shell)}"
    if shell == CMD:
        return f"rmdir /s /q {quote_always(path, shell)}"
    return f"rm -rf {quote_always(path, shell)}"
