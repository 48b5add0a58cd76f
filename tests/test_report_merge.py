"""Reading and merging reports: one machine per host + user, the newest report wins, and every
file that is not a readable report is listed with its reason instead of stopping the merge."""

from __future__ import annotations

import codecs
import json
import os

import pytest

from cnnsetup.classroom import display, reports
from cnnsetup.classroom.merge import machine_from_report, merge
from cnnsetup.report_schema import SCHEMA_VERSION
from tests import report_helpers as rh


def _by_key(report):
    return {(m.host, m.user): m for m in report.machines}


def test_a_class_folder_gives_one_row_per_machine_with_its_result(tmp_path):
    folder = rh.write_class_folder(tmp_path / "class")
    report = merge([folder])
    assert {k: m.result for k, m in _by_key(report).items()} == rh.CLASS_MACHINES
    assert {os.path.basename(s.path): s.reason for s in report.skipped} == rh.CLASS_SKIPPED
    assert report.files_read == len(rh.CLASS_MACHINES) + 1  # the dorm machine sent two


def test_the_same_machine_twice_keeps_the_newest_report_by_its_time_with_offset(tmp_path):
    report = merge([rh.write_class_folder(tmp_path / "class")])
    dorm = _by_key(report)[("宿舍电脑", "陈七")]
    assert dorm.result == "pass"
    assert dorm.file.endswith("a-dorm.json")
    assert dorm.reports == 2
    # The older report's failure is not counted against the class.
    torch_import = next(c for c in report.checks if c.id == "torch-import")
    assert torch_import.machines == ["lab-pc-17/li.si"]


def test_host_and_user_are_compared_without_case_and_the_newest_wins(tmp_path):
    rh.write_report(tmp_path, "1.json", rh.torch_missing(host="PC-01", user="Student",
                                                         created="2026-11-01T08:00:00+08:00"))
    rh.write_report(tmp_path, "2.json", rh.passing_cpu_laptop(host="pc-01", user="student",
                                                              created="2026-11-02T08:00:00+08:00"))
    rh.write_report(tmp_path, "3.json", rh.passing_cpu_laptop(host="pc-01", user="other"))
    report = merge([tmp_path])
    assert [(m.host, m.user, m.result) for m in report.machines] == [
        ("pc-01", "other", "pass"), ("pc-01", "student", "pass")]


def test_a_report_without_created_loses_to_one_with_it(tmp_path):
    rh.write_report(tmp_path, "b.json", rh.changed(rh.torch_missing(host="h", user="u"),
                                                   created=None))
    rh.write_report(tmp_path, "a.json", rh.passing_cpu_laptop(host="h", user="u"))
    assert [m.result for m in merge([tmp_path]).machines] == ["pass"]


def test_files_given_one_by_one_and_inside_a_folder_are_read_once(tmp_path):
    path = rh.write_report(tmp_path, "one.json", rh.passing_cpu_laptop())
    report = merge([path, tmp_path, str(path)])
    assert report.files_read == 1
    assert report.machines[0].reports == 1


def test_a_file_named_explicitly_is_read_whatever_its_extension(tmp_path):
    path = tmp_path / "report.txt"
    path.write_text(json.dumps(rh.passing_cpu_laptop()), encoding="utf-8")
    assert [m.host for m in merge([path]).machines] == ["lab-laptop-01"]


@pytest.mark.parametrize("schema, reason", [
    ("cnnsetup-report/2", reports.NEWER_SCHEMA),
    ("cnnsetup-report/10.1", reports.NEWER_SCHEMA),
    ("cnnsetup-report/0", reports.UNKNOWN_SCHEMA),
    ("cnnsetup-report/beta", reports.UNKNOWN_SCHEMA),
    ("other-tool/1", reports.FOREIGN),
    (None, reports.FOREIGN),
    (1, reports.FOREIGN),
])
def test_reports_of_unreadable_schemas_are_skipped_with_the_reason(tmp_path, schema, reason):
    path = rh.write_report(tmp_path, "r.json", rh.changed(rh.passing_cpu_laptop(), schema=schema))
    report = merge([path])
    assert report.machines == []
    assert [(s.path, s.reason) for s in report.skipped] == [(str(path), reason)]


def test_a_minor_version_of_a_readable_schema_is_read(tmp_path):
    data = rh.changed(rh.passing_cpu_laptop(), schema=SCHEMA_VERSION + ".3", extra={"new": 1})
    assert [m.result for m in merge([rh.write_report(tmp_path, "r.json", data)]).machines] == [
        "pass"]


def test_missing_paths_and_dangling_links_are_skipped_not_fatal(tmp_path):
    (tmp_path / "gone.json").symlink_to(tmp_path / "nowhere.json")
    rh.write_report(tmp_path, "ok.json", rh.passing_cpu_laptop())
    report = merge([tmp_path, tmp_path / "no-such-folder"])
    assert len(report.machines) == 1
    assert sorted((os.path.basename(s.path), s.reason) for s in report.skipped) == [
        ("gone.json", reports.UNREADABLE), ("no-such-folder", reports.NOT_FOUND)]


def test_a_huge_file_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(reports, "MAX_REPORT_BYTES", 100)
    path = rh.write_report(tmp_path, "big.json", rh.passing_cpu_laptop())
    assert [s.reason for s in merge([path]).skipped] == [reports.TOO_LARGE]


@pytest.mark.parametrize("encoding, bom", [
    ("utf-8", codecs.BOM_UTF8),  # Notepad's "UTF-8 with BOM"
    ("utf-16-le", codecs.BOM_UTF16_LE),  # Windows PowerShell 5: `... --json > report.json`
    ("utf-16-be", codecs.BOM_UTF16_BE),
])
def test_reports_saved_with_a_byte_order_mark_are_read(tmp_path, encoding, bom):
    path = tmp_path / "r.json"
    text = json.dumps(rh.passing_cpu_laptop(host="主机"), ensure_ascii=False)
    path.write_bytes(bom + text.encode(encoding))
    assert [m.host for m in merge([path]).machines] == ["主机"]


def test_deeply_nested_json_is_broken_json_not_a_crash(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    assert [s.reason for s in merge([path]).skipped] == [reports.BROKEN_JSON]


def test_an_early_report_without_mirror_nvidia_and_training_shows_them_unknown():
    machine = machine_from_report(rh.early_v1(), "old.json")
    assert machine.result == "pass"
    assert display.mirror_label(machine) == "unknown"
    assert machine.driver_cuda is None
    assert display.gpu_label(machine) == "CPU only"  # nvidia-smi's list says none


def test_a_report_with_almost_nothing_is_a_row_of_unknowns():
    machine = machine_from_report({"schema": SCHEMA_VERSION, "host": "bare"}, "bare.json")
    assert display.row(machine) == ["bare"] + ["unknown"] * 8 + [""]
    assert machine.result == "unknown"


def test_fields_of_the_wrong_type_are_unknown_not_a_crash():
    data = {
        "schema": SCHEMA_VERSION, "host": ["not", "text"], "user": 7, "ok": "yes",
        "system": [], "python": {"version": 3.11}, "torch": "2.1", "gpus": {"name": "x"},
        "nvidia": None, "mirror": "tsinghua", "checks": ["fail", {"status": "fail"},
                                                         {"id": "x", "status": "fail"}],
    }
    machine = machine_from_report(data, "odd.json")
    assert machine.host is None and machine.user == "7" and machine.python == "3.11"
    assert machine.failing == ["x"] and machine.result == "fail"
    row = display.row(machine)
    assert row[2] == "unknown" and row[4:8] == ["unknown"] * 4


def test_a_report_without_host_is_a_machine_of_its_own(tmp_path):
    for name in ("a.json", "b.json"):
        rh.write_report(tmp_path, name, rh.changed(rh.passing_cpu_laptop(), host=None))
    assert len(merge([tmp_path]).machines) == 2


@pytest.mark.parametrize("ok, statuses, result", [
    (True, ["pass", "pass"], "pass"),
    (True, ["pass", "warn", "skip"], "warn"),
    (False, ["warn", "fail"], "fail"),
    (True, ["fail"], "fail"),  # a failing check wins over a wrong `ok`
    (False, [], "fail"),
    (True, [], "pass"),
    (None, [], "unknown"),
])
def test_the_result_is_the_worst_check(ok, statuses, result):
    data = rh.changed(rh.passing_cpu_laptop(), ok=ok,
                      checks=[rh.check(f"c{i}", s) for i, s in enumerate(statuses)])
    assert machine_from_report(data, "r.json").result == result


def test_gpu_names_are_counted_and_shortened():
    server = machine_from_report(rh.multi_gpu_server(gpus=4), "s.json")
    assert display.gpu_label(server) == "4 x A100-SXM4-80GB"
    laptop = machine_from_report(rh.failing_windows_cpu_torch_on_nvidia(), "w.json")
    assert display.gpu_label(laptop) == "RTX 3060 Laptop GPU"
    assert display.cuda_label(laptop) == "CPU build"
    mixed = rh.multi_gpu_server(gpus=2)
    mixed["gpus"].append(dict(mixed["gpus"][0], name="NVIDIA GeForce RTX 4090"))
    assert display.gpu_label(machine_from_report(mixed, "m.json")) == \
        "2 x A100-SXM4-80GB, RTX 4090"


def test_gpus_come_from_torch_when_nvidia_smi_gave_none():
    data = rh.multi_gpu_server(gpus=2)
    data["gpus"] = None
    assert display.gpu_label(machine_from_report(data, "s.json")) == "2 x A100-SXM4-80GB"


def test_torch_missing_and_mac_labels():
    missing = machine_from_report(rh.torch_missing(), "t.json")
    assert (display.torch_label(missing), display.cuda_label(missing)) == ("not installed", "-")
    mac = machine_from_report(rh.mac_mps(), "m.json")
    assert (display.gpu_label(mac), display.cuda_label(mac), display.mirror_label(mac)) == (
        "Apple MPS", "MPS", "conda=ustc pip=aliyun")


def test_checks_are_counted_across_machines_with_their_most_common_fix(tmp_path):
    for i in range(3):
        rh.write_report(tmp_path, f"w{i}.json",
                        rh.failing_windows_cpu_torch_on_nvidia(host=f"win-{i}"))
    odd = rh.failing_windows_cpu_torch_on_nvidia(host="win-odd")
    odd["checks"][3]["fix"] = rh.TORCH_FIX_CU121.replace("cu121", "cu118")
    rh.write_report(tmp_path, "odd.json", odd)
    rh.write_report(tmp_path, "ok.json", rh.passing_cpu_laptop())
    rh.write_report(tmp_path, "mac.json", rh.mac_mps())
    checks = merge([tmp_path]).checks
    assert [(c.status, c.id, c.count) for c in checks] == [
        ("fail", "torch-cuda-build", 4), ("warn", "mirror", 4), ("warn", "disk-space", 1)]
    cuda = checks[0]
    assert cuda.fix == rh.TORCH_FIX_CU121
    assert cuda.fixes == [(rh.TORCH_FIX_CU121, 3), (odd["checks"][3]["fix"], 1)]
    assert cuda.summary == "torch is the CPU build, but this machine has an NVIDIA GPU"
    assert checks[2].fix is None
