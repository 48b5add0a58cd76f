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


def test_a_report_over_failing_machines_still_exits_zero(invoke, class_folder):
    result = invoke("report", str(class_folder))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for host, user in rh.CLASS_MACHINES:
        assert re.search(rf"^{re.escape(host)}\s+{re.escape(user)}\s", out, re.M), host
    assert "8 machines: 5 pass, 1 warn, 2 fail" in out
    assert rh.TORCH_FIX_CU121 in out and rh.TORCH_FIX_CPU in out
    for name in rh.CLASS_SKIPPED:
        assert name in out


def test_the_terminal_table_shows_each_column_of_a_machine(invoke, tmp_path):
    rh.write_report(tmp_path, "w.json", rh.failing_windows_cpu_torch_on_nvidia())
    lines = invoke("report", str(tmp_path)).stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Host"))
    assert lines[header].split() == ["Host", "User", "OS", "Python", "GPU", "torch", "CUDA",
                                     "Mirror", "Result", "Failing", "checks"]
    assert re.split(r"\s{2,}", lines[header + 1]) == [
        "DESKTOP-7Q2K3LM", "zhang.san", "Windows 11", "3.10.14", "RTX 3060 Laptop GPU",
        "2.5.1+cpu", "CPU build", "conda=tsinghua pip=-", "FAIL", "torch-cuda-build"]


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


def test_json_is_one_object_with_machines_checks_and_skipped(invoke, class_folder):
    result = invoke("report", str(class_folder), "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert set(data) == {"totals", "machines", "checks", "skipped"}
    assert data["totals"] == {"machines": 8, "pass": 5, "warn": 1, "fail": 2, "unknown": 0,
                              "files_read": 9, "skipped": 6}
    machines = {(m["host"], m["user"]): m for m in data["machines"]}
    assert {k: m["result"] for k, m in machines.items()} == rh.CLASS_MACHINES
    server = machines[("gpu-server", "ta")]
    assert server["gpu_count"] == 8 and server["torch"]["cuda"] == "12.1"
    assert server["driver_cuda"] == "12.4" and server["mirror"] == {"conda": "tsinghua",
                                                                      "pip": "tsinghua"}
    assert machines[("old-laptop", "zhao.liu")]["mirror"] is None
    windows = machines[("DESKTOP-7Q2K3LM", "zhang.san")]
    assert windows["failing"] == ["torch-cuda-build"] and windows["warnings"] == ["mirror"]
    first = data["checks"][0]
    assert set(first) == {"id", "status", "count", "summary", "fix", "fixes", "machines"}
    assert {(c["id"], c["status"], c["count"]) for c in data["checks"]} == {
        ("torch-cuda-build", "fail", 1), ("torch-import", "fail", 1),
        ("mirror", "warn", 1), ("disk-space", "warn", 1)}
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
    assert {(r["Host"], r["User"]): r["Result"] for r in rows} == {
        k: v.upper() for k, v in rh.CLASS_MACHINES.items()}
    server = next(r for r in rows if r["User"] == "ta")
    assert (server["GPU"], server["CUDA"], server["Driver CUDA"]) == (
        "8 x A100-SXM4-80GB", "12.1", "12.4")
    assert next(r for r in rows if r["Host"] == "宿舍电脑")["File"].endswith("a-dorm.json")


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
        self.scripts: list[str] = []
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
        elif tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
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
    assert {(r[0], r[1]) for r in page.rows} == set(rh.CLASS_MACHINES)


def test_every_value_on_the_page_is_escaped(invoke, tmp_path):
    hostile = rh.failing_windows_cpu_torch_on_nvidia(
        host="<script>alert('host')</script>", user='a"b&c<i>')
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
    assert page.rows[0][:2] == ["<script>alert('host')</script>", 'a"b&c<i>']


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
