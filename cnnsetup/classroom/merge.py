"""Reports -> one row per machine with its state, and the failing checks counted across the class.

Grouping. A report belongs to the machine of its `student` when it names one (case and repeated
spaces do not matter), else to its host + user (case does not matter: both are case-insensitive
on Windows); a report with neither is a machine of its own. Lab images where every machine is
`student@lab-pc` are told apart only by `--student`.

Which reports count. For each machine the newest report of each kind (`info`, `verify`,
`onboard`) is kept, newest by `created` (compared across time zones), then by file time; every
other report of that kind is *superseded* and listed, with the file that replaced it.

State, from the deciding report: the newest kept `verify` or `onboard` report, else (only `info`
reports) the newest kept report:

    fail      a check failed (`torch-import` when torch is missing, and so on) or `ok` is false
    pass      nothing failed, warnings allowed, the report is a `verify`/`onboard` report and
              training ran to its end on at least one device (a `training` entry with `ok` true,
              DistributedDataParallel runs not counted as a device)
    untested  everything else: only `info` reports, or nothing failed but nothing was trained.
              Never counted as passing.

An `info` report can make a machine fail (a missing torch is a fact whoever reports it) but
never pass.

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

# Machine states.
PASS, FAIL, UNTESTED = "pass", "fail", "untested"
STATES = (PASS, FAIL, UNTESTED)
# Check statuses (as in report_schema).
WARN = "warn"
# Report kinds whose training proves a machine.
PROVING_KINDS = ("verify", "onboard")

_OLDEST = datetime.min.replace(tzinfo=timezone.utc)


@dataclass
class ReportRef:
    """One report file of a machine: what it is, what state it alone gives, and (when
    superseded) the file of the same kind that replaced it."""

    kind: str
    file: str
    created: Optional[str]
    state: str
    superseded_by: Optional[str] = None

    def as_json(self) -> dict:
        result = {"kind": self.kind, "file": self.file, "created": self.created,
                  "state": self.state}
        if self.superseded_by is not None:
            result["superseded_by"] = self.superseded_by
        return result


@dataclass
class Machine:
    """One machine as its deciding report describes it; None means unknown."""

    student: Optional[str]
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
    state: str  # pass | fail | untested
    failing: list[str]
    warnings: list[str]
    trained: list[str]  # devices where training ran to its end ("cpu", "cuda:0", "mps")
    accuracy: Optional[float]  # lowest validation accuracy (0..1) over those runs
    created: Optional[str]
    kind: str  # the deciding report's kind ("unknown" when it does not say)
    schema: str
    file: str
    reports: list[ReportRef] = field(default_factory=list)  # kept: newest of each kind
    superseded: list[ReportRef] = field(default_factory=list)

    @property
    def label(self) -> str:
        """Who, for lists: the student, else "host/user" (or just what is known)."""
        if self.student:
            return self.student
        return "/".join(part for part in (self.host or "?", self.user) if part)

    def as_json(self) -> dict:
        """The machine as plain JSON values."""
        return {
            "student": self.student, "host": self.host, "user": self.user, "state": self.state,
            "kind": self.kind, "devices_trained": self.trained, "val_accuracy": self.accuracy,
            "os": self.os, "python": self.python,
            "gpus": self.gpus, "gpu_count": None if self.gpus is None else len(self.gpus),
            "torch": {
                "installed": self.torch_installed, "importable": self.torch_importable,
                "version": self.torch_version, "cuda": self.torch_cuda, "mps": self.torch_mps,
            },
            "driver_cuda": self.driver_cuda,
            "mirror": {"conda": self.mirror_conda, "pip": self.mirror_pip} if self.mirror_known
            else None,
            "failing": self.failing, "warnings": self.warnings,
            "created": self.created, "schema": self.schema, "file": self.file,
            "reports": [r.as_json() for r in self.reports],
            "superseded": [r.as_json() for r in self.superseded],
        }


@dataclass
class CheckCount:
    """One check that failed (or warned) somewhere: how often, what it says, how to fix it."""

    id: str
    status: str  # fail | warn
    count: int
    summary: Optional[str]  # the most common wording
    fixes: list[tuple[str, int]]  # each distinct fix command and on how many machines
    machines: list[str]  # Machine.label of each

    @property
    def fix(self) -> Optional[str]:
        """The fix most machines were given."""
        return self.fixes[0][0] if self.fixes else None

    def as_json(self) -> dict:
        return {
            "id": self.id, "count": self.count, "fix": self.fix, "summary": self.summary,
            "fixes": [{"fix": f, "count": n} for f, n in self.fixes],
            "machines": self.machines,
        }


@dataclass
class ClassReport:
    """The merge of many reports: machines, what blocks them, what warns, skipped files."""

    machines: list[Machine] = field(default_factory=list)
    blocking: list[CheckCount] = field(default_factory=list)  # failing checks, most machines first
    warned: list[CheckCount] = field(default_factory=list)  # warning checks, likewise
    skipped: list[Skipped] = field(default_factory=list)
    files_read: int = 0

    @property
    def superseded(self) -> int:
        return sum(len(m.superseded) for m in self.machines)

    def totals(self) -> dict[str, int]:
        counts = Counter(m.state for m in self.machines)
        return {
            "machines": len(self.machines), PASS: counts[PASS], FAIL: counts[FAIL],
            UNTESTED: counts[UNTESTED], "files_read": self.files_read,
            "superseded": self.superseded, "skipped": len(self.skipped),
        }

    def as_json(self) -> dict:
        return {
            "totals": self.totals(),
            "machines": [m.as_json() for m in self.machines],
            "blocking": [c.as_json() for c in self.blocking],
            "warnings": [c.as_json() for c in self.warned],
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


def _fraction(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0.0 <= value <= 1.0 else None


def _dicts(value: Any) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _student(value: Any) -> Optional[str]:
    text = _text(value) if isinstance(value, str) else None
    return " ".join(text.split()) if text else None


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


def training_done(data: dict) -> tuple[list[str], Optional[float]]:
    """The devices where training ran to its end, and the lowest validation accuracy there.

    A `training` entry counts when its `ok` is true; in an entry without `ok` at all, when it
    has no error and a validation accuracy. DistributedDataParallel runs ("ddp:...") prove the
    devices they ran on, which have their own entries, so they are not a device here."""
    devices: list[str] = []
    lowest: Optional[float] = None
    for run in _dicts(data.get("training")):
        device = _text(run.get("device")) or "?"
        if device.startswith("ddp:"):
            continue
        accuracy = _fraction(run.get("val_accuracy"))
        ok = run.get("ok")
        if ok is not True and not ("ok" not in run and run.get("error") is None
                                   and accuracy is not None):
            continue
        if device not in devices:
            devices.append(device)
        if accuracy is not None and (lowest is None or accuracy < lowest):
            lowest = accuracy
    return devices, lowest


def report_state(kind: str, ok: Any, failing: list[str], trained: list[str]) -> str:
    """pass, fail or untested for one report (the rules in this module's docstring)."""
    if failing or ok is False:
        return FAIL
    if kind in PROVING_KINDS and trained:
        return PASS
    return UNTESTED


def machine_from_report(data: dict, file: str) -> Machine:
    """The row for one report, however little of it is there."""
    system, python = _section(data, "system"), _section(data, "python")
    torch = _section(data, "torch")
    mirror = data.get("mirror")
    failing: list[str] = []
    warnings: list[str] = []
    for check in _dicts(data.get("checks")):
        check_id = _text(check.get("id"))
        target = {FAIL: failing, WARN: warnings}.get(check.get("status"))
        if check_id and target is not None and check_id not in target:
            target.append(check_id)
    kind = _text(data.get("kind")) or "unknown"
    trained, accuracy = training_done(data)
    state = report_state(kind, data.get("ok"), failing, trained)
    created = _text(data.get("created"))
    return Machine(
        student=_student(data.get("student")),
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
        state=state, failing=failing, warnings=warnings, trained=trained, accuracy=accuracy,
        created=created, kind=kind, schema=str(data.get("schema")), file=file,
        reports=[ReportRef(kind, file, created, state)],
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
    """The student when there is one, else host + user (without case); a report with neither
    is a machine of its own."""
    if machine.student:
        return ("student", machine.student.casefold())
    if machine.host is None:
        return ("file", machine.file)
    return ("host", machine.host.casefold(), (machine.user or "").casefold())


def _combine(entries: list[tuple[tuple, Machine]]) -> Machine:
    """One machine from all its reports: newest of each kind kept, the rest superseded."""
    entries.sort(key=lambda e: e[0], reverse=True)  # newest first
    newest_of: dict[str, Machine] = {}
    superseded: list[ReportRef] = []
    for _rank, machine in entries:
        ref = machine.reports[0]
        kept = newest_of.get(machine.kind)
        if kept is None:
            newest_of[machine.kind] = machine
        else:
            ref.superseded_by = kept.file
            superseded.append(ref)
    kept_machines = list(newest_of.values())  # newest first
    deciding = next((m for m in kept_machines if m.kind in PROVING_KINDS), kept_machines[0])
    deciding.reports = [m.reports[0] for m in kept_machines]
    deciding.superseded = superseded
    if deciding.student is None:
        deciding.student = next((m.student for m in kept_machines if m.student), None)
    return deciding


def _rank(machine: Machine, report: ReportFile) -> tuple:
    return (parse_created(machine.created), report.mtime, report.path)


def group(reports: Iterable[ReportFile]) -> list[Machine]:
    """One machine per key (see `machine_key`), sorted by student, then host and user."""
    groups: dict[tuple, list[tuple[tuple, Machine]]] = {}
    for report in reports:
        machine = machine_from_report(report.data, report.path)
        groups.setdefault(machine_key(machine), []).append((_rank(machine, report), machine))
    machines = [_combine(entries) for entries in groups.values()]
    machines.sort(key=lambda m: (m.student is None, (m.student or "").casefold(),
                                 (m.host or "").casefold(), (m.user or "").casefold(), m.file))
    return machines


def count_checks(data_by_machine: list[tuple[Machine, dict]]) -> list[CheckCount]:
    """Every failing or warning check across machines, failing first, then by how many
    machines it affects (most first), then by id."""
    groups: dict[tuple[str, str], dict] = {}
    for machine, data in data_by_machine:
        seen: set[tuple[str, str]] = set()
        for check in _dicts(data.get("checks")):
            check_id, status = _text(check.get("id")), check.get("status")
            if not check_id or status not in (FAIL, WARN) or (status, check_id) in seen:
                continue
            seen.add((status, check_id))
            group_ = groups.get((status, check_id))
            if group_ is None:
                group_ = groups[(status, check_id)] = {
                    "summaries": Counter(), "fixes": Counter(), "machines": []}
            summary, fix = _text(check.get("summary")), _text(check.get("fix"))
            if summary:
                group_["summaries"][summary] += 1
            if fix:
                group_["fixes"][fix] += 1
            group_["machines"].append(machine.label)
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
    machines = group(reports)
    data_of = {r.path: r.data for r in reports}
    checks = count_checks([(m, data_of[m.file]) for m in machines])
    return ClassReport(machines=machines, blocking=[c for c in checks if c.status == FAIL],
                       warned=[c for c in checks if c.status == WARN], skipped=skipped,
                       files_read=len(reports))


# How a machine changed between two report sets (`report OLD NEW --compare`).
FIXED = "fixed"  # fail -> pass
STILL_FAILING = "still-failing"  # fail -> fail
REGRESSED = "regressed"  # pass -> fail
NEW_FAILURE = "new-failure"  # untested or not there -> fail
NOW_UNTESTED = "untested"  # -> untested
NOW_PASSING = "now-passing"  # untested or not there -> pass
STILL_PASSING = "still-passing"  # pass -> pass
NOT_REPORTED = "not-reported"  # in the old set only: no news
CHANGES = (FIXED, STILL_FAILING, REGRESSED, NEW_FAILURE, NOW_UNTESTED, NOW_PASSING,
           STILL_PASSING, NOT_REPORTED)


@dataclass
class Change:
    """One machine in a comparison: its state before (None: not in the old set) and after
    (None: not in the new set)."""

    machine: Machine  # the newest description of it
    before: Optional[str]
    after: Optional[str]
    change: str

    def as_json(self) -> dict:
        m = self.machine
        return {"student": m.student, "host": m.host, "user": m.user, "before": self.before,
                "after": self.after, "change": self.change, "failing": m.failing}


@dataclass
class Comparison:
    """Two class reports side by side."""

    old: ClassReport
    new: ClassReport
    changes: list[Change]

    def counts(self) -> dict[str, int]:
        counts = Counter(c.change for c in self.changes)
        return {change: counts[change] for change in CHANGES}

    def of(self, *kinds: str) -> list[Change]:
        return [c for c in self.changes if c.change in kinds]

    def as_json(self) -> dict:
        return {
            "old": {"totals": self.old.totals()}, "new": {"totals": self.new.totals()},
            "changes": self.counts(),
            "machines": [c.as_json() for c in self.changes],
            "blocking": [c.as_json() for c in self.new.blocking],
        }


def _change(before: Optional[str], after: Optional[str]) -> str:
    if after is None:
        return NOT_REPORTED
    if after == UNTESTED:
        return NOW_UNTESTED
    if after == PASS:
        return FIXED if before == FAIL else STILL_PASSING if before == PASS else NOW_PASSING
    return STILL_FAILING if before == FAIL else REGRESSED if before == PASS else NEW_FAILURE


def _host_key(machine: Machine) -> Optional[tuple]:
    if machine.host is None:
        return None
    return (machine.host.casefold(), (machine.user or "").casefold())


def compare(old: ClassReport, new: ClassReport) -> Comparison:
    """Match each machine of `new` with the same machine in `old` (same `machine_key`; a
    machine that gained a student name since is matched by host + user when exactly one
    machine on each side has them) and say how its state changed."""
    old_by_key = {machine_key(m): m for m in old.machines}
    matched: dict[int, Machine] = {}  # id(new machine) -> old machine
    for machine in new.machines:
        before = old_by_key.pop(machine_key(machine), None)
        if before is not None:
            matched[id(machine)] = before
    # Old reports without a student, new ones with: the same host + user, if unambiguous.
    left = Counter(_host_key(m) for m in old_by_key.values() if m.student is None)
    wanting = Counter(_host_key(m) for m in new.machines if id(m) not in matched)
    old_by_host = {_host_key(m): k for k, m in old_by_key.items() if m.student is None}
    for machine in new.machines:
        key = _host_key(machine)
        if id(machine) in matched or key is None or left[key] != 1 or wanting[key] != 1:
            continue
        matched[id(machine)] = old_by_key.pop(old_by_host[key])
    changes = []
    for machine in new.machines:
        before = matched.get(id(machine))
        state = before.state if before is not None else None
        changes.append(Change(machine, state, machine.state, _change(state, machine.state)))
    changes += [Change(m, m.state, None, NOT_REPORTED) for m in old_by_key.values()]
    order = {change: i for i, change in enumerate(CHANGES)}
    changes.sort(key=lambda c: order[c.change])  # stable: name order within each
    return Comparison(old, new, changes)
