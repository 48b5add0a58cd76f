"""Everything cnnsetup knows about this machine, collected at once and never raising.

The torch worker starts first (importing torch is the slow part); nvidia-smi, conda and pip are
asked in threads meanwhile, so the whole collection takes about as long as the slowest probe.
`facts_to_json` gives the shape documented in `cnnsetup.report_schema`.

The machine can be stood in for, for tests of other platforms' branches: `CNNSETUP_PLATFORM`
(a `sys.platform` value: linux, win32, darwin) and `CNNSETUP_SYSTEM_ROOT` (a folder read in
place of "/" for /sys and /proc) are read here, in `host_platform` and `system_root`, and
nowhere else.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from cnnsetup import __version__
from cnnsetup import shell as shell_module
from cnnsetup.i18n import _
from cnnsetup.machine import gpu as gpu_module
from cnnsetup.machine import jupyter as jupyter_module
from cnnsetup.machine.finding_kinds import error_line
from cnnsetup.machine.gpu import NvidiaFacts
from cnnsetup.machine.jupyter import Kernel
from cnnsetup.machine.system import PythonFacts, SystemFacts, collect_python, collect_system
from cnnsetup.machine.torch_probe import PROBE_TIMEOUT_S, WorkerRun, WorkerSession
from cnnsetup.report_schema import SCHEMA_VERSION, TOP_LEVEL_KEYS

PACKAGES_TIMEOUT_S = 20.0
PLATFORM_VARIABLE = "CNNSETUP_PLATFORM"
SYSTEM_ROOT_VARIABLE = "CNNSETUP_SYSTEM_ROOT"


def host_platform(env: Optional[Mapping[str, str]] = None) -> str:
    """The platform cnnsetup describes: CNNSETUP_PLATFORM when set, else `sys.platform`."""
    env = os.environ if env is None else env
    return (env.get(PLATFORM_VARIABLE) or "").strip() or sys.platform


def system_root(env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The folder read as "/" for /sys and /proc: CNNSETUP_SYSTEM_ROOT, else None (the real one)."""
    env = os.environ if env is None else env
    return (env.get(SYSTEM_ROOT_VARIABLE) or "").strip() or None


def nvidia_here(platform: str, env: Optional[Mapping[str, str]] = None,
                timeout: float = gpu_module.SMI_TIMEOUT_S) -> NvidiaFacts:
    """nvidia-smi's answer and the NVIDIA hardware the system lists, asked at the same time."""
    env = os.environ if env is None else env
    with ThreadPoolExecutor(max_workers=1) as pool:
        hardware = pool.submit(gpu_module.detect_hardware, platform, system_root(env))
        facts = gpu_module.query(timeout=timeout, platform=platform, env=env)
        facts.hardware = hardware.result()
    return facts


@dataclass
class CondaFacts:
    """conda as `conda info --json` describes it; `found` is False without conda."""
    found: bool = False
    path: Optional[str] = None
    version: Optional[str] = None
    base: Optional[str] = None
    active_env: Optional[str] = None
    error: Optional[str] = None
    pkgs_dirs: list[str] = field(default_factory=list)


@dataclass
class TorchFacts:
    """torch in the probed interpreter, as the worker saw it (see report_schema)."""
    installed: bool = False
    importable: bool = False
    version: Optional[str] = None
    cuda: Optional[str] = None  # the CUDA it was built for; None = CPU-only
    cudnn: Optional[int] = None
    arch_list: list[str] = field(default_factory=list)
    cuda_available: bool = False
    devices: list[dict] = field(default_factory=list)  # {index, name, capability, memory_bytes}
    mps_built: bool = False
    mps_available: bool = False
    numpy_version: Optional[str] = None
    import_warnings: list[str] = field(default_factory=list)
    error: Optional[str] = None  # the exact import error, or why the probe itself failed
    probe_seconds: Optional[float] = None
    # Beyond the schema's minimum:
    path: Optional[str] = None
    hip: Optional[str] = None
    installers: list[str] = field(default_factory=list)  # INSTALLER of each torch found ("pip")
    dist_versions: list[str] = field(default_factory=list)
    conda_pytorch: list[str] = field(default_factory=list)  # conda-meta records of pytorch
    cuda_warnings: list[str] = field(default_factory=list)
    numpy_ok: Optional[bool] = None
    numpy_error: Optional[str] = None
    # Why the probe gave no answer: "start_failed" | "crashed" | "timed_out" | "probe_error"
    probe_failure: Optional[str] = None
    traceback: Optional[str] = None
    worker_stderr: Optional[str] = None


@dataclass
class Facts:
    """Everything collected about one machine; `facts_to_json` turns it into a report."""
    system: SystemFacts
    python: PythonFacts
    conda: CondaFacts
    torch: TorchFacts
    nvidia: NvidiaFacts
    platform: str = sys.platform
    shell: str = shell_module.POSIX  # the shell fixes are quoted for
    pip_index_url: Optional[str] = None  # pip's configured index, when it is not PyPI
    pip_mirror: Optional[str] = None  # the registry mirror that index belongs to
    jupyter: Optional[list[Kernel]] = None  # None: not looked at (only `info` looks)
    host: str = ""
    user: str = ""
    created: str = ""
    duration_s: float = 0.0
    worker: Optional[WorkerRun] = None  # replies to any extra tasks live here

    @property
    def gpus(self) -> list:
        """The NVIDIA cards nvidia-smi listed."""
        return self.nvidia.gpus


def collect(
    *,
    python: Optional[str] = None,
    platform: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    torch_timeout: float = PROBE_TIMEOUT_S,
    smi_timeout: float = gpu_module.SMI_TIMEOUT_S,
    extra_tasks: Sequence[Any] = (),
    extra_timeouts: Sequence[float] = (),
    on_event: Optional[Callable[[str], None]] = None,
    nvidia: Optional[NvidiaFacts] = None,
    kernels: bool = False,
    kernel_timeout: float = jupyter_module.KERNEL_TIMEOUT_S,
) -> Facts:
    """Collect every fact; `extra_tasks` run in the same torch worker after the probe (their
    replies are in `facts.worker`, their progress events go to `on_event`). `python` is the
    interpreter to probe torch in; `nvidia`, when the caller already asked nvidia-smi;
    `kernels`: also find and probe the Jupyter kernels (in parallel with the rest). `platform`
    defaults to `host_platform(env)`."""
    started = time.monotonic()
    env = os.environ if env is None else env
    platform = host_platform(env) if platform is None else platform
    main_python = python or sys.executable
    session = WorkerSession(
        ["packages", "probe", *extra_tasks],
        python=python,
        timeouts=[PACKAGES_TIMEOUT_S, torch_timeout, *extra_timeouts],
        env=env,
        on_event=on_event,
    )
    with ThreadPoolExecutor(max_workers=5) as pool:
        kernel_future = (pool.submit(_kernels, platform, env, main_python, kernel_timeout)
                         if kernels else None)
        nvidia_future = (None if nvidia is not None else
                         pool.submit(nvidia_here, platform, env, smi_timeout))
        conda_future = pool.submit(collect_conda, env)
        python_future = pool.submit(collect_python, env=env, platform=platform)
        mirror_future = pool.submit(_pip_index, env, platform)
        conda = conda_future.result()
        system = collect_system(_pkgs_dir(conda), platform=platform, env=env)
        python_facts = python_future.result()
        if nvidia_future is not None:
            nvidia = nvidia_future.result()
        pip_index_url, pip_mirror = mirror_future.result()
        worker = session.wait()
        found_kernels = kernel_future.result() if kernel_future is not None else None
    torch = torch_from_worker(worker)
    if found_kernels is not None:
        _fill_main_kernels(found_kernels, main_python, torch, python_facts)
    return Facts(
        system=system,
        python=python_facts,
        conda=conda,
        torch=torch,
        nvidia=nvidia,
        platform=platform,
        shell=shell_module.detect(platform, env),
        pip_index_url=pip_index_url,
        pip_mirror=pip_mirror,
        jupyter=found_kernels,
        host=socket.gethostname(),
        user=_user(),
        created=datetime.now().astimezone().isoformat(timespec="seconds"),
        duration_s=round(time.monotonic() - started, 3),
        worker=worker,
    )


def _pip_index(env: Mapping[str, str], platform: str) -> tuple[Optional[str], Optional[str]]:
    """pip's configured index (from its files, without starting pip) and its mirror's name."""
    try:
        from cnnsetup.mirror import pip as pip_module
        from cnnsetup.mirror import registry

        url = pip_module.index_url_from_files(env, platform)
        mirror = registry.mirror_of_pypi(url) if url else None
        return url, (mirror.name if mirror else None)
    except Exception:  # the mirror package is someone else's: no mirror rather than no report
        return None, None


def kernel_prefixes(platform: str, env: Mapping[str, str], main_python: str) -> list[str]:
    """The environments whose Jupyter a student may start: this Python's, conda's base (from
    CONDA_EXE or the conda on PATH) and that of each `jupyter` on PATH."""
    prefixes = [sys.prefix if main_python == sys.executable else _prefix_of(main_python, platform)]
    conda_exe = env.get("CONDA_EXE") or shutil.which("conda", path=env.get("PATH"))
    if conda_exe:
        prefixes.append(_prefix_of(conda_exe, platform))
    for folder in (env.get("PATH") or "").split(os.pathsep):
        for name in ("jupyter", "jupyter.exe"):
            if folder and os.path.isfile(os.path.join(folder, name)):
                prefixes.append(_prefix_of(os.path.join(folder, name), platform))
    out: list[str] = []
    for prefix in prefixes:
        if prefix and prefix not in out:
            out.append(prefix)
    return out


def _prefix_of(program: str, platform: str) -> str:
    """The environment a program lives in: <prefix>/bin/x, <prefix>\\Scripts\\x.exe,
    <prefix>/condabin/conda, or <prefix>\\python.exe."""
    folder = os.path.dirname(program)
    if os.path.basename(folder).lower() in ("bin", "scripts", "condabin", "library"):
        return os.path.dirname(folder)
    return folder


def _kernels(platform: str, env: Mapping[str, str], main_python: str,
             timeout: float) -> list[Kernel]:
    prefixes = kernel_prefixes(platform, env, main_python)
    in_env = sys.prefix != getattr(sys, "base_prefix", sys.prefix) or bool(
        env.get("CONDA_PREFIX") and env.get("CONDA_DEFAULT_ENV") not in (None, "", "base"))
    folders = jupyter_module.data_dirs(platform, env, prefixes, prefer_env=in_env)
    found = jupyter_module.find_kernels(folders, platform, default_python=main_python)
    main = jupyter_module.interpreter_key(main_python)
    others = [k for k in found if not _runs_main(k, main)]
    jupyter_module.probe(others, timeout=timeout, env=env, known_torch=_torch_here(main_python))
    return found


def _torch_here(main_python: str) -> Optional[dict]:
    """Where this Python would import torch from, found without importing it (the worker
    imports it meanwhile); None when the worker runs another interpreter."""
    if main_python != sys.executable:
        return None
    import importlib.util
    import platform as platform_module

    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return {"python": platform_module.python_version(), "torch_dir": os.path.dirname(spec.origin)}


def _runs_main(kernel: Kernel, main_key: str) -> bool:
    """The kernel runs the interpreter the torch worker probes, in the same environment."""
    return bool(kernel.interpreter and kernel.interpreter_exists and not kernel.env
                and jupyter_module.interpreter_key(kernel.interpreter) == main_key)


def _fill_main_kernels(kernels: list[Kernel], main_python: str, torch: "TorchFacts",
                       python: PythonFacts) -> None:
    """Kernels that run the probed interpreter, or find the very torch install it imports, get
    the torch worker's answer about torch (no second import)."""
    main = jupyter_module.interpreter_key(main_python)
    for kernel in kernels:
        same = _runs_main(kernel, main)
        if same:
            kernel.python = python.version
            kernel.prefix = python.prefix
            kernel.ipykernel = python.ipykernel
        elif not kernel.same_torch:
            continue
        if torch.importable:
            kernel.torch, kernel.torch_cuda = torch.version, torch.cuda
        else:  # a crash or a hang of `import torch` happens in the kernel just the same
            kernel.torch_error = (error_line(torch.error)
                                  or "ModuleNotFoundError: No module named 'torch'")


def collect_conda(env: Optional[Mapping[str, str]] = None) -> CondaFacts:
    """conda's path, version, base and active env, through `cnnsetup.mirror.conda`."""
    env = os.environ if env is None else env
    facts = CondaFacts(active_env=env.get("CONDA_DEFAULT_ENV") or None)
    try:
        from cnnsetup.mirror import conda as conda_module

        path = conda_module.find_conda(env=env)
        if not path:
            return facts
        facts.found, facts.path = True, str(path)
        call = conda_module.info(str(path))
    except Exception as exc:  # the conda module is someone else's: its failure is a fact too
        facts.error = f"{type(exc).__name__}: {exc}"
        return facts
    if getattr(call, "ok", False) and isinstance(call.data, dict):
        data = call.data
        facts.version = data.get("conda_version")
        facts.base = data.get("root_prefix")
        facts.active_env = data.get("active_prefix_name") or facts.active_env
        facts.pkgs_dirs = [str(p) for p in data.get("pkgs_dirs") or []]
        return facts
    if getattr(call, "not_found", False):
        facts.found = False
    facts.error = _conda_error(call)
    return facts


def _conda_error(call: Any) -> str:
    command = "conda info --json"
    if getattr(call, "timed_out", False):
        return _("{command}: no answer in time").format(command=command)
    if getattr(call, "not_json", False):
        return _("{command} printed something that is not JSON: {text}").format(
            command=command, text=str(call.error)[:300])
    return _("{command} failed: {text}").format(
        command=command, text=(str(getattr(call, "error", "")) or "?")[:1000])


def _pkgs_dir(conda: CondaFacts) -> Optional[str]:
    if conda.pkgs_dirs:
        return conda.pkgs_dirs[0]
    if conda.base:
        return str(Path(conda.base) / "pkgs")
    return None


def torch_from_worker(run: WorkerRun) -> TorchFacts:
    """TorchFacts from the worker's `packages` and `probe` replies, or from why it failed."""
    facts = TorchFacts()
    packages = run.reply("packages")
    if packages and packages.get("ok"):
        result = packages["result"]
        dists = result.get("torch_dists") or []
        facts.installed = bool(dists)
        facts.dist_versions = [d.get("version") for d in dists]
        facts.installers = [d.get("installer") or "unknown" for d in dists]
        facts.version = dists[0].get("version") if dists else None
        facts.conda_pytorch = list(result.get("conda_pytorch") or [])
        facts.numpy_version = result.get("numpy_version")
    probe = run.reply("probe")
    facts.worker_stderr = run.stderr.strip()[-4000:] or None
    if probe is None or not probe.get("ok"):
        if probe is not None:
            facts.probe_failure = "probe_error"  # the probe task itself raised
        elif run.start_error:
            facts.probe_failure = "start_failed"
        elif run.timed_out:
            facts.probe_failure = "timed_out"
        else:
            facts.probe_failure = "crashed"
        facts.error = ((probe or {}).get("error") or run.failure_text()
                       or _("no answer from the worker"))
        facts.probe_seconds = run.seconds
        return facts
    result = probe["result"]
    facts.probe_seconds = probe.get("seconds")
    facts.importable = bool(result.get("importable"))
    facts.import_warnings = list(result.get("import_warnings") or [])
    facts.error = result.get("error")
    facts.traceback = result.get("traceback")
    if facts.importable:  # a torch without metadata (on PYTHONPATH) is installed all the same
        facts.installed = True
    if not facts.importable:
        return facts
    facts.version = result.get("version") or facts.version
    facts.path = result.get("path")
    facts.cuda = result.get("cuda")
    facts.hip = result.get("hip")
    facts.cudnn = result.get("cudnn")
    facts.arch_list = list(result.get("arch_list") or [])
    facts.cuda_available = bool(result.get("cuda_available"))
    facts.devices = list(result.get("devices") or [])
    facts.cuda_warnings = list(result.get("cuda_warnings") or [])
    facts.mps_built = bool(result.get("mps_built"))
    facts.mps_available = bool(result.get("mps_available"))
    facts.numpy_version = result.get("numpy_version") or facts.numpy_version
    facts.numpy_ok = result.get("numpy_ok")
    facts.numpy_error = result.get("numpy_error")
    return facts


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment (some containers)
        return ""


def facts_to_json(
    facts: Facts,
    checks: Sequence[Any],
    *,
    kind: str = "info",
    training: Optional[list] = None,
    mirror: Optional[Mapping[str, Optional[str]]] = None,
) -> dict:
    """The report object of `cnnsetup.report_schema`: every top-level key, in its order."""
    check_dicts = [c.to_json() if hasattr(c, "to_json") else dict(c) for c in checks]
    nvidia = asdict(facts.nvidia)
    gpus = nvidia.pop("gpus")
    values = {
        "schema": SCHEMA_VERSION,
        "kind": kind,
        "ok": not any(c.get("status") == "fail" for c in check_dicts),
        "host": facts.host,
        "user": facts.user,
        "created": facts.created,
        "cnnsetup_version": __version__,
        "duration_s": facts.duration_s,
        "system": asdict(facts.system),
        "python": asdict(facts.python),
        "conda": asdict(facts.conda),
        "torch": asdict(facts.torch),
        "nvidia": nvidia,
        "gpus": gpus,
        "mirror": dict(mirror) if mirror else {"conda": None, "pip": None},
        "checks": check_dicts,
        "training": list(training or []),
    }
    report = {key: values[key] for key in TOP_LEVEL_KEYS}
    if facts.jupyter is not None:  # after the schema's keys: only `info` looks at kernels
        report["jupyter_kernels"] = [k.to_json() for k in facts.jupyter]
    return report
