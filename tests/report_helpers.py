"""Realistic machine reports, in the shape documented in cnnsetup/report_schema.py, for tests and
the report benchmark: a passing CPU laptop, a Windows laptop with CPU-only torch on an NVIDIA
card, a multi-GPU server, a machine without torch, a Mac, and an early report that lacks the
later sections."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

from cnnsetup.report_schema import SCHEMA_VERSION

GIB = 1024 ** 3

TORCH_FIX_CU121 = "pip install torch --index-url https://download.pytorch.org/whl/cu121"
TORCH_FIX_CPU = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def check(check_id: str, status: str = "pass", summary: str = "", fix: str | None = None) -> dict:
    return {"id": check_id, "status": status, "summary": summary or f"{check_id}: {status}",
            "fix": fix}


def _training(device: str, name: str, ok: bool = True, accuracy: float = 0.995) -> dict:
    return {"device": device, "device_name": name, "ok": ok, "val_accuracy": accuracy,
            "epochs": 3, "seconds": 1.2, "samples_per_s": 5200.0, "error": None}


def passing_cpu_laptop(host: str = "lab-laptop-01", user: str = "student01",
                       created: str = "2026-11-27T21:43:26+08:00") -> dict:
    """A Linux laptop without GPU, CPU torch, Tsinghua mirror, every check passing."""
    return {
        "schema": SCHEMA_VERSION, "kind": "verify", "ok": True, "host": host, "user": user,
        "created": created, "cnnsetup_version": "0.1.0", "duration_s": 8.4,
        "system": {
            "os": "Linux", "os_version": "#1 SMP Debian 6.1.115-1", "os_release": "6.1.0-27-amd64",
            "arch": "x86_64", "cpu_model": "Intel(R) Core(TM) i5-1135G7", "cpu_cores_physical": 4,
            "cpu_cores_logical": 8, "ram_total_bytes": 16 * GIB, "ram_available_bytes": 9 * GIB,
            "disk_free_home_bytes": 120 * GIB, "disk_free_pkgs_bytes": 120 * GIB,
        },
        "python": {
            "version": "3.11.9", "bits": 64, "executable": "/home/student01/miniconda3/bin/python",
            "implementation": "CPython", "env_kind": "conda", "env_name": "dl",
            "pip_matches": True, "pip_python": "/home/student01/miniconda3/bin/python",
        },
        "conda": {"found": True, "path": "/home/student01/miniconda3/bin/conda",
                  "version": "24.9.2", "base": "/home/student01/miniconda3", "active_env": "dl",
                  "error": None},
        "torch": {
            "installed": True, "importable": True, "version": "2.5.1+cpu", "cuda": None,
            "cudnn": None, "arch_list": [], "cuda_available": False, "devices": [],
            "mps_built": False, "mps_available": False, "numpy_version": "2.1.3",
            "import_warnings": [], "error": None, "probe_seconds": 1.9,
        },
        "nvidia": {"found": False, "driver_version": None, "cuda_version": None,
                   "error": "nvidia-smi not found"},
        "gpus": [],
        "mirror": {"conda": "tsinghua", "pip": "tsinghua"},
        "checks": [
            check("python-version"), check("conda-found"), check("mirror"),
            check("torch-import"), check("conv-cpu"), check("train-cpu"), check("checkpoint"),
        ],
        "training": [_training("cpu", "Intel(R) Core(TM) i5-1135G7")],
    }


def failing_windows_cpu_torch_on_nvidia(host: str = "DESKTOP-7Q2K3LM", user: str = "zhang.san",
                                        created: str = "2026-11-27T20:05:11+08:00") -> dict:
    """Chinese Windows laptop with an RTX 3060 whose torch is the CPU build: a failing check
    whose fix is the CUDA wheel; pip still points at the official index (a warning)."""
    report = passing_cpu_laptop(host, user, created)
    report["ok"] = False
    report["system"].update(os="Windows", os_release="11", os_version="10.0.22631",
                            arch="AMD64", cpu_model="AMD Ryzen 7 5800H")
    report["python"].update(executable="C:\\Users\\zhang.san\\miniconda3\\python.exe",
                            pip_python="C:\\Users\\zhang.san\\miniconda3\\python.exe",
                            version="3.10.14")
    report["torch"].update(version="2.5.1+cpu", cuda=None)
    report["nvidia"] = {"found": True, "driver_version": "551.86", "cuda_version": "12.4",
                        "error": None}
    report["gpus"] = [{"index": 0, "name": "NVIDIA GeForce RTX 3060 Laptop GPU",
                       "driver_version": "551.86", "memory_total_mib": 6144,
                       "compute_cap": "8.6"}]
    report["mirror"] = {"conda": "tsinghua", "pip": None}
    report["checks"] = [
        check("python-version"), check("conda-found"),
        check("mirror", "warn", "pip still uses the official index", "cnnsetup mirror tsinghua"),
        check("torch-cuda-build", "fail",
              "torch is the CPU build, but this machine has an NVIDIA GPU", TORCH_FIX_CU121),
        check("conv-cpu"), check("train-cpu"), check("checkpoint"),
    ]
    return report


def multi_gpu_server(host: str = "gpu-server", user: str = "ta", gpus: int = 2,
                     created: str = "2026-11-26T10:00:00+08:00") -> dict:
    """A Linux server with several A100s, CUDA torch, everything passing on every GPU."""
    report = passing_cpu_laptop(host, user, created)
    report["system"].update(cpu_model="AMD EPYC 7763", cpu_cores_physical=64,
                            cpu_cores_logical=128, ram_total_bytes=512 * GIB)
    report["torch"].update(version="2.5.1+cu121", cuda="12.1", cudnn="90100",
                           cuda_available=True, arch_list=["sm_80", "sm_90"],
                           devices=[{"index": i, "name": "NVIDIA A100-SXM4-80GB",
                                     "capability": "8.0", "memory_bytes": 80 * GIB}
                                    for i in range(gpus)])
    report["nvidia"] = {"found": True, "driver_version": "550.54.15", "cuda_version": "12.4",
                        "error": None}
    report["gpus"] = [{"index": i, "name": "NVIDIA A100-SXM4-80GB", "driver_version": "550.54.15",
                       "memory_total_mib": 81920, "compute_cap": "8.0"} for i in range(gpus)]
    report["checks"] += [check(f"train-cuda:{i}") for i in range(gpus)]
    report["training"] += [_training(f"cuda:{i}", "NVIDIA A100-SXM4-80GB") for i in range(gpus)]
    return report


def torch_missing(host: str = "lab-pc-17", user: str = "li.si",
                  created: str = "2026-11-27T19:30:00+08:00") -> dict:
    """torch is not installed: the torch check fails with the install command."""
    report = passing_cpu_laptop(host, user, created)
    report["ok"] = False
    report["torch"] = {"installed": False, "importable": False, "version": None, "cuda": None,
                       "cudnn": None, "arch_list": None, "cuda_available": None, "devices": [],
                       "mps_built": None, "mps_available": None, "numpy_version": None,
                       "import_warnings": [], "error": "No module named 'torch'",
                       "probe_seconds": 0.1}
    report["checks"] = [
        check("python-version"), check("conda-found"), check("mirror"),
        check("torch-import", "fail", "torch is not installed", TORCH_FIX_CPU),
    ]
    report["training"] = []
    return report


def mac_mps(host: str = "MacBook-Air", user: str = "wang.wu",
            created: str = "2026-11-27T18:00:00+08:00") -> dict:
    """An Apple-silicon Mac training on MPS, with a low-disk warning."""
    report = passing_cpu_laptop(host, user, created)
    report["system"].update(os="Darwin", os_release="23.6.0", arch="arm64", cpu_model="Apple M2")
    report["torch"].update(version="2.5.1", mps_built=True, mps_available=True)
    report["mirror"] = {"conda": "ustc", "pip": "aliyun"}
    report["checks"].append(check("disk-space", "warn", "less than 10 GB free on the disk",
                                  None))
    report["training"].append(_training("mps", "Apple M2"))
    return report


def info_only(host: str = "lab-pc-20", user: str = "zhou.ba",
              created: str = "2026-11-27T17:00:00+08:00") -> dict:
    """What `cnnsetup info --json` writes: the machine checks, nothing trained."""
    report = passing_cpu_laptop(host, user, created)
    report["kind"] = "info"
    report["checks"] = [c for c in report["checks"] if not c["id"].startswith(("conv", "train"))]
    report["training"] = []
    return report


def with_student(report: dict, student: str | None) -> dict:
    """`report` as `verify --student` writes it (the field right after `user`)."""
    from cnnsetup.report_schema import with_student as schema_with_student

    return schema_with_student(report, student)


def early_v1(host: str = "old-laptop", user: str = "zhao.liu",
             created: str = "2026-09-01T09:00:00+08:00") -> dict:
    """A report written before the mirror, nvidia and training sections existed."""
    report = passing_cpu_laptop(host, user, created)
    for key in ("mirror", "nvidia", "training"):
        del report[key]
    report["kind"] = "info"
    return report


ALL_KINDS = (passing_cpu_laptop, failing_windows_cpu_torch_on_nvidia, multi_gpu_server,
             torch_missing, mac_mps, early_v1)


def varied(count: int, seed: int = 0) -> list[dict]:
    """`count` reports of every kind, on distinct machines, deterministic for a seed."""
    rng = random.Random(seed)
    reports = []
    for i in range(count):
        make = ALL_KINDS[i % len(ALL_KINDS)]
        report = make(host=f"host-{i:04d}", user=f"s{rng.randrange(10**6):06d}",
                      created=f"2026-11-{1 + i % 28:02d}T{rng.randrange(24):02d}:00:00+08:00")
        reports.append(report)
    return reports


def write_report(folder: Path, name: str, report: Any) -> Path:
    """Write `report` as JSON (the way `verify --report` does) and return the path."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return path


def changed(report: dict, **fields: Any) -> dict:
    """A deep copy of `report` with top-level `fields` replaced."""
    result = copy.deepcopy(report)
    result.update(fields)
    return result


# What `write_class_folder` puts in a folder, for tests to compare against:
# (student, host, user) -> state.
CLASS_MACHINES = {
    (None, "lab-laptop-01", "student01"): "pass",
    (None, "DESKTOP-7Q2K3LM", "zhang.san"): "fail",
    (None, "gpu-server", "ta"): "pass",
    (None, "gpu-server", "wang.ta"): "pass",
    (None, "lab-pc-17", "li.si"): "fail",
    (None, "MacBook-Air", "wang.wu"): "pass",  # a warning does not stop a pass
    (None, "old-laptop", "zhao.liu"): "untested",  # an early info report: nothing trained
    (None, "宿舍电脑", "陈七"): "pass",
    ("Chen Qi", "lab-pc", "student"): "pass",  # lab image: the same host and user...
    ("Li Lei", "lab-pc", "student"): "fail",  # ... told apart by the student
}
# Files of the class folder that a newer report of the same kind superseded -> the newer one.
CLASS_SUPERSEDED = {"z-dorm.json": "a-dorm.json", "lab/li-lei-monday.json": "lab/li-lei.json"}
CLASS_SKIPPED = {
    "garbage.json": "broken-json",
    "package.json": "foreign",
    "list.json": "foreign",
    "gbk.json": "not-utf8",
    "from-the-future.json": "newer-schema",
    "empty.json": "broken-json",
}


def write_class_folder(folder: Path) -> Path:
    """A folder as a teaching assistant receives it: reports from many machines, in subfolders,
    one machine twice (its first, failing report is older), and files that are not reports."""
    folder.mkdir(parents=True, exist_ok=True)
    write_report(folder, "lab-laptop-01.json", passing_cpu_laptop())
    write_report(folder, "week1/zhang.san.json", failing_windows_cpu_torch_on_nvidia())
    write_report(folder, "week1/server-ta.json", multi_gpu_server(gpus=8))
    write_report(folder, "week1/server-wang.json", multi_gpu_server(user="wang.ta", gpus=2))
    write_report(folder, "week2/lab-pc-17.json", torch_missing())
    write_report(folder, "week2/deeper/mac.json", mac_mps())
    write_report(folder, "old-laptop.json", early_v1())
    # The same student, first failing, then fixed; the older report sorts last by name and
    # its local time reads later, but in UTC it is earlier.
    fixed = passing_cpu_laptop(host="宿舍电脑", user="陈七",
                               created="2026-11-28T02:00:00+00:00")
    broken = torch_missing(host="宿舍电脑", user="陈七", created="2026-11-28T09:30:00+08:00")
    write_report(folder, "a-dorm.json", fixed)
    write_report(folder, "z-dorm.json", broken)
    # A lab image: every machine is student@lab-pc; the student names tell them apart. Li Lei
    # ran info after verify (kept too, but only verify decides) and verified twice.
    write_report(folder, "lab/chen-qi.json", with_student(
        passing_cpu_laptop(host="lab-pc", user="student"), "Chen Qi"))
    write_report(folder, "lab/li-lei-monday.json", with_student(
        passing_cpu_laptop(host="lab-pc", user="student",
                           created="2026-11-23T10:00:00+08:00"), "Li Lei"))
    write_report(folder, "lab/li-lei.json", with_student(
        torch_missing(host="lab-pc", user="student", created="2026-11-27T10:00:00+08:00"),
        "Li Lei"))
    write_report(folder, "lab/li-lei-info.json", with_student(
        info_only(host="lab-pc", user="student", created="2026-11-27T11:00:00+08:00"),
        "li  lei"))
    (folder / "garbage.json").write_text("{\"schema\": \"cnnsetup-report/1\", ", encoding="utf-8")
    (folder / "empty.json").write_text("", encoding="utf-8")
    write_report(folder, "package.json", {"name": "left-pad", "version": "1.3.0"})
    write_report(folder, "list.json", [passing_cpu_laptop(host="in-a-list")])
    (folder / "gbk.json").write_bytes(
        json.dumps({"schema": "cnnsetup-report/1", "host": "机房"}, ensure_ascii=False)
        .encode("gbk"))
    write_report(folder, "from-the-future.json",
                 changed(passing_cpu_laptop(host="future"), schema="cnnsetup-report/2"))
    (folder / "notes.txt").write_text("not a report, and not *.json", encoding="utf-8")
    return folder
