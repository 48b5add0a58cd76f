"""Talk to the torch worker (`cnnsetup.machine.worker`): start it, hand it tasks, read one JSON
line per task with a deadline. A worker that cannot start, crashes or hangs is killed and
described in `WorkerRun`; nothing here raises for the worker's own failures.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from cnnsetup.i18n import _

WORKER = Path(__file__).with_name("worker.py")
PROBE_TIMEOUT_S = 60.0  # a cold `import torch` on Windows behind a virus scanner takes long
EXIT_GRACE_S = 3.0  # after the last answer, how long the worker may take to exit
STDERR_KEEP = 20_000
EVENT_PREFIX = "@cnnsetup-progress"  # the worker's progress lines on stderr (verify_tasks)
HEARTBEAT_PREFIX = "@cnnsetup-heartbeat"  # "PREFIX {json}": a task is alive, and where it is
STALL_MIN_S = 10.0  # a task silent this long (or its whole limit, if shorter) has hung


def stall_limit(limit: float) -> float:
    """How long a task that sends heartbeats may go silent before it counts as hung: a quarter
    of its time limit, at least STALL_MIN_S, at most the limit itself. A task still sending them
    when its limit runs out is slow, not hung; one that never sent any by then has hung."""
    return min(limit, max(STALL_MIN_S, limit / 4))


@dataclass
class WorkerRun:
    """What the worker did: one reply per task it finished, and why it stopped if it stopped."""

    replies: list[dict] = field(default_factory=list)
    stderr: str = ""
    returncode: Optional[int] = None
    timed_out: bool = False
    timed_out_task: Optional[str] = None  # id of the task that was running at the deadline
    # "slow": still sending heartbeats when its limit ran out; "hung": silent for stall_limit
    timed_out_kind: Optional[str] = None
    timed_out_after_s: Optional[float] = None  # how long that task had run when it was stopped
    last_heartbeat: Optional[dict] = None  # the last heartbeat of the task that was stopped
    start_error: Optional[str] = None  # the interpreter could not be started at all
    seconds: float = 0.0

    def reply(self, task_id: str) -> Optional[dict]:
        """The reply to the task with id `task_id`, or None when it never came."""
        return next((r for r in self.replies if r.get("id") == task_id), None)

    @property
    def crashed(self) -> bool:
        """The worker ended without answering every task and without being killed by us."""
        return not self.timed_out and self.start_error is None and self.returncode not in (0, None)

    def failure_text(self) -> Optional[str]:
        """Why the worker did not answer, in words plus the tail of its stderr; None if it did."""
        if self.start_error:
            return self.start_error
        if self.timed_out and self.timed_out_kind == "slow":
            text = _("task {task} was still making progress when its time limit ran out; the "
                     "worker was stopped").format(task=repr(self.timed_out_task))
        elif self.timed_out:
            text = _("no answer from task {task} in time; the worker was stopped").format(
                task=repr(self.timed_out_task))
        elif self.returncode not in (0, None):
            text = _("the worker ended with {status}").format(status=describe_exit(self.returncode))
        else:
            return None
        tail = self.stderr.strip()[-2000:]
        return text + (f"\n{tail}" if tail else "")


def describe_exit(code: int) -> str:
    """-11 -> "signal 11 (SIGSEGV)"; 3221225477 -> "exit status 0xC0000005" (Windows crash)."""
    if code < 0:
        try:
            import signal

            return f"signal {-code} ({signal.Signals(-code).name})"
        except (ValueError, AttributeError):
            return f"signal {-code}"
    if code > 0xFFFF:
        return f"exit status 0x{code:08X}"
    return f"exit status {code}"


class WorkerSession:
    """A running worker; `wait()` collects its replies. Start it early, do other work, then wait."""

    def __init__(
        self,
        tasks: Sequence[Any],
        *,
        python: Optional[str] = None,
        timeouts: Optional[Sequence[float]] = None,
        env: Optional[Mapping[str, str]] = None,
        on_event: Optional[Callable[[str], None]] = None,
    ) -> None:
        """`on_event(line)` receives, as they arrive, the worker's stderr lines that start with
        EVENT_PREFIX (progress of a long task); every other line is kept for the report."""
        self.tasks = [_normalise(t) for t in tasks]
        self._on_event = on_event
        self.timeouts = list(timeouts) if timeouts else [PROBE_TIMEOUT_S] * len(self.tasks)
        self.run = WorkerRun()
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._stderr_chunks: list[str] = []
        self._started = time.monotonic()
        self._activity = self._started  # the last heartbeat or progress event, or answer
        self._heartbeat: Optional[dict] = None
        self._proc: Optional[subprocess.Popen] = None
        self._readers: list[threading.Thread] = []
        args = [python or sys.executable, "-X", "utf8", str(WORKER)]
        full_env = dict(os.environ if env is None else env)
        full_env.setdefault("PYTHONIOENCODING", "utf-8")
        full_env.pop("PYTHONSTARTUP", None)
        _add_checkout(full_env)
        try:
            self._proc = subprocess.Popen(
                args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=full_env, **_no_window(),
            )
        except OSError as exc:
            self.run.start_error = f"{args[0]}: {exc}"
            return
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps(self.tasks).encode("utf-8"))
            self._proc.stdin.close()
        except OSError:
            pass  # it died at once; its stderr says why

    def _read_stdout(self) -> None:
        assert self._proc and self._proc.stdout
        for raw in self._proc.stdout:
            self._lines.put(raw.decode("utf-8", errors="replace"))
        self._lines.put(None)

    def _read_stderr(self) -> None:
        assert self._proc and self._proc.stderr
        for raw in self._proc.stderr:  # line by line, so events arrive while the task runs
            line = raw.decode("utf-8", errors="replace")
            if line.startswith(HEARTBEAT_PREFIX):
                self._activity = time.monotonic()
                try:
                    payload = json.loads(line[len(HEARTBEAT_PREFIX):])
                except ValueError:
                    payload = None
                self._heartbeat = payload if isinstance(payload, dict) else None
            elif line.startswith(EVENT_PREFIX):
                self._activity = time.monotonic()
                if self._on_event is None:
                    continue
                try:
                    self._on_event(line[len(EVENT_PREFIX):].strip())
                except Exception:  # a broken progress display must not lose the worker's output
                    pass
            else:
                self._stderr_chunks.append(line)

    def wait(self) -> WorkerRun:
        """Collect one reply per task. A task is stopped (and the worker killed) when it has
        gone `stall_limit` without a heartbeat or progress event (hung), or when its time limit
        runs out while it still sends them (slow); each limit counts from the previous answer."""
        if self._proc is None:
            return self.run
        pending = list(zip(self.tasks, self.timeouts))
        task_start = self._started
        eof = False
        while pending and not eof:
            limit = pending[0][1]
            try:
                line = self._lines.get(timeout=max(0.0, min(self._deadline(task_start, limit)
                                                             - time.monotonic(), 0.5)))
            except queue.Empty:
                now = time.monotonic()
                if now < self._deadline(task_start, limit):
                    continue
                beating = self._activity > task_start and now - self._activity < stall_limit(limit)
                self.run.timed_out = True
                self.run.timed_out_task = pending[0][0]["id"]
                self.run.timed_out_kind = "slow" if beating else "hung"
                self.run.timed_out_after_s = round(now - task_start, 1)
                self.run.last_heartbeat = self._heartbeat
                self._kill()
                break
            if line is None:
                eof = True
                break
            reply = _parse_reply(line)
            if reply is None:
                continue
            self.run.replies.append(reply)
            pending = [p for p in pending if p[0]["id"] != reply.get("id")]
            task_start = time.monotonic()
            self._heartbeat = None
        try:
            self.run.returncode = self._proc.wait(timeout=EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            self._kill()
            self.run.returncode = self._proc.returncode
        self._finish()
        return self.run

    def _deadline(self, task_start: float, limit: float) -> float:
        """When the running task is stopped: at its limit; earlier once it has sent a heartbeat
        and then gone silent for `stall_limit` (a task that never sends one, like the probe,
        simply has its whole limit)."""
        if self._activity > task_start:
            return min(task_start + limit, self._activity + stall_limit(limit))
        return task_start + limit

    def _kill(self) -> None:
        assert self._proc is not None
        try:
            self._proc.kill()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def _finish(self) -> None:
        # Drain what the worker wrote before it ended (a grandchild holding the pipe open
        # cannot keep us waiting long).
        for reader in self._readers:
            reader.join(timeout=1.0)
        text = "".join(self._stderr_chunks)
        self.run.stderr = text[-STDERR_KEEP:]
        self.run.seconds = round(time.monotonic() - self._started, 3)


def run_tasks(
    tasks: Sequence[Any],
    *,
    python: Optional[str] = None,
    timeouts: Optional[Sequence[float]] = None,
    env: Optional[Mapping[str, str]] = None,
    on_event: Optional[Callable[[str], None]] = None,
) -> WorkerRun:
    """Start a worker on `tasks` and wait for it (see `WorkerSession` to overlap other work)."""
    return WorkerSession(tasks, python=python, timeouts=timeouts, env=env, on_event=on_event).wait()


def _normalise(task: Any) -> dict:
    if isinstance(task, str):
        return {"task": task, "args": {}, "id": task}
    return {"task": task["task"], "args": dict(task.get("args") or {}), "id": task.get("id", task["task"])}


def _parse_reply(line: str) -> Optional[dict]:
    try:
        reply = json.loads(line)
    except ValueError:
        return None
    return reply if isinstance(reply, dict) and "task" in reply else None


def _add_checkout(env: dict) -> None:
    """Run from a source checkout (`python -m cnnsetup` in the repository, not installed), the
    worker is started by path and would not find cnnsetup for the proof tasks: append the
    checkout to its import path (last, so nothing the user set is shadowed)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "cnnsetup").is_dir():
        return  # installed: the interpreter finds it in site-packages
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(root) not in paths:
        env["PYTHONPATH"] = os.pathsep.join([*paths, str(root)])


def _no_window() -> dict:
    """On Windows, no console window flashes up for the worker."""
    if sys.platform == "win32":
        return {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)}
    return {}
