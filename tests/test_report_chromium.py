"""The HTML page in a real browser: Debian's headless Chromium loads it from a file:// address,
runs its JavaScript, and the rendered DOM is checked. Sorting is exercised through the page's
`#sort=KEY[:desc]` address, which makes the page dispatch real click events on the column
heading, the same handler a person's click runs."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests import report_helpers as rh

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (.ci/install-chromium installs it)",
)


def rendered_dom(page: Path, fragment: str, scratch: Path) -> str:
    """The DOM of `page` after its scripts ran, as headless Chromium serialises it."""
    scratch.mkdir(parents=True, exist_ok=True)
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={scratch / 'profile'}",
        "--virtual-time-budget=5000", "--dump-dom", page.as_uri() + fragment,
    ]
    # Debian's launcher is a shell script that needs the usual tools on PATH.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(scratch), "LANG": "C.UTF-8"}
    done = subprocess.run(command, capture_output=True, text=True, encoding="utf-8",
                          errors="replace", env=env, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "</html>" in done.stdout, done.stderr[-3000:]
    return done.stdout


class _Dom(HTMLParser):
    """The machine table as rendered: heading attributes and the rows' cell texts, in order."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.table: dict = {}
        self.headings: dict[str, dict] = {}
        self.rows: list[list[str]] = []
        self._in_table = self._in_body = False
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "table" and attributes.get("id") == "machines":
            self._in_table, self.table = True, attributes
        elif not self._in_table:
            return
        elif tag == "th":
            self.headings[attributes["data-key"]] = attributes
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag == "td" and self._in_body:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _page(tmp_path: Path, folder: Path, invoke) -> Path:
    page = tmp_path / "out" / "class report.html"  # a space, as on a USB stick
    page.parent.mkdir()
    result = invoke("report", str(folder), "--html", str(page))
    assert result.exit_code == 0, result.stderr
    return page


def _key(row):
    return (None if row[0] == "-" else row[0], row[1], row[2])


def test_every_machine_has_its_row_in_the_rendered_page(tmp_path, invoke):
    page = _page(tmp_path, rh.write_class_folder(tmp_path / "class"), invoke)
    text = rendered_dom(page, "", tmp_path / "chromium")
    dom = _Dom(text)
    assert dom.table.get("data-sortable") == "true"  # the script ran to its end
    assert {_key(row) for row in dom.rows} == set(rh.CLASS_MACHINES)
    assert len(dom.rows) == len(rh.CLASS_MACHINES)
    states = {_key(row): row[3] for row in dom.rows}
    assert states == {k: v.upper() for k, v in rh.CLASS_MACHINES.items()}
    # What blocks most, and the superseded reports, are on the rendered page too.
    assert text.index('data-id="torch-import"') < text.index('data-id="torch-cuda-build"')
    assert 'id="superseded-reports"' in text and "li-lei-monday.json" in text


@pytest.fixture
def sorting_page(tmp_path, invoke) -> Path:
    """Five machines whose orders by host, torch version, GPU count and state all differ; pc-e
    has neither torch nor GPU facts (unknown)."""
    folder = tmp_path / "class"
    specs = [  # host, torch version, report
        ("pc-a", "2.9.1", rh.passing_cpu_laptop),
        ("pc-b", "2.10.0", lambda **kw: rh.multi_gpu_server(gpus=2, **kw)),
        ("pc-c", "2.13.0", lambda **kw: rh.multi_gpu_server(gpus=8, **kw)),
        ("pc-d", "2.11.0", rh.failing_windows_cpu_torch_on_nvidia),
        ("pc-e", None, rh.info_only),
    ]
    for host, torch, make in specs:
        report = make(host=host, user="u")
        if torch:
            report["torch"]["version"] = torch
        else:
            del report["torch"], report["gpus"], report["nvidia"]
        rh.write_report(folder, f"{host}.json", report)
    return _page(tmp_path, folder, invoke)


def _column(dom: _Dom, key: str) -> list[str]:
    index = list(dom.headings).index(key)
    return [row[index] for row in dom.rows]


def test_without_a_sort_the_rows_are_in_host_order(sorting_page, tmp_path):
    dom = _Dom(rendered_dom(sorting_page, "", tmp_path / "chromium"))
    assert _column(dom, "host") == ["pc-a", "pc-b", "pc-c", "pc-d", "pc-e"]
    assert {h["aria-sort"] for h in dom.headings.values()} == {"none"}


def test_clicking_the_host_heading_twice_sorts_descending(sorting_page, tmp_path):
    dom = _Dom(rendered_dom(sorting_page, "#sort=host:desc", tmp_path / "chromium"))
    assert _column(dom, "host") == ["pc-e", "pc-d", "pc-c", "pc-b", "pc-a"]
    assert dom.headings["host"]["aria-sort"] == "descending"
    assert dom.headings["torch"]["aria-sort"] == "none"


def test_versions_sort_by_number_and_unknown_comes_last(sorting_page, tmp_path):
    dom = _Dom(rendered_dom(sorting_page, "#sort=torch", tmp_path / "chromium"))
    assert _column(dom, "torch") == ["2.9.1", "2.10.0", "2.11.0", "2.13.0", "unknown"]
    assert dom.headings["torch"]["aria-sort"] == "ascending"


def test_gpus_sort_by_count_descending_with_unknown_still_last(sorting_page, tmp_path):
    dom = _Dom(rendered_dom(sorting_page, "#sort=gpu:desc", tmp_path / "chromium"))
    assert _column(dom, "gpu") == ["8 x A100-SXM4-80GB", "2 x A100-SXM4-80GB",
                                   "RTX 3060 Laptop GPU", "CPU only", "unknown"]


def test_sorting_by_state_puts_the_machines_that_need_attention_first(sorting_page, tmp_path):
    dom = _Dom(rendered_dom(sorting_page, "#sort=state", tmp_path / "chromium"))
    assert _column(dom, "state") == ["FAIL", "UNTESTED", "PASS", "PASS", "PASS"]
    assert _column(dom, "host") == ["pc-d", "pc-e", "pc-a", "pc-b", "pc-c"]
