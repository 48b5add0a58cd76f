"""`cnnsetup report`: exit codes, the terminal table, `--json`, `--csv` and `--html` as files a
teaching assistant opens (Excel on Chinese Windows, a browser without network)."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from html.parser import HTMLParser

import pytest

from cnnsetup.i18n import set_language
from tests import report_helpers as rh
from tests.conftest import run_cnnsetup


@pytest.fixture
def class_folder(tmp_path):
    return rh.write_class_folder(tmp_path / "class")


def _row_key(student, host, user):
    return (None if student == "-" else student, host, user)


def test_a_report_over_failing_machines_still_exits_zero(invoke, class_folder):
    result = invoke("report", str(class_folder))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for student, host, user in rh.CLASS_MACHINES:
        assert re.search(rf"^{re.escape(student or '-')}\s+{re.escape(host)}\s+"
                         rf"{re.escape(user)}\s", out, re.M), host
    assert "10 machines: 6 pass, 3 fail, 1 untested (13 reports read, 2 superseded, " \
        "6 files skipped)" in out
    assert rh.TORCH_FIX_CU121 in out and rh.TORCH_FIX_CPU in out
    for name in rh.CLASS_SKIPPED:
        assert name in out
    assert "2 older reports were superseded by newer ones of the same kind (see --verbose)" \
        in out
    assert "li-lei-monday.json" not in out


def test_students_come_first_in_the_table(invoke, class_folder):
    lines = invoke("report", str(class_folder)).stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Student"))
    assert lines[header + 1].startswith("Chen Qi ") and lines[header + 2].startswith("Li Lei ")


def test_verbose_lists_every_superseded_report_with_the_one_that_replaced_it(invoke,
                                                                               class_folder):
    out = invoke("report", str(class_folder), "--verbose").stdout
    for old, new in rh.CLASS_SUPERSEDED.items():
        old_path, new_path = class_folder / old, class_folder / new
        assert re.search(rf"{re.escape(str(old_path))} \(verify, [^)]+\), replaced by "
                         rf"{re.escape(str(new_path))}$", out, re.M), old
    assert "Li Lei (lab-pc/student): " in out


def test_the_terminal_table_shows_each_column_of_a_machine(invoke, tmp_path):
    rh.write_report(tmp_path, "w.json", rh.with_student(
        rh.failing_windows_cpu_torch_on_nvidia(), "张三"))
    lines = invoke("report", str(tmp_path)).stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Student"))
    assert re.split(r"\s{2,}", lines[header]) == [
        "Student", "Host", "User", "State", "Kind", "Trained on", "Accuracy", "Mirror", "torch",
        "GPU", "Date", "Failing checks"]
    assert re.split(r"\s{2,}", lines[header + 1]) == [
        "张三", "DESKTOP-7Q2K3LM", "zhang.san", "FAIL", "verify", "cpu", "99.5%",
        "conda=tsinghua pip=-", "2.5.1+cpu", "RTX 3060 Laptop GPU", "2026-11-27 20:05",
        "torch-cuda-build"]


def test_what_blocks_most_lists_failing_checks_by_machines_affected_with_the_fix(invoke,
                                                                                 tmp_path):
    for i in range(3):
        rh.write_report(tmp_path, f"t{i}.json", rh.torch_missing(host=f"pc-{i}"))
    rh.write_report(tmp_path, "w.json", rh.failing_windows_cpu_torch_on_nvidia())
    rh.write_report(tmp_path, "ok.json", rh.passing_cpu_laptop())
    out = invoke("report", str(tmp_path)).stdout
    block = out[out.index("What blocks the most machines:"):].splitlines()
    assert re.split(r"\s{2,}", block[1].strip()) == ["FAIL", "torch-import", "3 of 5"]
    assert block[3].strip() == "fix: " + rh.TORCH_FIX_CPU
    assert re.split(r"\s{2,}", block[4].strip()) == ["FAIL", "torch-cuda-build", "1 of 5"]
    assert block[6].strip() == "fix: " + rh.TORCH_FIX_CU121
    assert "Checks that warned:" in out


def test_no_readable_report_exits_one_and_lists_what_was_skipped(invoke, tmp_path):
    (tmp_path / "garbage.json").write_text("nope", encoding="utf-8")
    result = invoke("report", str(tmp_path))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "garbage.json" in result.stderr and "broken JSON" in result.stderr
    assert "No cnnsetup report found" in result.stderr


def test_an_empty_folder_exits_one(invoke, tmp_path):
    assert invoke("report", str(tmp_path)).exit_code == 1


def test_no_path_is_a_usage_error(invoke):
    result = invoke("report")
    assert result.exit_code == 2
    assert "PATH" in result.stderr


def test_json_gives_machines_with_their_reports_and_what_blocks(invoke, class_folder):
    result = invoke("report", str(class_folder), "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert set(data) == {"ok", "totals", "machines", "blocking", "warnings", "skipped"}
    assert data["totals"] == {"machines": 10, "pass": 6, "fail": 3, "untested": 1,
                              "files_read": 13, "superseded": 2, "skipped": 6}
    machines = {(m["student"], m["host"], m["user"]): m for m in data["machines"]}
    assert {k: m["state"] for k, m in machines.items()} == rh.CLASS_MACHINES
    for machine in data["machines"]:
        assert list(machine)[:5] == ["student", "host", "user", "state", "kind"]
    server = machines[(None, "gpu-server", "ta")]
    assert server["gpu_count"] == 8 and server["torch"]["cuda"] == "12.1"
    assert server["devices_trained"] == ["cpu"] + [f"cuda:{i}" for i in range(8)]
    assert server["driver_cuda"] == "12.4" and server["mirror"] == {"conda": "tsinghua",
                                                                      "pip": "tsinghua"}
    assert machines[(None, "old-laptop", "zhao.liu")]["mirror"] is None
    windows = machines[(None, "DESKTOP-7Q2K3LM", "zhang.san")]
    assert windows["failing"] == ["torch-cuda-build"] and windows["warnings"] == ["mirror"]
    li = machines[("Li Lei", "lab-pc", "student")]
    folder = str(class_folder)
    assert [(r["kind"], r["file"], r["state"]) for r in li["reports"]] == [
        ("info", f"{folder}/lab/li-lei-info.json", "untested"),
        ("verify", f"{folder}/lab/li-lei.json", "fail")]
    assert li["superseded"] == [{
        "kind": "verify", "file": f"{folder}/lab/li-lei-monday.json",
        "created": "2026-11-23T10:00:00+08:00", "state": "pass",
        "superseded_by": f"{folder}/lab/li-lei.json"}]
    assert [(b["id"], b["count"], b["fix"]) for b in data["blocking"]] == [
        ("torch-import", 2, rh.TORCH_FIX_CPU), ("torch-cuda-build", 1, rh.TORCH_FIX_CU121)]
    assert data["blocking"][0]["machines"] == ["Li Lei", "lab-pc-17/li.si"]
    assert {(c["id"], c["count"]) for c in data["warnings"]} == {("mirror", 1),
                                                                  ("disk-space", 1)}
    assert {s["reason"] for s in data["skipped"]} == set(rh.CLASS_SKIPPED.values())


def test_json_is_english_whatever_the_language(invoke, class_folder):
    english = json.loads(invoke("report", str(class_folder), "--json").stdout)
    chinese = json.loads(invoke("--lang", "zh", "report", str(class_folder), "--json").stdout)
    assert english == chinese


def test_json_with_no_report_still_prints_the_object_and_exits_one(invoke, tmp_path):
    (tmp_path / "x.json").write_text("[]", encoding="utf-8")
    result = invoke("report", str(tmp_path), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["skipped"][0]["reason"] == "foreign"


def test_csv_is_utf8_with_bom_and_reads_back_one_row_per_machine(invoke, class_folder, tmp_path):
    out = tmp_path / "class.csv"
    result = invoke("report", str(class_folder), "--csv", str(out))
    assert result.exit_code == 0
    assert str(out) in result.stdout
    raw = out.read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)
    assert b"\r\n" in raw
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert {_row_key(r["Student"], r["Host"], r["User"]): r["State"] for r in rows} == {
        k: v.upper() for k, v in rh.CLASS_MACHINES.items()}
    server = next(r for r in rows if r["User"] == "ta")
    assert (server["GPU"], server["Trained on"], server["Kind"]) == (
        "8 x A100-SXM4-80GB", "cpu, 8 x cuda", "verify")


def test_text_csv_and_html_show_the_same_columns_and_cells(invoke, class_folder, tmp_path):
    text = invoke("report", str(class_folder), "--csv", str(tmp_path / "c.csv"),
                  "--html", str(tmp_path / "p.html")).stdout
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Student"))
    table = [re.split(r"\s{2,}", line) for line in lines[header:header + 11]]
    with open(tmp_path / "c.csv", encoding="utf-8-sig", newline="") as stream:
        spreadsheet = list(csv.reader(stream))
    page = _parse((tmp_path / "p.html").read_text(encoding="utf-8"))
    headings = ["Student", "Host", "User", "State", "Kind", "Trained on", "Accuracy", "Mirror",
                "torch", "GPU", "Date", "Failing checks"]
    assert table[0] == spreadsheet[0] == page.headings == headings
    # Rows without failing checks end one cell early in text (nothing after the last gap).
    assert [r + [""] * (12 - len(r)) for r in table[1:]] == spreadsheet[1:] == page.rows


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_stay_text(invoke, tmp_path):
    rh.write_report(tmp_path, "r.json", rh.passing_cpu_laptop(host="=HYPERLINK(\"x\")",
                                                              user="@me"))
    out = tmp_path / "c.csv"
    invoke("report", str(tmp_path / "r.json"), "--csv", str(out))
    row = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))[0]
    assert (row["Host"], row["User"]) == ("'=HYPERLINK(\"x\")", "'@me")


class _PageParser(HTMLParser):
    """Collects tags with their attributes, and the text of each machine-table row."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.rows: list[list[str]] = []
        self.headings: list[str] = []
        self.scripts: list[str] = []
        self._heading: list[str] | None = None
        self._in_body = False
        self._cell: list[str] | None = None
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag == "td" and self._in_body:
            self._cell = []
        elif tag == "th" and attributes.get("data-key"):
            self._heading = []
        elif tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "th" and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None
        elif tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._heading is not None:
            self._heading.append(data)
        if self._in_script:
            self.scripts[-1] += data


def _parse(text: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(text)
    return parser


def test_the_html_page_is_self_contained(invoke, class_folder, tmp_path):
    out = tmp_path / "class.html"
    assert invoke("report", str(class_folder), "--html", str(out)).exit_code == 0
    text = out.read_text(encoding="utf-8")
    page = _parse(text)
    tag_names = {tag for tag, _ in page.tags}
    assert "link" not in tag_names and "iframe" not in tag_names and "img" not in tag_names
    for tag, attributes in page.tags:
        assert "src" not in attributes, tag
        href = attributes.get("href")
        assert href is None or href.startswith("#"), (tag, href)
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", text, re.I)
    assert not re.search(r"url\(|@import", text, re.I)
    assert len(page.scripts) == 1 and "http" not in page.scripts[0]
    assert '<meta charset="utf-8">' in text
    assert ("html", {"lang": "en"}) in page.tags
    assert len(page.rows) == len(rh.CLASS_MACHINES)
    assert {_row_key(*r[:3]) for r in page.rows} == set(rh.CLASS_MACHINES)
    details = [a for t, a in page.tags if t == "details" and a.get("id") == "superseded-reports"]
    assert details
    for old, new in rh.CLASS_SUPERSEDED.items():
        assert f"{class_folder / old} (verify, " in text and f"replaced by {class_folder / new}" \
            in text


def test_every_value_on_the_page_is_escaped(invoke, tmp_path):
    hostile = rh.with_student(rh.failing_windows_cpu_torch_on_nvidia(
        host="<script>alert('host')</script>", user='a"b&c<i>'), "<b>Mallory</b>")
    hostile["checks"][3]["fix"] = "pip install x</code><script>alert(1)</script>"
    hostile["checks"][3]["id"] = "id\"><b>"
    hostile["gpus"][0]["name"] = "<img src=x onerror=alert(1)>"
    rh.write_report(tmp_path, "h.json", hostile)
    (tmp_path / "<b>bad<i>.json").write_text("{", encoding="utf-8")
    out = tmp_path / "page.html"
    invoke("report", str(tmp_path), "--html", str(out))
    text = out.read_text(encoding="utf-8")
    assert "<script>alert" not in text and "<img" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(&#x27;host&#x27;)&lt;/script&gt;" in text
    page = _parse(text)
    assert len(page.scripts) == 1
    assert page.rows[0][:3] == ["<b>Mallory</b>", "<script>alert('host')</script>", 'a"b&c<i>']


def test_the_page_is_in_the_chosen_language(invoke, tmp_path):
    rh.write_report(tmp_path, "r.json", rh.passing_cpu_laptop())
    out = tmp_path / "page.html"
    try:
        assert invoke("--lang", "zh", "report", str(tmp_path), "--html", str(out)).exit_code == 0
    finally:
        set_language("en")
    assert ("html", {"lang": "zh-CN"}) in _parse(out.read_text(encoding="utf-8")).tags


def test_the_page_has_a_bar_per_check_as_wide_as_its_share(invoke, tmp_path):
    for i in range(3):
        rh.write_report(tmp_path, f"w{i}.json",
                        rh.failing_windows_cpu_torch_on_nvidia(host=f"w{i}"))
    rh.write_report(tmp_path, "ok.json", rh.passing_cpu_laptop())
    out = tmp_path / "page.html"
    invoke("report", str(tmp_path), "--html", str(out))
    text = out.read_text(encoding="utf-8")
    bars = re.findall(r'<div class="check (\w+)" data-id="([^"]+)">.*?width:([\d.]+)%', text, re.S)
    assert bars == [("fail", "torch-cuda-build", "75.0"), ("warn", "mirror", "75.0")]


def test_an_output_that_cannot_be_written_is_an_error_not_a_traceback(invoke, tmp_path):
    rh.write_report(tmp_path, "r.json", rh.passing_cpu_laptop())
    result = invoke("report", str(tmp_path), "--html", str(tmp_path / "no" / "such" / "p.html"))
    assert result.exit_code == 1
    assert "Cannot write" in result.stderr


def test_report_runs_as_a_real_process(class_folder, tmp_path):
    done = run_cnnsetup("report", str(class_folder), "--json", timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["machines"]) == len(rh.CLASS_MACHINES)


@pytest.mark.parametrize("encoding", ["gbk", "ascii"])
def test_a_console_that_cannot_show_a_character_does_not_crash(class_folder, encoding):
    done = run_cnnsetup("report", str(class_folder), env={"PYTHONIOENCODING": encoding})
    assert done.returncode == 0, done.stderr
    assert "lab-laptop-01" in done.stdout
