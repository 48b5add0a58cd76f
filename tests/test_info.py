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
    # The report schema's keys in order; `info` adds the Jupyter kernels after them.
    assert list(data) == [*TOP_LEVEL_KEYS, "jupyter_kernels"]
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
    assert f'fix: "{sys.executable}" -m pip uninstall -y torch' in out
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
    assert missing["fix"] == (f'"{python}" -m pip install torch --index-url '
                              "https://download.pytorch.org/whl/cpu")
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


# ---------------------------------------------------------------- what breaks on students' machines

from tests.machine_helpers import cuda_torch, make_env, write_kernel, write_sysfs  # noqa: E402


def checks_of(data):
    return {c["id"]: c for c in data["checks"]}


@pytest.fixture
def cnnsetup_site(tmp_path):
    """click and psutil for an interpreter that runs cnnsetup from this checkout."""
    return site_with(tmp_path, "click", "psutil")


def info_in(python, site, *args, **env):
    """`cnnsetup info ARGS` run by `python` (its environment is the one diagnosed)."""
    full = dict(os.environ, PYTHONPATH=f"{REPO_ROOT}{os.pathsep}{site}", **env)
    return subprocess.run([python, "-m", "cnnsetup", "info", *args], capture_output=True,
                          text=True, encoding="utf-8", env=full, timeout=240)


@pytest.mark.slow
def test_jupyter_kernels_are_found_probed_and_fixed(tmp_path, isolated_home, cnnsetup_site):
    course = make_env(tmp_path, "course", torch=CPU_TORCH, dist="2.13.0+cpu")
    base = make_env(tmp_path, "base")  # what Anaconda's "Python 3" kernel often is: no torch
    old = make_env(tmp_path, "old", torch=cuda_torch("2.5.1+cu124", "12.4"))
    user = isolated_home / ".local" / "share" / "jupyter"
    write_kernel(user, "python3", base, "Python 3 (ipykernel)")
    write_kernel(user, "old", old, "Old course")
    gone = write_kernel(user, "gone", str(tmp_path / "removed" / "bin" / "python"), "Removed")
    write_kernel(user, "course", course, "Course")
    course_site = next((tmp_path / "course").glob("lib/python*/site-packages"))
    write_kernel(user, "shared", base, "Shared", env={"PYTHONPATH": str(course_site)})
    shadow = tmp_path / "jupyter-path"  # JUPYTER_PATH comes before the user folder
    write_kernel(shadow, "old", old, "Old course, from JUPYTER_PATH")

    done = info_in(course, cnnsetup_site, "--json", JUPYTER_PATH=str(shadow))
    data = json.loads(done.stdout)
    kernels = {k["name"]: k for k in data["jupyter_kernels"]}
    assert set(kernels) == {"python3", "old", "gone", "course", "shared"}
    assert kernels["shared"]["torch"] == "2.13.0+cpu"  # the worker's answer: the same install
    assert kernels["old"]["display_name"] == "Old course, from JUPYTER_PATH"
    assert kernels["python3"]["interpreter"] == base and kernels["python3"]["torch"] is None
    assert kernels["python3"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert kernels["old"]["torch"] == "2.5.1+cu124" and kernels["old"]["torch_cuda"] == "12.4"
    assert kernels["course"]["torch"] == "2.13.0+cpu"
    assert kernels["gone"]["interpreter_exists"] is False

    checks = checks_of(data)
    no_torch = checks["jupyter.kernel_no_torch"]
    assert no_torch["status"] == "warn"  # the course kernel works
    assert "python3" in no_torch["summary"] and base in no_torch["summary"]
    assert "No module named 'torch'" in no_torch["detail"]
    install = (f'"{course}" -m pip install ipykernel\n'
               f'"{course}" -m ipykernel install --user --name course '
               f'--display-name "course (cnnsetup)"')
    assert no_torch["fix"] == install
    assert checks["jupyter.kernel_torch_differs"]["status"] == "warn"
    assert "2.5.1+cu124" in checks["jupyter.kernel_torch_differs"]["summary"]
    missing = checks["jupyter.kernel_interpreter_missing"]
    assert missing["fix"] == f'rm -rf "{gone}"\n{install}'
    assert "course (Course)" in checks["jupyter.kernels"]["summary"]
    assert "shared (Shared)" in checks["jupyter.kernels"]["summary"]


@pytest.mark.slow
def test_conda_torch_with_an_undefined_mkl_symbol_gets_a_conda_fix(tmp_path, cnnsetup_site):
    error = ("ImportError: /opt/conda/envs/dl/lib/python3.11/site-packages/torch/lib/"
             "libtorch_cpu.so: undefined symbol: iJIT_NotifyEvent")
    python = make_env(tmp_path, "dl", torch_body=f"raise ImportError({error[13:]!r})\n",
                      dist="2.3.0", installer="conda",
                      conda_records=("pytorch-2.3.0-py3.11_cpu_0", "mkl-2024.1.0-h66d3029_694",
                                     "intel-openmp-2024.1.0-h57928b3_965"))
    done = info_in(python, cnnsetup_site, "--json")
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    finding = checks_of(data)["torch.mkl_symbol"]
    assert finding["status"] == "fail"
    assert finding["detail"] == error
    assert "iJIT_NotifyEvent" in finding["summary"]
    prefix = str(tmp_path / "dl")
    assert finding["fix"] == f'conda install -p "{prefix}" -y "mkl<2024.1"'
    assert not any("pip uninstall" in (c["fix"] or "") for c in data["checks"])


OMP_ABORT = r'''
import os
os.write(2, b"OMP: Error #15: Initializing libiomp5.so, but found libiomp5.so already initialized.\n"
            b"OMP: Hint This means that multiple copies of the OpenMP runtime have been linked into "
            b"the program. That is dangerous, since it can degrade performance or cause incorrect "
            b"results. As an unsafe, unsupported, undocumented workaround you can set the "
            b"environment variable KMP_DUPLICATE_LIB_OK=TRUE to allow the program to continue to "
            b"execute, but that may cause crashes or silently produce incorrect results.\n")
os.abort()
'''


@pytest.mark.slow
def test_two_openmp_runtimes_are_named_with_the_error_line_not_the_hint(tmp_path, cnnsetup_site):
    python = make_env(tmp_path, "mixed", torch_body=OMP_ABORT, dist="2.5.1",
                      conda_records=("intel-openmp-2024.1.0-h57928b3_965",
                                     "mkl-2024.1.0-h66d3029_694"))
    done = info_in(python, cnnsetup_site, "--json")
    data = json.loads(done.stdout)
    finding = checks_of(data)["torch.openmp_clash"]
    assert finding["status"] == "fail"
    assert finding["detail"] == ("OMP: Error #15: Initializing libiomp5.so, but found "
                                 "libiomp5.so already initialized.")
    assert "intel-openmp-2024.1.0" in finding["summary"]
    assert "KMP_DUPLICATE_LIB_OK=TRUE" in finding["summary"] and "nomkl" in finding["summary"]
    # One installer per environment: a fresh one, not "reinstall pip's torch" (same crash).
    fresh = str(tmp_path / "home" / "mixed-pip")
    assert finding["fix"].splitlines() == [
        f'"{python}" -m venv "{fresh}"',
        f'"{fresh}/bin/python" -m pip install torch --index-url https://download.pytorch.org/whl/cpu']
    text = info_in(python, cnnsetup_site).stdout
    assert "OMP: Error #15" in text and "OMP: Hint" not in text


def _nvidia_json(invoke, monkeypatch, **env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = invoke("info", "--json")
    return result.exit_code, json.loads(result.stdout)


def test_a_driver_that_is_not_loaded_is_its_own_finding_and_keeps_cuda_torch(
        invoke, bin_dir, fake_torch, tmp_path, monkeypatch):
    write_smi(bin_dir, "no_driver")
    root = write_sysfs(tmp_path / "root", [("0000:01:00.0", "0x2684", None)])
    fake_torch(cuda_torch("2.8.0+cu128", "12.8", cuda_available=False))
    code, data = _nvidia_json(invoke, monkeypatch, CNNSETUP_SYSTEM_ROOT=str(root))
    checks = checks_of(data)
    finding = checks["nvidia.driver_not_loaded"]
    assert code == 1 and finding["status"] == "fail"
    assert finding["detail"].startswith(
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver")
    assert finding["fix"] == "sudo modprobe nvidia && nvidia-smi"
    assert "Secure Boot" in finding["summary"]
    assert "nvidia.smi_error" not in checks and "torch.cuda_unavailable" not in checks
    assert not any("uninstall" in (c["fix"] or "") for c in data["checks"])


def test_an_nvidia_card_without_its_driver(invoke, fake_torch, tmp_path, monkeypatch):
    root = write_sysfs(tmp_path / "root", [("0000:01:00.0", "0x2684", "nouveau"),
                                           ("0000:01:00.1", "0x22ba", "snd_hda_intel",
                                            "0x10de", "0x040300")])
    fake_torch(CPU_TORCH)
    code, data = _nvidia_json(invoke, monkeypatch, CNNSETUP_SYSTEM_ROOT=str(root))
    finding = checks_of(data)["nvidia.no_driver"]
    assert code == 1 and finding["status"] == "fail"
    assert "[10de:2684]" in finding["summary"] and "nouveau" in finding["summary"]
    assert "22ba" not in finding["summary"]  # the card's HDMI audio is not a second card
    assert "gpu.none" not in checks_of(data)


def test_a_loaded_driver_module_without_nvidia_smi_is_not_called_missing(
        invoke, fake_torch, tmp_path, monkeypatch):
    root = write_sysfs(tmp_path / "root", [("0000:01:00.0", "0x2684", "nvidia")],
                       module_version="575.51.03")
    fake_torch(CPU_TORCH)
    _code, data = _nvidia_json(invoke, monkeypatch, CNNSETUP_SYSTEM_ROOT=str(root))
    assert "nvidia.no_driver" not in checks_of(data)


def test_no_nvidia_hardware_is_a_pass(invoke, fake_torch, tmp_path, monkeypatch):
    root = write_sysfs(tmp_path / "root", [("0000:00:02.0", "0x46a6", "i915", "0x8086")])
    fake_torch(CPU_TORCH)
    code, data = _nvidia_json(invoke, monkeypatch, CNNSETUP_SYSTEM_ROOT=str(root))
    assert code == 0 and checks_of(data)["gpu.none"]["status"] == "pass"


def test_a_card_newer_than_the_build(invoke, bin_dir, fake_torch, monkeypatch):
    write_smi(bin_dir, "blackwell")
    fake_torch(cuda_torch("2.5.1+cu124", "12.4", devices=[
        {"index": 0, "name": "NVIDIA GeForce RTX 5090", "capability": "12.0",
         "memory_bytes": 32 * 1024 ** 3}]))
    _code, data = _nvidia_json(invoke, monkeypatch)
    finding = checks_of(data)["gpu.too_new"]
    assert finding["status"] == "fail" and "sm_120" in finding["summary"]
    assert "https://download.pytorch.org/whl/cu12" in finding["fix"]


@pytest.mark.parametrize("error, kind, fix_part", [
    ('[WinError 126] The specified module could not be found. Error loading '
     '"C:\\\\env\\\\Lib\\\\site-packages\\\\torch\\\\lib\\\\fbgemm.dll" or one of its dependencies.',
     "torch.vc_runtime_missing", "winget install --id Microsoft.VCRedist.2015+.x64 -e"),
    ('[WinError 1114] A dynamic link library (DLL) initialization routine failed. Error loading '
     '"C:\\\\env\\\\Lib\\\\site-packages\\\\torch\\\\lib\\\\c10.dll" or one of its dependencies.',
     "torch.dll_init_failed", "winget install --id Microsoft.VCRedist.2015+.x64 -e"),
    ('[WinError 127] The specified procedure could not be found. Error loading '
     '"C:\\\\env\\\\Lib\\\\site-packages\\\\torch\\\\lib\\\\torch_cpu.dll" or one of its dependencies.',
     "torch.dll_conflict", "-m venv"),
    ('[WinError 126] The specified module could not be found. Error loading '
     '"C:\\\\env\\\\Lib\\\\site-packages\\\\torch\\\\lib\\\\cudnn64_9.dll" or one of its dependencies.',
     "torch.cuda_dll_missing", "--no-cache-dir"),
], ids=["vc_runtime", "init_failed", "procedure", "cuda_dll"])
def test_windows_dll_failures_run_through_the_cli_on_any_platform(
        invoke, fake_torch, tmp_path, monkeypatch, error, kind, fix_part):
    root = fake_torch(body=f"raise OSError({error!r})\n")
    write_fake_torch_dist_here = __import__("tests.machine_helpers", fromlist=["x"])
    write_fake_torch_dist_here.write_fake_torch_dist(root, "2.5.1+cu124")
    code, data = _nvidia_json(invoke, monkeypatch, CNNSETUP_PLATFORM="win32",
                              CNNSETUP_SHELL="cmd")
    assert data["system"]["os"] == "Windows"
    finding = checks_of(data)[kind]
    assert code == 1 and finding["status"] == "fail"
    assert finding["detail"] == f"OSError: {error}"
    assert fix_part in finding["fix"]
    if kind == "torch.vc_runtime_missing":
        assert "https://aka.ms/vs/17/release/vc_redist.x64.exe" in finding["summary"]
        assert "fbgemm.dll" in finding["summary"]
    if "-m pip" in finding["fix"]:
        assert f'"{sys.executable}" -m pip' in finding["fix"] or "-m venv" in finding["fix"]
