"""The distributed-training check: the reference network trained with DistributedDataParallel over
N processes per node started by torch's own launcher, on one machine or on several, every
replica's weights compared at the end, then an all-reduce bandwidth sweep between all processes.

`run_ddp(2)` starts `python -m torch.distributed.run --standalone --nproc-per-node 2 -m
reference_net.distributed` (gloo on the CPU, nccl with one GPU per process on CUDA), waits for it
with a time limit and returns a `DdpResult`. With a `Cluster` of several nodes (`resolve_cluster`:
from the command line, else from Slurm's variables, see cnnsetup.machine.slurm) the same command
runs on every node with torch's static rendezvous (`--nnodes M --node-rank R --master-addr HOST
--master-port PORT`: node rank 0 hosts the TCP store the others connect to) or its c10d rendezvous
(`--rdzv-backend c10d --rdzv-endpoint HOST:PORT`: node ranks assigned as nodes arrive).

Every failure (torch missing, no nccl, too few GPUs, a process crashing, a hang, replicas that
differ, accuracy below the target, a node that never joins, a port in use, a master address that
is loopback for the others, a master nobody can connect to) becomes a result with `ok=False`, an
`error_kind` from the constants below, an `error` in plain English and, where one exists, a `fix`
(a command); `render_ddp` words it in the user's language, `ddp_json` is the report's `ddp` object.
Some failures are found before anything starts (`preflight`), the others in torch's own messages.

torch is never imported here: it is imported only by the training processes.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence

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
# Between nodes:
NODE_MISSING = "node_missing"  # the rendezvous timed out before every node joined
PORT_IN_USE = "port_in_use"  # the master's rendezvous port is taken on the master
ADDRESS_LOOPBACK = "address_loopback"  # a name the other nodes would reach resolves to 127.x here
MASTER_UNREACHABLE = "master_unreachable"  # this node could not connect to the master's port

RDZV_TIMEOUT_S = 120.0  # default --rdzv-timeout: how long a node waits for the others
PROBE_TIMEOUT_S = 3.0  # a plain TCP connection to the master, to tell "refused" from "dropped"

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
    # Between nodes (one machine: nnodes 1, node_rank 0):
    nnodes: int = 1
    node_rank: Optional[int] = None  # assigned by the rendezvous with c10d
    local_world_size: Optional[int] = None  # processes on this node
    master: Optional[str] = None  # "host:port" the nodes meet at
    rendezvous: str = "standalone"  # standalone | static | c10d
    slurm: Optional[dict] = None  # the SLURM_* values used, None outside Slurm
    ranks: Optional[list] = None  # every rank's {rank, node_rank, local_rank, host, figures}
    node: Optional[dict] = None  # this node's part: {node_rank, host, ranks, figures}
    bandwidth: Optional[list] = None  # [{bytes, seconds, algbw_gbps, busbw_gbps}]
    latency_us: Optional[float] = None  # one-element all-reduce, mean
    bench_capped: Optional[bool] = None  # sizes left out to stay within the time budget
    bench_seconds: Optional[float] = None
    arrived: Optional[int] = None  # nodes that joined, when the rendezvous says so
    probe: Optional[str] = None  # open | refused | timeout | unresolved: a TCP try of the master
    fix: Optional[str] = None  # a command that addresses the failure

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)


@dataclass
class Cluster:
    """How the nodes of a job find each other. One machine alone: the default (`standalone`).

    Static rendezvous: `master_addr`, `master_port` and `node_rank` given, node rank 0 hosts the
    store. c10d rendezvous: `rdzv_endpoint` "host:port" given, node ranks assigned as nodes join
    (every node must use the same `rdzv_id`). `rdzv_timeout` bounds the wait for the others, in
    seconds. `slurm` holds the SLURM_* values the settings came from, None when none did."""

    nnodes: int = 1
    node_rank: Optional[int] = None
    master_addr: Optional[str] = None
    master_port: Optional[int] = None
    rdzv_endpoint: Optional[str] = None
    rdzv_id: str = "cnnsetup-verify"
    rdzv_timeout: float = RDZV_TIMEOUT_S
    slurm: Optional[dict] = None

    @property
    def rendezvous(self) -> str:
        if self.rdzv_endpoint:
            return "c10d"
        return "static" if self.master_addr else "standalone"

    @property
    def master(self) -> Optional[str]:
        """"host:port" the nodes meet at; None for standalone (torch picks a free port)."""
        if self.rdzv_endpoint:
            return self.rdzv_endpoint
        if self.master_addr:
            return join_host_port(self.master_addr, self.master_port or DEFAULT_MASTER_PORT)
        return None

    @property
    def master_host(self) -> Optional[str]:
        return split_host_port(self.master)[0] if self.master else None

    @property
    def master_port_number(self) -> Optional[int]:
        return split_host_port(self.master)[1] if self.master else None

    @property
    def all_on_this_machine(self) -> bool:
        """A loopback master: every node runs on this machine (how the tests run two nodes)."""
        return self.master is None or is_loopback_name(self.master_host or "")


DEFAULT_MASTER_PORT = 29500  # torchrun's own default for --master-port
_CLUSTER: contextvars.ContextVar[Optional[Cluster]] = contextvars.ContextVar("cluster",
                                                                           default=None)


@contextlib.contextmanager
def use_cluster(cluster: Optional[Cluster]) -> Iterator[None]:
    """Within the block, `run_ddp` calls that name no cluster use `cluster`: how `cnnsetup
    verify` hands its multi-node options to the run its proof makes."""
    token = _CLUSTER.set(cluster)
    try:
        yield
    finally:
        _CLUSTER.reset(token)


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
    cluster: Optional[Cluster] = None,
    bench_seconds: Optional[float] = None,
) -> DdpResult:
    """Train the smoke configuration over `nprocs` processes on `device` and check the replicas,
    then measure all-reduce bandwidth between all processes.

    `python` is the interpreter that has torch; `env` the environment for the processes (default:
    this process's). `threads` is torch's CPU threads per process (default: the cores shared out,
    at least one each, counting the other nodes' processes too when every node runs on this
    machine). `inject` ("divergence", "hang" or "crash") tests the check itself: the last
    process nudges a weight after training, stops before training, or raises before training.
    `cluster` (default: the one `use_cluster` set, else this machine alone) says how the nodes
    meet; the time limit then grows by twice the rendezvous timeout (a node waits that long for
    the master, and torch tries twice). `bench_seconds` caps the bandwidth sweep (None: the
    backend's default, 0: no sweep). Raises ValueError only for arguments that make no sense;
    everything that goes wrong on the machine or between machines is a result."""
    if isinstance(nprocs, bool) or not isinstance(nprocs, int) or nprocs < 1:
        raise ValueError(f"nprocs must be a whole number of at least 1, not {nprocs!r}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, not {device!r}")
    if inject is not None and inject not in INJECTIONS:
        raise ValueError(f"inject must be one of {INJECTIONS} or None, not {inject!r}")
    cluster = cluster or _CLUSTER.get() or Cluster()
    sharing = nprocs * (cluster.nnodes if cluster.all_on_this_machine else 1)
    threads = threads or threads_per_process(sharing)
    backend = "nccl" if device == "cuda" else "gloo"
    if cluster.rendezvous != "standalone":
        timeout_s += 2 * cluster.rdzv_timeout
    full_env = process_env(env, threads=threads, platform=platform)
    early = preflight(cluster, backend, env=full_env)
    if early is not None:
        kind, error, fix = early
        out = DdpResult(ok=False, world_size=nprocs * cluster.nnodes, backend=backend,
                        device=device, error=error, error_kind=kind, fix=fix)
        return _with_cluster(out, cluster, nprocs, seed, threads, epochs)
    workdir = Path(tempfile.mkdtemp(prefix="cnnsetup-ddp-"))
    result_path = workdir / "result.json"
    try:
        argv = command(nprocs, result_path, device=device, epochs=epochs, seed=seed,
                       threads=threads, python=python, inject=inject, log_dir=workdir / "logs",
                       cluster=cluster, bench_seconds=bench_seconds)
        started = time.monotonic()
        # The launch folder as working directory: `-m` puts it first on sys.path, and it holds
        # nothing that could shadow torch (a torch.py in the user's folder would).
        ran = run_process_tree(argv, timeout=timeout_s, env=full_env, cwd=workdir,
                               platform=platform)
        wall = time.monotonic() - started
        out = interpret(ran, read_result(result_path), rank_errors(result_path),
                        world_size=nprocs * cluster.nnodes, backend=backend, device=device,
                        wall_s=wall, timeout_s=timeout_s, python=python, cluster=cluster)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _with_cluster(out, cluster, nprocs, seed, threads, epochs)


def _with_cluster(out: DdpResult, cluster: Cluster, nprocs: int, seed: int, threads: int,
                  epochs: Optional[int]) -> DdpResult:
    """Fill in what was asked for, where the processes never got to say it themselves."""
    from reference_net.smoke import SMOKE  # configuration only: no torch

    asked_for = (("target", SMOKE.target_accuracy), ("seed", seed), ("threads", threads),
                 ("epochs", SMOKE.epochs if epochs is None else epochs),
                 ("local_world_size", nprocs), ("master", cluster.master),
                 ("node_rank", cluster.node_rank if cluster.rendezvous != "standalone" else 0))
    for name, asked in asked_for:
        if getattr(out, name) is None:
            setattr(out, name, asked)
    out.nnodes, out.rendezvous, out.slurm = cluster.nnodes, cluster.rendezvous, cluster.slurm
    if cluster.master:  # what the nodes were told; standalone keeps the port torch picked
        out.master = cluster.master
    if not out.ok and out.fix is None:
        out.fix = failure_fix(out, cluster)
    return out


def command(nprocs: int, result_path: os.PathLike[str] | str, *, device: str = "cpu",
            epochs: Optional[int] = None, seed: int = 0, threads: Optional[int] = None,
            python: str = sys.executable, inject: Optional[str] = None,
            log_dir: os.PathLike[str] | str | None = None, cluster: Optional[Cluster] = None,
            bench_seconds: Optional[float] = None) -> list[str]:
    """The launch command: torch's launcher (torchrun) as a module of `python`, so no script
    on PATH is needed. One machine: `--standalone` picks a free loopback port for the
    rendezvous. Several: `launcher_args(cluster)`."""
    argv = [python, "-X", "utf8", "-m", "torch.distributed.run"]
    argv += launcher_args(cluster or Cluster())
    argv += ["--nproc-per-node", str(nprocs), "--max-restarts", "0"]
    if log_dir is not None:
        argv += ["--log-dir", str(log_dir)]
    argv += ["-m", WORKER_MODULE, "--result", str(result_path), "--device", device,
             "--seed", str(seed)]
    if epochs is not None:
        argv += ["--epochs", str(epochs)]
    if threads is not None:
        argv += ["--threads", str(threads)]
    if bench_seconds is not None:
        argv += ["--bench-seconds", f"{bench_seconds:g}"]
    if inject is not None:
        argv.append(f"--inject-{inject}")
    return argv


def launcher_args(cluster: Cluster) -> list[str]:
    """torchrun's rendezvous options for `cluster`, as torch.distributed.run reads them:

    - static: `--rdzv-conf timeout=S` becomes the TCPStore timeout, which bounds both the master
      waiting for the others to connect ("Timed out after S seconds waiting for clients. 1/2
      clients joined.") and each try of another node to connect to the master;
    - c10d: `join_timeout=S` bounds the whole rendezvous (RendezvousTimeoutError), `read_timeout`
      the store's connection and reads; `--rdzv-id` must be the same on every node."""
    timeout = f"{max(1, round(cluster.rdzv_timeout))}"
    if cluster.rendezvous == "standalone":
        return ["--standalone"]
    if cluster.rendezvous == "c10d":
        return ["--nnodes", str(cluster.nnodes), "--rdzv-backend", "c10d",
                "--rdzv-endpoint", cluster.rdzv_endpoint or "", "--rdzv-id", cluster.rdzv_id,
                "--rdzv-conf", f"join_timeout={timeout},read_timeout={timeout}"]
    return ["--nnodes", str(cluster.nnodes), "--node-rank", str(cluster.node_rank or 0),
            "--master-addr", cluster.master_addr or "",
            "--master-port", str(cluster.master_port or DEFAULT_MASTER_PORT),
            "--rdzv-conf", f"timeout={timeout}"]


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
              timeout_s: float = 0.0, python: str = "python",
              cluster: Optional[Cluster] = None) -> DdpResult:
    """Turn the launch and what the processes wrote into one `DdpResult`: this node's result
    file when there is one, else the failure named from torch's own messages."""
    output = (ran.stderr + ("\n" + ran.stdout if ran.stdout.strip() else "")).strip()
    out = DdpResult(ok=False, world_size=world_size, backend=backend, device=device,
                    wall_s=round(wall_s, 3), stderr_tail=output[-STDERR_TAIL:],
                    timed_out=ran.timed_out, returncode=ran.returncode, command=list(ran.args))
    if result is not None:
        for name in ("ok", "backend", "val_accuracy", "target", "replicas_identical",
                     "max_weight_diff", "seconds", "samples_per_s", "epochs", "error",
                     "error_kind", "seed", "steps", "batch_size", "threads", "nnodes",
                     "node_rank", "local_world_size", "master", "ranks", "node", "bandwidth",
                     "latency_us", "bench_capped", "bench_seconds"):
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
    between = between_nodes_failure(output, cluster or Cluster())
    if between is not None:
        kind, text, arrived, probe = between
        out.arrived, out.probe = arrived, probe
        return _fail(out, kind, text)
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


# --- Between nodes: addresses, the failures torch reports, and what to do about them ---------

_CLIENTS_JOINED = re.compile(r"waiting for clients\.\s*(\d+)/(\d+) clients joined")
_RDZV_TIMEOUT = re.compile(r"RendezvousTimeoutError")
_CONNECT_FAILED = re.compile(r"client socket has timed out after \S+ while trying to connect to "
                             r"\(([^,]+), (\d+)\)|Connection refused|failed to connect/validate")
_PORT_TAKEN = re.compile(r"EADDRINUSE|[Aa]ddress already in use")


def join_host_port(host: str, port: int) -> str:
    """"host:port", with an IPv6 address in brackets ("[::1]:29500")."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(text: str) -> tuple[str, Optional[int]]:
    """"host:port" (or "[v6]:port", or "host") -> (host, port or None). Raises ValueError for a
    port that is not a number from 1 to 65535."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    if not port:
        return host, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{port!r} is not a port number (1 to 65535)")
    return host, int(port)


def is_loopback_name(host: str) -> bool:
    """A loopback address written as such ("127.0.0.1", "::1", "localhost"): the user chose
    this machine. A host name that merely resolves to 127.0.1.1 does not count (that is the
    /etc/hosts trap, see `address_trap`)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_addresses(host: str) -> list[str]:
    """Every address `host` resolves to on this machine, [] when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({info[4][0] for info in infos})


def lan_interfaces() -> list[tuple[str, str]]:
    """(interface, IPv4 address) of this machine's interfaces other than loopback."""
    import psutil

    found = []
    for name, addresses in psutil.net_if_addrs().items():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                found.append((name, address.address))
    return found


def address_trap(cluster: Cluster, backend: str, hostname: Optional[str] = None,
                 resolve=resolve_addresses) -> Optional[str]:
    """The /etc/hosts trap, before anything starts: with nodes on several machines, a host name
    that resolves only to a loopback address here (Debian and Ubuntu map the machine's own name
    to 127.0.1.1) makes the other nodes connect to themselves. Two places matter: the master
    address (every node must reach the same store), and, for gloo, this machine's own host name,
    from which gloo picks the address it tells its peers (unless GLOO_SOCKET_IFNAME names an
    interface; nccl picks interfaces itself). Returns plain English, None when all is well."""
    if cluster.nnodes < 2 or cluster.all_on_this_machine:
        return None
    host = cluster.master_host or ""
    addresses = resolve(host)
    if addresses and all(_loopback_ip(a) for a in addresses):
        return (f"the master address {host} resolves to {', '.join(addresses)} on this machine, "
                "a loopback address the other nodes cannot reach (a host name mapped to "
                "127.0.1.1 in /etc/hosts)")
    if backend == "gloo" and not os.environ.get("GLOO_SOCKET_IFNAME"):
        hostname = hostname or socket.gethostname()
        own = resolve(hostname)
        if own and all(_loopback_ip(a) for a in own):
            return (f"this machine's host name {hostname} resolves to {', '.join(own)}: gloo "
                    "would tell the other nodes to connect to that loopback address (a host "
                    "name mapped to 127.0.1.1 in /etc/hosts)")
    return None


def _loopback_ip(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def port_in_use(port: int) -> bool:
    """Whether something on this machine already listens on TCP `port` (binding it the way
    torch's TCPStore does, any address with SO_REUSEADDR, fails with "address in use")."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if hasattr(socket, "SO_REUSEADDR") and sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
        except OSError as exc:
            return exc.errno in (98, 48, 10048)  # EADDRINUSE on Linux, macOS, Windows
    return False


def free_port() -> int:
    """A TCP port nothing listens on now (the system's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def probe_tcp(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> str:
    """One plain TCP connection to host:port: "open", "refused" (nothing listens, or a
    firewall rejects), "timeout" (a firewall drops the packets, or no such machine answers) or
    "unresolved". torch retries refused connections until its timeout, so its own message
    cannot tell these apart."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return "open"
    except socket.gaierror:
        return "unresolved"
    except ConnectionRefusedError:
        return "refused"
    except (TimeoutError, socket.timeout):
        return "timeout"
    except OSError as exc:
        return "refused" if exc.errno in (111, 61, 10061) else "timeout"


def preflight(cluster: Cluster, backend: str, *, env: Optional[Mapping[str, str]] = None
              ) -> Optional[tuple[str, str, Optional[str]]]:
    """Failures found before anything starts, as (error_kind, plain English, fix); None when
    there are none. On the master of a static rendezvous: its port already in use. With nodes
    on several machines: a loopback address the others would be sent to."""
    if cluster.rendezvous == "static" and (cluster.node_rank or 0) == 0 and cluster.master_port:
        if port_in_use(cluster.master_port):
            return (PORT_IN_USE, f"port {cluster.master_port} is already in use on this machine, "
                                 "the master; the rendezvous cannot listen on it", None)
    trap = address_trap(cluster, backend)
    if trap:
        return ADDRESS_LOOPBACK, trap, None
    return None


def between_nodes_failure(output: str, cluster: Cluster
                          ) -> Optional[tuple[str, str, Optional[int], Optional[str]]]:
    """A failure of the nodes to meet, named from torch's messages in `output`: (error_kind,
    plain English, nodes that arrived or None, probe of the master or None); None otherwise."""
    timeout = f"{cluster.rdzv_timeout:g} s"
    joined = _CLIENTS_JOINED.search(output)
    if joined:
        arrived, total = int(joined.group(1)), int(joined.group(2))
        missing = total - arrived
        if arrived <= 1:
            which = ("only this node (node rank 0) arrived; missing: node rank"
                     f"{'s' if missing > 1 else ''} " + ", ".join(str(r) for r in range(1, total)))
        else:
            which = (f"{arrived} of {total} nodes arrived (this one, node rank 0, among them); "
                     f"{missing} never connected (torch's store counts them, it does not name "
                     "them)")
        return (NODE_MISSING, f"the rendezvous at {cluster.master} waited {timeout} for "
                              f"{total} nodes: {which}", arrived, None)
    if _RDZV_TIMEOUT.search(output):
        return (NODE_MISSING, f"the rendezvous at {cluster.master} did not gather "
                              f"{cluster.nnodes} nodes within {timeout}; this node arrived, "
                              "the others did not all follow", None, None)
    if _PORT_TAKEN.search(output):
        return (PORT_IN_USE, f"the rendezvous port of {cluster.master} is already in use on "
                             "this machine", None, None)
    if _CONNECT_FAILED.search(output) and cluster.master:
        host, port = split_host_port(cluster.master)
        probe = probe_tcp(host, port or DEFAULT_MASTER_PORT)
        rank = f"node rank {cluster.node_rank}" if cluster.node_rank is not None else "this node"
        why = {"refused": "the connection was refused: the master (node rank 0) is not running "
                          "there yet, or a firewall rejects the port",
               "timeout": "the connection timed out: a firewall drops the packets, or the "
                          "address is not the master's",
               "unresolved": f"{host} does not resolve on this machine",
               "open": "the port answers now: the master started too late, or it was another "
                       "job's"}[probe]
        return (MASTER_UNREACHABLE, f"{rank} could not connect to the master at "
                                    f"{cluster.master} within {timeout}: {why}", 0, probe)
    return None


def node_command(cluster: Cluster, nprocs: Optional[int], *, node_rank: Optional[str] = None,
                 master_port: Optional[int] = None) -> str:
    """The `cnnsetup verify` command line a node of `cluster` runs."""
    parts = ["cnnsetup", "verify", "--ddp", str(nprocs or 1), "--nnodes", str(cluster.nnodes)]
    if cluster.rendezvous == "c10d":
        parts += ["--rdzv-endpoint", cluster.rdzv_endpoint or ""]
    else:
        rank = node_rank if node_rank is not None else str(cluster.node_rank or 0)
        parts += ["--node-rank", rank,
                  "--master-addr", cluster.master_addr or "",
                  "--master-port", str(master_port or cluster.master_port or DEFAULT_MASTER_PORT)]
    return " ".join(parts)


def failure_fix(out: DdpResult, cluster: Cluster) -> Optional[str]:
    """A command that addresses `out`'s failure, None where there is no single one."""
    kind, nprocs = out.error_kind, out.local_world_size
    if kind == NODE_MISSING:
        missing = "1" if cluster.nnodes == 2 else "R"
        return node_command(cluster, nprocs, node_rank=missing) if cluster.rendezvous == "static" \
            else node_command(cluster, nprocs)
    if kind == PORT_IN_USE:
        return node_command(cluster, nprocs, master_port=free_port())
    if kind == ADDRESS_LOOPBACK:
        lan = lan_interfaces()
        if (out.error or "").startswith("this machine's host name"):
            name = lan[0][0] if lan else "eth0"
            return f"GLOO_SOCKET_IFNAME={name} " + node_command(cluster, nprocs)
        if lan and cluster.rendezvous == "static":
            master = Cluster(**{**asdict(cluster), "master_addr": lan[0][1]})
            return node_command(master, nprocs)
        return None
    if kind == MASTER_UNREACHABLE and cluster.master:
        host, port = split_host_port(cluster.master)
        return f"nc -vz {host} {port or DEFAULT_MASTER_PORT}"
    if kind in (BACKEND_UNAVAILABLE, TORCH_MISSING):
        return "cnnsetup torch-command"
    return None


def resolve_cluster(*, ddp: Optional[int], nnodes: Optional[int] = None,
                    node_rank: Optional[int] = None, master_addr: Optional[str] = None,
                    master_port: Optional[int] = None, rdzv_endpoint: Optional[str] = None,
                    rdzv_timeout: float = RDZV_TIMEOUT_S,
                    env: Optional[Mapping[str, str]] = None) -> Optional[Cluster]:
    """The cluster `cnnsetup verify`'s options describe; None when --ddp was not asked for.

    Options absent and Slurm's variables set (cnnsetup.machine.slurm): nnodes, node rank and
    master come from Slurm (an option given still wins). Raises ClusterUsageError (a `key`
    naming the mistake, and its `values`) for combinations that can never work."""
    from cnnsetup.machine import slurm as slurm_module

    given = {"--nnodes": nnodes, "--node-rank": node_rank, "--master-addr": master_addr,
             "--master-port": master_port, "--rdzv-endpoint": rdzv_endpoint}
    if ddp is None:
        named = [k for k, v in given.items() if v is not None]
        if named:
            raise ClusterUsageError("needs_ddp", option=named[0])
        return None
    if master_addr and rdzv_endpoint:
        raise ClusterUsageError("both_rendezvous")
    needs_slurm = not master_addr and not rdzv_endpoint
    try:
        job = slurm_module.job_from_env(env)
    except slurm_module.SlurmError as exc:
        if needs_slurm:
            raise ClusterUsageError("bad_slurm", detail=str(exc)) from None
        job = None  # the options say it all: Slurm's unreadable values are not needed
    if job is not None:
        if job.ntasks_per_node and job.ntasks_per_node > 1 and job.local_id not in (None, 0):
            raise ClusterUsageError("slurm_tasks", count=job.ntasks_per_node)
        nnodes = job.nnodes if nnodes is None else nnodes
        if not rdzv_endpoint:  # c10d assigns node ranks itself
            node_rank = job.node_id if node_rank is None else node_rank
        if needs_slurm:
            master_addr = job.master_host
            master_port = job.master_port if master_port is None else master_port
    nnodes = nnodes or 1
    if rdzv_endpoint:
        try:
            host, port = split_host_port(rdzv_endpoint)
        except ValueError as exc:
            raise ClusterUsageError("bad_endpoint", endpoint=rdzv_endpoint, detail=str(exc)) \
                from None
        if not host or port is None:
            raise ClusterUsageError("bad_endpoint", endpoint=rdzv_endpoint,
                                    detail="expected HOST:PORT")
        if node_rank is not None and node_rank >= nnodes:
            raise ClusterUsageError("node_rank_range", node_rank=node_rank, nnodes=nnodes)
    elif master_addr or master_port is not None or node_rank is not None or nnodes > 1:
        if not master_addr:
            if nnodes > 1:
                raise ClusterUsageError("needs_master", nnodes=nnodes)
            master_addr = "127.0.0.1"
        node_rank = 0 if node_rank is None and nnodes == 1 else node_rank
        if node_rank is None:
            raise ClusterUsageError("needs_node_rank", nnodes=nnodes)
        if node_rank >= nnodes:
            raise ClusterUsageError("node_rank_range", node_rank=node_rank, nnodes=nnodes)
    return Cluster(nnodes=nnodes, node_rank=node_rank, master_addr=master_addr,
                   master_port=(master_port or DEFAULT_MASTER_PORT) if master_addr else None,
                   rdzv_endpoint=rdzv_endpoint, rdzv_timeout=rdzv_timeout,
                   rdzv_id=f"slurm-{job.job_id}" if job else "cnnsetup-verify",
                   slurm=job.values if job else None)


class ClusterUsageError(ValueError):
    """Multi-node options that can never work together; `key` names the mistake."""

    def __init__(self, key: str, **values) -> None:
        super().__init__(key)
        self.key, self.values = key, values


def ddp_json(result: Optional[DdpResult]) -> Optional[dict]:
    """The report's top-level `ddp` object (English, never translated):

        {ok, identical_weights, nnodes, node_rank, world_size, local_world_size,
         master ("host:port"), rendezvous, backend, device, val_accuracy, target,
         bandwidth [{bytes, algbw_gbps, busbw_gbps, seconds}], latency_us, bench_capped,
         node {node_rank, host, ranks, val_accuracy, seconds, samples_per_s},
         ranks [{rank, node_rank, local_rank, host, val_accuracy, seconds, samples_per_s,
                 steps}],
         slurm {SLURM_*: value} | null, error_kind, error, fix, arrived, wall_s}

    GB/s are 1e9 bytes per second; bandwidth as nccl-tests defines it (algbw = bytes / time,
    busbw = algbw * 2(n-1)/n)."""
    if result is None:
        return None
    return {
        "ok": result.ok, "identical_weights": result.replicas_identical,
        "nnodes": result.nnodes, "node_rank": result.node_rank,
        "world_size": result.world_size, "local_world_size": result.local_world_size,
        "master": result.master, "rendezvous": result.rendezvous, "backend": result.backend,
        "device": result.device, "val_accuracy": result.val_accuracy, "target": result.target,
        "bandwidth": [{"bytes": row["bytes"], "algbw_gbps": round(row["algbw_gbps"], 4),
                       "busbw_gbps": round(row["busbw_gbps"], 4),
                       "seconds": row.get("seconds")} for row in result.bandwidth or []],
        "latency_us": None if result.latency_us is None else round(result.latency_us, 1),
        "bench_capped": result.bench_capped, "node": result.node, "ranks": result.ranks,
        "slurm": result.slurm, "error_kind": result.error_kind, "error": result.error,
        "fix": result.fix, "arrived": result.arrived, "wall_s": result.wall_s,
    }


def _size(nbytes: int) -> str:
    return f"{nbytes >> 20} MiB" if nbytes >= 1 << 20 else f"{nbytes} B"


def render_ddp(result: Optional[DdpResult]) -> str:
    """The distributed part of `verify`'s final table, in the user's language: the job, this
    node's part, the bandwidth table, and a named failure with its fix."""
    from cnnsetup.i18n import _
    from cnnsetup.render import style, table

    if result is None:
        return ""
    lines = [style(_("Distributed training (DDP)"), bold=True)]
    lines.append("  " + _("Job: {nnodes} node(s), {world} process(es) in all, backend {backend}, "
                          "rendezvous {rdzv} at {master}.").format(
        nnodes=result.nnodes, world=result.world_size, backend=result.backend,
        rdzv=result.rendezvous, master=result.master or _("a free local port")))
    if result.replicas_identical is not None:
        lines.append("  " + (_("Every replica on every node ends with identical weights.")
                             if result.replicas_identical else
                             _("The replicas ended with different weights (largest difference "
                               "{diff:.3g}).").format(diff=result.max_weight_diff or 0)))
    node = result.node
    if node:
        lines.append("  " + _(
            "This node: node rank {rank} ({host}), ranks {ranks}: {accuracy:.1%} validation "
            "accuracy, {seconds:.2f} s, {rate:,.0f} samples/s.").format(
            rank=node["node_rank"], host=node["host"],
            ranks=", ".join(str(r) for r in node["ranks"]), accuracy=node["val_accuracy"],
            seconds=node["seconds"], rate=node["samples_per_s"]))
    if result.slurm:
        lines.append("  " + _("Slurm: {values}").format(
            values=" ".join(f"{k}={v}" for k, v in sorted(result.slurm.items()))))
    if result.bandwidth:
        lines.append("  " + _("All-reduce between all {world} processes ({backend}; bus bandwidth "
                              "as nccl-tests defines it):").format(world=result.world_size,
                                                                   backend=result.backend))
        rows = [[_size(r["bytes"]), f"{r['algbw_gbps']:.3f}", f"{r['busbw_gbps']:.3f}"]
                for r in result.bandwidth]
        lines.append(table(rows, header=[_("size"), _("algbw GB/s"), _("busbw GB/s")], indent=4))
        if result.bench_capped:
            lines.append("    " + _("(larger sizes left out to keep within the time budget)"))
    if result.latency_us is not None:
        lines.append("  " + _("Latency of a one-element all-reduce: {us:.0f} us.").format(
            us=result.latency_us))
    if not result.ok:
        reason = failure_words(result.error_kind)
        lines.append("  " + _("{verdict}: {reason}").format(
            verdict=style(_("FAIL"), fg="red", bold=True), reason=reason))
        if result.error:
            lines.append("    " + result.error)
        if result.fix:
            lines.append("  " + _("Fix: {command}").format(command=result.fix))
    return "\n".join(lines)


def failure_words(kind: Optional[str]) -> str:
    """A failure between nodes, in the user's language, with what to do about it."""
    from cnnsetup.i18n import _

    words = {
        NODE_MISSING: _("a node never joined within --rdzv-timeout. Start the same command on "
                        "every node (each with its own --node-rank) within that time, or raise "
                        "--rdzv-timeout; a loopback master only works when every node runs on "
                        "this machine."),
        PORT_IN_USE: _("the rendezvous port is already in use on the master. Choose another "
                       "--master-port, the same on every node."),
        ADDRESS_LOOPBACK: _("the other nodes would be sent to a loopback address (the /etc/hosts "
                            "trap). Give --master-addr as the master's network address, or set "
                            "GLOO_SOCKET_IFNAME to the network interface, or map the host name "
                            "to its network address in /etc/hosts."),
        MASTER_UNREACHABLE: _("this node could not connect to the master. Start node rank 0 "
                              "first; check the address; open the port in the master's firewall "
                              "(firewall-cmd --add-port=PORT/tcp, ufw allow PORT/tcp)."),
        BACKEND_UNAVAILABLE: _("this torch build lacks the backend (nccl needs the CUDA build of "
                               "torch on Linux; gloo is in every build)."),
        TIMEOUT: _("not finished within the time limit; every process of the job on this node "
                   "was stopped."),
    }
    return words.get(kind or "", _("see the details below."))
