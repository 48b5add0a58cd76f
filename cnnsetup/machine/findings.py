"""Rules: facts in, findings out.

Each rule looks at one area (Python, torch, GPU, Jupyter, resources, conda) and names the kinds
of finding that apply, with their values; the kinds themselves (id, status, summary, fix recipe)
are rows of `finding_kinds.KINDS`, and their commands come from `fixes.Context`. Commands that
install torch come from `torch_install`, so `info` and `torch-command` always agree.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Callable, Optional, Sequence

from cnnsetup.i18n import _
from cnnsetup.machine import cuda_tables as tables
from cnnsetup.machine.facts import Facts
from cnnsetup.machine.finding_kinds import (  # noqa: F401  (Finding and the table are public here too)
    IMPORT_FAILURES, KINDS, NUMPY_MARKERS, VC_REDIST_FIX, VC_REDIST_URL, Finding, Kind,
    classify_import_failure, error_line,
)
from cnnsetup.machine.fixes import Context, kernel_name  # noqa: F401
from cnnsetup.machine.torch_install import (
    NO_DRIVER, NOT_LOADED, Machine, Recommendation, driver_fix, driver_problem, machine_from_facts,
    recommend,
)

GIB = 1024 ** 3
RAM_TOTAL_LOW = 8 * GIB
RAM_AVAILABLE_LOW = 2 * GIB
DISK_WARN = 10 * GIB  # a CUDA torch wheel and its libraries take several GB
DISK_FAIL = 3 * GIB


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


def _same_dir(a: str, b: str, platform: str) -> bool:
    def norm(p: str) -> str:
        p = os.path.normpath(os.path.realpath(p) if os.path.exists(p) else p)
        return p.lower() if platform == "win32" else p

    return norm(a) == norm(b)
