"""Helpers for the journal's fault tests: run cnnsetup in a real process that is killed or
interrupted at its N-th file operation (SignalServer), and check what is left."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tests.conftest import REPO_ROOT

# cnnsetup commands in a real process that is killed or interrupted at a chosen file operation:
# a server process imports cnnsetup once, then runs each command in a fork of itself (a few ms,
# instead of a fresh interpreter's imports for every crash point). The fork counts its calls of
# the operations named in the request and, at the N-th (before or after the call):
#   signal 0          os._exit(137): dies like kill -9, no `finally` runs;
#   signal SIGKILL    a real kill -9 of itself;
#   signal SIGINT     a real SIGINT to itself, as Ctrl-C sends it (handled wherever it lands).
# STEPS are the journal's steps (each rename/replace/unlink). EVERY_OPERATION adds every os.open
# (reading a file, creating a temp file, the folder fsync, the lock) and os.fsync: between two
# of them only the bytes written into a temp file just opened change, so "before operation N"
# for every N reaches every disk state a signal at a random moment can leave (a temp file
# written but not renamed, each rename, each unlink), except a temp file still empty (a signal
# between its open and its write), which recovery removes by its name like a written one.
STEPS = ("replace", "rename", "unlink")
EVERY_OPERATION = ("open", "fsync", "replace", "rename", "unlink")

SERVER_PROGRAM = r"""
import json, os, signal, sys
from cnnsetup.cli import main  # imported once, before any fork
import cnnsetup.commands.mirror, cnnsetup.mirror.switch  # noqa: F401
real = {name: getattr(os, name) for name in ("open", "fsync", "replace", "rename", "unlink")}
for line in iter(sys.stdin.readline, ""):
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        for fd, name, flags in ((0, os.devnull, os.O_RDONLY),
                                (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
            opened = os.open(name, flags, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        # A command that hangs fails its test with its stack, instead of hanging the suite.
        import faulthandler
        faulthandler.dump_traceback_later(120, exit=True)
        count = [0]
        def fire():
            real["open"](request["fired"], os.O_WRONLY | os.O_CREAT, 0o600)
            if not request["signal"]:
                os._exit(137)
            os.kill(os.getpid(), request["signal"])  # delivered right here
        def counting(real_call):
            def step(*args, **kwargs):
                count[0] += 1
                hit = count[0] == request["at"]
                if hit and not request["after"]:
                    fire()
                result = real_call(*args, **kwargs)
                if hit and request["after"]:
                    fire()
                return result
            return step
        for name in request["points"]:
            setattr(os, name, counting(real[name]))
        sys.argv = ["cnnsetup", *request["args"]]
        code = 1
        try:
            for stream in (sys.stdout, sys.stderr):
                stream.reconfigure(errors="replace")
            code = main(request["args"])
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code or 0)
    _pid, status = os.waitpid(pid, 0)
    sys.stdout.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
    sys.stdout.flush()
"""


@dataclass
class SignalledRun:
    returncode: int  # negative: killed by that signal (as subprocess reports it)
    stdout: str
    stderr: str
    fired: bool  # False: the command finished before its N-th file operation


class SignalServer:
    """Runs cnnsetup commands, each in a fresh fork, signalled before their N-th file operation
    (see SERVER_PROGRAM). Use as a context manager, inside the test (it takes the test's HOME)."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        scratch.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.pop("LANGUAGE", None)
        env["PYTHONPATH"] = str(REPO_ROOT)
        self.process = subprocess.Popen([sys.executable, "-c", SERVER_PROGRAM],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=env)

    def run(self, args: list[str], at: int, signal_number: int, *,
            points: tuple[str, ...] = EVERY_OPERATION, after: bool = False) -> SignalledRun:
        """`cnnsetup ARGS`, signalled (0: os._exit(137)) before (or `after`) the `at`-th call of
        the os functions named in `points`."""
        out, err, fired = (self.scratch / n for n in ("stdout", "stderr", "fired"))
        fired.unlink(missing_ok=True)
        request = {"args": args, "at": at, "signal": int(signal_number), "points": list(points),
                   "after": after, "stdout": str(out), "stderr": str(err), "fired": str(fired)}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        assert reply, "the signal server died"
        read = lambda path: path.read_text(encoding="utf-8", errors="replace")  # noqa: E731
        return SignalledRun(json.loads(reply)["returncode"], read(out), read(err),
                            fired.exists())

    def crash_after_step(self, args: list[str], step: int, *, mode: str = "exit") -> SignalledRun:
        """`cnnsetup ARGS` dying (mode "exit": os._exit(137), like kill -9) or getting SIGINT
        (mode "sigint") right after its `step`-th journal step (rename/replace/unlink)."""
        return self.run(args, step, 0 if mode == "exit" else signal.SIGINT, points=STEPS,
                        after=True)

    def __enter__(self) -> "SignalServer":
        return self

    def __exit__(self, *exc) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


TEMP_NAME = re.compile(r"\.[a-z0-9_]{8}\.tmp$")


def disk_state(home: Path) -> tuple:
    """The .condarc and cnnsetup's files beside it with their bytes: everything the next run's
    recovery reads. Temp files go by their name less the random part, and the record without
    its `created` time stamp (which only a message shows), so equal states compare equal."""
    def content(path: Path) -> bytes:
        data = path.read_bytes()
        if path.name.endswith(".cnnsetup-backup.json"):
            with contextlib.suppress(ValueError, AttributeError):
                record = json.loads(data)
                record.pop("created")
                return json.dumps(record, sort_keys=True).encode()
        return data
    return tuple(sorted((TEMP_NAME.sub(".*.tmp", p.name), content(p))
                        for p in home.iterdir() if p.name.startswith(".condarc")))


def files_beside(condarc: Path) -> dict[str, tuple[bytes, int]]:
    """The .condarc and cnnsetup's files beside it: name -> (bytes, permission bits)."""
    return {p.name: (p.read_bytes(), p.stat().st_mode & 0o7777)
            for p in condarc.parent.iterdir() if p.name.startswith(".condarc")}


def put_back(condarc: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Make the files beside `condarc` exactly `files` (from files_beside), nothing else."""
    for path in condarc.parent.iterdir():
        if path.name.startswith(".condarc") and path.name not in files:
            path.unlink()
    for name, (data, mode) in files.items():
        (condarc.parent / name).write_bytes(data)
        os.chmod(condarc.parent / name, mode)


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
