"""`cnnsetup torch-command`: the install command for this machine, checked by its index URL."""

from __future__ import annotations

import json
import os
import sys

import pytest

from cnnsetup.errors import UsageError
from cnnsetup.machine import cuda_tables as tables
from cnnsetup.machine.torch_install import Gpu, Machine, installed_build, recommend
from tests.conftest import REPO_ROOT, run_cnnsetup
from tests.machine_helpers import write_fake_torch_dist, write_smi, write_sysfs

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def linux(*gpus, driver=None, cuda=None, python=(3, 11), **more):
    return Machine(platform="linux", arch="x86_64", python=python, gpus=[Gpu(*g) for g in gpus],
                   nvidia_found=bool(gpus or driver), driver_version=driver, driver_cuda=cuda, **more)


def test_gtx_1080_on_driver_470_gets_an_older_torch_with_cu118():
    rec = recommend(linux(("NVIDIA GeForce GTX 1080", "6.1"), driver="470.256.02", cuda="11.4"))
    assert rec.index_url == "https://download.pytorch.org/whl/cu118"
    assert rec.cuda == "11.8"
    assert tables.parse_version(rec.torch_version) <= (2, 7)
    assert rec.command == "python -m pip install torch --index-url https://download.pytorch.org/whl/cu118"
    text = " ".join(rec.reasons)
    assert "470.256.02" in text and "11.4" in text and "sm_61" in text


def test_rtx_5090_on_driver_575_gets_cu128_or_newer():
    rec = recommend(linux(("NVIDIA GeForce RTX 5090", "12.0"), driver="575.51.03", cuda="12.9"))
    assert rec.variant in ("cu128", "cu129")
    assert rec.index_url == f"https://download.pytorch.org/whl/{rec.variant}"
    # The driver is older than CUDA 13's floor: say which driver would allow the newest torch.
    assert any("580" in r for r in rec.reasons)


def test_blackwell_never_gets_a_wheel_without_sm_120():
    for driver, cuda in (("575.51.03", "12.9"), ("580.95.05", "13.0"), ("596.10", "13.2")):
        rec = recommend(linux(("NVIDIA GeForce RTX 5090", "12.0"), driver=driver, cuda=cuda))
        release = tables.release(rec.torch_version)
        variant = release.variant(rec.variant)
        assert tables.runs_on(variant.archs, (12, 0)), (driver, rec.variant)


def test_a_new_driver_gets_the_newest_torch_and_cuda_it_supports_outright():
    rec = recommend(linux(("NVIDIA GeForce RTX 3090", "8.6"), driver="580.95.05", cuda="13.0"))
    assert rec.variant == "cu130"
    assert rec.torch_version == tables.NEWEST.version
    assert rec.torch_spec == "torch"


def test_a_driver_between_cuda_releases_runs_cu12_wheels_through_compatibility():
    rec = recommend(linux(("NVIDIA GeForce RTX 3060", "8.6"), driver="535.183.01", cuda="12.2"))
    assert rec.variant == "cu126"  # CUDA 12.x runs on any driver >= 525.60.13
    assert any("compatibility" in r for r in rec.reasons)


def test_a_card_dropped_by_newer_builds_of_the_same_variant_gets_a_version_cap():
    # cu128 kept sm_60 in 2.7 only; a Pascal card forced onto cu128 must not get 2.8+.
    rec = recommend(linux(("Tesla P100", "6.0"), driver="575.51.03", cuda="12.9"), cuda="12.8")
    assert rec.torch_version == "2.7"
    assert rec.torch_spec == "torch<2.8"
    assert '"torch<2.8"' in rec.command


def test_no_gpu_on_linux_uses_the_cpu_index():
    rec = recommend(linux())
    assert rec.index_url == CPU_INDEX and rec.variant == "cpu" and rec.cuda is None
    assert rec.command == f"python -m pip install torch --index-url {CPU_INDEX}"


@pytest.mark.parametrize("platform, arch", [("win32", "AMD64"), ("darwin", "arm64")])
def test_no_gpu_on_windows_or_apple_silicon_is_plain_pypi(platform, arch):
    rec = recommend(Machine(platform=platform, arch=arch, python=(3, 12)))
    assert rec.index_url is None
    assert rec.command == "python -m pip install torch"


def test_windows_with_an_nvidia_card_gets_a_cuda_index_not_pypi():
    machine = Machine(platform="win32", arch="AMD64", python=(3, 12), nvidia_found=True,
                      gpus=[Gpu("NVIDIA GeForce RTX 4060 Laptop GPU", "8.9")],
                      driver_version="566.36", driver_cuda="12.7")
    rec = recommend(machine)
    assert rec.index_url.startswith("https://download.pytorch.org/whl/cu12")
    assert any("Windows" in r for r in rec.reasons)


def test_windows_driver_floor_uses_the_windows_column():
    # 527.41 is CUDA 12's Windows floor, above Linux's 525.60.13.
    machine = Machine(platform="win32", arch="AMD64", python=(3, 12), nvidia_found=True,
                      gpus=[Gpu("NVIDIA GeForce RTX 3060", "8.6")], driver_version="526.98")
    assert recommend(machine).variant == "cu118"
    machine.driver_version = "527.41"
    assert recommend(machine).variant.startswith("cu12")


def test_intel_mac_stops_at_torch_2_2_2_with_numpy_1():
    rec = recommend(Machine(platform="darwin", arch="x86_64", python=(3, 12)))
    assert rec.command == 'python -m pip install "torch==2.2.2" "numpy<2"'
    assert rec.warnings == []
    old = recommend(Machine(platform="darwin", arch="x86_64", python=(3, 13)))
    assert any("3.12" in w for w in old.warnings)


def test_apple_silicon_on_an_old_macos_is_warned_about_mps():
    rec = recommend(Machine(platform="darwin", arch="arm64", python=(3, 12), macos_version="13.6"))
    assert rec.command == "python -m pip install torch"
    assert any("14" in w for w in rec.warnings)


def test_cuda_on_macos_is_a_usage_error():
    with pytest.raises(UsageError):
        recommend(Machine(platform="darwin", arch="arm64"), cuda="12.8")


def test_an_installed_cpu_torch_is_uninstalled_first():
    rec = recommend(linux(("NVIDIA GeForce RTX 3090", "8.6"), driver="580.95.05", cuda="13.0",
                          installed_torch="2.13.0+cpu"))
    assert rec.uninstall_first
    assert rec.commands[0] == "python -m pip uninstall -y torch"
    assert rec.commands[1].endswith("--index-url https://download.pytorch.org/whl/cu130")


def test_a_cuda_recommendation_always_carries_the_uninstall_reminder():
    rec = recommend(linux(("NVIDIA GeForce RTX 3090", "8.6"), driver="580.95.05", cuda="13.0"))
    assert not rec.uninstall_first
    assert rec.uninstall == "python -m pip uninstall -y torch"
    assert recommend(linux()).uninstall is None


def test_aliyun_gives_its_flat_wheel_listing_and_its_pypi_for_dependencies():
    rec = recommend(linux(("NVIDIA GeForce RTX 5090", "12.0"), driver="575.51.03", cuda="12.9"),
                    mirror="aliyun")
    assert rec.find_links == f"https://mirrors.aliyun.com/pytorch-wheels/{rec.variant}/"
    assert rec.commands == [
        f"python -m pip install torch --no-deps --no-index -f {rec.find_links}",
        "python -m pip install torch -i https://mirrors.aliyun.com/pypi/simple/",
    ]


def test_sjtu_gives_its_wheel_proxy_as_an_index():
    rec = recommend(linux(("NVIDIA GeForce GTX 1080", "6.1"), driver="470.256.02", cuda="11.4"),
                    mirror="sjtu")
    assert rec.index_url == "https://mirror.sjtu.edu.cn/pytorch-wheels/cu118/"
    assert rec.deps_index_url == "https://mirror.sjtu.edu.cn/pypi/web/simple"
    assert rec.commands[0].endswith(f"--no-deps --index-url {rec.index_url}")


def test_a_mirror_without_torch_wheels_still_serves_the_dependencies():
    rec = recommend(Machine(platform="win32", arch="AMD64", python=(3, 12), nvidia_found=True,
                            gpus=[Gpu("NVIDIA GeForce RTX 3060", "8.6")], driver_version="560.94",
                            driver_cuda="12.6"), mirror="tuna")
    assert rec.mirror == "tsinghua"
    assert rec.commands == [
        "python -m pip install torch --no-deps --index-url https://download.pytorch.org/whl/cu126",
        "python -m pip install torch -i https://pypi.tuna.tsinghua.edu.cn/simple",
    ]


def test_linux_cuda_13_through_a_mirror_is_pypis_own_wheel():
    rec = recommend(linux(("NVIDIA GeForce RTX 3090", "8.6"), driver="580.95.05", cuda="13.0"),
                    mirror="tsinghua")
    assert rec.commands == ["python -m pip install torch -i https://pypi.tuna.tsinghua.edu.cn/simple"]


def test_cpu_only_on_windows_through_a_mirror_is_the_mirrors_pypi():
    rec = recommend(Machine(platform="win32", arch="AMD64", python=(3, 12)), mirror="bfsu")
    assert rec.commands == ["python -m pip install torch -i https://mirrors.bfsu.edu.cn/pypi/web/simple"]


def test_32bit_python_and_unsupported_python_are_warned():
    assert any("32-bit" in w for w in recommend(
        Machine(platform="win32", arch="x86", python=(3, 12), python_bits=32)).warnings)
    assert any("3.8" in w for w in recommend(linux(python=(3, 8))).warnings)


@pytest.mark.parametrize("version, platform, build", [
    ("2.13.0+cpu", "linux", "cpu"), ("2.7.1+cu118", "win32", "cu118"),
    ("2.8.0", "linux", "cu128"), ("2.13.0", "win32", "pypi"), (None, "linux", None),
])
def test_installed_build_is_read_from_the_version(version, platform, build):
    assert installed_build(version, platform) == build


# ------------------------------------------------------------------ the command line


def test_cli_json_on_a_blackwell_machine(invoke, bin_dir):
    write_smi(bin_dir, "blackwell")
    result = invoke("torch-command", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"command", "index_url", "cuda", "torch_version", "reasons"} <= set(data)
    assert data["index_url"] in ("https://download.pytorch.org/whl/cu128",
                                 "https://download.pytorch.org/whl/cu129")
    assert data["machine"]["gpus"] == [{"name": "NVIDIA GeForce RTX 5090", "compute_cap": "12.0"}]


def test_cli_human_output_starts_with_the_command_and_says_why(invoke, bin_dir):
    write_smi(bin_dir, "old_driver")
    result = invoke("torch-command")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "Run:"
    # The interpreter by its full path: `python` on PATH may be another one.
    python = f'"{sys.executable}"'
    assert f"  {python} -m pip install torch --index-url https://download.pytorch.org/whl/cu118" in lines
    assert "Driver 470.256.02 supports CUDA up to 11.4." in result.stdout
    assert f"{python} -m pip uninstall -y torch" in result.stdout


def test_cli_cpu_without_nvidia_smi(invoke):
    data = json.loads(invoke("torch-command", "--json").stdout)
    assert data["index_url"] == CPU_INDEX
    assert data["cuda"] is None


def test_cli_forced_cuda_and_mirror(invoke):
    data = json.loads(invoke("torch-command", "--cuda", "11.8", "--mirror", "aliyun", "--json").stdout)
    assert data["find_links"] == "https://mirrors.aliyun.com/pytorch-wheels/cu118/"
    assert data["deps_index_url"] == "https://mirrors.aliyun.com/pypi/simple/"


@pytest.mark.parametrize("args", [["--mirror", "nowhere"], ["--cuda", "9.9"]])
def test_cli_unknown_values_are_usage_errors(invoke, bin_dir, args):
    write_smi(bin_dir, "hang")  # must not even be asked
    result = invoke("torch-command", *args)
    assert result.exit_code == 2
    assert "Known" in result.stderr


# ---------------------------------------------------------------- the driver, not torch


def _run_json(invoke, monkeypatch, **env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = invoke("torch-command", "--json")
    assert result.exit_code == 0, result.stdout
    return json.loads(result.stdout)


def test_driver_not_loaded_keeps_the_installed_cuda_build_and_says_fix_the_driver(
        invoke, bin_dir, tmp_path, monkeypatch):
    write_smi(bin_dir, "no_driver")  # the real message, exit status 9
    root = write_sysfs(tmp_path / "root", [("0000:01:00.0", "0x2684", None)])
    site = write_fake_torch_dist(tmp_path / "site", "2.8.0+cu128")
    done = run_cnnsetup("torch-command", "--json", env={
        "CNNSETUP_SYSTEM_ROOT": str(root), "PYTHONPATH": f"{site}{os.pathsep}{REPO_ROOT}"})
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["machine"]["installed_torch"] == "2.8.0+cu128"
    assert data["variant"] == "cu128" and data["cuda"] == "12.8"
    assert data["uninstall_first"] is False  # the working CUDA install stays
    assert "uninstall" not in data["command"]
    assert data["driver_first"] == "sudo modprobe nvidia && nvidia-smi"
    assert any("Fix the NVIDIA driver first" in w for w in data["warnings"])


def test_card_without_driver_gets_a_cuda_build_and_the_driver_first(
        invoke, tmp_path, monkeypatch):
    root = write_sysfs(tmp_path / "root", [("0000:01:00.0", "0x2684", "nouveau")])
    data = _run_json(invoke, monkeypatch, CNNSETUP_SYSTEM_ROOT=str(root))
    assert data["variant"].startswith("cu")
    assert data["driver_first"]
    assert any("no NVIDIA driver is installed" in r for r in data["reasons"])


def test_no_nvidia_hardware_at_all_gets_the_cpu_build(invoke, tmp_path, monkeypatch):
    # An Intel card (vendor 0x8086) and the NVIDIA card's HDMI audio alone do not count.
    root = write_sysfs(tmp_path / "root", [("0000:00:02.0", "0x46a6", "i915", "0x8086")])
    write_sysfs(root, [("0000:01:00.1", "0x22ba", "snd_hda_intel", "0x10de", "0x040300")])
    data = _run_json(invoke, monkeypatch, CNNSETUP_SYSTEM_ROOT=str(root))
    assert data["variant"] == "cpu" and data["driver_first"] is None


def test_windows_powershell_commands_call_the_interpreter_by_its_quoted_path(
        invoke, tmp_path, monkeypatch):
    data = _run_json(invoke, monkeypatch, CNNSETUP_PLATFORM="win32", CNNSETUP_SHELL="powershell")
    assert data["machine"]["platform"] == "win32"
    assert data["command"] == f"& '{sys.executable}' -m pip install torch"


def test_a_card_whose_nvidia_smi_hangs_is_not_sent_to_the_cpu_build(invoke, bin_dir, tmp_path,
                                                                    monkeypatch):
    write_smi(bin_dir, "hang")
    root = write_sysfs(tmp_path / "root", [("0000:01:00.0", "0x2684", "nvidia")],
                       module_version="575.51.03")
    monkeypatch.setenv("CNNSETUP_SYSTEM_ROOT", str(root))
    from cnnsetup.machine import torch_install

    machine = torch_install.machine_here(smi_timeout=1.0)
    rec = torch_install.recommend(machine)
    assert rec.variant.startswith("cu") and rec.driver_first
    assert any("did not answer properly" in r for r in rec.reasons)
