"""nvidia-smi, asked with stand-ins for real drivers and cards: never a crash, never a hang."""

from __future__ import annotations

import time

import pytest

from cnnsetup.machine import gpu
from tests.machine_helpers import write_smi, write_sysfs


def test_no_nvidia_smi_means_no_nvidia_gpu():
    facts = gpu.query()
    assert facts.found is False
    assert facts.gpus == [] and facts.error is None


def test_old_driver_without_compute_cap_field_falls_back_to_the_card_name(bin_dir):
    write_smi(bin_dir, "old_driver")
    facts = gpu.query()
    assert facts.found and facts.error is None
    assert (facts.driver_version, facts.cuda_version) == ("470.256.02", "11.4")
    [card] = facts.gpus
    assert card.name == "NVIDIA GeForce GTX 1080"
    assert card.compute_cap == "6.1"  # from the name: R470 cannot answer compute_cap
    assert card.memory_total_mib == 8192


def test_blackwell_card_reports_sm_12_and_cuda_from_the_header(bin_dir):
    write_smi(bin_dir, "blackwell")
    facts = gpu.query()
    assert facts.cuda_version == "12.9"
    assert [(g.name, g.compute_cap) for g in facts.gpus] == [("NVIDIA GeForce RTX 5090", "12.0")]


def test_several_gpus_are_listed_in_order(bin_dir):
    write_smi(bin_dir, "several")
    facts = gpu.query()
    assert [g.index for g in facts.gpus] == [0, 1]
    assert [g.compute_cap for g in facts.gpus] == ["8.6", "8.9"]
    assert facts.driver_version == "580.95.05"


def test_garbage_output_becomes_an_error_not_a_crash(bin_dir):
    write_smi(bin_dir, "garbage")
    facts = gpu.query()
    assert facts.found and facts.gpus == []
    assert "unexpected line" in facts.error


def test_a_hanging_nvidia_smi_is_given_up_after_the_timeout(bin_dir):
    write_smi(bin_dir, "hang")
    started = time.monotonic()
    facts = gpu.query(timeout=0.5)
    assert time.monotonic() - started < 5
    assert facts.found and facts.gpus == []
    assert "no answer within 0.5 s" in facts.error


def test_driver_that_does_not_load_keeps_nvidia_smis_own_words(bin_dir):
    write_smi(bin_dir, "no_driver")
    facts = gpu.query()
    assert "couldn't communicate with the NVIDIA driver" in facts.error
    assert "exit status 9" in facts.error
    assert facts.driver_not_loaded is True


def test_a_working_or_hanging_nvidia_smi_is_not_a_driver_that_did_not_load(bin_dir):
    write_smi(bin_dir, "blackwell")
    assert gpu.query().driver_not_loaded is False
    write_smi(bin_dir, "hang")
    assert gpu.query(timeout=0.5).driver_not_loaded is False


def test_pci_display_devices_of_nvidia_are_found_with_their_driver(tmp_path):
    root = write_sysfs(tmp_path, [
        ("0000:00:02.0", "0x46a6", "i915", "0x8086"),  # Intel graphics
        ("0000:01:00.0", "0x2684", "nvidia"),
        ("0000:01:00.1", "0x22ba", "snd_hda_intel", "0x10de", "0x040300"),  # its HDMI audio
        ("0000:02:00.0", "0x1e84", None, "0x10de", "0x030200"),  # a 3D controller, no driver
    ], module_version="575.51.03")
    hardware = gpu.detect_hardware("linux", str(root))
    assert hardware.known and hardware.present
    assert [(d.address, d.device_id, d.driver) for d in hardware.devices] == [
        ("0000:01:00.0", "0x2684", "nvidia"), ("0000:02:00.0", "0x1e84", None)]
    assert hardware.module_loaded is True and hardware.module_version == "575.51.03"


def test_the_open_kernel_modules_version_line_is_read_too(tmp_path):
    root = write_sysfs(tmp_path, [("0000:01:00.0", "0x2684", "nvidia")])
    proc = root / "proc" / "driver" / "nvidia"
    proc.mkdir(parents=True)
    (proc / "version").write_text("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  "
                                  "580.95.05  Release Build  (dvs-builder@U22)\n")
    assert gpu.detect_hardware("linux", str(root)).module_version == "580.95.05"


def test_without_a_pci_list_nothing_is_said_about_hardware(tmp_path):
    hardware = gpu.detect_hardware("linux", str(tmp_path))  # no /sys here (WSL, a container)
    assert hardware.known is False and not hardware.present
    assert gpu.detect_hardware("darwin").known is False


@pytest.mark.parametrize("text, expected", [
    ("| NVIDIA-SMI 575.51.03   Driver Version: 575.51.03   CUDA Version: 12.9  |", ("575.51.03", "12.9")),
    ("Driver Version: 470.256.02     CUDA Version: 11.4", ("470.256.02", "11.4")),
    ("nothing here", (None, None)),
])
def test_header_parsing(text, expected):
    assert gpu.parse_header(text) == expected


def test_on_windows_nvidia_smi_is_also_looked_for_where_the_driver_puts_it(tmp_path):
    system32 = tmp_path / "Windows" / "System32"
    system32.mkdir(parents=True)
    (system32 / "nvidia-smi.exe").write_bytes(b"")
    env = {"PATH": str(tmp_path / "empty"), "SystemRoot": str(tmp_path / "Windows")}
    assert gpu.find_nvidia_smi(env=env, platform="win32") == str(system32 / "nvidia-smi.exe")
    assert gpu.find_nvidia_smi(env=env, platform="linux") is None


class FakeWinreg:
    """The part of `winreg` the device list reads, over a dict tree of keys and values."""

    HKEY_LOCAL_MACHINE = "HKLM"

    def __init__(self, tree):
        self.tree = tree

    def OpenKey(self, parent, path):
        node = self.tree if parent == "HKLM" else parent
        for part in path.split("\\"):
            if part not in node:
                raise OSError(2, "The system cannot find the file specified")
            node = node[part]
        return _Key(node)

    def EnumKey(self, key, index):
        names = [k for k, v in key.node.items() if isinstance(v, dict)]
        if index >= len(names):
            raise OSError(259, "No more data is available")
        return names[index]

    def QueryValueEx(self, key, name):
        if name not in key.node or isinstance(key.node[name], dict):
            raise OSError(2, "The system cannot find the file specified")
        return key.node[name], 1


class _Key(dict):
    def __init__(self, node):
        super().__init__()
        self.node = node

    def __getitem__(self, name):
        return self.node[name]

    def __contains__(self, name):
        return name in self.node

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


DISPLAY = "{4d36e968-e325-11ce-bfc1-08002be10318}"


@pytest.mark.parametrize("service, loaded", [("nvlddmkm", True), ("BasicDisplay", False)])
def test_windows_device_list_finds_nvidia_display_adapters(monkeypatch, service, loaded):
    tree = {"SYSTEM": {"CurrentControlSet": {"Enum": {"PCI": {
        "VEN_10DE&DEV_2684&SUBSYS_16F410DE&REV_A1": {
            "4&1a2b3c4d&0&0008": {"ClassGUID": DISPLAY, "Service": service}},
        "VEN_10DE&DEV_22BA&SUBSYS_16F410DE&REV_A1": {  # the card's HDMI audio
            "4&1a2b3c4d&0&0108": {"ClassGUID": "{4d36e96c-e325-11ce-bfc1-08002be10318}",
                                  "Service": "HDAudBus"}},
        "VEN_8086&DEV_46A6&SUBSYS_0B1A1028&REV_0C": {
            "3&11583659&0&10": {"ClassGUID": DISPLAY, "Service": "igfx"}},
    }}}}}
    monkeypatch.setitem(__import__("sys").modules, "winreg", FakeWinreg(tree))
    hardware = gpu.detect_hardware("win32")
    assert hardware.known
    assert [(d.device_id, d.driver) for d in hardware.devices] == [("0x2684", service.lower())]
    assert hardware.module_loaded is loaded
