"""The shape of a machine report: what `cnnsetup info --json` prints, what `cnnsetup verify
--json` / `--report FILE` and `cnnsetup onboard` write, and what `cnnsetup report` merges.

Reports travel between machines and versions: keep the shape stable, add fields rather than
rename them, and bump SCHEMA_VERSION's number when a field changes meaning. Readers accept
every version listed in READABLE_VERSIONS and treat a missing field as unknown.

Top level (every key present, values may be null):

    schema            "cnnsetup-report/1"
    kind              "info" | "verify" | "onboard"
    ok                bool: no check has status "fail"
    host, user        the machine's host name and the user name
    student           str | null: who the machine belongs to, as the student typed it
                      (`verify --student`, `onboard`); written by `verify` and `onboard` right
                      after `user` (see `with_student`), absent from `info` and from reports
                      written before it existed: a reader treats absent as null. `report`
                      groups a class by student when there is one, else by host + user.
    created           ISO 8601 time with offset, e.g. "2026-11-27T21:43:26+08:00"
    cnnsetup_version  str
    duration_s        float, whole run

    system   {os, os_version, os_release, arch, cpu_model, cpu_cores_physical,
              cpu_cores_logical, ram_total_bytes, ram_available_bytes,
              disk_free_home_bytes, disk_free_pkgs_bytes}
    python   {version, bits, executable, implementation, env_kind ("venv"|"conda"|"system"),
              env_name, pip_matches (bool|null), pip_python}
    conda    {found, path, version, base, active_env, error}
    torch    {installed, importable, version, cuda (CUDA it was built for, null = CPU-only),
              cudnn, arch_list, cuda_available, devices [{index, name, capability "8.6",
              memory_bytes}], mps_built, mps_available, numpy_version, import_warnings [str],
              error (exact import error text or null), probe_seconds}
    nvidia   {found, driver_version, cuda_version (highest the driver supports), error}
    gpus     [{index, name, driver_version, memory_total_mib, compute_cap "8.6"}]  (nvidia-smi)
    mirror   {conda: mirror name | null, pip: mirror name | null}
    checks   [{id, status ("pass"|"warn"|"fail"|"skip"), summary, fix (command | null)}]
    training [{device ("cpu", "cuda:0", "mps", "ddp:gloo:2"...), device_name, ok,
               val_accuracy (0..1), epochs, seconds, samples_per_s, error}]

    ddp      null, or (verify with --ddp) {ok, identical_weights, nnodes, node_rank, world_size,
              master "host:port", backend, bandwidth [{bytes, algbw_gbps, busbw_gbps, seconds}],
              latency_us, slurm ({SLURM_*: value} | null), ...}: see `cnnsetup.machine.ddp.ddp_json`

`onboard` adds `onboard: {steps: [{name, status, detail}]}`.
Text in `summary` and `detail` is in the language the report was made in; ids, commands, URLs and
paths never are translated.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cnnsetup.errors import CnnsetupError
from cnnsetup.i18n import _

SCHEMA_PREFIX = "cnnsetup-report/"
SCHEMA_VERSION = SCHEMA_PREFIX + "1"
READABLE_VERSIONS = (SCHEMA_VERSION,)

TOP_LEVEL_KEYS = (
    "schema", "kind", "ok", "host", "user", "created", "cnnsetup_version", "duration_s",
    "system", "python", "conda", "torch", "nvidia", "gpus", "mirror", "checks", "training",
)

# Keys a report may carry beyond TOP_LEVEL_KEYS; absent means unknown (null).
OPTIONAL_KEYS = ("student", "ddp")

STATUSES = ("pass", "warn", "fail", "skip")

# A name, a student number or both ("Chen Qi 2023011234"); longer text is not a name.
STUDENT_MAX_CHARS = 100


def clean_student(text: object) -> str | None:
    """The `student` value to store for what was typed: surrounding and repeated white space
    removed, None for nothing at all. Raises ValueError for text that can never be a name
    (control characters, more than STUDENT_MAX_CHARS characters)."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError("not text")
    cleaned = " ".join(text.split())
    if not cleaned:
        return None
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in cleaned):
        raise ValueError("control character")
    if len(cleaned) > STUDENT_MAX_CHARS:
        raise ValueError("too long")
    return cleaned


def with_student(report: dict, student: str | None) -> dict:
    """`report` (a dict with TOP_LEVEL_KEYS) with its top-level `student` set, placed right
    after `user` so the file reads who, then where. `student` is passed through
    `clean_student` (ValueError as there). Used by `verify --student` and `onboard`."""
    value = clean_student(student)
    result: dict = {}
    for key, item in report.items():
        if key == "student":
            continue
        result[key] = item
        if key == "user":
            result["student"] = value
    if "student" not in result:
        result["student"] = value
    return result


def check_report_path(path: Path) -> None:
    """Refuse, before any work, a report path that can never be written: its folder cannot be
    made or written, or the path is a folder. Raises CnnsetupError (exit 1)."""
    path = path.absolute()
    folder = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
    problem = None
    if path.is_dir():
        problem = _("it is a folder")
    elif folder is None or not folder.is_dir():
        problem = _("{path} is not a folder").format(path=folder)
    elif not os.access(folder, os.W_OK | os.X_OK):
        problem = _("the folder {path} is not writable").format(path=folder)
    if problem:
        raise CnnsetupError(_("Cannot write the report to {path}: {reason}.").format(
            path=path, reason=problem), code="report.unwritable")


def write_report(report: dict, path: Path) -> None:
    """Write a report atomically (UTF-8, ASCII-escaped so any tool can read it). Raises
    CnnsetupError when the file cannot be written."""
    from cnnsetup.mirror.condarc_file import write_atomic

    path = path.absolute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (json.dumps(report, indent=2, ensure_ascii=True) + "\n").encode("utf-8"))
    except OSError as error:
        raise CnnsetupError(_("Cannot write the report to {path}: {reason}.").format(
            path=path, reason=error.strerror or error), code="report.unwritable") from None
