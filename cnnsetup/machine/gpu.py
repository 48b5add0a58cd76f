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
NVIDIA_VENDOR = "0x10de"
DISPLAY_CLASS = "0x03"  # PCI base class 03: display controller (VGA 0300, 3D 0302)
NOT_TALKING = "couldn't communicate with the nvidia driver"
NOT_TALKING_EXIT = 9  # nvidia-smi's exit status for it (NVML_ERROR_DRIVER_NOT_LOADED)
# Windows: the display adapter class, and the NVIDIA driver's service name.
DISPLAY_CLASS_GUID = "{4d36e968-e325-11ce-bfc1-08002be10318}"
NVIDIA_SERVICE = "nvlddmkm"
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
    # nvidia-smi could not reach the driver (exit 9, "couldn't communicate with the NVIDIA
    # driver"): installed but not loaded, e.g. after a kernel update, under Secure Boot, or
    # before the reboot a driver install asks for.
    driver_not_loaded: bool = False
    hardware: Optional["NvidiaHardware"] = None  # the cards the system sees, driver or not


@dataclass
class PciDevice:
    """An NVIDIA display device on the PCI bus."""

    address: str  # "0000:01:00.0", or the Windows instance id
    device_id: str  # "0x2684"
    driver: Optional[str]  # kernel driver bound to it: "nvidia", "nouveau", None


@dataclass
class NvidiaHardware:
    """NVIDIA cards as the operating system lists them, independent of the NVIDIA driver.

    `known` is False where the list cannot be read (WSL, macOS, a locked-down container):
    then nothing is said about hardware. `module_loaded`: /proc/driver/nvidia exists (Linux),
    or a device uses the NVIDIA driver service (Windows)."""

    known: bool = False
    devices: list[PciDevice] = field(default_factory=list)
    module_loaded: Optional[bool] = None
    module_version: Optional[str] = None  # from /proc/driver/nvidia/version
    source: Optional[str] = None  # where the list came from, for the report

    @property
    def present(self) -> bool:
        """At least one NVIDIA display device is on the bus."""
        return bool(self.devices)


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
    env: Optional[Mapping[str, str]] = None,
) -> NvidiaFacts:
    """Ask nvidia-smi for the cards and the driver's CUDA version; both calls run at once."""
    smi = smi or find_nvidia_smi(env=env, platform=platform)
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
    facts.driver_not_loaded = any(_not_talking(r) for r in (csv_result, header))
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


def _not_talking(result: RunResult) -> bool:
    text = (result.stdout + result.stderr).lower()
    return NOT_TALKING in text or (result.returncode == NOT_TALKING_EXIT and "nvidia" in text)


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


# ---------------------------------------------------------------- hardware without the driver


def detect_hardware(platform: str = sys.platform, root: Optional[str] = None) -> NvidiaHardware:
    """NVIDIA display devices the system sees, whether or not the NVIDIA driver works.

    Linux: `/sys/bus/pci/devices/*` with vendor 0x10de and class 0x03xxxx, the driver bound to
    each (`driver` link), and `/proc/driver/nvidia` (present when the kernel module is loaded).
    Windows: the registry's PCI device list (VEN_10DE, display class) and each device's driver
    service (`nvlddmkm` is NVIDIA's). `root` stands for "/" (tests use fake trees); with a root
    the sysfs layout is read on every platform. Never raises."""
    if root is None and platform == "win32":
        return _windows_hardware()
    if root is None and not platform.startswith("linux"):
        return NvidiaHardware(known=False)
    base = root or "/"
    try:
        return _sysfs_hardware(base)
    except OSError:
        return NvidiaHardware(known=False)


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _sysfs_hardware(base: str) -> NvidiaHardware:
    devices_dir = os.path.join(base, "sys", "bus", "pci", "devices")
    if not os.path.isdir(devices_dir):
        return NvidiaHardware(known=False, source=devices_dir)
    hardware = NvidiaHardware(known=True, source=devices_dir)
    for address in sorted(os.listdir(devices_dir)):
        folder = os.path.join(devices_dir, address)
        if (_read(os.path.join(folder, "vendor")) or "").lower() != NVIDIA_VENDOR:
            continue
        if not (_read(os.path.join(folder, "class")) or "").lower().startswith(DISPLAY_CLASS):
            continue  # the card's audio or USB function
        link = os.path.join(folder, "driver")
        driver = os.path.basename(os.path.realpath(link)) if os.path.lexists(link) else None
        hardware.devices.append(PciDevice(address, (_read(os.path.join(folder, "device")) or "?").lower(),
                                          driver))
    proc = os.path.join(base, "proc", "driver", "nvidia")
    hardware.module_loaded = os.path.isdir(proc)
    version = _read(os.path.join(proc, "version")) or ""
    match = re.search(r"Kernel Module(?: for \S+)?\s+([0-9][0-9.]+)", version)
    hardware.module_version = match.group(1) if match else None
    return hardware


def _windows_hardware() -> NvidiaHardware:
    try:
        import winreg  # type: ignore[import-not-found]
    except ImportError:
        return NvidiaHardware(known=False)
    hardware = NvidiaHardware(known=True, source=r"HKLM\SYSTEM\CurrentControlSet\Enum\PCI")
    try:
        pci = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SYSTEM\CurrentControlSet\Enum\PCI")
    except OSError:
        return NvidiaHardware(known=False)
    with pci:
        index = 0
        while True:
            try:
                name = winreg.EnumKey(pci, index)
            except OSError:
                break
            index += 1
            if not name.upper().startswith("VEN_10DE&"):
                continue
            device_id = "0x" + name.upper().split("DEV_")[1][:4].lower() if "DEV_" in name.upper() else "?"
            with winreg.OpenKey(pci, name) as device:
                instances = []
                j = 0
                while True:
                    try:
                        instances.append(winreg.EnumKey(device, j))
                    except OSError:
                        break
                    j += 1
                for instance in instances:
                    with winreg.OpenKey(device, instance) as key:
                        klass = _reg_value(winreg, key, "ClassGUID")
                        if (klass or "").lower() != DISPLAY_CLASS_GUID:
                            continue
                        service = _reg_value(winreg, key, "Service")
                        hardware.devices.append(PciDevice(f"{name}\\{instance}", device_id,
                                                          service.lower() if service else None))
    hardware.module_loaded = any(d.driver == NVIDIA_SERVICE for d in hardware.devices)
    return hardware


def _reg_value(winreg, key, name: str) -> Optional[str]:
    try:
        return str(winreg.QueryValueEx(key, name)[0])
    except OSError:
        return None


def driver_bound(device: PciDevice) -> bool:
    """Whether NVIDIA's own driver drives this device (Linux `nvidia`, Windows `nvlddmkm`)."""
    return device.driver in ("nvidia", NVIDIA_SERVICE)
