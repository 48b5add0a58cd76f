"""Rules: facts in, findings out. Each finding has a stable id, a status (pass | warn | fail |
skip), a translated summary, and a command to paste (or None). Commands that install torch come
from `torch_install`, so `info` and `torch-command` always agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional

from cnnsetup.i18n import _
from cnnsetup.machine import cuda_tables as tables
from cnnsetup.machine.facts import Facts
from cnnsetup.machine.torch_install import Recommendation, machine_from_facts, recommend

GIB = 1024 ** 3
RAM_TOTAL_LOW = 8 * GIB
RAM_AVAILABLE_LOW = 2 * GIB
DISK_WARN = 10 * GIB  # a CUDA torch wheel and its libraries take several GB
DISK_FAIL = 3 * GIB

VC_REDIST_URL = "https://aka.ms/vs/17/release/vc_redist.x64.exe"
VC_REDIST_FIX = "winget install --id Microsoft.VCRedist.2015+.x64 -e"
NUMPY_FIX = 'python -m pip install "numpy<2"'
ENSUREPIP_FIX = "python -m ensurepip --upgrade"

NUMPY_MARKERS = (
    "compiled using numpy 1.x", "failed to initialize numpy", "_array_api not found",
    "numpy.core.multiarray failed to import", "numpy is not available",
    "numpy.dtype size changed", "module compiled against abi version",
)


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


def evaluate(facts: Facts, recommendation: Optional[Recommendation] = None) -> list[Finding]:
    """Every finding for `facts`, problems first within each area, in a stable order."""
    rec = recommendation
    if rec is None:
        try:
            rec = recommend(machine_from_facts(facts))
        except Exception:  # a fact the tables cannot place must not hide the other findings
            rec = None
    findings: list[Finding] = []
    for rule in RULES:
        findings.extend(rule(facts, rec))
    return findings


def failed(findings: list[Finding]) -> bool:
    """Whether any finding failed (the command then exits with 1)."""
    return any(f.status == "fail" for f in findings)


# ------------------------------------------------------------------ Python


def _python(facts: Facts, rec: Optional[Recommendation]) -> list[Finding]:
    py = facts.python
    out = []
    version = tables.parse_version(py.version) or (0, 0)
    low, high = tables.PYTHON_SUPPORTED
    if py.bits != 64:
        out.append(Finding("python.32bit", "fail", _(
            "This Python is {bits}-bit: PyTorch publishes 64-bit wheels only (pip says \"from "
            "versions: none\"). Install a 64-bit Python.").format(bits=py.bits)))
    if not (low <= version[:2] <= high):
        status = "warn" if facts.torch.importable else "fail"
        out.append(Finding("python.unsupported_version", status, _(
            "Python {version} is outside what current torch supports ({low} to {high}): pip finds "
            "no wheel (\"from versions: none\") or only an old one.").format(
            version=py.version, low=_dotted(low), high=_dotted(high))))
    elif py.bits == 64:
        out.append(Finding("python.version", "pass", _(
            "Python {version}, 64-bit: current torch supports it.").format(version=py.version)))
    if not py.pip_module:
        out.append(Finding("python.pip_missing", "warn", _(
            "This Python has no pip module."), ENSUREPIP_FIX))
    wrong = _wrong_interpreter(facts)
    if wrong:
        fix = rec.command if rec and not facts.torch.installed else None
        out.append(Finding("python.wrong_interpreter", "warn", wrong, fix))
    return out


def _wrong_interpreter(facts: Facts) -> Optional[str]:
    py = facts.python
    if py.pip_matches is False:
        return _("`pip` on PATH belongs to another Python ({pip}), not to {python}: packages it "
                 "installs are invisible here. Use `python -m pip` in the active environment.").format(
            pip=py.pip_python, python=py.executable)
    active = py.active_env_prefix
    if active and py.prefix and not _same_dir(active, py.prefix, facts.platform):
        return _("The active environment is {active}, but this Python runs from {prefix}: "
                 "packages installed in one are not seen by the other.").format(
            active=active, prefix=py.prefix)
    return None


# ------------------------------------------------------------------ torch


def _torch(facts: Facts, rec: Optional[Recommendation]) -> list[Finding]:
    torch = facts.torch
    install = rec.command if rec else None
    reinstall = "\n".join(_unique(["python -m pip uninstall -y torch", *(rec.commands if rec else [])]))
    out: list[Finding] = []
    if torch.probe_failure == "timed_out":
        out.append(Finding("torch.probe_timeout", "fail", _(
            "Importing torch did not finish in time; the probe was stopped. A hung driver or a "
            "broken install can do this."), reinstall, torch.error))
    elif torch.probe_failure == "crashed":
        out.append(Finding("torch.crashed", "fail", _(
            "Python crashed while importing torch (the process died, not an exception)."),
            reinstall, torch.error))
    elif torch.probe_failure == "probe_error":
        out.append(Finding("torch.import_error", "fail", _(
            "torch imports, but describing it failed."), reinstall, torch.error))
    elif torch.probe_failure == "start_failed":
        out.append(Finding("torch.probe_failed", "fail", _(
            "The Python that should import torch could not be started."), None, torch.error))
    elif not torch.installed:
        out.append(Finding("torch.missing", "fail", _(
            "torch is not installed in this Python."), install, torch.error))
    elif not torch.importable:
        out.append(_import_failure(facts, reinstall))
    else:
        build = (_("CUDA {cuda}").format(cuda=torch.cuda) if torch.cuda
                 else _("ROCm {hip}").format(hip=torch.hip) if torch.hip else _("CPU-only"))
        out.append(Finding("torch.import", "pass", _(
            "torch {version} ({build}) imports in {seconds} s.").format(
            version=torch.version, build=build, seconds=f"{torch.probe_seconds or 0:.1f}")))
    numpy = _numpy(facts)
    if numpy:
        out.append(numpy)
    mix = _conda_pip_mix(facts, rec)
    if mix:
        out.append(mix)
    return out


def _import_failure(facts: Facts, reinstall: str) -> Finding:
    torch = facts.torch
    error = torch.error or ""
    if _is_numpy_problem(error):
        return Finding("numpy.abi_mismatch", "fail", _(
            "torch fails to import because of NumPy {numpy}: a module was built for another NumPy "
            "ABI.").format(numpy=torch.numpy_version or "?"), NUMPY_FIX, error)
    if error.startswith("OSError") or "WinError" in error or ".dll" in error.lower():
        if facts.platform == "win32":
            return Finding("torch.dll_error", "fail", _(
                "torch {version} is installed but a DLL it needs does not load. Install the latest "
                "Microsoft Visual C++ Redistributable (x64): {url}").format(
                version=torch.version or "", url=VC_REDIST_URL), VC_REDIST_FIX, error)
        return Finding("torch.dll_error", "fail", _(
            "torch {version} is installed but a shared library it needs does not load; "
            "reinstalling torch usually fixes it.").format(version=torch.version or ""),
            reinstall, error)
    return Finding("torch.import_error", "fail", _(
        "torch {version} is installed but `import torch` fails.").format(version=torch.version or ""),
        reinstall, error)


def _is_numpy_problem(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in NUMPY_MARKERS)


def _numpy(facts: Facts) -> Optional[Finding]:
    torch = facts.torch
    if not torch.importable:
        return None
    texts = [w for w in torch.import_warnings if _is_numpy_problem(w)]
    if torch.numpy_ok is False:
        texts.append(torch.numpy_error or "")
    if not texts:
        return None
    if torch.numpy_version is None or any("no module named 'numpy'" in t.lower() for t in texts):
        # Not a mismatch: NumPy is simply absent. torch runs without it (pip's torch does not
        # require it); only torch.from_numpy and the many notebooks that use NumPy need it.
        return Finding("numpy.missing", "warn", _(
            "NumPy is not installed: torch works, but torch.from_numpy and most course notebooks "
            "need it."), "python -m pip install numpy", "\n".join(t for t in texts if t))
    return Finding("numpy.abi_mismatch", "fail", _(
        "torch and NumPy {numpy} do not work together (a module was built for NumPy 1; "
        "torch.from_numpy fails).").format(numpy=torch.numpy_version or "?"),
        NUMPY_FIX, "\n".join(t for t in texts if t))


def _conda_pip_mix(facts: Facts, rec: Optional[Recommendation]) -> Optional[Finding]:
    torch = facts.torch
    pip_made = [i for i in torch.installers if i != "conda"]
    if not (torch.conda_pytorch and pip_made) and len(torch.dist_versions) < 2:
        return None
    fix_lines = []
    if torch.conda_pytorch:
        fix_lines.append("conda remove -y --force pytorch")
    fix_lines.append("python -m pip uninstall -y torch")
    fix_lines += [c for c in (rec.commands if rec else []) if "uninstall" not in c]
    return Finding("torch.conda_pip_mix", "fail", _(
        "torch is installed more than once ({found}): conda's pytorch and pip's torch overwrite each "
        "other's files (errors such as `undefined symbol: iJIT_NotifyEvent`). Keep one installer.").format(
        found=", ".join(torch.conda_pytorch + torch.dist_versions)), "\n".join(fix_lines))


# ------------------------------------------------------------------ GPU and CUDA


def _gpu(facts: Facts, rec: Optional[Recommendation]) -> list[Finding]:
    torch, nvidia = facts.torch, facts.nvidia
    install = rec.command if rec else None
    out: list[Finding] = []
    if nvidia.error:
        out.append(Finding("nvidia.smi_error", "warn", _(
            "nvidia-smi did not answer properly, so the GPU checks are incomplete."),
            None, nvidia.error))
    if facts.platform == "darwin":
        out += _mps(facts)
        return out
    if not nvidia.gpus:
        if not nvidia.error:
            out.append(Finding("gpu.none", "pass", _(
                "No NVIDIA GPU: torch runs on the CPU, which is fine for this course (training "
                "is slower).")))
        return out
    names = ", ".join(g.name for g in nvidia.gpus)
    if not torch.importable:
        return out
    if not torch.cuda and not torch.hip:
        out.append(Finding("torch.cpu_only_with_gpu", "fail", _(
            "torch {version} is a CPU-only build, but this machine has {gpus}. (Common on Windows: "
            "PyPI and its mirrors serve CPU builds there.)").format(version=torch.version, gpus=names),
            install))
        return out
    problem = False
    too_old = _driver_too_old(facts)
    if too_old:
        out.append(Finding("driver.too_old", "fail", too_old, install,
                           _first(torch.cuda_warnings, "too old")))
        problem = True
    unsupported = _unsupported_gpus(facts)
    if unsupported:
        out.append(Finding("gpu.arch_unsupported", "fail", _(
            "torch {version} has no kernels for {gpus} (it carries {archs}): \"no kernel image is "
            "available for execution on the device\".").format(
            version=torch.version, gpus=unsupported, archs=" ".join(torch.arch_list) or "?"),
            install, _first(torch.cuda_warnings, "capability")))
        problem = True
    if not problem and not torch.cuda_available:
        out.append(Finding("torch.cuda_unavailable", "fail", _(
            "torch {version} is built for CUDA {cuda} and nvidia-smi sees {gpus}, but "
            "torch.cuda.is_available() is False.").format(
            version=torch.version, cuda=torch.cuda, gpus=names),
            None, "\n".join(torch.cuda_warnings) or None))
    elif not problem:
        devices = ", ".join(f"{d.get('name')} ({d.get('capability')})" for d in torch.devices)
        out.append(Finding("cuda.available", "pass", _(
            "torch uses CUDA {cuda} on {devices}.").format(cuda=torch.cuda, devices=devices or names)))
        out.append(Finding("cuda.oom", "skip", _(
            "CUDA out-of-memory errors show only under load; `cnnsetup verify` trains to find out "
            "(if it happens: a smaller batch, or free the memory other programs hold).")))
    return out


def _driver_too_old(facts: Facts) -> Optional[str]:
    torch, nvidia = facts.torch, facts.nvidia
    built = tables.parse_version(torch.cuda)
    if built is None:
        return None
    runs = tables.driver_runs(built[:2], driver_version=nvidia.driver_version,
                              driver_cuda=nvidia.cuda_version, platform=facts.platform)
    warned = _first(torch.cuda_warnings, "too old")
    if runs is False or warned:
        return _("The NVIDIA driver {driver} (CUDA {driver_cuda}) is too old for torch {version}, "
                 "built for CUDA {cuda}: it needs driver {needed} or newer. Update the driver, or "
                 "install a torch build this driver runs.").format(
            driver=nvidia.driver_version or "?", driver_cuda=nvidia.cuda_version or "?",
            version=torch.version, cuda=torch.cuda,
            needed=tables.driver_floor(built[0], facts.platform) or "?")
    return None


def _unsupported_gpus(facts: Facts) -> Optional[str]:
    torch = facts.torch
    caps: dict[str, Optional[str]] = {}
    for device in torch.devices:
        caps[str(device.get("name"))] = device.get("capability")
    for card in facts.nvidia.gpus:
        caps.setdefault(card.name, card.compute_cap)
    bad = []
    for name, cap_text in caps.items():
        cap = tables.parse_capability(cap_text)
        if cap is None or not torch.arch_list:
            continue
        if not tables.runs_on(torch.arch_list, cap):
            bad.append(f"{name} (sm_{cap[0]}{cap[1]})")
    warned = _first(torch.cuda_warnings, "not compatible with the current pytorch")
    if not bad and warned:
        bad.append(warned)
    return ", ".join(bad) or None


def _mps(facts: Facts) -> list[Finding]:
    torch = facts.torch
    if not torch.importable:
        return []
    if torch.mps_available:
        return [Finding("mps.available", "pass", _("torch uses the Apple GPU through MPS."))]
    if torch.mps_built:
        return [Finding("mps.unavailable", "warn", _(
            "torch has MPS, but it is not available here: it needs macOS 14 or newer on Apple "
            "Silicon (this is macOS {version}, {arch}). torch runs on the CPU meanwhile.").format(
            version=facts.system.os_version or "?", arch=facts.system.arch))]
    return [Finding("gpu.none", "pass", _(
        "No GPU torch can use: it runs on the CPU, which is fine for this course."))]


# ------------------------------------------------------------------ resources and conda


def _resources(facts: Facts, rec: Optional[Recommendation]) -> list[Finding]:
    system = facts.system
    out = []
    total, available = system.ram_total_bytes, system.ram_available_bytes
    if total is not None and available is not None:
        if total < RAM_TOTAL_LOW or available < RAM_AVAILABLE_LOW:
            out.append(Finding("ram.low", "warn", _(
                "RAM: {available} free of {total}. Training may be slow or fail; close other "
                "programs or use a smaller batch.").format(
                available=gib(available), total=gib(total))))
        else:
            out.append(Finding("ram.ok", "pass", _("RAM: {available} free of {total}.").format(
                available=gib(available), total=gib(total))))
    disks = [(system.home, system.disk_free_home_bytes)]
    if system.pkgs_dir:
        disks.append((system.pkgs_dir, system.disk_free_pkgs_bytes))
    low = [(p, free) for p, free in disks if free is not None and free < DISK_WARN]
    if low:
        status = "fail" if any(free < DISK_FAIL for _p, free in low) else "warn"
        out.append(Finding("disk.low", status, _(
            "Little free disk space: {places}. A CUDA build of torch needs several GB.").format(
            places="; ".join(_place(free, p) for p, free in low)),
            "conda clean --all -y" if facts.conda.found else "python -m pip cache purge"))
    elif any(free is not None for _p, free in disks):
        out.append(Finding("disk.ok", "pass", _("Free disk: {places}.").format(
            places="; ".join(_place(free, p) for p, free in disks if free is not None))))
    return out


def _place(free: int, path: str) -> str:
    return _("{size} at {path}").format(size=gib(free), path=path)


def _conda(facts: Facts, rec: Optional[Recommendation]) -> list[Finding]:
    conda = facts.conda
    if conda.error:
        return [Finding("conda.error", "warn", _("conda was found but did not answer."),
                        None, conda.error)]
    if not conda.found:
        return [Finding("conda.none", "skip", _(
            "conda not found; that is fine when you use pip and venv."))]
    return [Finding("conda.found", "pass", _("conda {version} at {base}.").format(
        version=conda.version or "?", base=conda.base or conda.path))]


RULES: tuple[Callable[[Facts, Optional[Recommendation]], list[Finding]], ...] = (
    _python, _torch, _gpu, _resources, _conda,
)


# ------------------------------------------------------------------ helpers


def gib(n: Optional[int]) -> str:
    """Bytes as "7.8 GiB"."""
    return "?" if n is None else f"{n / GIB:.1f} GiB"


def _dotted(version) -> str:
    return ".".join(str(p) for p in version)


def _first(texts: list[str], needle: str) -> Optional[str]:
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
