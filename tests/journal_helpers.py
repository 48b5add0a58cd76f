"""Helpers for the journal's fault tests: run cnnsetup in a real process that dies (os._exit,
like kill -9: no `finally` runs) right after its N-th file-system step, and check what is left."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Optional

from tests.conftest import REPO_ROOT

# Counts every rename/replace/unlink cnnsetup makes; dies right after the N-th one.
CRASH_PROGRAM = r"""
import os, sys
limit = int(os.environ["CNNSETUP_TEST_CRASH_AFTER"])
mode = os.environ.get("CNNSETUP_TEST_CRASH_MODE", "exit")
count = [0]
def counting(real):
    def step(*args, **kwargs):
        result = real(*args, **kwargs)
        count[0] += 1
        if count[0] == limit:
            if mode == "exit":
                os._exit(137)
            import signal
            os.kill(os.getpid(), signal.SIGINT)
        return result
    return step
for name in ("replace", "rename", "unlink"):
    setattr(os, name, counting(getattr(os, name)))
from cnnsetup.__main__ import entrypoint
entrypoint()
"""


def run_crashing(args: list[str], crash_after: int, *, mode: str = "exit",
                 timeout: float = 120) -> subprocess.CompletedProcess:
    """`cnnsetup ARGS` in a process that dies (mode "exit") or gets SIGINT (mode "sigint")
    right after its `crash_after`-th rename/replace/unlink."""
    env = dict(os.environ)
    env.pop("LANGUAGE", None)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["CNNSETUP_TEST_CRASH_AFTER"] = str(crash_after)
    env["CNNSETUP_TEST_CRASH_MODE"] = mode
    return subprocess.run([sys.executable, "-c", CRASH_PROGRAM, *args], capture_output=True,
                          text=True, encoding="utf-8", errors="replace", env=env,
                          timeout=timeout)


def start_cnnsetup(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("LANGUAGE", None)
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.Popen([sys.executable, "-m", "cnnsetup", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8",
                            errors="replace", env=env)


def read_or_none(path: Path) -> Optional[bytes]:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


CLAIM = re.compile(r"Your original is kept in (\S+);")


def claimed_backup(output: str) -> Optional[Path]:
    """The backup file a switch's output says holds the original, if it says so."""
    found = CLAIM.search(output)
    return Path(found.group(1)) if found else None


def leftovers(home: Path) -> list[str]:
    """cnnsetup's files in `home` besides the .condarc (backups, records, temp files)."""
    return sorted(p.name for p in home.iterdir()
                  if p.name.startswith(".condarc") and p.name != ".condarc")
