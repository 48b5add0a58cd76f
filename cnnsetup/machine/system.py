"""This machine and this Python: OS, CPU, RAM, free disk (psutil), interpreter, environment, and
whether the `pip` a student types belongs to the interpreter that runs their code."""

from __future__ import annotations

import importlib.util
import os
import platform as platform_module
import re
import shutil
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from cnnsetup.run import run

PIP_TIMEOUT_S = 15.0


@dataclass
class SystemFacts:
    """The machine: OS, CPU, RAM and free disk (None where unknown)."""
    os: str  # "Linux", "Windows", "macOS"
    os_version: Optional[str]  # "Debian GNU/Linux 12", "10.0.22631", "14.5"
    os_release: Optional[str]  # kernel / release: "6.1.0-18-amd64", "11", "23.5.0"
    arch: str  # "x86_64", "arm64", "AMD64"
    cpu_model: Optional[str]
    cpu_cores_physical: Optional[int]
    cpu_cores_logical: Optional[int]
    ram_total_bytes: Optional[int]
    ram_available_bytes: Optional[int]
    disk_free_home_bytes: Optional[int]
    disk_free_pkgs_bytes: Optional[int]
    home: Optional[str] = None
    pkgs_dir: Optional[str] = None


@dataclass
class PythonFacts:
    """The interpreter cnnsetup runs in, its environment, and the `pip` on PATH."""
    version: str
    bits: int
    executable: str
    implementation: str
    env_kind: str  # "venv" | "conda" | "system"
    env_name: Optional[str]
    pip_matches: Optional[bool]  # None: no `pip` on PATH, or it could not be asked
    pip_python: Optional[str]  # what `pip` on PATH says it belongs to
    prefix: str = ""
    pip_module: bool = True  # `python -m pip` works for this interpreter
    active_env_prefix: Optional[str] = None  # CONDA_PREFIX / VIRTUAL_ENV of the shell
    ipykernel: bool = False  # this Python can run a Jupyter kernel
    # conda's records in this environment (conda-meta/*.json) of the packages that decide how
    # torch must be repaired: pytorch itself and the OpenMP/MKL runtimes that can clash with
    # pip's torch. Record names: "intel-openmp-2024.1.0-h57928b3_965".
    conda_records: list[str] = field(default_factory=list)


_OS_NAMES = {"linux": "Linux", "win32": "Windows", "darwin": "macOS", "cygwin": "Windows"}


def os_name(platform: str = sys.platform) -> str:
    """"linux" -> "Linux", "win32" -> "Windows", "darwin" -> "macOS"."""
    return next((name for key, name in _OS_NAMES.items() if platform.startswith(key)), platform)


def collect_system(pkgs_dir: Optional[str] = None, platform: str = sys.platform,
                   env: Optional[Mapping[str, str]] = None) -> SystemFacts:
    """OS, CPU, RAM and free disk; a value that cannot be read is None, never an error."""
    env = os.environ if env is None else env
    home = env.get("USERPROFILE") if platform == "win32" else env.get("HOME")
    home = home or str(Path("~").expanduser())
    facts = SystemFacts(
        os=os_name(platform),
        os_version=_os_version(platform),
        os_release=platform_module.release() or None,
        arch=platform_module.machine() or "unknown",
        cpu_model=_cpu_model(platform),
        cpu_cores_physical=None,
        cpu_cores_logical=os.cpu_count(),
        ram_total_bytes=None,
        ram_available_bytes=None,
        disk_free_home_bytes=_disk_free(home),
        disk_free_pkgs_bytes=_disk_free(pkgs_dir) if pkgs_dir else None,
        home=home,
        pkgs_dir=pkgs_dir,
    )
    try:
        import psutil

        facts.cpu_cores_physical = psutil.cpu_count(logical=False)
        memory = psutil.virtual_memory()
        facts.ram_total_bytes, facts.ram_available_bytes = memory.total, memory.available
    except Exception:  # psutil missing or unable to read /proc: leave unknown
        pass
    return facts


def _disk_free(path: Optional[str]) -> Optional[int]:
    """Free bytes on the disk holding `path` (or its nearest existing parent)."""
    if not path:
        return None
    candidate = Path(path)
    while not candidate.exists() and candidate.parent != candidate:
        candidate = candidate.parent
    try:
        import psutil

        return psutil.disk_usage(str(candidate)).free
    except Exception:
        try:
            return shutil.disk_usage(str(candidate)).free
        except OSError:
            return None


def _os_version(platform: str) -> Optional[str]:
    if platform == "darwin":
        return platform_module.mac_ver()[0] or None
    if platform == "win32":
        return platform_module.version() or None
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform_module.version() or None
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.MULTILINE)
    return match.group(1) if match else None


def _cpu_model(platform: str) -> Optional[str]:
    if platform.startswith("linux"):
        try:
            text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        for key in ("model name", "Hardware", "Processor", "cpu model"):
            match = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
            if match:
                return match.group(1).strip()
    if platform == "win32":
        try:
            import winreg  # type: ignore[import-not-found]

            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE,
                                r"HARDWARE\DESCRIPTION\System\CentralProcessor\0") as key:
                return str(winreg.QueryValueEx(key, "ProcessorNameString")[0]).strip()
        except (ImportError, OSError):
            pass
    if platform == "darwin":
        result = run(["sysctl", "-n", "machdep.cpu.brand_string"], timeout=5)
        if result.ok and result.stdout.strip():
            return result.stdout.strip()
    return platform_module.processor() or None


def collect_python(
    *, env: Optional[Mapping[str, str]] = None, check_pip: bool = True,
    platform: str = sys.platform,
) -> PythonFacts:
    """The interpreter running cnnsetup (the one torch is probed in) and its environment."""
    env = os.environ if env is None else env
    prefix = sys.prefix
    if sys.prefix != getattr(sys, "base_prefix", sys.prefix):
        kind, name = "venv", Path(prefix).name
    elif (Path(prefix) / "conda-meta").is_dir():
        kind = "conda"
        name = "base" if not (Path(prefix).parent.name == "envs") else Path(prefix).name
    else:
        kind, name = "system", None
    pip_spec = importlib.util.find_spec("pip")
    facts = PythonFacts(
        version=platform_module.python_version(),
        bits=struct.calcsize("P") * 8,
        executable=sys.executable,
        implementation=platform_module.python_implementation(),
        env_kind=kind,
        env_name=name,
        pip_matches=None,
        pip_python=None,
        prefix=prefix,
        pip_module=pip_spec is not None,
        active_env_prefix=env.get("CONDA_PREFIX") or env.get("VIRTUAL_ENV") or None,
        ipykernel=importlib.util.find_spec("ipykernel") is not None,
        conda_records=conda_records(prefix),
    )
    if check_pip:
        facts.pip_python, facts.pip_matches = pip_on_path(pip_spec, env=env, platform=platform)
    return facts


CONDA_RECORD_NAMES = ("pytorch", "pytorch-cpu", "pytorch-gpu", "libtorch", "intel-openmp",
                      "llvm-openmp", "mkl", "mkl-service", "nomkl")


def conda_records(prefix: str) -> list[str]:
    """The conda-meta records (names without .json) in `prefix` of CONDA_RECORD_NAMES; empty
    outside a conda environment."""
    meta = Path(prefix) / "conda-meta"
    try:
        names = [p.name[:-5] for p in meta.iterdir() if p.name.endswith(".json")]
    except OSError:
        return []
    return sorted(n for n in names if n.rsplit("-", 2)[0] in CONDA_RECORD_NAMES)


_PIP_FROM = re.compile(r"^pip \S+ from (.+?) \(python ([0-9.]+)\)\s*$", re.MULTILINE)


def pip_on_path(pip_spec=None, *, env: Optional[Mapping[str, str]] = None,
                platform: str = sys.platform) -> tuple[Optional[str], Optional[bool]]:
    """(what `pip --version` says, whether that pip is this interpreter's); (None, None) when
    there is no `pip` on PATH or it does not answer like pip."""
    env = os.environ if env is None else env
    pip = shutil.which("pip", path=env.get("PATH"))
    if pip is None:
        return None, None
    result = run([pip, "--version"], timeout=PIP_TIMEOUT_S)
    match = _PIP_FROM.search(result.stdout) if result.ok else None
    if match is None:
        return None, None
    location, version = match.group(1), match.group(2)
    said = f"{location} (python {version})"
    if pip_spec is None or not pip_spec.submodule_search_locations:
        return said, False
    ours = list(pip_spec.submodule_search_locations)[0]
    return said, _same_path(location, ours, platform)


def _same_path(a: str, b: str, platform: str) -> bool:
    def norm(p: str) -> str:
        p = os.path.realpath(p) if os.path.exists(p) else os.path.abspath(p)
        return p.lower() if platform == "win32" else p

    return norm(a) == norm(b)
