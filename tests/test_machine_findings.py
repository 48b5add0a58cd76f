"""The rules: each row of the failure table (TORCH.md) becomes a finding with its id, status and
fix; a healthy machine gets only passes."""

from __future__ import annotations

import pytest

from cnnsetup.machine.facts import TorchFacts
from cnnsetup.machine.findings import evaluate
from cnnsetup.machine.torch_install import machine_from_facts, recommend
from tests.machine_helpers import GIB, make_facts, nvidia

PY = '"/home/student/venv/bin/python"'

CU124_ARCHS = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]


def by_id(findings):
    return {f.id: f for f in findings}


def statuses(findings):
    return {f.id: f.status for f in findings}


def cuda_torch(version, cuda, archs=CU124_ARCHS, devices=(), available=True, **more):
    return TorchFacts(installed=True, importable=True, version=version, cuda=cuda,
                      arch_list=list(archs), devices=list(devices), cuda_available=available,
                      numpy_ok=True, installers=["pip"], dist_versions=[version], **more)


def test_a_healthy_cpu_machine_has_only_passes_and_skips():
    found = statuses(evaluate(make_facts()))
    assert set(found.values()) <= {"pass", "skip"}
    assert found["torch.import"] == "pass" and found["gpu.none"] == "pass"
    assert found["python.version"] == "pass"


def test_a_working_cuda_machine_passes_and_notes_out_of_memory_as_a_skip():
    facts = make_facts(nvidia=nvidia("several"), torch=cuda_torch(
        "2.13.0+cu130", "13.0", ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"],
        devices=[{"index": 0, "name": "NVIDIA GeForce RTX 3090", "capability": "8.6"}]))
    found = statuses(evaluate(facts))
    assert found["cuda.available"] == "pass"
    assert found["cuda.oom"] == "skip"
    assert "fail" not in found.values()


def test_cpu_only_torch_on_an_nvidia_machine_fails_with_a_cuda_index_fix():
    facts = make_facts(nvidia=nvidia("blackwell"))
    finding = by_id(evaluate(facts))["torch.cpu_only_with_gpu"]
    assert finding.status == "fail"
    assert finding.fix.splitlines()[0] == f"{PY} -m pip uninstall -y torch"
    assert "--index-url https://download.pytorch.org/whl/cu128" in finding.fix


def test_driver_too_old_for_the_torch_build():
    facts = make_facts(
        nvidia=nvidia("old_driver"),
        torch=cuda_torch("2.8.0+cu128", "12.8", cuda_warnings=[
            "UserWarning: CUDA initialization: The NVIDIA driver on your system is too old "
            "(found version 11040)."], available=False))
    finding = by_id(evaluate(facts))["driver.too_old"]
    assert finding.status == "fail"
    assert "470.256.02" in finding.summary
    assert "found version 11040" in finding.detail
    assert finding.fix.endswith("--index-url https://download.pytorch.org/whl/cu118")


def test_torchs_own_too_old_warning_counts_even_when_nvidia_smi_gave_no_version():
    facts = make_facts(
        nvidia={"found": True, "gpus": nvidia("ampere_535").gpus, "driver_version": None},
        torch=cuda_torch("2.13.0+cu130", "13.0", available=False, cuda_warnings=[
            "UserWarning: The NVIDIA driver on your system is too old (found version 12020)."]))
    assert statuses(evaluate(facts))["driver.too_old"] == "fail"


def test_a_card_newer_than_the_wheels_arch_list_is_too_new_for_the_build():
    facts = make_facts(nvidia=nvidia("blackwell"), torch=cuda_torch(
        "2.5.1+cu124", "12.4", devices=[{"index": 0, "name": "NVIDIA GeForce RTX 5090",
                                         "capability": "12.0"}]))
    found = evaluate(facts)
    assert "gpu.arch_unsupported" not in by_id(found)
    finding = by_id(found)["gpu.too_new"]
    assert finding.status == "fail"
    assert "sm_120" in finding.summary
    assert "/whl/cu128" in finding.fix
    assert "cuda.available" not in by_id(found)


def test_a_card_older_than_every_architecture_of_the_build_is_unsupported():
    facts = make_facts(nvidia=nvidia("pascal_575"), torch=cuda_torch(
        "2.13.0+cu130", "13.0", ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]))
    found = by_id(evaluate(facts))
    assert "gpu.too_new" not in found
    assert found["gpu.arch_unsupported"].status == "fail"
    assert "sm_61" in found["gpu.arch_unsupported"].summary


def test_a_pascal_card_runs_sm_60_code():
    facts = make_facts(nvidia=nvidia("pascal_575"), torch=cuda_torch(
        "2.7.1+cu118", "11.8", devices=[{"index": 0, "name": "NVIDIA GeForce GTX 1080",
                                         "capability": "6.1"}]))
    assert "gpu.arch_unsupported" not in statuses(evaluate(facts))


def test_windows_dll_error_points_at_the_visual_cpp_redistributable():
    error = ('OSError: [WinError 126] The specified module could not be found. Error loading '
             '"C:\\env\\Lib\\site-packages\\torch\\lib\\fbgemm.dll" or one of its dependencies.')
    facts = make_facts(platform="win32", torch=TorchFacts(installed=True, importable=False,
                                                          version="2.5.1", error=error))
    finding = by_id(evaluate(facts))["torch.vc_runtime_missing"]
    assert finding.status == "fail"
    assert finding.detail == error
    assert "fbgemm.dll" in finding.summary
    assert finding.fix == "winget install --id Microsoft.VCRedist.2015+.x64 -e"
    assert "https://aka.ms/vs/17/release/vc_redist.x64.exe" in finding.summary


def test_a_shared_library_error_on_linux_suggests_reinstalling():
    facts = make_facts(torch=TorchFacts(installed=True, importable=False, version="2.5.1",
                                        error="OSError: libcudnn.so.9: cannot open shared object file"))
    finding = by_id(evaluate(facts))["torch.dll_error"]
    assert finding.fix.startswith(f"{PY} -m pip uninstall -y torch\n")


@pytest.mark.parametrize("torch", [
    TorchFacts(installed=True, importable=True, version="2.1.0", numpy_version="2.1.0",
               import_warnings=["UserWarning: Failed to initialize NumPy: _ARRAY_API not found"]),
    TorchFacts(installed=True, importable=True, version="2.1.0", numpy_version="2.1.0",
               numpy_ok=False, numpy_error="RuntimeError: Numpy is not available"),
    TorchFacts(installed=True, importable=False, version="2.1.0", numpy_version="2.1.0",
               error="ImportError: numpy.core.multiarray failed to import"),
], ids=["warning", "from_numpy", "import"])
def test_numpy_abi_mismatch(torch):
    finding = by_id(evaluate(make_facts(torch=torch)))["numpy.abi_mismatch"]
    assert finding.status == "fail"
    assert finding.fix == f'{PY} -m pip install "numpy<2"'


def test_numpy_absent_is_a_warning_not_a_mismatch():
    # What pip's torch 2.x looks like in a fresh venv: it imports fine and warns about NumPy.
    torch = TorchFacts(installed=True, importable=True, version="2.13.0+cpu", numpy_version=None,
                       import_warnings=["UserWarning: Failed to initialize NumPy: No module "
                                        "named 'numpy' (Triggered internally at ...)"])
    findings = by_id(evaluate(make_facts(torch=torch)))
    assert "numpy.abi_mismatch" not in findings
    assert findings["numpy.missing"].status == "warn"
    assert findings["numpy.missing"].fix == f"{PY} -m pip install numpy"


def test_missing_torch_fails_with_the_torch_command_as_fix():
    facts = make_facts(nvidia=nvidia("blackwell"), torch=TorchFacts(
        installed=False, error="ModuleNotFoundError: No module named 'torch'"))
    finding = by_id(evaluate(facts))["torch.missing"]
    assert finding.status == "fail"
    assert finding.fix == recommend(machine_from_facts(facts)).command
    assert "/whl/cu12" in finding.fix


def test_pip_of_another_interpreter_is_the_wrong_interpreter():
    facts = make_facts(python={"pip_matches": False,
                               "pip_python": "/usr/lib/python3/dist-packages/pip (python 3.12)"},
                       torch=TorchFacts(installed=False))
    found = by_id(evaluate(facts))
    assert found["python.wrong_interpreter"].status == "warn"
    assert "/usr/lib/python3/dist-packages/pip" in found["python.wrong_interpreter"].summary
    assert found["torch.missing"].status == "fail"


def test_an_active_environment_other_than_this_python_is_the_wrong_interpreter():
    facts = make_facts(python={"active_env_prefix": "/home/student/miniconda3/envs/dl"})
    assert statuses(evaluate(facts))["python.wrong_interpreter"] == "warn"


@pytest.mark.parametrize("python, failing", [
    ({"bits": 32}, "python.32bit"),
    ({"version": "3.8.10"}, "python.unsupported_version"),
    ({"version": "3.15.0"}, "python.unsupported_version"),
])
def test_from_versions_none_pythons(python, failing):
    found = statuses(evaluate(make_facts(python=python, torch=TorchFacts(installed=False))))
    assert found[failing] == "fail"
    assert "python.version" not in found


def test_an_unsupported_python_with_a_working_torch_is_only_a_warning():
    assert statuses(evaluate(make_facts(python={"version": "3.9.18"})))[
        "python.unsupported_version"] == "warn"


def test_conda_pytorch_mixed_with_pip_torch():
    torch = TorchFacts(installed=True, importable=True, version="2.5.1", installers=["pip"],
                       dist_versions=["2.5.1"], conda_pytorch=["pytorch-2.5.1-py3.11_cuda12.4_0"])
    facts = make_facts(torch=torch, conda={"found": True, "path": "/opt/conda/bin/conda",
                                           "base": "/opt/conda"},
                       python={"env_name": "dl", "prefix": "/opt/conda/envs/dl",
                               "executable": "/opt/conda/envs/dl/bin/python"})
    finding = by_id(evaluate(facts))["torch.conda_pip_mix"]
    assert finding.status == "fail"
    # One installer per environment: a fresh one for pip's torch, never pip over conda's files.
    assert "uninstall" not in finding.fix
    assert finding.fix.splitlines() == [
        '"/opt/conda/bin/conda" create -y -n dl-pip "python=3.11"',
        '"/opt/conda/envs/dl-pip/bin/python" -m pip install torch --index-url '
        'https://download.pytorch.org/whl/cpu']


def test_mps_built_but_unavailable_on_macos():
    facts = make_facts(platform="darwin",
                       system={"os": "macOS", "os_version": "13.6", "arch": "arm64"},
                       torch=TorchFacts(installed=True, importable=True, version="2.13.0",
                                        mps_built=True, mps_available=False))
    finding = by_id(evaluate(facts))["mps.unavailable"]
    assert finding.status == "warn" and "13.6" in finding.summary


def test_mps_available_passes():
    facts = make_facts(platform="darwin", torch=TorchFacts(
        installed=True, importable=True, version="2.13.0", mps_built=True, mps_available=True))
    assert statuses(evaluate(facts))["mps.available"] == "pass"


def test_a_hang_and_a_crash_of_the_probe_fail_with_their_text():
    hang = make_facts(torch=TorchFacts(installed=True, probe_failure="timed_out",
                                       error="no answer from task 'probe' in time"))
    crash = make_facts(torch=TorchFacts(installed=True, probe_failure="crashed",
                                        error="the worker ended with signal 11 (SIGSEGV)"))
    assert by_id(evaluate(hang))["torch.probe_timeout"].detail.startswith("no answer")
    assert by_id(evaluate(crash))["torch.crashed"].status == "fail"


def test_cuda_build_that_sees_no_device_without_a_known_cause():
    facts = make_facts(nvidia=nvidia("several"), torch=cuda_torch(
        "2.13.0+cu130", "13.0", ["sm_75", "sm_80", "sm_86", "sm_90"], available=False))
    assert statuses(evaluate(facts))["torch.cuda_unavailable"] == "fail"


def test_nvidia_smi_errors_are_warnings_with_their_text():
    facts = make_facts(nvidia={"found": True, "error": "nvidia-smi: no answer within 10 s"})
    finding = by_id(evaluate(facts))["nvidia.smi_error"]
    assert finding.status == "warn" and "10 s" in finding.detail


@pytest.mark.parametrize("system, expected", [
    ({"ram_total_bytes": 4 * GIB, "ram_available_bytes": 3 * GIB}, ("ram.low", "warn")),
    ({"ram_available_bytes": 1 * GIB}, ("ram.low", "warn")),
    ({"disk_free_home_bytes": 6 * GIB}, ("disk.low", "warn")),
    ({"disk_free_home_bytes": 1 * GIB}, ("disk.low", "fail")),
    ({"pkgs_dir": "/opt/conda/pkgs", "disk_free_pkgs_bytes": 2 * GIB}, ("disk.low", "fail")),
])
def test_low_ram_and_disk(system, expected):
    found = statuses(evaluate(make_facts(system=system)))
    assert found[expected[0]] == expected[1]


def test_finding_ids_are_unique_and_dotted():
    facts = make_facts(nvidia=nvidia("blackwell"), python={"bits": 32, "pip_matches": False})
    found = evaluate(facts)
    ids = [f.id for f in found]
    assert len(ids) == len(set(ids))
    assert all("." in i and i == i.lower() and " " not in i for i in ids)


# ---------------------------------------------------------------- fixes fit the machine

from cnnsetup.machine.findings import KINDS, error_line  # noqa: E402
from cnnsetup.machine.gpu import NvidiaFacts, NvidiaHardware, PciDevice  # noqa: E402
from cnnsetup.machine.jupyter import Kernel  # noqa: E402

SMI_NOT_TALKING = ("nvidia-smi: exit status 9: NVIDIA-SMI has failed because it couldn't "
                   "communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver "
                   "is installed and running.")


def test_the_wrong_interpreter_finding_names_this_pythons_pip_by_its_path():
    facts = make_facts(python={"pip_matches": False, "pip_python": "/usr/lib/python3/pip (python 3.12)"})
    finding = by_id(evaluate(facts))["python.wrong_interpreter"]
    assert f"{PY} -m pip install" in finding.summary


def test_fixes_use_the_configured_pip_mirror():
    facts = make_facts(torch=TorchFacts(installed=False))
    facts.pip_index_url, facts.pip_mirror = "https://mirrors.aliyun.com/pypi/simple/", "aliyun"
    assert "-i https://mirrors.aliyun.com/pypi/simple/" in by_id(evaluate(facts))["torch.missing"].fix
    numpy = make_facts(torch=TorchFacts(installed=True, importable=True, version="2.1.0",
                                        numpy_version="2.1.0", numpy_ok=False,
                                        numpy_error="RuntimeError: Numpy is not available"))
    numpy.pip_index_url = "https://pypi.tuna.tsinghua.edu.cn/simple"
    assert by_id(evaluate(numpy))["numpy.abi_mismatch"].fix == \
        f'{PY} -m pip install "numpy<2" -i https://pypi.tuna.tsinghua.edu.cn/simple'


def test_powershell_users_get_the_call_operator_and_single_quotes():
    facts = make_facts(platform="win32", python={"executable": r"C:\Users\Li Lei\venv\Scripts\python.exe"},
                       torch=TorchFacts(installed=False))
    facts.shell = "powershell"
    fix = by_id(evaluate(facts))["torch.missing"].fix
    assert fix == r"& 'C:\Users\Li Lei\venv\Scripts\python.exe' -m pip install torch"


CONDA_ENV = {"env_name": "dl", "prefix": "/opt/conda/envs/dl",
             "executable": "/opt/conda/envs/dl/bin/python",
             "conda_records": ["pytorch-2.3.0-py3.11_cuda12.1_cudnn8.9.2_0"]}


def test_a_conda_torch_that_fails_to_import_is_repaired_by_conda():
    facts = make_facts(python=CONDA_ENV, conda={"found": True, "path": "/opt/conda/bin/conda",
                                                "base": "/opt/conda"},
                       torch=TorchFacts(installed=True, importable=False, version="2.3.0",
                                        installers=["conda"], error="ImportError: libtorch_cpu.so: "
                                        "cannot open shared object file: No such file or directory"))
    finding = by_id(evaluate(facts))["torch.dll_error"]
    assert finding.fix == ('"/opt/conda/bin/conda" install -p "/opt/conda/envs/dl" -y '
                           '--force-reinstall pytorch')


def test_a_conda_torch_never_gets_pip_uninstall_anywhere():
    facts = make_facts(python=CONDA_ENV, nvidia=nvidia("blackwell"),
                       conda={"found": True, "path": "/opt/conda/bin/conda", "base": "/opt/conda"},
                       torch=TorchFacts(installed=True, importable=True, version="2.3.0",
                                        installers=["conda"], numpy_version="2.1.0"))
    found = by_id(evaluate(facts))
    cpu_only = found["torch.cpu_only_with_gpu"]
    assert cpu_only.fix.splitlines()[0] == '"/opt/conda/bin/conda" create -y -n dl-pip "python=3.11"'
    assert "/whl/cu12" in cpu_only.fix
    assert not any("uninstall" in (f.fix or "") for f in found.values())


def test_the_error_line_is_the_error_not_the_hint():
    text = ("the worker ended with signal 6 (SIGABRT)\n"
            "OMP: Error #15: Initializing libiomp5md.dll, but found libiomp5md.dll already initialized.\n"
            "OMP: Hint This means that multiple copies of the OpenMP runtime have been linked ...")
    assert error_line(text).startswith("OMP: Error #15: Initializing libiomp5md.dll")
    assert error_line("Traceback...\n  File x\nImportError: boom\n") == "ImportError: boom"
    assert error_line("OSError: [WinError 126] x\nwhile loading torch\n") == "OSError: [WinError 126] x"


def test_a_crash_with_the_openmp_message_on_windows_is_the_openmp_clash():
    facts = make_facts(platform="win32", torch=TorchFacts(
        installed=True, probe_failure="crashed", version="2.5.1",
        error="the worker ended with exit status 3\nOMP: Error #15: Initializing libiomp5md.dll, "
              "but found libiomp5md.dll already initialized.\nOMP: Hint This means ..."))
    finding = by_id(evaluate(facts))["torch.openmp_clash"]
    assert "libiomp5md.dll" in finding.summary and "torch.crashed" not in by_id(evaluate(facts))
    assert "KMP_DUPLICATE_LIB_OK=TRUE" in finding.summary


def test_driver_not_loaded_on_windows_points_at_nvidias_driver_page():
    facts = make_facts(platform="win32", nvidia=NvidiaFacts(
        found=True, error=SMI_NOT_TALKING, driver_not_loaded=True))
    finding = by_id(evaluate(facts))["nvidia.driver_not_loaded"]
    assert finding.fix is None and "https://www.nvidia.com/Download/index.aspx" in finding.summary
    assert finding.detail.startswith("NVIDIA-SMI has failed")


def test_no_driver_on_ubuntu_gets_ubuntu_drivers():
    hardware = NvidiaHardware(known=True, devices=[PciDevice("0000:01:00.0", "0x2684", None)],
                              module_loaded=False)
    facts = make_facts(nvidia=NvidiaFacts(found=False, hardware=hardware))
    assert by_id(evaluate(facts))["nvidia.no_driver"].fix == "sudo ubuntu-drivers install"


def _kernel(name, python, torch=None, exists=True, **more):
    return Kernel(name=name, display_name=name.title(), language="python",
                  spec_dir=f"/home/student/.local/share/jupyter/kernels/{name}", argv=[python],
                  interpreter=python, interpreter_exists=exists, python="3.11.9", torch=torch,
                  torch_error=None if torch else "ModuleNotFoundError: No module named 'torch'",
                  **more)


def test_no_kernel_with_torch_fails():
    facts = make_facts()
    facts.jupyter = [_kernel("python3", "/usr/bin/python3")]
    finding = by_id(evaluate(facts))["jupyter.kernel_no_torch"]
    assert finding.status == "fail"
    assert finding.fix.splitlines() == [
        f"{PY} -m pip install ipykernel",
        f'{PY} -m ipykernel install --user --name venv --display-name "venv (cnnsetup)"']


def test_kernels_are_only_looked_at_when_collected():
    assert not [f for f in evaluate(make_facts()) if f.id.startswith("jupyter.")]
    facts = make_facts()
    facts.jupyter = []
    assert by_id(evaluate(facts))["jupyter.none"].status == "skip"


def test_every_kind_is_used_with_a_known_status():
    assert all(k.status in ("pass", "warn", "fail", "skip") for k in KINDS.values())


@pytest.mark.parametrize("facts", [
    make_facts(torch=TorchFacts(installed=False)),
    make_facts(nvidia=nvidia("blackwell")),
    make_facts(torch=TorchFacts(installed=True, importable=False, version="2.5.1",
                                error="ImportError: undefined symbol: iJIT_NotifyEvent")),
    make_facts(python={"pip_module": False}),
], ids=["missing", "cpu_only", "mkl", "no_pip"])
def test_no_fix_runs_a_bare_python(facts):
    for finding in evaluate(facts):
        for line in (finding.fix or "").splitlines():
            assert not line.startswith(("python ", "pip ")), (finding.id, line)
