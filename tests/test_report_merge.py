"""Reading and merging reports: one machine per student (else per host + user), the newest
report of each kind kept and every other one listed as superseded, a state per machine that only
training can make `pass`, and every file that is not a readable report listed with its reason
instead of stopping the merge."""

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
    return {(m.student, m.host, m.user): m for m in report.machines}


def test_a_class_folder_gives_one_row_per_machine_with_its_state(tmp_path):
    folder = rh.write_class_folder(tmp_path / "class")
    report = merge([folder])
    assert {k: m.state for k, m in _by_key(report).items()} == rh.CLASS_MACHINES
    assert {os.path.basename(s.path): s.reason for s in report.skipped} == rh.CLASS_SKIPPED
    assert report.files_read == len(rh.CLASS_MACHINES) + 3  # dorm: 2 files, Li Lei: 3
    superseded = {os.path.relpath(r.file, folder): os.path.relpath(r.superseded_by, folder)
                  for m in report.machines for r in m.superseded}
    assert superseded == rh.CLASS_SUPERSEDED
    assert report.totals() == {"machines": 10, "pass": 6, "fail": 3, "untested": 1,
                               "files_read": 13, "superseded": 2, "skipped": 6}


def test_the_same_machine_twice_keeps_the_newest_report_by_its_time_with_offset(tmp_path):
    report = merge([rh.write_class_folder(tmp_path / "class")])
    dorm = _by_key(report)[(None, "宿舍电脑", "陈七")]
    assert dorm.state == "pass"
    assert dorm.file.endswith("a-dorm.json")
    assert [r.file[-11:] for r in dorm.reports] == ["a-dorm.json"]
    assert [(r.file[-11:], r.state, r.superseded_by[-11:]) for r in dorm.superseded] == [
        ("z-dorm.json", "fail", "a-dorm.json")]
    # The older report's failure is not counted against the class.
    torch_import = next(c for c in report.blocking if c.id == "torch-import")
    assert torch_import.machines == ["Li Lei", "lab-pc-17/li.si"]


def test_host_and_user_are_compared_without_case_and_the_newest_wins(tmp_path):
    rh.write_report(tmp_path, "1.json", rh.torch_missing(host="PC-01", user="Student",
                                                         created="2026-11-01T08:00:00+08:00"))
    rh.write_report(tmp_path, "2.json", rh.passing_cpu_laptop(host="pc-01", user="student",
                                                              created="2026-11-02T08:00:00+08:00"))
    rh.write_report(tmp_path, "3.json", rh.passing_cpu_laptop(host="pc-01", user="other"))
    report = merge([tmp_path])
    assert [(m.host, m.user, m.state) for m in report.machines] == [
        ("pc-01", "other", "pass"), ("pc-01", "student", "pass")]


def test_the_same_host_and_user_are_two_machines_when_two_students_sent_them(tmp_path):
    for name in ("Chen Qi", "Li Lei"):
        rh.write_report(tmp_path, f"{name}.json", rh.with_student(
            rh.passing_cpu_laptop(host="lab-pc", user="student"), name))
    report = merge([tmp_path])
    assert [(m.student, m.host, m.user) for m in report.machines] == [
        ("Chen Qi", "lab-pc", "student"), ("Li Lei", "lab-pc", "student")]
    assert all(m.superseded == [] for m in report.machines)


def test_one_student_on_two_hosts_is_one_row_whatever_the_case_and_spacing(tmp_path):
    rh.write_report(tmp_path, "laptop.json", rh.with_student(
        rh.torch_missing(host="laptop", created="2026-11-01T08:00:00+08:00"), "Chen Qi"))
    rh.write_report(tmp_path, "dorm.json", rh.with_student(
        rh.passing_cpu_laptop(host="dorm", created="2026-11-02T08:00:00+08:00"), "chen   QI"))
    [machine] = merge([tmp_path]).machines
    assert (machine.student, machine.host, machine.state) == ("chen QI", "dorm", "pass")
    assert [r.file[-9:] for r in machine.superseded] == ["ptop.json"]


def test_a_newer_info_report_never_replaces_an_older_verify(tmp_path):
    verify = rh.write_report(tmp_path, "verify.json", rh.passing_cpu_laptop(
        host="h", user="u", created="2026-11-01T08:00:00+08:00"))
    info = rh.write_report(tmp_path, "info.json", rh.info_only(
        host="h", user="u", created="2026-11-05T08:00:00+08:00"))
    [machine] = merge([tmp_path]).machines
    assert (machine.state, machine.kind, machine.file) == ("pass", "verify", str(verify))
    assert [(r.kind, r.file, r.state) for r in machine.reports] == [
        ("info", str(info), "untested"), ("verify", str(verify), "pass")]
    assert machine.superseded == []


def test_the_newest_of_verify_and_onboard_decides(tmp_path):
    rh.write_report(tmp_path, "verify.json", rh.torch_missing(
        host="h", user="u", created="2026-11-01T08:00:00+08:00"))
    rh.write_report(tmp_path, "onboard.json", rh.changed(rh.passing_cpu_laptop(
        host="h", user="u", created="2026-11-02T08:00:00+08:00"), kind="onboard"))
    [machine] = merge([tmp_path]).machines
    assert (machine.state, machine.kind) == ("pass", "onboard")
    assert [r.kind for r in machine.reports] == ["onboard", "verify"]
    assert merge([tmp_path]).blocking == []


def test_the_newest_of_each_kind_is_kept_and_the_others_are_listed(tmp_path):
    for day in (1, 2, 3):
        rh.write_report(tmp_path, f"verify-{day}.json", rh.passing_cpu_laptop(
            host="h", user="u", created=f"2026-11-0{day}T08:00:00+08:00"))
        rh.write_report(tmp_path, f"info-{day}.json", rh.info_only(
            host="h", user="u", created=f"2026-11-0{day}T09:00:00+08:00"))
    [machine] = merge([tmp_path]).machines
    name = os.path.basename
    assert [(r.kind, name(r.file)) for r in machine.reports] == [
        ("info", "info-3.json"), ("verify", "verify-3.json")]
    assert sorted((name(r.file), name(r.superseded_by)) for r in machine.superseded) == [
        ("info-1.json", "info-3.json"), ("info-2.json", "info-3.json"),
        ("verify-1.json", "verify-3.json"), ("verify-2.json", "verify-3.json")]


def test_an_older_report_without_a_student_is_read_as_it_always_was(tmp_path):
    report = rh.passing_cpu_laptop()
    assert "student" not in report
    rh.write_report(tmp_path, "old.json", report)
    [machine] = merge([tmp_path]).machines
    assert (machine.student, machine.state) == (None, "pass")
    assert display.row(machine)[0] == "-"


@pytest.mark.parametrize("value", [None, "", "   ", 7, ["Chen Qi"], {"name": "x"}, True])
def test_a_student_that_is_not_text_is_no_student(value):
    data = rh.changed(rh.passing_cpu_laptop(), student=value)
    assert machine_from_report(data, "r.json").student is None


def test_a_report_without_created_loses_to_one_with_it(tmp_path):
    rh.write_report(tmp_path, "b.json", rh.changed(rh.torch_missing(host="h", user="u"),
                                                   created=None))
    rh.write_report(tmp_path, "a.json", rh.passing_cpu_laptop(host="h", user="u"))
    assert [m.state for m in merge([tmp_path]).machines] == ["pass"]


def test_files_given_one_by_one_and_inside_a_folder_are_read_once(tmp_path):
    path = rh.write_report(tmp_path, "one.json", rh.passing_cpu_laptop())
    report = merge([path, tmp_path, str(path)])
    assert report.files_read == 1
    assert len(report.machines[0].reports) == 1 and report.machines[0].superseded == []


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
    assert [m.state for m in merge([rh.write_report(tmp_path, "r.json", data)]).machines] == [
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
    assert machine.state == "untested"
    assert display.mirror_label(machine) == "unknown"
    assert machine.driver_cuda is None
    assert display.gpu_label(machine) == "CPU only"  # nvidia-smi's list says none


def test_a_report_with_almost_nothing_is_a_row_of_unknowns():
    machine = machine_from_report({"schema": SCHEMA_VERSION, "host": "bare"}, "bare.json")
    assert display.row(machine) == [
        "-", "bare", "unknown", "UNTESTED", "unknown", "-", "-", "unknown", "unknown", "unknown",
        "unknown", ""]
    assert machine.state == "untested"


def test_fields_of_the_wrong_type_are_unknown_not_a_crash():
    data = {
        "schema": SCHEMA_VERSION, "host": ["not", "text"], "user": 7, "ok": "yes",
        "system": [], "python": {"version": 3.11}, "torch": "2.1", "gpus": {"name": "x"},
        "nvidia": None, "mirror": "tsinghua", "checks": ["fail", {"status": "fail"},
                                                         {"id": "x", "status": "fail"}],
    }
    machine = machine_from_report(data, "odd.json")
    assert machine.host is None and machine.user == "7" and machine.python == "3.11"
    assert machine.failing == ["x"] and machine.state == "fail"
    row = dict(zip((c.key for c in display.COLUMNS), display.row(machine)))
    assert row["host"] == "unknown" and row["user"] == "7"
    assert [row[k] for k in ("mirror", "torch", "gpu", "date")] == ["unknown"] * 4


def test_a_report_without_host_is_a_machine_of_its_own(tmp_path):
    for name in ("a.json", "b.json"):
        rh.write_report(tmp_path, name, rh.changed(rh.passing_cpu_laptop(), host=None))
    assert len(merge([tmp_path]).machines) == 2


def _training(device="cpu", ok=True, accuracy=0.99, **more):
    return dict({"device": device, "device_name": None, "ok": ok, "val_accuracy": accuracy,
                 "epochs": 3, "seconds": 1.0, "samples_per_s": 5000.0, "error": None}, **more)


@pytest.mark.parametrize("kind, ok, statuses, training, state", [
    ("verify", True, ["pass", "pass"], [_training()], "pass"),
    ("verify", True, ["pass", "warn", "skip"], [_training()], "pass"),  # warnings allowed
    ("onboard", True, ["pass"], [_training("cuda:0")], "pass"),
    ("verify", False, ["warn", "fail"], [_training()], "fail"),
    ("verify", True, ["fail"], [_training()], "fail"),  # a failing check wins over a wrong `ok`
    ("verify", False, [], [_training()], "fail"),
    ("verify", True, ["pass"], [], "untested"),  # nothing failed, nothing trained
    ("verify", True, ["pass"], [_training(ok=False, accuracy=0.5)], "untested"),
    ("verify", True, ["pass"], [_training("ddp:gloo:2")], "untested"),  # not a device
    ("verify", True, ["pass"], None, "untested"),  # no training section at all
    ("verify", None, [], [_training()], "pass"),
    ("info", True, ["pass"], [], "untested"),  # info never trains...
    ("info", True, ["pass"], [_training()], "untested"),  # ... and never proves
    ("info", False, ["fail"], [], "fail"),  # but what it found broken is broken
    (None, True, ["pass"], [_training()], "untested"),  # a report that does not say its kind
])
def test_the_state_of_a_report(kind, ok, statuses, training, state):
    data = rh.changed(rh.passing_cpu_laptop(), ok=ok, kind=kind, training=training,
                      checks=[rh.check(f"c{i}", s) for i, s in enumerate(statuses)])
    assert machine_from_report(data, "r.json").state == state


def test_training_is_read_from_what_verify_writes_and_from_richer_entries():
    data = rh.multi_gpu_server(gpus=2)
    data["training"][1].update(ok=False, val_accuracy=0.4, error="accuracy 0.4000 < 0.9")
    # Figures a newer verify may add, and a top-level section: read around, never needed.
    data["training"][0].update(first_loss=2.3, last_loss=0.05, samples_per_s=None,
                               val_accuracy=0.97)
    data["training"].append(_training("ddp:gloo:2", accuracy=0.5))
    data["ddp"] = {"world_size": 2, "identical_weights": True}
    del data["training"][2]["ok"]  # an entry without `ok`: no error and an accuracy count
    data["training"].append({"device": "mps"})  # nothing to go on: not trained
    data["training"].append("cuda:9")
    machine = machine_from_report(data, "r.json")
    assert machine.trained == ["cpu", "cuda:1"]
    assert machine.accuracy == 0.97  # the lowest where training ran to its end
    assert display.trained_label(machine) == "cpu, cuda:1"


@pytest.mark.parametrize("devices, label", [
    (["cpu"], "cpu"), (["cpu", "cuda:0"], "cpu, cuda:0"),
    (["cpu"] + [f"cuda:{i}" for i in range(8)], "cpu, 8 x cuda"),
    (["cpu", "mps"], "cpu, mps"), ([], "none"),
])
def test_the_trained_on_column(devices, label):
    data = rh.changed(rh.passing_cpu_laptop(), training=[_training(d) for d in devices])
    assert display.trained_label(machine_from_report(data, "r.json")) == label
    info = machine_from_report(rh.info_only(), "i.json")
    assert (display.trained_label(info), display.accuracy_label(info)) == ("-", "-")


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


def test_failing_checks_are_counted_across_machines_with_their_most_common_fix(tmp_path):
    for i in range(3):
        rh.write_report(tmp_path, f"w{i}.json",
                        rh.failing_windows_cpu_torch_on_nvidia(host=f"win-{i}"))
    odd = rh.failing_windows_cpu_torch_on_nvidia(host="win-odd")
    odd["checks"][3]["fix"] = rh.TORCH_FIX_CU121.replace("cu121", "cu118")
    rh.write_report(tmp_path, "odd.json", odd)
    for i in range(5):
        rh.write_report(tmp_path, f"t{i}.json", rh.torch_missing(host=f"lab-{i}"))
    rh.write_report(tmp_path, "ok.json", rh.passing_cpu_laptop())
    rh.write_report(tmp_path, "mac.json", rh.mac_mps())
    report = merge([tmp_path])
    assert [(c.id, c.count, c.fix) for c in report.blocking] == [
        ("torch-import", 5, rh.TORCH_FIX_CPU), ("torch-cuda-build", 4, rh.TORCH_FIX_CU121)]
    cuda = report.blocking[1]
    assert cuda.fixes == [(rh.TORCH_FIX_CU121, 3), (odd["checks"][3]["fix"], 1)]
    assert cuda.summary == "torch is the CPU build, but this machine has an NVIDIA GPU"
    assert cuda.machines == ["win-0/zhang.san", "win-1/zhang.san", "win-2/zhang.san",
                             "win-odd/zhang.san"]
    assert [(c.id, c.count) for c in report.warned] == [("mirror", 4), ("disk-space", 1)]
    assert report.warned[1].fix is None


def test_the_blocking_table_of_a_thousand_machines_counts_each_once(tmp_path):
    merged = merge([_thousand(tmp_path)])
    assert len(merged.machines) == 1000
    # varied() cycles through six kinds: 167 CPU-torch-on-NVIDIA, 167 without torch.
    assert [(c.id, c.count) for c in merged.blocking] == [
        ("torch-cuda-build", 167), ("torch-import", 167)]
    totals = merged.totals()
    assert (totals["pass"], totals["fail"], totals["untested"]) == (500, 334, 166)


def _thousand(tmp_path):
    folder = tmp_path / "class"
    for i, report in enumerate(rh.varied(1000, seed=1)):
        rh.write_report(folder, f"r{i:04d}.json", report)
    return folder
