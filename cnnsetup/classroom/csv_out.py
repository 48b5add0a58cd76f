"""A merged report as CSV for spreadsheets: one row per machine.

Written as UTF-8 with a byte-order mark and CRLF line ends: without the mark, Excel on Chinese
Windows reads the file as GBK and shows host names and summaries as mojibake.
"""

from __future__ import annotations

import csv
import io

from cnnsetup.classroom import display
from cnnsetup.classroom.merge import ClassReport

# A cell starting with one of these is run as a formula by spreadsheet programs; reports come
# from other people's machines, so such a cell is prefixed with a quote to stay text.
# A lone "-" (nothing to show) is harmless and stays as it is.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) and value != "-" else value


def render_csv(report: ClassReport) -> str:
    """The CSV text (without the byte-order mark; `write_csv` adds it): the columns of the
    terminal table and the HTML page, in the same order and words."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(display.headings())
    for machine in report.machines:
        writer.writerow([_cell(v) for v in display.row(machine)])
    return out.getvalue()


def write_csv(report: ClassReport, path: str) -> None:
    """Write the CSV file at `path` (UTF-8 with BOM)."""
    with open(path, "w", encoding="utf-8-sig", newline="") as stream:
        stream.write(render_csv(report))
