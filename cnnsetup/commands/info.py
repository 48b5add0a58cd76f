"""`cnnsetup info`: what this machine is and what is wrong with it; `cnnsetup torch-command`: the
torch install command that fits it."""

from __future__ import annotations

import shutil
from typing import Optional

from cnnsetup.commands.base import command, json_option, option
from cnnsetup.i18n import N_, _, label as i18n_label
from cnnsetup.machine.cuda_tables import parse_capability
from cnnsetup.machine.facts import Facts
from cnnsetup.machine.findings import Finding, error_line, gib
from cnnsetup.render import STATUS_COLOURS, echo, key_values, pad, print_json, style, width, wrap


@command(
    "info",
    help=N_("Describe this machine (system, Python, conda, PyTorch, GPUs), name what is wrong, "
            "and print the fix. Exit status 1 when a check fails."),
)
@json_option
def info(as_json: bool) -> int:
    """Collect the facts, evaluate them, print the report; 1 when a check fails."""
    # collect() starts the torch worker before anything else and asks the rest meanwhile.
    from cnnsetup.machine.facts import collect, facts_to_json
    from cnnsetup.machine.findings import evaluate, failed

    facts = collect(kernels=True)
    findings = evaluate(facts)
    if as_json:
        print_json(facts_to_json(facts, findings, kind="info"))
    else:
        echo(render_info(facts, findings))
    return 1 if failed(findings) else 0


@command(
    "torch-command",
    help=N_("Print the torch install command that fits this machine (driver, GPU, OS, Python), "
            "and why."),
)
@option("--cuda", "cuda", default="auto", show_default=True, metavar="auto|cpu|X.Y",
        help=N_("CUDA build to install: auto (the newest this machine runs), cpu, or a version "
                "such as 12.8."))
@option("--mirror", "mirror", metavar="NAME",
        help=N_("Take torch's dependencies (and torch, where the mirror copies PyTorch's wheels) "
                "from this mirror."))
@json_option
def torch_command(cuda: str, mirror: Optional[str], as_json: bool) -> int:
    """Print the install command for this machine and the reasons for it."""
    from cnnsetup.machine import torch_install

    torch_install.check_options(cuda, mirror)
    machine = torch_install.machine_here()
    rec = torch_install.recommend(machine, cuda=cuda, mirror=mirror)
    if as_json:
        data = rec.to_json()
        data["machine"] = {
            "platform": machine.platform,
            "arch": machine.arch,
            "python": ".".join(str(p) for p in machine.python),
            "python_bits": machine.python_bits,
            "driver_version": machine.driver_version,
            "driver_cuda": machine.driver_cuda,
            "gpus": [{"name": g.name, "compute_cap": g.compute_cap} for g in machine.gpus],
            "installed_torch": machine.installed_torch,
            "nvidia_hardware": machine.nvidia_hardware,
            "driver_problem": machine.driver_problem,
            "python_path": machine.python_path,
            "shell": machine.shell,
        }
        print_json(data)
        return 0
    echo(render_recommendation(rec))
    return 0


# ------------------------------------------------------------------ rendering


def render_recommendation(rec) -> str:
    """The commands to paste first (after the driver, when the driver is the problem), then
    why, then any warnings."""
    lines = []
    if rec.driver_first:
        lines += [_("First, repair the NVIDIA driver:"), f"  {rec.driver_first}", "",
                  _("Then, if torch is not this build yet:")]
    else:
        lines.append(_("Run:"))
    lines += [f"  {c}" for c in rec.commands]
    if rec.uninstall and not rec.uninstall_first:
        lines += ["", _("If a CPU-only torch is installed, remove it first:"), f"  {rec.uninstall}"]
    lines += ["", _("Why:")]
    lines += [f"  - {r}" for r in rec.reasons]
    if rec.warnings:
        lines += ["", style(_("Warnings:"), STATUS_COLOURS["warn"])]
        lines += [f"  - {w}" for w in rec.warnings]
    return "\n".join(lines)


def render_info(facts: Facts, findings: list[Finding]) -> str:
    """The human report: sections with aligned values, then every check and its fix."""
    sections = [
        (_("System"), _system_rows(facts)),
        (_("Python"), _python_rows(facts)),
        (_("conda"), _conda_rows(facts)),
        (_("PyTorch"), _torch_rows(facts)),
        (_("GPUs"), _gpu_rows(facts)),
    ]
    if facts.jupyter is not None:
        sections.append((_("Jupyter kernels"), _kernel_rows(facts)))
    label_width = max(width(k) for _t, rows in sections for k, _v in rows)
    out = []
    for title, rows in sections:
        out.append(style(title, bold=True))
        out.append(key_values([(pad(k, label_width), v) for k, v in rows]))
        out.append("")
    out.append(style(_("Checks"), bold=True))
    out += check_lines(findings)
    return "\n".join(out)


def _no(text: Optional[object]) -> str:
    return str(text) if text not in (None, "", []) else "-"


def _system_rows(facts: Facts) -> list[tuple[str, str]]:
    s = facts.system
    os_text = " ".join(p for p in (s.os, s.os_release or "") if p)
    if s.os_version:
        os_text += f" ({s.os_version})"
    cores = _("{physical} cores, {logical} threads").format(
        physical=_no(s.cpu_cores_physical), logical=_no(s.cpu_cores_logical))
    disks = [f"{gib(s.disk_free_home_bytes)} ({s.home})"]
    if s.pkgs_dir:
        disks.append(f"{gib(s.disk_free_pkgs_bytes)} ({s.pkgs_dir})")
    return [
        (_("OS"), f"{os_text}, {s.arch}"),
        (_("CPU"), f"{_no(s.cpu_model)}; {cores}"),
        (_("RAM"), _("{available} free of {total}").format(
            available=gib(s.ram_available_bytes), total=gib(s.ram_total_bytes))),
        (_("Disk free"), "; ".join(disks)),
    ]


def _python_rows(facts: Facts) -> list[tuple[str, str]]:
    p = facts.python
    env = p.env_kind + (f" ({p.env_name})" if p.env_name else "")
    if p.pip_matches is None:
        pip = _("no `pip` on PATH (use `python -m pip`)") if p.pip_python is None else p.pip_python
    elif p.pip_matches:
        pip = _("`pip` on PATH is this Python's")
    else:
        pip = _("`pip` on PATH is another Python's: {where}").format(where=p.pip_python)
    return [
        (_("Version"), _("{version} ({implementation}, {bits}-bit)").format(
            version=p.version, implementation=p.implementation, bits=p.bits)),
        (_("Executable"), p.executable),
        (_("Environment"), env),
        (_("pip"), pip),
    ]


def _conda_rows(facts: Facts) -> list[tuple[str, str]]:
    c = facts.conda
    if not c.found:
        return [(_("conda"), _("not found"))]
    rows = [(_("conda"), f"{_no(c.version)} ({c.path})"), (_("Base"), _no(c.base))]
    rows.append((_("Active env"), _no(c.active_env)))
    if c.error:
        rows.append((_("Error"), c.error.splitlines()[0]))
    return rows


def _torch_rows(facts: Facts) -> list[tuple[str, str]]:
    t = facts.torch
    if not t.installed and not t.probe_failure:
        return [(_("torch"), _("not installed"))]
    if not t.importable:
        return [(_("torch"), _("{version}: fails to import").format(version=_no(t.version))),
                (_("Error"), error_line(t.error) or "-")]
    build = f"CUDA {t.cuda}" if t.cuda else (f"ROCm {t.hip}" if t.hip else _("CPU-only"))
    rows = [
        (_("torch"), _("{version} ({build})").format(version=t.version, build=build)),
        (_("Location"), _no(t.path)),
        (_("CUDA available"), _("yes") if t.cuda_available else _("no")),
    ]
    if t.cuda:
        rows.append((_("cuDNN"), _no(t.cudnn)))
        rows.append((_("Architectures"), " ".join(t.arch_list) or "-"))
    for d in t.devices:
        memory = gib(d.get("memory_bytes")) if d.get("memory_bytes") else "?"
        rows.append((f"cuda:{d.get('index')}", f"{d.get('name')}, sm {d.get('capability')}, {memory}"))
    if facts.platform == "darwin":
        rows.append((_("MPS"), _("built: {built}, available: {available}").format(
            built=_("yes") if t.mps_built else _("no"),
            available=_("yes") if t.mps_available else _("no"))))
    rows.append((_("NumPy"), _no(t.numpy_version)))
    rows.append((_("Import time"), f"{t.probe_seconds or 0:.1f} s"))
    return rows


def _gpu_rows(facts: Facts) -> list[tuple[str, str]]:
    n = facts.nvidia
    hardware = n.hardware
    pci = [(_("PCI"), _("{address} [10de:{device}], driver: {driver}").format(
        address=d.address, device=d.device_id.replace("0x", ""), driver=d.driver or "-"))
        for d in (hardware.devices if hardware else [])]
    if not n.found:
        return [(_("NVIDIA"), _("none (nvidia-smi not found)"))] + pci
    rows = [(_("Driver"), _("{driver} (supports CUDA up to {cuda})").format(
        driver=_no(n.driver_version), cuda=_no(n.cuda_version)))]
    for g in n.gpus:
        cap = parse_capability(g.compute_cap)
        sm = f"sm_{cap[0]}{cap[1]}" if cap else "sm ?"
        memory = f"{g.memory_total_mib} MiB" if g.memory_total_mib is not None else "?"
        rows.append((f"#{g.index}", f"{g.name}, {memory}, {sm}"))
    if not n.gpus:
        rows.append((_("GPUs"), _("none listed")))
        rows += pci
    return rows


def _kernel_rows(facts: Facts) -> list[tuple[str, str]]:
    rows = []
    for k in facts.jupyter or []:
        if not k.is_python:
            what = k.language or "?"
        elif not k.interpreter_exists:
            what = _("{python} (missing)").format(python=_no(k.interpreter))
        elif k.probe_error:
            what = f"{k.interpreter}: {k.probe_error}"
        elif k.torch:
            what = _("{python}, Python {version}, torch {torch}").format(
                python=k.interpreter, version=_no(k.python), torch=k.torch)
        else:
            what = _("{python}, Python {version}, no torch").format(
                python=k.interpreter, version=_no(k.python))
        rows.append((k.name, what))
    return rows or [(_("Kernels"), _("none found"))]


def _wrap(text: str, indent: int) -> list[str]:
    """`text` in lines that fit the terminal after `indent` columns (at least 40 wide)."""
    columns = shutil.get_terminal_size((100, 24)).columns
    return wrap(text, max(40, columns - indent - 1))


_STATUS_WORDS = {"pass": N_("pass"), "warn": N_("warn"), "fail": N_("FAIL"), "skip": N_("skip")}


def check_lines(findings: list[Finding]) -> list[str]:
    """Each check: status word, id, summary, and for problems the detail and the fix."""
    words = {k: _(v) for k, v in _STATUS_WORDS.items()}
    status_w = max(width(w) for w in words.values())
    id_w = max((width(f.id) for f in findings), default=0)
    indent = " " * (2 + status_w + 2 + id_w + 2)
    lines = []
    for f in findings:
        word = style(pad(words.get(f.status, f.status), status_w), STATUS_COLOURS.get(f.status))
        summary = _wrap(f.summary, len(indent)) or [""]
        lines.append(f"  {word}  {pad(f.id, id_w)}  {summary[0]}")
        lines += [indent + more for more in summary[1:]]
        if f.detail and f.status in ("fail", "warn"):
            detail = f.detail.strip().splitlines()
            for text in detail[-6:]:
                lines.append(indent + style(text, "bright_black"))
        if f.fix and f.status in ("fail", "warn"):
            fix_lines = f.fix.splitlines()
            label = i18n_label(_("fix:"))
            lines.append(indent + style(label, bold=True) + fix_lines[0])
            lines += [indent + " " * width(label) + more for more in fix_lines[1:]]
    counts = {s: sum(1 for f in findings if f.status == s) for s in STATUS_COLOURS}
    lines.append("")
    lines.append(_("Checks: {passed} pass, {warned} warn, {failed} fail, {skipped} skip.").format(
        passed=counts["pass"], warned=counts["warn"], failed=counts["fail"], skipped=counts["skip"]))
    return lines
