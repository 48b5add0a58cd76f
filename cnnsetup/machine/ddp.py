"""The distributed-training check: the reference network trained with DistributedDataParallel over
N processes started by torch's own launcher, every replica's weights compared at the end.

`run_ddp(2)` starts `python -m torch.distributed.run --standalone --nproc-per-node 2 -m
reference_net.distributed` (gloo on the CPU, nccl with one GPU per process on CUDA), waits for it
with a time limit and returns a `DdpResult`. Every failure (torch missing, no nccl, too few GPUs,
a process crashing, a hang, replicas that differ, accuracy below the target) becomes a result with
`ok=False`, an `error_kind` from the constants below and an `error` in plain English; callers
show their own translated message for the kind and may quote `error` as detail.

torch is never imported here: it is imported only by the training processes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

from cnnsetup.run import RunResult

# error_kind values. The first four come from the training processes themselves.
NOT_ENOUGH_GPUS = "not_enough_gpus"  # device cuda: more processes than GPUs torch sees
BACKEND_UNAVAILABLE = "backend_unavailable"  # this torch build lacks gloo or nccl
DIVERGED = "diverged"  # the replicas ended with different weights
BELOW_TARGET = "below_target"  # the validation accuracy missed the target
TORCH_MISSING = "torch_missing"  # `python` cannot import torch
DISTRIBUTED_MISSING = "distributed_missing"  # torch imports but has no torch.distributed
TIMEOUT = "timeout"  # not finished within the time limit; every process was stopped
CRASHED = "crashed"  # a training process failed
LAUNCH_FAILED = "launch_failed"  # the interpreter could not be started at all
NO_RESULT = "no_result"  # everything exited cleanly yet no result was written

DEVICES = ("cpu", "cuda")
INJECTIONS = ("divergence", "hang", "crash")
STDERR_TAIL = 4000  # characters of the processes' output kept for the report
KILL_WAIT_S = 5.0  # after killing, how long to wait for the processes to be gone

WORKER_MODULE = "reference_net.distributed"


@dataclass
class DdpResult:
    """What the distributed run did. Figures are None where the run never got that far."""

    ok: bool
    world_size: int
    backend: str  # gloo | nccl
    device: str  # cpu | cuda
    val_accuracy: Optional[float] = None  # the worst replica's, on the whole validation split
    target: Optional[float] = None  # the accuracy the smoke run must reach
    replicas_identical: Optional[bool] = None  # every replica's weights equal, bit for bit
    max_weight_diff: Optional[float] = None  # largest |weight - rank 0's weight|
    seconds: Optional[float] = None  # training plus validation, the slowest rank
    samples_per_s: Optional[float] = None  # training images per second, all ranks together
    epochs: Optional[int] = None
    error: Optional[str] = None  # plain English, None when ok
    error_kind: Optional[str] = None  # one of the constants above, None when ok
    seed: Optional[int] = None
    steps: Optional[int] = None  # optimisation steps each rank took
    batch_size: Optional[int] = None  # images per rank per step
    threads: Optional[int] = None  # torch CPU threads per rank
    wall_s: float = 0.0  # the whole launch, process start to exit
    stderr_tail: str = ""
    timed_out: bool = False
    returncode: Optional[int] = None  # the launcher's exit status; None when it was killed
    command: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)


def run_ddp(
    nprocs: int,
    *,
    device: str = "cpu",
    epochs: Optional[int] = None,
    seed: int = 0,
    timeout_s: float = 180,
    python: str = sys.executable,
    env: Optional[Mapping[str, str]] = None,
    threads: Optional[int] = None,
    inject: Optional[str] = None,
    platform: str = sys.platform,
) -> DdpResult:
    """Train the smoke configuration over `nprocs` processes on `device` and check the replicas.

    `python` is the interpreter that has torch; `env` the environment for the processes (default:
    this process's). `threads` is torch's CPU threads per process (default: the cores shared out,
    at least one each). `inject` ("divergence", "hang" or "crash") tests the check itself: the
    last process nudges a weight after training, stops before training, or raises before
    training. Raises ValueError only for arguments that make no sense; everything that goes
    wrong on the machine is a result."""
    if isinstance(nprocs, bool) or not isinstance(nprocs, int) or nprocs < 1:
        raise ValueError(f"nprocs must be a whole number of at least 1, not {nprocs!r}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, not {device!r}")
    if inject is not None and inject not in INJECTIONS:
        raise ValueError(f"inject must be one of {INJECTIONS} or None, not {inject!r}")
    threads = threads or threads_per_process(nprocs)
    backend = "nccl" if device == "cuda" else "gloo"
    workdir = Path(tempfile.mkdtemp(prefix="cnnsetup-ddp-"))
    result_path = workdir / "result.json"
    try:
        argv = command(nprocs, result_path, device=device, epochs=epochs, seed=seed,
                       threads=threads, python=python, inject=inject, log_dir=workdir / "logs")
        started = time.monotonic()
        # The launch folder as working directory: `-m` puts it first on sys.path, and it holds
        # nothing that could shadow torch (a torch.py in the user's folder would).
        ran = run_process_tree(argv, timeout=timeout_s,
                               env=process_env(env, threads=threads, platform=platform),
                               cwd=workdir, platform=platform)
        wall = time.monotonic() - started
        out = interpret(ran, read_result(result_path), rank_errors(result_path),
                        world_size=nprocs, backend=backend, device=device, wall_s=wall,
                        timeout_s=timeout_s, python=python)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    # What was asked for, where the processes never got to say it themselves.
    from reference_net.smoke import SMOKE  # configuration only: no torch

    asked_for = (("target", SMOKE.target_accuracy), ("seed", seed), ("threads", threads),
                 ("epochs", SMOKE.epochs if epochs is None else epochs))
    for name, asked in asked_for:
        if getattr(out, name) is None:
            setattr(out, name, asked)
    return out


def command(nprocs: int, result_path: os.PathLike[str] | str, *, device: str = "cpu",
            epochs: Optional[int] = None, seed: int = 0, threads: Optional[int] = None,
            python: str = sys.executable, inject: Optional[str] = None,
            log_dir: os.PathLike[str] | str | None = None) -> list[str]:
    """The launch command: torch's launcher (torchrun) as a module of `python`, so no script
    on PATH is needed; `--standalone` picks a free loopback port for the rendezvous."""
    argv = [python, "-X", "utf8", "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", str(nprocs), "--max-restarts", "0"]
    if log_dir is not None:
        argv += ["--log-dir", str(log_dir)]
    argv += ["-m", WORKER_MODULE, "--result", str(result_path), "--device", device,
             "--seed", str(seed)]
    if epochs is not None:
        argv += ["--epochs", str(epochs)]
    if threads is not None:
        argv += ["--threads", str(threads)]
    if inject is not None:
        argv.append(f"--inject-{inject}")
    return argv


def threads_per_process(nprocs: int, cores: Optional[int] = None) -> int:
    """torch CPU threads for each of `nprocs` processes: the cores shared out, at least one each,
    at most the smoke run's own cap (small batches gain nothing from more)."""
    from reference_net.smoke import SMOKE  # configuration only: no torch

    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
        cores = cores or os.cpu_count() or 1
    return max(1, min(cores // nprocs, SMOKE.max_threads))


def process_env(env: Optional[Mapping[str, str]] = None, *, threads: int = 1,
                platform: str = sys.platform) -> dict[str, str]:
    """The environment for the launcher and its processes."""
    full = dict(os.environ if env is None else env)
    # torchrun reads PET_* variables as defaults for its options; a leftover one from the user's
    # own jobs (PET_NNODES...) must not change this run.
    for name in [n for n in full if n.startswith(("PET_", "TORCHELASTIC_"))]:
        del full[name]
    # reference_net must be importable by the processes wherever cnnsetup is installed.
    root = str(_reference_net_root())
    paths = [p for p in full.get("PYTHONPATH", "").split(os.pathsep) if p]
    full["PYTHONPATH"] = os.pathsep.join([root] + [p for p in paths if p != root])
    full["OMP_NUM_THREADS"] = str(threads)  # torchrun otherwise sets 1 and prints a warning
    # Idle OpenMP threads sleep instead of spinning: on a machine where another program holds a
    # core, spinning threads that wait for a descheduled peer made training ten times slower.
    full.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    full["PYTHONIOENCODING"] = "utf-8"
    full.pop("PYTHONSTARTUP", None)
    if platform == "win32":
        # torch's Windows wheels are built without libuv, yet its TCPStore asks for it.
        full["USE_LIBUV"] = "0"
    return full


def _reference_net_root() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("reference_net")
    if spec is None or not spec.submodule_search_locations:
        return Path(__file__).resolve().parents[2]
    return Path(list(spec.submodule_search_locations)[0]).resolve().parent


def read_result(path: Path) -> Optional[dict]:
    """Rank 0's JSON result, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def rank_errors(result_path: Path) -> list[str]:
    """The exceptions the ranks wrote before failing, the earliest first (the first failure is
    the cause; the others are usually peers that lost their connection to it)."""
    found = []
    for path in result_path.parent.glob(result_path.name + ".rank*.error"):
        try:
            found.append((path.stat().st_mtime_ns, path.read_text(encoding="utf-8",
                                                                  errors="replace")))
        except OSError:
            continue
    return [text.strip() for _, text in sorted(found)]


_TORCH_MISSING = re.compile(r"No module named '?torch'?(?![.\w])")
_DISTRIBUTED_MISSING = re.compile(r"No module named '?torch\.distributed|"
                                  r"torch\.distributed is not available")
_EXCEPTION_LINE = re.compile(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception|Interrupt)):\s*(.+)$")


def interpret(ran: RunResult, result: Optional[dict], errors: Sequence[str], *,
              world_size: int, backend: str, device: str, wall_s: float = 0.0,
              timeout_s: float = 0.0, python: str = "python") -> DdpResult:
    """Turn the launch and what the processes wrote into one `DdpResult`."""
    output = (ran.stderr + ("\n" + ran.stdout if ran.stdout.strip() else "")).strip()
    out = DdpResult(ok=False, world_size=world_size, backend=backend, device=device,
                    wall_s=round(wall_s, 3), stderr_tail=output[-STDERR_TAIL:],
                    timed_out=ran.timed_out, returncode=ran.returncode, command=list(ran.args))
    if result is not None:
        for name in ("ok", "backend", "val_accuracy", "target", "replicas_identical",
                     "max_weight_diff", "seconds", "samples_per_s", "epochs", "error",
                     "error_kind", "seed", "steps", "batch_size", "threads"):
            if name in result:
                setattr(out, name, result[name])
        out.ok = result.get("ok") is True
    if ran.not_found or ran.error:
        return _fail(out, LAUNCH_FAILED, f"could not start {python}: {ran.error or 'not found'}")
    if ran.timed_out:
        if result is None:
            text = f"the {world_size} training processes did not finish within {timeout_s:g} s"
        else:
            text = (f"the {world_size} training processes wrote their result but did not exit "
                    f"within {timeout_s:g} s")
        return _fail(out, TIMEOUT, text + "; they were stopped")
    if result is not None:
        if out.ok and ran.returncode != 0:
            return _fail(out, CRASHED, "the check passed but a training process then ended "
                                       f"with {exit_text(ran.returncode)}: "
                                       f"{_first_error(errors, output)}")
        if not out.ok and not out.error:
            return _fail(out, NO_RESULT, "the result says the check failed but not why")
        return out
    if _TORCH_MISSING.search(output):
        return _fail(out, TORCH_MISSING, f"torch is not installed for {python}")
    if _DISTRIBUTED_MISSING.search(output):
        return _fail(out, DISTRIBUTED_MISSING,
                     f"the torch installed for {python} has no torch.distributed")
    if ran.returncode != 0:
        return _fail(out, CRASHED, f"a training process failed "
                                   f"({exit_text(ran.returncode)}): {_first_error(errors, output)}")
    return _fail(out, NO_RESULT, "the training processes ended without writing a result")


def _fail(out: DdpResult, kind: str, error: str) -> DdpResult:
    out.ok, out.error_kind, out.error = False, kind, error
    return out


def _first_error(errors: Sequence[str], output: str) -> str:
    """The first failure's exception text: from the ranks' own reports, else the last exception
    line of the output that is not the launcher's summary of it."""
    if errors:
        return errors[0].splitlines()[0] if errors[0] else "unknown error"
    for line in reversed(output.splitlines()):
        match = _EXCEPTION_LINE.match(line)
        if match and match.group(1) != "ChildFailedError":
            return f"{match.group(1)}: {match.group(2).strip()}"
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no error message"


def exit_text(code: Optional[int]) -> str:
    """-9 -> "signal 9 (SIGKILL)"; 1 -> "exit status 1"."""
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            return f"signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def run_process_tree(
    args: Sequence[str], *, timeout: float, env: Optional[Mapping[str, str]] = None,
    cwd: os.PathLike[str] | str | None = None, platform: str = sys.platform,
) -> RunResult:
    """`cnnsetup.run.run` for a program that starts processes of its own, as torchrun does (one
    per rank, each in a session of its own). Output goes to files, not pipes, so a process left
    holding them cannot keep us waiting; on timeout, or when we are interrupted, the whole tree
    is killed, not only the direct child."""
    argv = [str(a) for a in args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env=dict(env) if env is not None else None, cwd=cwd,
                                    **_own_group(platform))
        except FileNotFoundError as exc:
            return RunResult(argv, not_found=True, error=str(exc))
        except OSError as exc:
            return RunResult(argv, error=str(exc))
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_tree(proc)
        except BaseException:  # Ctrl-C: the processes are in their own sessions, so stop them
            kill_tree(proc)
            raise
        out.seek(0)
        err.seek(0)
        return RunResult(argv, None if timed_out else proc.returncode, _text(out.read()),
                         _text(err.read()), timed_out=timed_out)


def _own_group(platform: str) -> dict:
    if platform == "win32":
        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        flags |= getattr(subprocess, "CREATE_NO_WINDOW", 0)
        return {"creationflags": flags}
    return {"start_new_session": True}


def kill_tree(proc: subprocess.Popen) -> None:
    """Kill `proc` and every process below it, and wait for them to be gone.

    `proc` is frozen first so that it cannot start another process between the moment its
    descendants are listed and the moment they are killed; they are listed while it is alive
    (once it dies, its orphans no longer show as its descendants)."""
    import psutil

    descendants: list = []
    try:
        parent = psutil.Process(proc.pid)
        parent.suspend()
        descendants = parent.children(recursive=True)
    except psutil.Error:
        pass
    for child in descendants:
        try:
            child.kill()
        except psutil.Error:
            pass
    if hasattr(os, "killpg"):
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own group, anything listed or not
        except OSError:
            pass
    try:
        proc.kill()
    except OSError:
        pass
    try:
        proc.wait(timeout=KILL_WAIT_S)
    except subprocess.TimeoutExpired:
        pass
    wait_gone(descendants, timeout=KILL_WAIT_S)


def wait_gone(processes: Sequence, timeout: float) -> bool:
    """Wait until every psutil process in `processes` has ended; True if they all did in time.
    A zombie counts as ended: it runs nothing, and only its new parent can reap it."""
    import psutil

    deadline = time.monotonic() + timeout
    pending = list(processes)
    while pending:
        still = []
        for process in pending:
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    still.append(process)
            except psutil.Error:
                pass
        pending = still
        if not pending:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
