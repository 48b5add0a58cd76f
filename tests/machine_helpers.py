"""Stand-ins for what a test machine lacks: `nvidia-smi` for several real-world drivers and cards,
and small `torch` packages that behave like a chosen build (or fail to import like a broken one).
Also plain `Facts` objects for the rules, so every branch runs without a GPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Optional

from cnnsetup.machine.facts import CondaFacts, Facts, TorchFacts
from cnnsetup.machine.gpu import GpuFacts, NvidiaFacts
from cnnsetup.machine.system import PythonFacts, SystemFacts
from tests.conftest import write_program

GIB = 1024 ** 3

# ---------------------------------------------------------------- nvidia-smi

HEADER = """\
Thu Nov 27 21:43:26 2026
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI {driver:<22}  Driver Version: {driver:<14} CUDA Version: {cuda:<9}|
|-----------------------------------------+------------------------+----------------------+
"""

# name -> (driver, CUDA the driver supports, [(name, MiB, compute_cap)], knows compute_cap)
SMI_CASES = {
    "old_driver": ("470.256.02", "11.4", [("NVIDIA GeForce GTX 1080", 8192, "6.1")], False),
    "blackwell": ("575.51.03", "12.9", [("NVIDIA GeForce RTX 5090", 32607, "12.0")], True),
    "several": ("580.95.05", "13.0", [("NVIDIA GeForce RTX 3090", 24576, "8.6"),
                                      ("NVIDIA GeForce RTX 4090", 24564, "8.9")], True),
    "ampere_535": ("535.183.01", "12.2", [("NVIDIA GeForce RTX 3060", 12288, "8.6")], True),
    "pascal_575": ("575.51.03", "12.9", [("NVIDIA GeForce GTX 1080", 8192, "6.1")], True),
}


def write_smi(bin_dir: Path, case: str) -> Path:
    """An `nvidia-smi` behaving like `case` (a key of SMI_CASES, or "garbage", "hang",
    "no_driver")."""
    if case == "garbage":
        body = """
            import sys
            print("Segmentation fault? <html>not what nvidia-smi prints</html>")
        """
    elif case == "hang":
        body = """
            import time
            time.sleep(60)
        """
    elif case == "no_driver":
        body = """
            import sys
            print("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
                  "Make sure that the latest NVIDIA driver is installed and running.")
            sys.exit(9)
        """
    else:
        driver, cuda, cards, knows_cap = SMI_CASES[case]
        rows = [f"{i}, {name}, {driver}, {mib}" + (f", {cap}" if knows_cap else "")
                for i, (name, mib, cap) in enumerate(cards)]
        header = HEADER.format(driver=driver, cuda=cuda)
        csv = "\n".join(rows)
        body = f"""
            import sys
            args = sys.argv[1:]
            query = [a for a in args if a.startswith("--query-gpu=")]
            if query:
                if "compute_cap" in query[0] and not {knows_cap!r}:
                    print('Field "compute_cap" is not a valid field to query.')
                    print("")
                    print("Run 'nvidia-smi --help-query-gpu' for usage.")
                    sys.exit(2)
                print({csv!r})
            else:
                sys.stdout.write({header!r})
        """
    return write_program(bin_dir / "nvidia-smi", body)


# ---------------------------------------------------------------- torch stand-ins

FAKE_TORCH = '''
import json as _json
import sys as _sys
import warnings as _warnings

_F = _json.loads({facts!r})

__version__ = _F["version"]
for _w in _F.get("import_warnings", []):
    _warnings.warn(_w, UserWarning)
if _F.get("import_stderr"):
    _sys.stderr.write(_F["import_stderr"])


class version:
    cuda = _F.get("cuda")
    hip = None


class _Props:
    def __init__(self, d):
        self.name = d["name"]
        self.total_memory = d["memory_bytes"]


class cuda:
    @staticmethod
    def is_available():
        for w in _F.get("cuda_warnings", []):
            _warnings.warn(w, UserWarning)
        return bool(_F.get("devices")) and _F.get("cuda_available", True)

    @staticmethod
    def get_arch_list():
        return list(_F.get("arch_list", []))

    @staticmethod
    def device_count():
        return len(_F.get("devices", []))

    @staticmethod
    def get_device_properties(i):
        return _Props(_F["devices"][i])

    @staticmethod
    def get_device_capability(i):
        major, minor = _F["devices"][i]["capability"].split(".")
        return int(major), int(minor)


class backends:
    class cudnn:
        @staticmethod
        def version():
            return _F.get("cudnn")

    class mps:
        @staticmethod
        def is_built():
            return bool(_F.get("mps_built"))

        @staticmethod
        def is_available():
            return bool(_F.get("mps_available"))


def from_numpy(array):
    if _F.get("numpy_broken"):
        raise RuntimeError("Numpy is not available")
    return array
'''

CPU_TORCH = {"version": "2.13.0+cpu", "cuda": None, "arch_list": [], "devices": []}


def cuda_torch(version: str = "2.7.1+cu118", cuda: str = "11.8",
               arch_list: tuple = ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"),
               devices: tuple = (), **more) -> dict:
    """Facts for a fake CUDA build of torch."""
    return {"version": version, "cuda": cuda, "arch_list": list(arch_list), "cudnn": 90100,
            "devices": [dict(d) for d in devices], **more}


def write_fake_torch(root: Path, facts: Optional[dict] = None, *, body: Optional[str] = None) -> Path:
    """A folder to put first on PYTHONPATH, holding a `torch` package: either one that answers
    with `facts`, or one whose `__init__` is `body` (to raise, crash or hang)."""
    package = root / "torch"
    package.mkdir(parents=True, exist_ok=True)
    code = textwrap.dedent(body) if body is not None else FAKE_TORCH.format(facts=json.dumps(facts))
    (package / "__init__.py").write_text(code, encoding="utf-8")
    return root


def write_fake_torch_dist(root: Path, version: str, installer: str = "pip") -> Path:
    """A site folder holding only torch's metadata (what `importlib.metadata` and pip read)."""
    dist = root / f"torch-{version.split('+')[0]}.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n",
                                   encoding="utf-8")
    (dist / "INSTALLER").write_text(installer + "\n", encoding="utf-8")
    return root


def write_sysfs(root: Path, devices, *, module_version: Optional[str] = None) -> Path:
    """A fake "/" with /sys/bus/pci/devices for `devices` [(address, device id, bound driver or
    None[, vendor, class])] and, when `module_version` is given, /proc/driver/nvidia/version
    as the loaded kernel module writes it."""
    pci = root / "sys" / "bus" / "pci" / "devices"
    pci.mkdir(parents=True, exist_ok=True)
    drivers = root / "sys" / "bus" / "pci" / "drivers"
    for address, device_id, driver, *more in devices:
        vendor = more[0] if more else "0x10de"
        klass = more[1] if len(more) > 1 else "0x030000"
        folder = pci / address
        folder.mkdir()
        (folder / "vendor").write_text(vendor + "\n")
        (folder / "device").write_text(device_id + "\n")
        (folder / "class").write_text(klass + "\n")
        if driver:
            (drivers / driver).mkdir(parents=True, exist_ok=True)
            (folder / "driver").symlink_to(drivers / driver)
    if module_version:
        proc = root / "proc" / "driver" / "nvidia"
        proc.mkdir(parents=True, exist_ok=True)
        (proc / "version").write_text(
            f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {module_version}  Release Build\n"
            "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n")
    return root


def bare_python(root: Path) -> str:
    """A real interpreter without torch (nor anything else): a venv made without pip."""
    target = root / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True,
                   capture_output=True, timeout=60)
    exe = target / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    return str(exe)


def make_env(root: Path, name: str, *, torch: Optional[dict] = None,
             torch_body: Optional[str] = None, dist: Optional[str] = None,
             installer: str = "pip", conda_records: tuple = ()) -> str:
    """A real environment at root/name (a venv without pip): optionally a fake torch in its
    site-packages (answering with `torch` facts, or running `torch_body`), torch's metadata
    (`dist` version, installed by pip) and conda-meta records (names such as
    "pytorch-2.3.0-py3.11_cpu_0", written as conda writes them). Returns its python."""
    target = root / name
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True,
                   capture_output=True, timeout=120)
    if os.name == "nt":
        python, site = target / "Scripts" / "python.exe", target / "Lib" / "site-packages"
    else:
        python = target / "bin" / "python"
        site = target / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    if torch is not None or torch_body is not None:
        write_fake_torch(site, torch, body=torch_body)
    if dist:
        write_fake_torch_dist(site, dist, installer)
    if conda_records:
        meta = target / "conda-meta"
        meta.mkdir()
        for record in conda_records:
            package, version, build = record.rsplit("-", 2)
            (meta / f"{record}.json").write_text(json.dumps({
                "name": package, "version": version, "build": build,
                "channel": "https://conda.anaconda.org/pytorch/linux-64", "files": []}))
    return str(python)


def write_kernel(data_dir: Path, name: str, python: str, display_name: Optional[str] = None,
                 **more) -> Path:
    """A kernelspec as `python -m ipykernel install` writes it: data_dir/kernels/name/kernel.json."""
    folder = data_dir / "kernels" / name
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": display_name or name, "language": "python",
            "metadata": {"debugger": True}, **more}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return folder


def site_with(root: Path, *modules: str) -> Path:
    """A folder holding only `modules` (linked from this interpreter), for a PYTHONPATH that
    lets a bare interpreter run cnnsetup without seeing torch."""
    import importlib

    site = root / "only-site"
    site.mkdir(exist_ok=True)
    for name in modules:
        source = Path(importlib.import_module(name).__file__).parent
        link = site / source.name
        try:
            link.symlink_to(source, target_is_directory=True)
        except OSError:
            shutil.copytree(source, link)
    return site


# ---------------------------------------------------------------- facts for the rules


def make_facts(platform: str = "linux", **parts) -> Facts:
    """A plain, healthy Linux machine with a working CPU torch; override any part by keyword:
    system=, python=, conda=, torch=, nvidia= (objects) or their fields through `replace`."""
    facts = Facts(
        system=SystemFacts(
            os="Linux", os_version="Ubuntu 24.04", os_release="6.8.0", arch="x86_64",
            cpu_model="AMD Ryzen 7", cpu_cores_physical=8, cpu_cores_logical=16,
            ram_total_bytes=32 * GIB, ram_available_bytes=20 * GIB,
            disk_free_home_bytes=200 * GIB, disk_free_pkgs_bytes=None, home="/home/student"),
        python=PythonFacts(
            version="3.11.9", bits=64, executable="/home/student/venv/bin/python",
            implementation="CPython", env_kind="venv", env_name="venv", pip_matches=True,
            pip_python="/home/student/venv/lib/python3.11/site-packages/pip (python 3.11)",
            prefix="/home/student/venv"),
        conda=CondaFacts(),
        torch=TorchFacts(installed=True, importable=True, version="2.13.0+cpu", cuda=None,
                         numpy_version="2.1.0", numpy_ok=True, probe_seconds=1.2,
                         installers=["pip"], dist_versions=["2.13.0+cpu"]),
        nvidia=NvidiaFacts(found=False),
        platform=platform,
    )
    for name, value in parts.items():
        if isinstance(value, dict):
            value = replace(getattr(facts, name), **value)
        setattr(facts, name, value)
    return facts


def nvidia(case: str) -> NvidiaFacts:
    """NvidiaFacts as `gpu.query` returns them for a SMI_CASES case."""
    driver, cuda, cards, _knows = SMI_CASES[case]
    return NvidiaFacts(
        found=True, path="/usr/bin/nvidia-smi", driver_version=driver, cuda_version=cuda,
        gpus=[GpuFacts(i, name, driver, mib, cap) for i, (name, mib, cap) in enumerate(cards)])


def pretend_torch_missing(monkeypatch) -> None:
    """This machine's torch counts as missing for the findings (torch itself stays importable,
    so the rest of a run still works): every torch.* finding becomes torch.missing."""
    from cnnsetup.machine import findings

    real = findings.evaluate

    def evaluate(facts, recommendation=None):
        found = [f for f in real(facts, recommendation) if not f.id.startswith("torch.")]
        return found + [findings.Finding("torch.missing", "fail", "torch is not installed.",
                                         "python -m pip install torch")]

    monkeypatch.setattr(findings, "evaluate", evaluate)


def run_rank_in_process(monkeypatch, tmp_path: Path, env: dict, *argv: str) -> dict:
    """One rank of reference_net.distributed run in this process with the torchrun variables in
    `env` (RANK, WORLD_SIZE, ...): the result it would write. torch's thread count is kept."""
    import torch

    from reference_net import distributed

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = distributed.parse_args(["--result", str(tmp_path / "r.json"), *argv])
    threads = torch.get_num_threads()
    try:
        return distributed.train_and_check(args)
    finally:
        torch.set_num_threads(threads)  # the rank sets its own; this process keeps its count
