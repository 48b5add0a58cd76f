"""Reports -> one row per machine, and the failing checks counted across the class.

Reports come from other versions and other machines, so every field is read defensively: a
missing or mistyped field is unknown (None), never an error. Values stay language-neutral here
(JSON prints them as they are); `display` turns them into words.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Optional, Union

from cnnsetup.classroom.reports import ReportFile, Skipped, read_all

PASS, WARN, FAIL, UNKNOWN = "pass", "warn", "fail", "unknown"
_OLDEST = datetime.min.replace(tzinfo=timezone.utc)


@dataclass
class Machine:
    """One machine (host + user) as its newest report describes it; None means unknown."""

    host: Optional[str]
    user: Optional[str]
    os: Optional[str]
    python: Optional[str]
    gpus: Optional[list[str]]  # GPU names; [] = no GPU
    torch_installed: Optional[bool]
    torch_importable: Optional[bool]
    torch_version: Optional[str]
    torch_cuda: Optional[str]  # CUDA torch was built for; None with torch_installed = CPU build
    torch_mps: Optional[bool]  # torch can use Apple's GPU (MPS)
    driver_cuda: Optional[str]  # highest CUDA the NVIDIA driver supports
    mirror_conda: Optional[str]
    mirror_pip: Optional[str]
    mirror_known: bool  # False when the report has no mirror section at all
    result: str  # pass | warn | fail | unknown
    failing: list[str]
    warnings: list[str]
    created: Optional[str]
    kind: Optional[str]
    schema: str
    file: str
    reports: int = 1  # how many reports were found for this machine (the newest is kept)

    def as_json(self) -> dict:
        """The machine as plain JSON values."""
        return {
            "host": self.host, "user": self.user, "os": self.os, "python": self.python,
            "gpus": self.gpus, "gpu_count": None if self.gpus is None else len(self.gpus),
            "torch": {
                "installed": self.torch_installed, "importable": self.torch_importable,
                "version": self.torch_version, "cuda": self.torch_cuda, "mps": self.torch_mps,
            },
            "driver_cuda": self.driver_cuda,
            "mirror": {"conda": self.mirror_conda, "pip": self.mirror_pip} if self.mirror_known
            else None,
            "result": self.result, "failing": self.failing, "warnings": self.warnings,
            "created": self.created, "kind": self.kind, "schema": self.schema,
            "file": self.file, "reports": self.reports,
        }


@dataclass
class CheckCount:
    """One check that failed (or warned) somewhere: how often, what it says, how to fix it."""

    id: str
    status: str  # fail | warn
    count: int
    summary: Optional[str]  # the most common wording
    fixes: list[tuple[str, int]]  # each distinct fix command and on how many machines
    machines: list[str]  # "host/user" labels

    @property
    def fix(self) -> Optional[str]:
        """The fix most machines were given."""
        return self.fixes[0][0] if self.fixes else None

    def as_json(self) -> dict:
        return {
            "id": self.id, "status": self.status, "count": self.count, "summary": self.summary,
            "fix": self.fix, "fixes": [{"fix": f, "count": n} for f, n in self.fixes],
            "machines": self.machines,
        }


@dataclass
class ClassReport:
    """The merge of many reports: machines, the checks that failed or warned, skipped files."""

    machines: list[Machine] = field(default_factory=list)
    checks: list[CheckCount] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files_read: int = 0

    def totals(self) -> dict[str, int]:
        counts = Counter(m.result for m in self.machines)
        return {
            "machines": len(self.machines), PASS: counts[PASS], WARN: counts[WARN],
            FAIL: counts[FAIL], UNKNOWN: counts[UNKNOWN],
            "files_read": self.files_read, "skipped": len(self.skipped),
        }

    def as_json(self) -> dict:
        return {
            "totals": self.totals(),
            "machines": [m.as_json() for m in self.machines],
            "checks": [c.as_json() for c in self.checks],
            "skipped": [{"path": s.path, "reason": s.reason, "detail": s.detail}
                        for s in self.skipped],
        }


def _section(data: dict, key: str) -> dict:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> Optional[str]:
    """A non-empty string, or None; numbers (a version written as 3.11) become text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _flag(value: Any) -> Optional[bool]:
    return value if isinstance(value, bool) else None


def _dicts(value: Any) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _os_name(system: dict) -> Optional[str]:
    name, release = _text(system.get("os")), _text(system.get("os_release"))
    if name and release:
        return f"{name} {release}"
    return name


def _gpus(data: dict) -> Optional[list[str]]:
    """GPU names from nvidia-smi, else from torch; [] when the report says there are none."""
    smi = data.get("gpus")
    names = [n for n in (_text(g.get("name")) for g in _dicts(smi)) if n]
    if names:
        return names
    torch = _section(data, "torch")
    names = [n for n in (_text(d.get("name")) for d in _dicts(torch.get("devices"))) if n]
    if names:
        return names
    if torch.get("mps_available") is True:
        return ["Apple MPS"]
    nvidia = data.get("nvidia")
    if isinstance(smi, list) or (isinstance(nvidia, dict) and nvidia.get("found") is False):
        return []
    return None


def _result(ok: Any, failing: list[str], warnings: list[str], has_checks: bool) -> str:
    if failing or ok is False:
        return FAIL
    if warnings:
        return WARN
    if has_checks or ok is True:
        return PASS
    return UNKNOWN


def machine_from_report(data: dict, file: str) -> Machine:
    """The row for one report, however little of it is there."""
    system, python = _section(data, "system"), _section(data, "python")
    torch = _section(data, "torch")
    mirror = data.get("mirror")
    failing: list[str] = []
    warnings: list[str] = []
    checks = _dicts(data.get("checks"))
    for check in checks:
        check_id = _text(check.get("id"))
        target = {FAIL: failing, WARN: warnings}.get(check.get("status"))
        if check_id and target is not None and check_id not in target:
            target.append(check_id)
    return Machine(
        host=_text(data.get("host")), user=_text(data.get("user")),
        os=_os_name(system), python=_text(python.get("version")), gpus=_gpus(data),
        torch_installed=_flag(torch.get("installed")),
        torch_importable=_flag(torch.get("importable")),
        torch_version=_text(torch.get("version")), torch_cuda=_text(torch.get("cuda")),
        torch_mps=_flag(torch.get("mps_available")),
        driver_cuda=_text(_section(data, "nvidia").get("cuda_version")),
        mirror_conda=_text(mirror.get("conda")) if isinstance(mirror, dict) else None,
        mirror_pip=_text(mirror.get("pip")) if isinstance(mirror, dict) else None,
        mirror_known=isinstance(mirror, dict),
        result=_result(data.get("ok"), failing, warnings, bool(checks)),
        failing=failing, warnings=warnings,
        created=_text(data.get("created")), kind=_text(data.get("kind")),
        schema=str(data.get("schema")), file=file,
    )


def parse_created(value: Optional[str]) -> datetime:
    """The report's time, comparable across time zones; unknown or unreadable -> the oldest."""
    if not value:
        return _OLDEST
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        return _OLDEST
    # A time without an offset is taken as UTC: still comparable, and rare.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def machine_key(machine: Machine) -> tuple:
    """A machine is its host name plus its user name (case does not matter on Windows, where
    both are case-insensitive). A report without a host name is a machine of its own."""
    if machine.host is None:
        return ("", "", machine.file)
    return (machine.host.casefold(), (machine.user or "").casefold())


def _newest(reports: Iterable[ReportFile]) -> list[Machine]:
    """One machine per key, from its newest report (by `created`, then file time)."""
    best: dict[tuple, tuple[tuple, Machine]] = {}
    counts: Counter = Counter()
    for report in reports:
        machine = machine_from_report(report.data, report.path)
        key = machine_key(machine)
        counts[key] += 1
        rank = (parse_created(machine.created), report.mtime)
        if key not in best or rank > best[key][0]:
            best[key] = (rank, machine)
    machines = []
    for key, (_rank, machine) in best.items():
        machine.reports = counts[key]
        machines.append(machine)
    machines.sort(key=lambda m: ((m.host or "").casefold(), (m.user or "").casefold(), m.file))
    return machines


def machine_label(machine: Machine) -> str:
    """"host/user" (or just what is known)."""
    return "/".join(part for part in (machine.host or "?", machine.user) if part)


def count_checks(data_by_machine: list[tuple[Machine, dict]]) -> list[CheckCount]:
    """Every failing or warning check across machines, worst and most common first."""
    groups: dict[tuple[str, str], dict] = {}
    for machine, data in data_by_machine:
        seen: set[tuple[str, str]] = set()
        for check in _dicts(data.get("checks")):
            check_id, status = _text(check.get("id")), check.get("status")
            if not check_id or status not in (FAIL, WARN) or (status, check_id) in seen:
                continue
            seen.add((status, check_id))
            group = groups.setdefault((status, check_id),
                                      {"summaries": Counter(), "fixes": Counter(), "machines": []})
            summary, fix = _text(check.get("summary")), _text(check.get("fix"))
            if summary:
                group["summaries"][summary] += 1
            if fix:
                group["fixes"][fix] += 1
            group["machines"].append(machine_label(machine))
    result = [
        CheckCount(
            id=check_id, status=status, count=len(g["machines"]),
            summary=g["summaries"].most_common(1)[0][0] if g["summaries"] else None,
            fixes=g["fixes"].most_common(), machines=g["machines"],
        )
        for (status, check_id), g in groups.items()
    ]
    result.sort(key=lambda c: (c.status != FAIL, -c.count, c.id))
    return result


def merge(paths: Iterable[Union[str, Path]]) -> ClassReport:
    """Read every report under `paths` (files and folders) and merge them into a class report."""
    reports, skipped = read_all(paths)
    machines = _newest(reports)
    data_of = {r.path: r.data for r in reports}
    checks = count_checks([(m, data_of[m.file]) for m in machines])
    return ClassReport(machines=machines, checks=checks, skipped=skipped, files_read=len(reports))
