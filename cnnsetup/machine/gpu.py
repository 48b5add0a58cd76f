"""NVIDIA GPUs as `nvidia-smi` sees them, independent of torch.

Two calls, each with a timeout: the CSV query names the cards, and the plain report's header
("CUDA Version: 12.8") gives the newest CUDA the driver supports, which the query mode cannot
print. Drivers before R510 reject the `compute_cap` field; then the capability comes from the
card's name. Any failure is kept as text in `NvidiaFacts.error`, never raised.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

from cnnsetup.i18n import _
from cnnsetup.machine.cuda_tables import capability_from_name, parse_capability
from cnnsetup.run import RunResult, run

SMI_TIMEOUT_S = 10.0
QUERY_FIELDS = "index,name,driver_version,memory.total,compute_cap"
QUERY_FIELDS_OLD = "index,name,driver_version,memory.total"

Runner = Callable[..., RunResult]


@dataclass
class GpuFacts:
    """One card from nvidia-smi."""

    index: int
    name: str
    driver_version: Optional[str]
    memory_total_mib: Optional[int]
    compute_cap: Optional[str]  # "8.6"; from the name when the driver cannot say


@dataclass
class NvidiaFacts:
    """What nvidia-smi says about the driver; `found` is False when there is no nvidia-smi."""

    found: bool = False
    path: Optional[str] = None
    driver_version: Optional[str] = None
    cuda_version: Optional[str] = None  # the newest CUDA the driver supports
    error: Optional[str] = None
    gpus: list[GpuFacts] = field(default_factory=list)


def find_nvidia_smi(
    env: Optional[Mapping[str, str]] = None, platform: str = sys.platform
) -> Optional[str]:
    """nvidia-smi on PATH; on Windows also where the driver installs it."""
    env = os.environ if env is None else env
    found = shutil.which("nvidia-smi", path=env.get("PATH"))
    if found or platform != "win32":
        return found
    system_root = env.get("SystemRoot", r"C:\Windows")
    program_files = env.get("ProgramFiles", r"C:\Program Files")
    for candidate in (
        os.path.join(system_root, "System32", "nvidia-smi.exe"),
        os.path.join(program_files, "NVIDIA Corporation", "NVSMI", "nvidia-smi.exe"),
    ):
        if os.path.isfile(candidate):
            return candidate
    return None


def query(
    smi: Optional[str] = None,
    *,
    timeout: float = SMI_TIMEOUT_S,
    runner: Runner = run,
    platform: str = sys.platform,
) -> NvidiaFacts:
    """Ask nvidia-smi for the cards and the driver's CUDA version; both calls run at once."""
    smi = smi or find_nvidia_smi(platform=platform)
    if smi is None:
        return NvidiaFacts(found=False)
    facts = NvidiaFacts(found=True, path=smi)
    with ThreadPoolExecutor(max_workers=2) as pool:
        csv_future = pool.submit(_query_csv, smi, timeout, runner)
        header_future = pool.submit(runner, [smi], timeout=timeout)
        csv_result, gpus, csv_error = csv_future.result()
        header = header_future.result()
    facts.gpus = gpus
    if header.ok:
        facts.driver_version, facts.cuda_version = parse_header(header.stdout)
    if gpus and not facts.driver_version:
        facts.driver_version = gpus[0].driver_version
    errors = [e for e in (csv_error, _failure_text(header, timeout)) if e]
    if errors and not gpus:
        facts.error = errors[0]
    elif csv_error:
        facts.error = csv_error
    return facts


def _query_csv(smi: str, timeout: float, runner: Runner) -> tuple[RunResult, list[GpuFacts], Optional[str]]:
    args = [smi, f"--query-gpu={QUERY_FIELDS}", "--format=csv,noheader,nounits"]
    result = runner(args, timeout=timeout)
    if not result.ok and _rejects_compute_cap(result):
        args = [smi, f"--query-gpu={QUERY_FIELDS_OLD}", "--format=csv,noheader,nounits"]
        result = runner(args, timeout=timeout)
    failure = _failure_text(result, timeout)
    if failure:
        return result, [], failure
    try:
        return result, parse_csv(result.stdout), None
    except ValueError as exc:
        return result, [], str(exc)


def _rejects_compute_cap(result: RunResult) -> bool:
    text = (result.stdout + result.stderr).lower()
    return "compute_cap" in text and ("not a valid field" in text or "invalid" in text)


def _failure_text(result: RunResult, timeout: float) -> Optional[str]:
    """Why a call failed, in nvidia-smi's own words where it gave any; None when it worked."""
    args = " ".join(result.args)
    if result.not_found:
        return f"{args}: {result.error or _('not found')}"
    if result.timed_out:
        return f"{args}: " + _("no answer within {seconds} s").format(seconds=f"{timeout:g}")
    if result.error:
        return f"{args}: {result.error}"
    if result.returncode != 0:
        text = (result.stdout.strip() or result.stderr.strip())[:500]
        status = _("exit status {code}").format(code=result.returncode)
        return f"{args}: {status}" + (f": {text}" if text else "")
    return None


_HEADER_DRIVER = re.compile(r"Driver Version:\s*([0-9][0-9.]*)")
_HEADER_CUDA = re.compile(r"CUDA Version:\s*([0-9]+\.[0-9]+)")


def parse_header(text: str) -> tuple[Optional[str], Optional[str]]:
    """(driver version, CUDA version) from nvidia-smi's plain report, each None when absent."""
    driver = _HEADER_DRIVER.search(text)
    cuda = _HEADER_CUDA.search(text)
    return (driver.group(1) if driver else None, cuda.group(1) if cuda else None)


def parse_csv(text: str) -> list[GpuFacts]:
    """Cards from `--query-gpu=... --format=csv,noheader,nounits`; ValueError on anything else."""
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) not in (4, 5) or not cells[0].isdigit():
            raise ValueError(_("nvidia-smi printed an unexpected line: {line}").format(
                line=repr(line.strip()[:200])))
        name = cells[1]
        cap = cells[4] if len(cells) == 5 else ""
        cap_tuple = parse_capability(cap)
        gpus.append(
            GpuFacts(
                index=int(cells[0]),
                name=name,
                driver_version=cells[2] or None,
                memory_total_mib=_int_or_none(cells[3]),
                compute_cap=(f"{cap_tuple[0]}.{cap_tuple[1]}" if cap_tuple
                             else capability_from_name(name)),
            )
        )
    return gpus


def _int_or_none(text: str) -> Optional[int]:
    try:
        return int(float(text.split()[0]))
    except (ValueError, IndexError):
        return None
