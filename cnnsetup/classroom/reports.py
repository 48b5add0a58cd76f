"""Finding and reading report files: every file either becomes a report (a dict) or a `Skipped`
entry that says why. Nothing a student sends can make the reader crash."""

from __future__ import annotations

import codecs
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Union

from cnnsetup.report_schema import READABLE_VERSIONS, SCHEMA_PREFIX

# A report is a few kilobytes; anything this large is not one, and is not read into memory.
MAX_REPORT_BYTES = 16 * 1024 * 1024

# Why a file was skipped: stable codes (they appear in JSON); `display.skip_reason` words them.
NOT_FOUND = "not-found"
UNREADABLE = "unreadable"
TOO_LARGE = "too-large"
NOT_UTF8 = "not-utf8"
BROKEN_JSON = "broken-json"
FOREIGN = "foreign"
NEWER_SCHEMA = "newer-schema"
UNKNOWN_SCHEMA = "unknown-schema"


@dataclass(frozen=True)
class Skipped:
    """A file that is not a readable report: its path, a reason code and the detail behind it."""

    path: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class ReportFile:
    """A report as read from a file: its data and where it came from."""

    path: str
    data: dict
    mtime: float


def _major(version: str) -> int | None:
    """`"1"` or `"1.2"` -> 1; anything else -> None."""
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


_READABLE_MAJORS = frozenset(
    m for m in (_major(v[len(SCHEMA_PREFIX):]) for v in READABLE_VERSIONS) if m is not None
)


def find_files(paths: Iterable[Union[str, Path]]) -> Iterator[tuple[str, bool]]:
    """Every file to read, as (path, exists): files as given, folders searched for `*.json`
    (recursively, in a stable order, not following links to folders)."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if name.lower().endswith(".json"):
                        yield os.path.join(root, name), True
        else:
            yield str(path), path.exists() or path.is_symlink()


def _decode(raw: bytes) -> str:
    """Report bytes as text: UTF-8 (with or without a BOM), or UTF-16 with a BOM, which is what
    Windows PowerShell 5 writes for `cnnsetup verify --json > report.json`."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")
    return raw.decode("utf-8-sig")


def check_schema(data: Any) -> tuple[str, str] | None:
    """None when `data` is a report this version can read, else (reason code, detail)."""
    if not isinstance(data, dict):
        return FOREIGN, type(data).__name__
    schema = data.get("schema")
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_PREFIX):
        return FOREIGN, str(schema) if schema is not None else ""
    major = _major(schema[len(SCHEMA_PREFIX):])
    if major is None or not _READABLE_MAJORS:
        return UNKNOWN_SCHEMA, schema
    if major > max(_READABLE_MAJORS):
        return NEWER_SCHEMA, schema
    if major not in _READABLE_MAJORS:
        return UNKNOWN_SCHEMA, schema
    return None


def read_file(path: str) -> ReportFile | Skipped:
    """Read one file: a `ReportFile`, or `Skipped` with the reason."""
    try:
        with open(path, "rb") as stream:
            stat = os.fstat(stream.fileno())
            if stat.st_size > MAX_REPORT_BYTES:
                return Skipped(path, TOO_LARGE, str(stat.st_size))
            raw = stream.read(MAX_REPORT_BYTES + 1)
    except OSError as error:
        return Skipped(path, UNREADABLE, error.strerror or str(error))
    try:
        text = _decode(raw)
    except UnicodeDecodeError as error:
        return Skipped(path, NOT_UTF8, f"byte {error.start}")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:
        return Skipped(path, BROKEN_JSON, str(error)[:200])
    problem = check_schema(data)
    if problem is not None:
        return Skipped(path, *problem)
    return ReportFile(path, data, stat.st_mtime)


def read_all(paths: Iterable[Union[str, Path]]) -> tuple[list[ReportFile], list[Skipped]]:
    """Read every report under `paths`: (reports, skipped files), each in the order found."""
    reports: list[ReportFile] = []
    skipped: list[Skipped] = []
    seen: set[object] = set()
    for path, exists in find_files(paths):
        if not exists:
            skipped.append(Skipped(path, NOT_FOUND))
            continue
        try:  # the same file named twice (a folder and a file inside it) is read once
            stat = os.stat(path)
            # Some network file systems on Windows report no file number (0).
            identity: object = (stat.st_dev, stat.st_ino) if stat.st_ino else \
                os.path.realpath(path)
        except OSError:  # a dangling link: read_file says why
            identity = os.path.realpath(path)
        if identity in seen:
            continue
        seen.add(identity)
        result = read_file(path)
        (skipped if isinstance(result, Skipped) else reports).append(result)
    return reports, skipped
