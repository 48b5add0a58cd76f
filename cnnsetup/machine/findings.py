"""Rules: facts in, findings out.

Every kind of finding is one row of KINDS: a stable id, a status, a plain-words summary (with
{placeholders}) and the name of its fix recipe. A rule decides which kinds apply and with which
values; `Context.finding` builds the Finding from the row. Fixes are commands to paste: Python is
named by its full path, quoted for the user's shell (`cnnsetup.shell`), pip installs use the
configured pip mirror, and torch installed by conda gets conda commands or a fresh environment,
never `pip uninstall` of a conda package. Commands that install torch come from `torch_install`,
so `info` and `torch-command` always agree.

Import failures of torch are recognised by IMPORT_FAILURES, a table of (kind, markers, platform):
a new failure kind is one KINDS row and, when it is recognised by its error text, one
IMPORT_FAILURES row.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

from cnnsetup import shell as shell_module
from cnnsetup.shell import PathArg
from cnnsetup.i18n import N_, _
from cnnsetup.machine import cuda_tables as tables
from cnnsetup.machine.facts import Facts
from cnnsetup.machine.torch_install import (
    NO_DRIVER, NOT_LOADED, Machine, Recommendation, driver_fix, driver_problem, machine_from_facts,
    recommend,
)

GIB = 1024 ** 3
RAM_TOTAL_LOW = 8 * GIB
RAM_AVAILABLE_LOW = 2 * GIB
DISK_WARN = 10 * GIB  # a CUDA torch wheel and its libraries take several GB
DISK_FAIL = 3 * GIB

VC_REDIST_URL = "https://aka.ms/vs/17/release/vc_redist.x64.exe"
VC_REDIST_FIX = "winget install --id Microsoft.VCRedist.2015+.x64 -e"
# The MKL release whose split ITT library left conda's pytorch with `undefined symbol:
# iJIT_NotifyEvent` (pytorch/pytorch#123097): conda's pytorch needs an MKL before it.
MKL_BEFORE_ITT_SPLIT = "mkl<2024.1"

NUMPY_MARKERS = (
    "compiled using numpy 1.x", "failed to initialize numpy", "_array_api not found",
    "numpy.core.multiarray failed to import", "numpy is not available",
    "numpy.dtype size changed", "module compiled against abi version",
)
# torch's own Windows DLLs: when one of these fails with WinError 126, the Visual C++ runtime
# they link against is missing.
TORCH_DLLS = ("fbgemm.dll", "c10.dll", "torch_cpu.dll", "torch_python.dll", "shm.dll",
              "asmjit.dll", "libiomp5md.dll", "uv.dll", "torch_global_deps.dll")
CUDA_DLLS = ("cudnn", "cublas", "cudart", "caffe2_nvrtc", "nvrtc", "cufft", "curand",
             "cusparse", "cusolver", "c10_cuda", "torch_cuda", "nvjitlink")


@dataclass
class Finding:
    """One check's outcome."""

    id: str
    status: str  # "pass" | "warn" | "fail" | "skip"
    summary: str
    fix: Optional[str] = None  # a command to paste (several lines run in order), or None
    detail: Optional[str] = None  # exact error text, when there is one

    def to_json(self) -> dict:
        """The finding as a report's `checks` entry."""
        return {"id": self.id, "status": self.status, "summary": self.summary, "fix": self.fix,
                "detail": self.detail}


@dataclass(frozen=True)
class Kind:
    """One kind of finding: the row a rule names by id."""

    id: str
    status: str
    summary: str  # English, marked with N_(), translated when the finding is made
    fix: Optional[str] = None  # a recipe name of Context.fix, or None
    key: Optional[str] = None  # the row's name when two rows share an id ("id:variant")


KINDS: dict[str, Kind] = {k.key or k.id: k for k in (
    # Python
    Kind("python.version", "pass", N_("Python {version}, 64-bit: current torch supports it.")),
    Kind("python.32bit", "fail", N_(
        "This Python is {bits}-bit: PyTorch publishes 64-bit wheels only (pip says \"from "
        "versions: none\"). Install a 64-bit Python.")),
    Kind("python.unsupported_version", "fail", N_(
        "Python {version} is outside what current torch supports ({low} to {high}): pip finds "
        "no wheel (\"from versions: none\") or only an old one.")),
    Kind("python.pip_missing", "warn", N_("This Python has no pip module."), "ensurepip"),
    Kind("python.wrong_interpreter", "warn", "{text}", "install_torch_if_missing"),
    # torch
    Kind("torch.import", "pass", N_("torch {version} ({build}) imports in {seconds} s.")),
    Kind("torch.missing", "fail", N_("torch is not installed in this Python."), "install_torch"),
    Kind("torch.probe_timeout", "fail", N_(
        "Importing torch did not finish in time; the probe was stopped. A hung driver or a "
        "broken install can do this."), "reinstall_torch"),
    Kind("torch.crashed", "fail", N_(
        "Python crashed while importing torch (the process died, not an exception)."),
        "reinstall_torch"),
    Kind("torch.probe_failed", "fail", N_(
        "The Python that should import torch could not be started.")),
    Kind("torch.describe_error", "fail", N_("torch imports, but describing it failed."),
         "reinstall_torch"),
    Kind("torch.import_error", "fail", N_(
        "torch {version} is installed but `import torch` fails."), "reinstall_torch"),
    Kind("torch.dll_error", "fail", N_(
        "torch {version} is installed but a shared library it needs does not load; "
        "reinstalling torch usually fixes it."), "reinstall_torch"),
    Kind("torch.vc_runtime_missing", "fail", N_(
        "torch {version} is installed but {dll} does not load (WinError 126): the Microsoft "
        "Visual C++ Redistributable (x64) it needs is missing. Install it: {url}"), "vc_redist"),
    Kind("torch.dll_init_failed", "fail", N_(
        "A DLL of torch {version} failed to initialise (WinError 1114). The usual cause is a "
        "Visual C++ Redistributable older than this torch needs (torch 2.4 and newer need "
        "14.40 or newer): install the latest one from {url}. On a laptop with two GPUs, also "
        "let Python use the NVIDIA GPU (Windows graphics settings)."), "vc_redist"),
    Kind("torch.dll_conflict", "fail", N_(
        "torch {version} loaded another program's copy of a DLL (WinError 127, \"the specified "
        "procedure could not be found\"): an older CUDA, MKL or torch on PATH, or two installs "
        "mixed in one environment. A fresh environment with one torch avoids it."),
        "fresh_env"),
    Kind("torch.cuda_dll_missing", "fail", N_(
        "torch {version} is a CUDA build but its CUDA library {dll} does not load: the download "
        "was incomplete or damaged. Reinstall it without pip's cache."), "reinstall_no_cache"),
    Kind("torch.openmp_clash", "fail", N_(
        "Two OpenMP runtimes are loaded into one Python ({runtime}): torch brings its own, and "
        "this environment has another from conda ({records}). Use one installer per "
        "environment: a fresh environment for pip's torch (below), or `conda install nomkl` "
        "here. Do not set KMP_DUPLICATE_LIB_OK=TRUE: it only hides the clash, which can then "
        "crash or give wrong results."), "fresh_env"),
    Kind("torch.mkl_symbol", "fail", N_(
        "torch {version} fails to import because the MKL in this environment does not match it "
        "({symbol}). {installer_note}"), "mkl"),
    Kind("torch.conda_pip_mix", "fail", N_(
        "torch is installed more than once ({found}): conda's pytorch and pip's torch overwrite "
        "each other's files (errors such as `undefined symbol: iJIT_NotifyEvent`). Keep one "
        "installer: the clean way is a fresh environment with pip's torch only."), "fresh_env"),
    Kind("numpy.abi_mismatch", "fail", N_(
        "torch and NumPy {numpy} do not work together (a module was built for NumPy 1; "
        "torch.from_numpy fails)."), "numpy_pin"),
    Kind("numpy.abi_mismatch", "fail", N_(
        "torch fails to import because of NumPy {numpy}: a module was built for another NumPy "
        "ABI."), "numpy_pin", key="numpy.abi_mismatch:import"),
    Kind("numpy.missing", "warn", N_(
        "NumPy is not installed: torch works, but torch.from_numpy and most course notebooks "
        "need it."), "numpy_install"),
    # NVIDIA and CUDA
    Kind("nvidia.smi_error", "warn", N_(
        "nvidia-smi did not answer properly, so the GPU checks are incomplete.")),
    Kind("nvidia.no_driver", "fail", N_(
        "This machine has an NVIDIA card ({devices}) but no NVIDIA driver{nouveau}: torch cannot "
        "use it. To do: {todo}"), "driver"),
    Kind("nvidia.driver_not_loaded", "fail", N_(
        "The NVIDIA driver is installed but not loaded: nvidia-smi cannot communicate with it, "
        "so torch cannot use the card. Keep the CUDA build of torch; to do: {todo}"), "driver"),
    Kind("gpu.none", "pass", N_(
        "No NVIDIA GPU: torch runs on the CPU, which is fine for this course (training is "
        "slower).")),
    Kind("gpu.none_usable", "pass", N_(
        "No GPU torch can use: it runs on the CPU, which is fine for this course.")),
    Kind("torch.cpu_only_with_gpu", "fail", N_(
        "torch {version} is a CPU-only build, but this machine has {gpus}. (Common on Windows: "
        "PyPI and its mirrors serve CPU builds there.)"), "install_torch"),
    Kind("driver.too_old", "fail", N_(
        "The NVIDIA driver {driver} (CUDA {driver_cuda}) is too old for torch {version}, built "
        "for CUDA {cuda}: it needs driver {needed} or newer. Update the driver, or install a "
        "torch build this driver runs."), "install_torch"),
    Kind("gpu.too_new", "fail", N_(
        "{gpus} is newer than torch {version} was built for (it carries {archs}): \"no kernel "
        "image is available for execution on the device\". A newer build has its kernels."),
        "install_torch"),
    Kind("gpu.arch_unsupported", "fail", N_(
        "torch {version} has no kernels for {gpus} (it carries {archs}): \"no kernel image is "
        "available for execution on the device\"."), "install_torch"),
    Kind("torch.cuda_unavailable", "fail", N_(
        "torch {version} is built for CUDA {cuda} and nvidia-smi sees {gpus}, but "
        "torch.cuda.is_available() is False.")),
    Kind("cuda.available", "pass", N_("torch uses CUDA {cuda} on {devices}.")),
    Kind("cuda.oom", "skip", N_(
        "CUDA out-of-memory errors show only under load; `cnnsetup verify` trains to find out "
        "(if it happens: a smaller batch, or free the memory other programs hold).")),
    Kind("mps.available", "pass", N_("torch uses the Apple GPU through MPS.")),
    Kind("mps.unavailable", "warn", N_(
        "torch has MPS, but it is not available here: it needs macOS 14 or newer on Apple "
        "Silicon (this is macOS {version}, {arch}). torch runs on the CPU meanwhile.")),
    # Jupyter
    Kind("jupyter.none", "skip", N_("No Jupyter kernels found (only notebooks need one).")),
    Kind("jupyter.kernels", "pass", N_("Jupyter kernels with this torch: {kernels}.")),
    Kind("jupyter.kernel_no_torch", "warn", N_(
        "Jupyter kernels whose Python has no working torch (a notebook there says \"No module "
        "named 'torch'\"): {kernels}. Install a kernel for the environment that has torch, "
        "then choose it in the notebook (Kernel > Change kernel)."), "kernel_install"),
    Kind("jupyter.kernel_torch_differs", "warn", N_(
        "Jupyter kernels with another torch than this Python's {version}: {kernels}. A notebook "
        "there does not run the torch cnnsetup checked."), "kernel_install"),
    Kind("jupyter.kernel_interpreter_missing", "warn", N_(
        "Jupyter kernels whose Python no longer exists (its environment was removed): "
        "{kernels}. Remove them and install a kernel for a working environment."),
        "kernel_replace"),
    Kind("jupyter.kernel_probe_failed", "warn", N_(
        "Jupyter kernels whose Python did not answer: {kernels}.")),
    # resources and conda
    Kind("ram.low", "warn", N_(
        "RAM: {available} free of {total}. Training may be slow or fail; close other programs "
        "or use a smaller batch.")),
    Kind("ram.ok", "pass", N_("RAM: {available} free of {total}.")),
    Kind("disk.low", "warn", N_(
        "Little free disk space: {places}. A CUDA build of torch needs several GB."), "clean"),
    Kind("disk.ok", "pass", N_("Free disk: {places}.")),
    Kind("conda.error", "warn", N_("conda was found but did not answer.")),
    Kind("conda.none", "skip", N_("conda not found; that is fine when you use pip and venv.")),
    Kind("conda.found", "pass", N_("conda {version} at {base}.")),
)}


@dataclass(frozen=True)
class ImportFailure:
    """A torch import failure recognised by its text: all of `markers` (lower case) in the
    error, on `platform` (None: any)."""

    kind: str
    markers: tuple[str, ...]
    platform: Optional[str] = None
    any_of: tuple[str, ...] = ()  # and at least one of these, when given


IMPORT_FAILURES: tuple[ImportFailure, ...] = (
    ImportFailure("torch.openmp_clash", ("omp: error #15",)),
    ImportFailure("torch.mkl_symbol", ("undefined symbol",), any_of=("ijit_notifyevent", "mkl_")),
    ImportFailure("torch.cuda_dll_missing", ("[winerror 126]",), "win32", CUDA_DLLS),
    ImportFailure("torch.vc_runtime_missing", ("[winerror 126]",), "win32", TORCH_DLLS),
    ImportFailure("torch.dll_init_failed", ("[winerror 1114]",), "win32"),
    ImportFailure("torch.dll_conflict", ("[winerror 127]",), "win32"),
    ImportFailure("torch.vc_runtime_missing", ("[winerror 126]",), "win32"),
)


def classify_import_failure(text: str, platform: str) -> Optional[str]:
    """The KINDS id of a known torch import failure in `text`, or None."""
    lowered = text.lower()
    for failure in IMPORT_FAILURES:
        if failure.platform and failure.platform != platform:
            continue
        if all(m in lowered for m in failure.markers) and (
                not failure.any_of or any(a in lowered for a in failure.any_of)):
            return failure.kind
    return None


_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Interrupt)|OMP: Error #\d+)\b")


def error_line(text: Optional[str]) -> Optional[str]:
    """The line of `text` that is the error: the last "SomeError: ..." or OpenMP's "OMP: Error
    #15: ..." line (not the "OMP: Hint ..." after it); else the last line that is no hint."""
    if not text:
        return None
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if _ERROR_LINE.match(line)]
    if errors:
        return errors[-1]
    useful = [line for line in lines if not line.startswith(("OMP: Hint", "OMP: Info"))]
    return (useful or lines or [None])[-1]


class Context:
    """What rules share: the facts, the torch recommendation, and the fix recipes."""

    def __init__(self, facts: Facts, rec: Optional[Recommendation],
                 machine: Optional[Machine]) -> None:
        self.facts = facts
        self.rec = rec
        self.machine = machine
        self.shell = getattr(facts, "shell", shell_module.POSIX)
        self.python = facts.python.executable or None
        self.index_url = getattr(facts, "pip_index_url", None)

    # -------------------------------------------------------------- building findings

    def finding(self, kind_key: str, detail: Optional[str] = None, *, status: Optional[str] = None,
                fix: Optional[str] = "", **values) -> Finding:
        """The Finding of KINDS[kind_key] with `values` in its summary; `fix` "" means the
        kind's recipe, None none, any other text that text."""
        kind = KINDS[kind_key]
        summary = _(kind.summary).format(**values) if kind.summary != "{text}" else values["text"]
        if fix == "":
            fix = self.fix(kind.fix, values) if kind.fix else None
        return Finding(kind.id, status or kind.status, summary, fix, detail)

    # -------------------------------------------------------------- fix recipes

    def fix(self, recipe: str, values: dict) -> Optional[str]:
        """The command for `recipe` (KINDS' fix names) on this machine."""
        return getattr(self, "_fix_" + recipe)(values)

    def pip(self, *args: str, python: Optional[str] = None) -> str:
        """`"<python>" -m pip ARGS`."""
        return shell_module.python_command(python or self.python, ["-m", "pip", *args], self.shell)

    def pip_install(self, *packages: str, python: Optional[str] = None) -> str:
        """`"<python>" -m pip install PACKAGES`, from the configured pip mirror when there is one."""
        return shell_module.pip_install(python or self.python, packages, self.shell,
                                        index_url=self.index_url)

    @property
    def conda_torch(self) -> bool:
        """torch in this environment was installed by conda (a conda-meta record of pytorch)."""
        torch = self.facts.torch
        records = [r for r in self.facts.python.conda_records if r.startswith("pytorch-")
                   or r.startswith("pytorch-cpu-") or r.startswith("pytorch-gpu-")]
        return bool(torch.conda_pytorch or records or "conda" in torch.installers)

    def conda_program(self) -> str:
        conda = self.facts.conda.path
        return shell_module.program(conda, self.shell) if conda else "conda"

    def conda(self, *args: str) -> str:
        """`"<conda>" ARGS` (conda by its full path when known)."""
        return " ".join([self.conda_program(), *(shell_module.quote(a, self.shell) for a in args)])

    def _fix_install_torch(self, values: dict) -> Optional[str]:
        if self.conda_torch and self.facts.torch.installed:
            return self._fix_fresh_env(values)
        return self.rec.command if self.rec else None

    def _fix_install_torch_if_missing(self, values: dict) -> Optional[str]:
        return self.rec.command if self.rec and not self.facts.torch.installed else None

    def _fix_reinstall_torch(self, values: dict) -> Optional[str]:
        if self.conda_torch:
            prefix = self.facts.python.prefix
            return self.conda("install", "-p", PathArg(prefix), "-y", "--force-reinstall", "pytorch")
        lines = [self.pip("uninstall", "-y", "torch"), *(self.rec.commands if self.rec else [])]
        return "\n".join(_unique(lines))

    def _fix_reinstall_no_cache(self, values: dict) -> Optional[str]:
        if self.conda_torch:
            return self._fix_reinstall_torch(values)
        lines = [self.pip("uninstall", "-y", "torch")]
        if self.rec and self.rec.argvs:
            lines += [shell_module.python_command(self.python, [*a[1:], "--no-cache-dir"], self.shell)
                      for a in self.rec.argvs if "uninstall" not in a]
        return "\n".join(_unique(lines))

    def _fix_vc_redist(self, values: dict) -> Optional[str]:
        return VC_REDIST_FIX

    def _fix_ensurepip(self, values: dict) -> Optional[str]:
        return shell_module.python_command(self.python, ["-m", "ensurepip", "--upgrade"], self.shell)

    def _fix_numpy_pin(self, values: dict) -> Optional[str]:
        if self.conda_torch:
            return self.conda("install", "-p", PathArg(self.facts.python.prefix), "-y", "numpy<2")
        return self.pip_install("numpy<2")

    def _fix_numpy_install(self, values: dict) -> Optional[str]:
        if self.conda_torch:
            return self.conda("install", "-p", PathArg(self.facts.python.prefix), "-y", "numpy")
        return self.pip_install("numpy")

    def _fix_mkl(self, values: dict) -> Optional[str]:
        if self.conda_torch:
            return self.conda("install", "-p", PathArg(self.facts.python.prefix), "-y", MKL_BEFORE_ITT_SPLIT)
        return self._fix_fresh_env(values)

    def _fix_clean(self, values: dict) -> Optional[str]:
        if self.facts.conda.found:
            return self.conda("clean", "--all", "-y")
        return self.pip("cache", "purge")

    def _fix_driver(self, values: dict) -> Optional[str]:
        return driver_fix(self.machine)[1] if self.machine else None

    def fresh_env(self) -> tuple[list[str], Optional[str]]:
        """Commands that make a new environment holding pip's torch only, and its Python."""
        facts = self.facts
        name = kernel_name(facts.python.env_name or "torch") + "-pip"
        version = ".".join((facts.python.version or "3.12").split(".")[:2])
        windows = facts.platform == "win32"
        if facts.conda.found and facts.conda.base:
            base = facts.conda.base
            python = _join(windows, base, "envs", name, "python.exe" if windows else "bin/python")
            lines = [self.conda("create", "-y", "-n", name, f"python={version}")]
        else:
            home = facts.system.home or "~"
            folder = _join(windows, home, name)
            python = _join(windows, folder, "Scripts\\python.exe" if windows else "bin/python")
            lines = [shell_module.python_command(self.python, ["-m", "venv", PathArg(folder)],
                                                 self.shell)]
        return lines, python

    def _fix_fresh_env(self, values: dict) -> Optional[str]:
        lines, python = self.fresh_env()
        if self.machine is None:
            return "\n".join(lines)
        fresh = replace(self.machine, python_path=python, installed_torch=None)
        try:
            rec = recommend(fresh, mirror=getattr(self.facts, "pip_mirror", None))
        except Exception:  # a fact the tables cannot place: the environment alone
            return "\n".join(lines)
        return "\n".join(lines + rec.commands)

    def kernel_install(self, python: Optional[str] = None) -> str:
        """Install a Jupyter kernel for `python`'s environment (this Python by default)."""
        python = python or self.python
        name = kernel_name(self.facts.python.env_name or "torch")
        lines = []
        if not self.facts.python.ipykernel:
            lines.append(self.pip_install("ipykernel", python=python))
        lines.append(shell_module.python_command(python, [
            "-m", "ipykernel", "install", "--user", "--name", name,
            "--display-name", f"{name} (cnnsetup)"], self.shell))
        return "\n".join(lines)

    def _fix_kernel_install(self, values: dict) -> Optional[str]:
        if self.facts.torch.importable:
            return self.kernel_install()
        return None

    def _fix_kernel_replace(self, values: dict) -> Optional[str]:
        removals = [shell_module.remove_folder(d, self.shell) for d in values.get("spec_dirs", [])]
        install = self._fix_kernel_install(values)
        return "\n".join(removals + ([install] if install else []))


def kernel_name(env_name: str) -> str:
    """A kernelspec name (letters, digits, `.`, `_`, `-`) for an environment name."""
    name = re.sub(r"[^a-z0-9._-]+", "-", env_name.lower()).strip("-")
    return name or "torch"


def _join(windows: bool, *parts: str) -> str:
    sep = "\\" if windows else "/"
    out = parts[0]
    for part in parts[1:]:
        out = out.rstrip("/\\") + sep + part
    return out


def evaluate(facts: Facts, recommendation: Optional[Recommendation] = None) -> list[Finding]:
    """Every finding for `facts`, problems first within each area, in a stable order."""
    rec = recommendation
    machine: Optional[Machine] = None
    try:
        machine = machine_from_facts(facts)
        if rec is None:
            rec = recommend(machine, mirror=getattr(facts, "pip_mirror", None))
    except Exception:  # a fact the tables cannot place must not hide the other findings
        rec = rec
    ctx = Context(facts, rec, machine)
    findings: list[Finding] = []
    for rule in RULES:
        findings.extend(rule(ctx))
    return findings


def failed(findings: list[Finding]) -> bool:
    """Whether any finding failed (the command then exits with 1)."""
    return any(f.status == "fail" for f in findings)


# ------------------------------------------------------------------ Python


def _python(ctx: Context) -> list[Finding]:
    facts = ctx.facts
    py = facts.python
    out = []
    version = tables.parse_version(py.version) or (0, 0)
    low, high = tables.PYTHON_SUPPORTED
    if py.bits != 64:
        out.append(ctx.finding("python.32bit", bits=py.bits))
    if not (low <= version[:2] <= high):
        out.append(ctx.finding("python.unsupported_version",
                               status="warn" if facts.torch.importable else "fail",
                               version=py.version, low=_dotted(low), high=_dotted(high)))
    elif py.bits == 64:
        out.append(ctx.finding("python.version", version=py.version))
    if not py.pip_module:
        out.append(ctx.finding("python.pip_missing"))
    wrong = _wrong_interpreter(ctx)
    if wrong:
        out.append(ctx.finding("python.wrong_interpreter", text=wrong))
    return out


def _wrong_interpreter(ctx: Context) -> Optional[str]:
    facts = ctx.facts
    py = facts.python
    own_pip = ctx.pip("install", "...")
    if py.pip_matches is False:
        return _("`pip` on PATH belongs to another Python ({pip}), not to {python}: packages it "
                 "installs are invisible here. Install with this Python's own pip: {command}").format(
            pip=py.pip_python, python=py.executable, command=own_pip)
    active = py.active_env_prefix
    if active and py.prefix and not _same_dir(active, py.prefix, facts.platform):
        return _("The active environment is {active}, but this Python runs from {prefix}: "
                 "packages installed in one are not seen by the other.").format(
            active=active, prefix=py.prefix)
    return None


# ------------------------------------------------------------------ torch


def _torch(ctx: Context) -> list[Finding]:
    torch = ctx.facts.torch
    out: list[Finding] = []
    failure = torch.probe_failure
    if failure in ("timed_out", "crashed", "probe_error"):
        known = classify_import_failure(torch.error or "", ctx.facts.platform)
        if known:
            out.append(_known_failure(ctx, known))
        else:
            kind = {"timed_out": "torch.probe_timeout", "crashed": "torch.crashed",
                    "probe_error": "torch.describe_error"}[failure]
            out.append(ctx.finding(kind, torch.error))
    elif failure == "start_failed":
        out.append(ctx.finding("torch.probe_failed", torch.error))
    elif not torch.installed:
        out.append(ctx.finding("torch.missing", torch.error))
    elif not torch.importable:
        out.append(_import_failure(ctx))
    else:
        build = (_("CUDA {cuda}").format(cuda=torch.cuda) if torch.cuda
                 else _("ROCm {hip}").format(hip=torch.hip) if torch.hip else _("CPU-only"))
        out.append(ctx.finding("torch.import", version=torch.version, build=build,
                               seconds=f"{torch.probe_seconds or 0:.1f}"))
    numpy = _numpy(ctx)
    if numpy:
        out.append(numpy)
    mix = _conda_pip_mix(ctx)
    if mix:
        out.append(mix)
    return out


def _import_failure(ctx: Context) -> Finding:
    torch = ctx.facts.torch
    error = torch.error or ""
    if _is_numpy_problem(error):
        return ctx.finding("numpy.abi_mismatch:import", error, numpy=torch.numpy_version or "?")
    known = classify_import_failure(error, ctx.facts.platform)
    if known:
        return _known_failure(ctx, known)
    if error.startswith("OSError") or "WinError" in error or ".dll" in error.lower() or \
            "cannot open shared object" in error:
        return ctx.finding("torch.dll_error", error, version=torch.version or "")
    return ctx.finding("torch.import_error", error, version=torch.version or "")


def _known_failure(ctx: Context, kind: str) -> Finding:
    """A failure IMPORT_FAILURES recognised: its values, and the exact error line as detail."""
    torch, facts = ctx.facts.torch, ctx.facts
    text = torch.error or ""
    line = error_line(text)
    lowered = text.lower()
    values = {"version": torch.version or "", "url": VC_REDIST_URL}
    if kind in ("torch.vc_runtime_missing", "torch.cuda_dll_missing"):
        names = re.findall(r"[\w.-]+\.dll", text, re.IGNORECASE)
        values["dll"] = names[0] if names else "a DLL"
    if kind == "torch.openmp_clash":
        runtime = re.search(r"initializing (\S+?),", lowered)
        values["runtime"] = runtime.group(1) if runtime else "libiomp5"
        records = [r for r in facts.python.conda_records
                   if r.startswith(("intel-openmp", "llvm-openmp", "mkl"))]
        values["records"] = ", ".join(records) or _("an OpenMP runtime of another installer")
    if kind == "torch.mkl_symbol":
        symbol = re.search(r"undefined symbol: ?(\S+)", text)
        values["symbol"] = "undefined symbol: " + (symbol.group(1) if symbol else "?")
        values["installer_note"] = (
            _("torch came from conda: pin conda's MKL to a release before 2024.1.")
            if ctx.conda_torch else
            _("pip's torch here sees conda's MKL: keep one installer per environment."))
    return ctx.finding(kind, line, **values)


def _is_numpy_problem(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in NUMPY_MARKERS)


def _numpy(ctx: Context) -> Optional[Finding]:
    torch = ctx.facts.torch
    if not torch.importable:
        return None
    texts = [w for w in torch.import_warnings if _is_numpy_problem(w)]
    if torch.numpy_ok is False:
        texts.append(torch.numpy_error or "")
    if not texts:
        return None
    detail = "\n".join(t for t in texts if t)
    if torch.numpy_version is None or any("no module named 'numpy'" in t.lower() for t in texts):
        # Not a mismatch: NumPy is simply absent. torch runs without it (pip's torch does not
        # require it); only torch.from_numpy and the many notebooks that use NumPy need it.
        return ctx.finding("numpy.missing", detail)
    return ctx.finding("numpy.abi_mismatch", detail, numpy=torch.numpy_version or "?")


def _conda_pip_mix(ctx: Context) -> Optional[Finding]:
    torch = ctx.facts.torch
    pip_made = [i for i in torch.installers if i != "conda"]
    if not (torch.conda_pytorch and pip_made) and len(torch.dist_versions) < 2:
        return None
    return ctx.finding("torch.conda_pip_mix",
                       found=", ".join(torch.conda_pytorch + torch.dist_versions))


# ------------------------------------------------------------------ GPU and CUDA


def _gpu(ctx: Context) -> list[Finding]:
    facts = ctx.facts
    torch, nvidia = facts.torch, facts.nvidia
    out: list[Finding] = []
    problem_state = driver_problem(nvidia)
    hardware = getattr(nvidia, "hardware", None)
    if problem_state == NOT_LOADED:
        smi_line = next((line for line in (nvidia.error or "").splitlines()
                         if "NVIDIA-SMI has failed" in line), nvidia.error)
        out.append(ctx.finding("nvidia.driver_not_loaded", _smi_message(smi_line),
                               todo=driver_fix(ctx.machine)[0] if ctx.machine else "?"))
        return out
    if problem_state == NO_DRIVER and hardware is not None:
        nouveau = any(d.driver == "nouveau" for d in hardware.devices)
        devices = ", ".join(f"PCI {d.address} [10de:{d.device_id.replace('0x', '')}]"
                            for d in hardware.devices)
        detail = "\n".join(f"{d.address}: vendor 0x10de device {d.device_id}, driver "
                           f"{d.driver or '-'}" for d in hardware.devices)
        out.append(ctx.finding(
            "nvidia.no_driver", detail, devices=devices,
            nouveau=_(" (the open-source nouveau driver runs it, which CUDA cannot use)")
            if nouveau else "",
            todo=driver_fix(ctx.machine)[0] if ctx.machine else "?"))
        return out
    if nvidia.error:
        out.append(ctx.finding("nvidia.smi_error", nvidia.error))
    if facts.platform == "darwin":
        return out + _mps(ctx)
    if not nvidia.gpus:
        if not nvidia.error:
            out.append(ctx.finding("gpu.none"))
        return out
    names = ", ".join(g.name for g in nvidia.gpus)
    if not torch.importable:
        return out
    if not torch.cuda and not torch.hip:
        out.append(ctx.finding("torch.cpu_only_with_gpu", version=torch.version, gpus=names))
        return out
    problem = False
    built = tables.parse_version(torch.cuda)
    if _driver_too_old(ctx):
        out.append(ctx.finding(
            "driver.too_old", _first(torch.cuda_warnings, "too old"),
            driver=nvidia.driver_version or "?", driver_cuda=nvidia.cuda_version or "?",
            version=torch.version, cuda=torch.cuda,
            needed=(tables.driver_floor(built[0], facts.platform) if built else None) or "?"))
        problem = True
    too_new, unsupported = _unsupported_gpus(ctx)
    archs = " ".join(torch.arch_list) or "?"
    warned = _first(torch.cuda_warnings, "not compatible with the current pytorch") or \
        _first(torch.cuda_warnings, "capability")
    if too_new:
        out.append(ctx.finding("gpu.too_new", warned, version=torch.version, gpus=too_new,
                               archs=archs))
        problem = True
    if unsupported:
        out.append(ctx.finding("gpu.arch_unsupported", warned, version=torch.version,
                               gpus=unsupported, archs=archs))
        problem = True
    if not problem and not torch.cuda_available:
        out.append(ctx.finding("torch.cuda_unavailable", "\n".join(torch.cuda_warnings) or None,
                               version=torch.version, cuda=torch.cuda, gpus=names))
    elif not problem:
        devices = ", ".join(f"{d.get('name')} ({d.get('capability')})" for d in torch.devices)
        out.append(ctx.finding("cuda.available", cuda=torch.cuda, devices=devices or names))
        out.append(ctx.finding("cuda.oom"))
    return out


def _smi_message(text: Optional[str]) -> Optional[str]:
    """nvidia-smi's own sentence, without the command line cnnsetup put in front of it."""
    if not text:
        return text
    index = text.find("NVIDIA-SMI has failed")
    return text[index:].strip() if index >= 0 else text


def _driver_too_old(ctx: Context) -> bool:
    facts = ctx.facts
    torch, nvidia = facts.torch, facts.nvidia
    built = tables.parse_version(torch.cuda)
    if built is None:
        return False
    runs = tables.driver_runs(built[:2], driver_version=nvidia.driver_version,
                              driver_cuda=nvidia.cuda_version, platform=facts.platform)
    return runs is False or bool(_first(torch.cuda_warnings, "too old"))


def _unsupported_gpus(ctx: Context) -> tuple[Optional[str], Optional[str]]:
    """(cards newer than every architecture the build carries, other cards it cannot run)."""
    torch = ctx.facts.torch
    caps: dict[str, Optional[str]] = {}
    for device in torch.devices:
        caps[str(device.get("name"))] = device.get("capability")
    for card in ctx.facts.nvidia.gpus:
        caps.setdefault(card.name, card.compute_cap)
    built = [c for c in (tables.parse_capability(a) for a in torch.arch_list) if c]
    newer, other = [], []
    for name, cap_text in caps.items():
        cap = tables.parse_capability(cap_text)
        if cap is None or not torch.arch_list:
            continue
        if not tables.runs_on(torch.arch_list, cap):
            label = f"{name} (sm_{cap[0]}{cap[1]})"
            (newer if built and cap > max(built) else other).append(label)
    warned = _first(torch.cuda_warnings, "not compatible with the current pytorch")
    if not newer and not other and warned:
        other.append(warned)
    return ", ".join(newer) or None, ", ".join(other) or None


def _mps(ctx: Context) -> list[Finding]:
    facts = ctx.facts
    torch = facts.torch
    if not torch.importable:
        return []
    if torch.mps_available:
        return [ctx.finding("mps.available")]
    if torch.mps_built:
        return [ctx.finding("mps.unavailable", version=facts.system.os_version or "?",
                            arch=facts.system.arch)]
    return [ctx.finding("gpu.none_usable")]


# ------------------------------------------------------------------ Jupyter


def _jupyter(ctx: Context) -> list[Finding]:
    facts = ctx.facts
    kernels = facts.jupyter
    if kernels is None:
        return []
    python_kernels = [k for k in kernels if k.is_python]
    if not python_kernels:
        fix = ctx.kernel_install() if facts.torch.importable else None
        return [ctx.finding("jupyter.none", fix=fix)]
    torch = facts.torch
    missing, failed_probe, no_torch, differs, good = [], [], [], [], []
    for kernel in python_kernels:
        label = f"{kernel.name} ({kernel.display_name}: {kernel.interpreter or '?'})"
        if not kernel.interpreter_exists:
            missing.append((kernel, label))
        elif kernel.probe_error:
            failed_probe.append((kernel, label))
        elif not kernel.torch:
            no_torch.append((kernel, label))
        elif torch.importable and (kernel.torch != torch.version or
                                   (kernel.torch_cuda or None) != (torch.cuda or None)):
            differs.append((kernel, f"{label}: torch {kernel.torch}"))
        else:
            good.append((kernel, f"{kernel.name} ({kernel.display_name})"))
    out = []
    if missing:
        out.append(ctx.finding(
            "jupyter.kernel_interpreter_missing",
            "\n".join(f"{k.spec_dir}: {k.interpreter}" for k, _l in missing),
            kernels="; ".join(label for _k, label in missing),
            spec_dirs=[k.spec_dir for k, _l in missing]))
    if no_torch:
        status = "warn" if good else "fail"
        fix = ctx.kernel_install() if torch.importable else None
        if fix is None and ctx.rec and ctx.machine is not None:
            kernel = no_torch[0][0]
            rec = recommend(replace(ctx.machine, python_path=kernel.interpreter,
                                    installed_torch=None), mirror=getattr(facts, "pip_mirror", None))
            fix = rec.command
        out.append(ctx.finding(
            "jupyter.kernel_no_torch",
            "\n".join(f"{k.name}: {error_line(k.torch_error) or '-'}" for k, _l in no_torch),
            status=status, fix=fix, kernels="; ".join(label for _k, label in no_torch)))
    if differs:
        out.append(ctx.finding("jupyter.kernel_torch_differs", version=torch.version,
                               kernels="; ".join(label for _k, label in differs)))
    if failed_probe:
        out.append(ctx.finding("jupyter.kernel_probe_failed",
                               "\n".join(k.probe_error or "" for k, _l in failed_probe),
                               kernels="; ".join(label for _k, label in failed_probe)))
    if good:
        out.append(ctx.finding("jupyter.kernels", kernels=", ".join(label for _k, label in good)))
    return out


# ------------------------------------------------------------------ resources and conda


def _resources(ctx: Context) -> list[Finding]:
    system = ctx.facts.system
    out = []
    total, available = system.ram_total_bytes, system.ram_available_bytes
    if total is not None and available is not None:
        kind = "ram.low" if total < RAM_TOTAL_LOW or available < RAM_AVAILABLE_LOW else "ram.ok"
        out.append(ctx.finding(kind, available=gib(available), total=gib(total)))
    disks = [(system.home, system.disk_free_home_bytes)]
    if system.pkgs_dir:
        disks.append((system.pkgs_dir, system.disk_free_pkgs_bytes))
    low = [(p, free) for p, free in disks if free is not None and free < DISK_WARN]
    if low:
        status = "fail" if any(free < DISK_FAIL for _p, free in low) else "warn"
        out.append(ctx.finding("disk.low", status=status,
                               places="; ".join(_place(free, p) for p, free in low)))
    elif any(free is not None for _p, free in disks):
        out.append(ctx.finding("disk.ok", places="; ".join(
            _place(free, p) for p, free in disks if free is not None)))
    return out


def _place(free: int, path: str) -> str:
    return _("{size} at {path}").format(size=gib(free), path=path)


def _conda(ctx: Context) -> list[Finding]:
    conda = ctx.facts.conda
    if conda.error:
        return [ctx.finding("conda.error", conda.error)]
    if not conda.found:
        return [ctx.finding("conda.none")]
    return [ctx.finding("conda.found", version=conda.version or "?", base=conda.base or conda.path)]


RULES: tuple[Callable[[Context], list[Finding]], ...] = (
    _python, _torch, _gpu, _jupyter, _resources, _conda,
)


# ------------------------------------------------------------------ helpers


def gib(n: Optional[int]) -> str:
    """Bytes as "7.8 GiB"."""
    return "?" if n is None else f"{n / GIB:.1f} GiB"


def _dotted(version) -> str:
    return ".".join(str(p) for p in version)


def _first(texts: Sequence[str], needle: str) -> Optional[str]:
    return next((t for t in texts if needle.lower() in t.lower()), None)


def _unique(items: list[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _same_dir(a: str, b: str, platform: str) -> bool:
    def norm(p: str) -> str:
        p = os.path.normpath(os.path.realpath(p) if os.path.exists(p) else p)
        return p.lower() if platform == "win32" else p

    return norm(a) == norm(b)
