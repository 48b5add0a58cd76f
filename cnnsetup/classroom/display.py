"""The words a person reads for a merged report: column headings and cell text, shared by the
terminal table, the CSV file and the HTML page so that all three say the same thing."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Optional

from cnnsetup.classroom import reports
from cnnsetup.classroom.merge import (
    FAIL, PASS, PROVING_KINDS, UNTESTED, WARN, ClassReport, Machine, parse_created)
from cnnsetup.i18n import N_, _, ngettext


def unknown() -> str:
    return _("unknown")


def result_label(result: str) -> str:
    """A machine's state or a check's status as the terminal and the page show it: PASS, FAIL,
    UNTESTED (a machine), WARN (a check)."""
    return {PASS: _("PASS"), WARN: _("WARN"), FAIL: _("FAIL"),
            UNTESTED: _("UNTESTED")}.get(result, unknown())


def trained_label(machine: Machine) -> str:
    """Where training ran to its end: "cpu, cuda:0", "cpu, 8 x cuda", "mps"; "none" when a
    verify/onboard report trained nowhere; "-" when the report never tries (info)."""
    if not machine.trained:
        return _("none") if machine.kind in PROVING_KINDS else "-"
    families = Counter(d.split(":", 1)[0] for d in machine.trained)
    parts = []
    for device in machine.trained:
        family = device.split(":", 1)[0]
        if family not in families:
            continue
        n = families.pop(family)
        parts.append(device if n == 1 else f"{n} x {family}")
    return ", ".join(parts)


def accuracy_label(machine: Machine) -> str:
    """The lowest validation accuracy where training ran, "99.5%"; "-" without one."""
    return "-" if machine.accuracy is None else f"{machine.accuracy * 100:.1f}%"


def date_label(machine: Machine) -> str:
    """When the deciding report was made, in the student's own clock: "2026-11-27 21:43"."""
    created = machine.created or ""
    if len(created) >= 16 and created[10] == "T" and created[4] == "-":
        return created[:10] + " " + created[11:16]
    return unknown()


def _timestamp(machine: Machine) -> Optional[float]:
    if date_label(machine) == unknown():
        return None
    moment = parse_created(machine.created)
    return None if moment.year == 1 else moment.timestamp()


def _short_gpu_name(name: str) -> str:
    # "NVIDIA GeForce RTX 3060 Laptop GPU" -> "RTX 3060 Laptop GPU": the brand says nothing here.
    for prefix in ("NVIDIA ", "GeForce "):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name


def gpu_label(machine: Machine) -> str:
    """"2 x A100-SXM4-80GB", "RTX 3060 Laptop GPU", "CPU only" or "unknown"."""
    if machine.gpus is None:
        return unknown()
    if not machine.gpus:
        return _("CPU only")
    counts = Counter(_short_gpu_name(n) for n in machine.gpus)
    return ", ".join(name if n == 1 else f"{n} x {name}" for name, n in counts.items())


def torch_label(machine: Machine) -> str:
    if machine.torch_installed is False:
        return _("not installed")
    if machine.torch_version:
        if machine.torch_importable is False:
            return _("{version} (broken)").format(version=machine.torch_version)
        return machine.torch_version
    if machine.torch_importable is False:
        return _("broken")
    return unknown()


def cuda_label(machine: Machine) -> str:
    """The CUDA torch was built for; "CPU build" when torch is there without CUDA (or MPS)."""
    if machine.torch_cuda:
        return machine.torch_cuda
    if machine.torch_mps:
        return "MPS"
    if machine.torch_version or machine.torch_installed:
        return _("CPU build")
    if machine.torch_installed is False:
        return "-"
    return unknown()


def mirror_label(machine: Machine) -> str:
    """One name when conda and pip agree, else "conda=NAME pip=NAME"."""
    if not machine.mirror_known:
        return unknown()
    conda, pip = machine.mirror_conda, machine.mirror_pip
    if conda == pip:
        return conda or _("none")
    return f"conda={conda or '-'} pip={pip or '-'}"


def failing_label(machine: Machine) -> str:
    return " ".join(machine.failing)


def skip_reason(code: str) -> str:
    """Why a file was skipped, in words."""
    words = {
        reports.NOT_FOUND: _("no such file or folder"),
        reports.UNREADABLE: _("cannot be read"),
        reports.TOO_LARGE: _("too large to be a report"),
        reports.NOT_UTF8: _("not UTF-8 text"),
        reports.BROKEN_JSON: _("broken JSON"),
        reports.FOREIGN: _("not a cnnsetup report"),
        reports.NEWER_SCHEMA: _("newer schema: update cnnsetup to read it"),
        reports.UNKNOWN_SCHEMA: _("unknown schema version"),
    }
    return words.get(code, code)


@dataclass(frozen=True)
class Column:
    """One column of the machine table: its key, heading, cell text and sort value."""

    key: str
    heading: str  # English, marked with N_; translated when shown
    text: Callable[[Machine], str]
    # A number to sort by (None = unknown, sorted last); without it the text is sorted as text.
    number: Optional[Callable[[Machine], Optional[float]]] = None


# Sorting by state puts the machines that need attention first.
_SEVERITY = {FAIL: 0, UNTESTED: 1, PASS: 2}

COLUMNS = (
    Column("student", N_("Student"), lambda m: m.student or "-"),
    Column("host", N_("Host"), lambda m: m.host or unknown()),
    Column("user", N_("User"), lambda m: m.user or unknown()),
    Column("state", N_("State"), lambda m: result_label(m.state),
           lambda m: _SEVERITY.get(m.state)),
    Column("kind", N_("Kind"), lambda m: unknown() if m.kind == "unknown" else m.kind),
    Column("trained", N_("Trained on"), trained_label, lambda m: len(m.trained)),
    Column("accuracy", N_("Accuracy"), accuracy_label, lambda m: m.accuracy),
    Column("mirror", N_("Mirror"), mirror_label),
    Column("torch", N_("torch"), torch_label),
    Column("gpu", N_("GPU"), gpu_label, lambda m: None if m.gpus is None else len(m.gpus)),
    Column("date", N_("Date"), date_label, _timestamp),
    Column("failing", N_("Failing checks"), failing_label, lambda m: len(m.failing)),
)


def known(machine: Machine, column: Column) -> bool:
    """Whether the cell holds a value (unknown cells sort last, whichever the direction)."""
    if column.number is not None:
        return column.number(machine) is not None
    return column.text(machine) not in (unknown(), "-")


def headings() -> list[str]:
    return [_(c.heading) for c in COLUMNS]


def row(machine: Machine) -> list[str]:
    return [c.text(machine) for c in COLUMNS]


def totals_line(report: ClassReport) -> str:
    """"12 machines: 7 pass, 3 fail, 2 untested (15 reports read, 3 superseded, 2 files
    skipped)"."""
    t = report.totals()
    return _("{machines}: {states} ({read}, {superseded}, {skipped})").format(
        machines=ngettext("{n} machine", "{n} machines", t["machines"]).format(n=t["machines"]),
        states=_("{passed} pass, {failed} fail, {untested} untested").format(
            passed=t[PASS], failed=t[FAIL], untested=t[UNTESTED]),
        read=ngettext("{n} report read", "{n} reports read", t["files_read"]).format(
            n=t["files_read"]),
        superseded=ngettext("{n} superseded", "{n} superseded", t["superseded"]).format(
            n=t["superseded"]),
        skipped=ngettext("{n} file skipped", "{n} files skipped", t["skipped"]).format(
            n=t["skipped"]),
    )


def who_label(machine: Machine) -> str:
    """"Chen Qi (lab-pc/student)" or "lab-pc/student"."""
    where = "/".join(part for part in (machine.host or "?", machine.user) if part)
    return f"{machine.student} ({where})" if machine.student else where
