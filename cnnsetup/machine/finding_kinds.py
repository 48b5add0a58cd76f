"""Every kind of finding `cnnsetup info` and `verify` can report, as data.

KINDS holds one row per kind: its stable id, its status, a plain-words summary with
{placeholders} (English, translated when the finding is made) and the name of its fix recipe
(`cnnsetup.machine.fixes.Context`). IMPORT_FAILURES recognises a failed `import torch` by its
text. A new failure kind is one KINDS row and, when its error text tells it apart, one
IMPORT_FAILURES row; `findings` holds the rules that decide which rows apply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from cnnsetup.i18n import N_

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


