"""`cnnsetup info`: the report for people and for programs, its exit status, and that nothing a
broken torch does can take it down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from click.testing import CliRunner

from cnnsetup import render
from cnnsetup.cli import cli
from cnnsetup.machine.facts import collect
from cnnsetup.machine.findings import evaluate
from cnnsetup.report_schema import SCHEMA_VERSION, STATUSES, TOP_LEVEL_KEYS
from tests.conftest import REPO_ROOT, run_cnnsetup
from tests.machine_helpers import CPU_TORCH, bare_python, site_with, write_fake_torch, write_smi


@pytest.fixture
def fake_torch(tmp_path, monkeypatch):
    def _write(facts=None, *, body=None):
        root = write_fake_torch(tmp_path / "fake-site", facts, body=body)
        monkeypatch.setenv("PYTHONPATH", str(root))
        return root

    return _write


def test_json_has_exactly_the_report_schemas_keys(invoke, fake_torch):
    fake_torch(CPU_TORCH)
    result = invoke("info", "--json")
    assert result.exit_code == 0, result.stdout
    data = json.loads(result.stdout)
    assert list(data) == list(TOP_LEVEL_KEYS)
    assert (data["schema"], data["kind"], data["ok"]) == (SCHEMA_VERSION, "info", True)
    assert data["training"] == [] and data["mirror"] == {"conda": None, "pip": None}
    assert data["torch"]["version"] == "2.13.0+cpu" and data["torch"]["cuda"] is None
    assert data["nvidia"]["found"] is False and data["gpus"] == []
    assert {c["status"] for c in data["checks"]} <= set(STATUSES)
    assert {"id", "status", "summary", "fix"} <= set(data["checks"][0])
    for section, keys in {
        "system": {"os", "os_version", "os_release", "arch", "cpu_model", "cpu_cores_physical",
                   "cpu_cores_logical", "ram_total_bytes", "ram_available_bytes",
                   "disk_free_home_bytes", "disk_free_pkgs_bytes"},
        "python": {"version", "bits", "executable", "implementation", "env_kind", "env_name",
                   "pip_matches", "pip_python"},
        "conda": {"found", "path", "version", "base", "active_env", "error"},
        "torch": {"installed", "importable", "version", "cuda", "cudnn", "arch_list",
                  "cuda_available", "devices", "mps_built", "mps_available", "numpy_version",
                  "import_warnings", "error", "probe_seconds"},
        "nvidia": {"found", "driver_version", "cuda_version", "error"},
    }.items():
        assert keys <= set(data[section]), section


def test_cpu_torch_on_a_blackwell_machine_fails_and_prints_the_fix(invoke, bin_dir, fake_torch):
    write_smi(bin_dir, "blackwell")
    fake_torch(CPU_TORCH)
    result = invoke("info")
    assert result.exit_code == 1
    out = result.stdout
    titles = ["System", "Python", "conda", "PyTorch", "GPUs", "Checks"]
    positions = [out.index(f"{t}\n") for t in titles]
    assert positions == sorted(positions)
    assert "NVIDIA GeForce RTX 5090, 32607 MiB, sm_120" in out
    assert "torch.cpu_only_with_gpu" in out
    assert "fix: python -m pip uninstall -y torch" in out
    assert "https://download.pytorch.org/whl/cu128" in out
    assert "\x1b[" not in out  # not a terminal: no colour


def test_json_findings_carry_the_fix_for_gpu_machines(invoke, bin_dir, fake_torch):
    write_smi(bin_dir, "old_driver")
    fake_torch({"version": "2.8.0+cu128", "cuda": "12.8", "arch_list": ["sm_70", "sm_120"],
                "devices": [], "cuda_warnings": ["The NVIDIA driver on your system is too old "
                                                 "(found version 11040)."]})
    data = json.loads(invoke("info", "--json").stdout)
    checks = {c["id"]: c for c in data["checks"]}
    assert data["ok"] is False
    assert checks["driver.too_old"]["status"] == "fail"
    assert checks["gpu.arch_unsupported"]["status"] == "fail"  # sm_61 is not in sm_70/sm_120
    assert checks["driver.too_old"]["fix"].endswith("https://download.pytorch.org/whl/cu118")
    assert data["gpus"][0]["compute_cap"] == "6.1"
    assert data["nvidia"]["cuda_version"] == "11.4"


def test_status_words_are_coloured_on_a_terminal(fake_torch, monkeypatch):
    fake_torch(CPU_TORCH)
    monkeypatch.setattr(render, "colour_enabled", lambda stream=None: True)  # "a terminal"
    result = CliRunner().invoke(cli, ["info"], color=True)
    assert "\x1b[32m" in result.stdout  # green "pass"


def test_a_torch_that_hangs_and_an_nvidia_smi_that_hangs_are_both_cut_short(bin_dir, fake_torch):
    write_smi(bin_dir, "hang")
    fake_torch(body="import time\ntime.sleep(60)\n")
    started = time.monotonic()
    facts = collect(torch_timeout=1.0, smi_timeout=1.0)
    assert time.monotonic() - started < 15
    found = {f.id: f.status for f in evaluate(facts)}
    assert found["torch.probe_timeout"] == "fail"
    assert found["nvidia.smi_error"] == "warn"


@pytest.mark.slow
def test_a_real_process_reports_a_windows_dll_error_instead_of_crashing(tmp_path):
    root = write_fake_torch(tmp_path / "fake-site", body=(
        "raise OSError('[WinError 126] The specified module could not be found. Error loading "
        "\"C:\\\\torch\\\\lib\\\\fbgemm.dll\" or one of its dependencies.')\n"))
    done = run_cnnsetup("info", "--json", env={"PYTHONPATH": f"{root}{os.pathsep}{REPO_ROOT}"})
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    dll = next(c for c in data["checks"] if c["id"] == "torch.dll_error")
    assert dll["status"] == "fail"
    assert "fbgemm.dll" in dll["detail"] and dll["detail"].startswith("OSError: [WinError 126]")
    assert data["torch"]["error"] == dll["detail"]


@pytest.mark.slow
def test_torch_missing_in_a_real_interpreter_fails_with_the_install_command(tmp_path):
    python = bare_python(tmp_path)
    site = site_with(tmp_path, "click", "psutil")
    env = dict(os.environ, PYTHONPATH=f"{REPO_ROOT}{os.pathsep}{site}")
    done = subprocess.run([python, "-m", "cnnsetup", "info", "--json"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    missing = next(c for c in data["checks"] if c["id"] == "torch.missing")
    assert missing["status"] == "fail"
    assert missing["fix"] == "python -m pip install torch --index-url https://download.pytorch.org/whl/cpu"
    assert data["torch"]["installed"] is False


@pytest.mark.slow
def test_cnnsetup_itself_never_imports_torch(tmp_path):
    root = write_fake_torch(tmp_path / "fake-site", CPU_TORCH)
    code = ("import sys; from cnnsetup.cli import main; status = main(['info', '--json']); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(status)")
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{REPO_ROOT}")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["torch"]["version"] == "2.13.0+cpu"
