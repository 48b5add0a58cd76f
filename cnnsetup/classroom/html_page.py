"""A merged report as one self-contained HTML page: inline CSS and JavaScript, no external file
and no URL of any kind, so it opens from a USB stick on a machine without network.

The machine table sorts when a heading is clicked (numbers as numbers, versions naturally,
unknown values last). `page.html#sort=KEY` or `#sort=KEY:desc` sorts on opening by clicking the
heading, so a link can point at a sorted view. Every value from a report is HTML-escaped.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Optional

from cnnsetup import __version__
from cnnsetup.classroom import display
from cnnsetup.classroom.merge import CheckCount, ClassReport, Machine
from cnnsetup.i18n import _, current_language, ngettext

_HTML_LANG = {"en": "en", "zh": "zh-CN"}

_CSS = """
:root { --pass: #1a7f37; --warn: #9a6700; --fail: #cf222e; --untested: #6e40c9;
        --line: #d0d7de; --muted: #57606a; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Microsoft YaHei", "PingFang SC",
       sans-serif; margin: 1.5rem; color: #1f2328; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .5rem; }
.muted, .generated, .hint { color: var(--muted); }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .5rem; text-align: left;
         vertical-align: top; }
thead th { position: sticky; top: 0; background: #f6f8fa; white-space: nowrap; }
th button { font: inherit; font-weight: 600; background: none; border: 0; padding: 0;
            cursor: pointer; color: inherit; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
td.unknown { color: var(--muted); font-style: italic; }
tr.fail td.state { color: var(--fail); font-weight: 600; }
tr.untested td.state { color: var(--untested); font-weight: 600; }
tr.pass td.state { color: var(--pass); font-weight: 600; }
td.student { font-weight: 600; }
code { font-family: ui-monospace, Consolas, "Courier New", monospace; }
.check { margin: 0 0 1rem; padding: .5rem .75rem; border-left: 4px solid var(--warn); }
.check.fail { border-left-color: var(--fail); }
.check p { margin: .25rem 0; }
.bar { background: #eaeef2; height: .7rem; border-radius: .35rem; overflow: hidden;
       max-width: 40rem; margin: .35rem 0; }
.bar span { display: block; height: 100%; background: var(--warn); }
.check.fail .bar span { background: var(--fail); }
.fix code { user-select: all; background: #f6f8fa; padding: .1rem .3rem; }
@media print { thead th { position: static; } }
"""

_JS = """
(function () {
  "use strict";
  var table = document.getElementById("machines");
  if (!table) { return; }
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;

  function key(row, index, numeric) {
    var cell = row.cells[index];
    if (cell.classList.contains("unknown")) { return null; }
    if (numeric) {
      var n = parseFloat(cell.getAttribute("data-sort"));
      return isNaN(n) ? null : n;
    }
    return cell.textContent;
  }

  function sortBy(index, numeric, descending) {
    var rows = Array.prototype.map.call(body.rows, function (row, i) {
      return { row: row, key: key(row, index, numeric), i: i };
    });
    rows.sort(function (a, b) {
      if (a.key === null || b.key === null) {
        if (a.key === b.key) { return a.i - b.i; }
        return a.key === null ? 1 : -1;  /* unknown last, whichever the direction */
      }
      var c = numeric ? a.key - b.key
        : a.key.localeCompare(b.key, undefined, { numeric: true, sensitivity: "base" });
      return (descending ? -c : c) || a.i - b.i;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
  }

  Array.prototype.forEach.call(heads, function (th, index) {
    th.addEventListener("click", function () {
      var descending = th.getAttribute("aria-sort") === "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.setAttribute("aria-sort", "none"); });
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      sortBy(index, th.getAttribute("data-type") === "num", descending);
    });
  });

  function sortFromAddress() {
    var match = /^#sort=([a-z_]+)(?::(asc|desc))?$/.exec(location.hash);
    if (!match) { return; }
    Array.prototype.forEach.call(heads, function (th) {
      th.setAttribute("aria-sort", "none");
      if (th.getAttribute("data-key") !== match[1]) { return; }
      var target = th.querySelector("button") || th;
      var clicks = match[2] === "desc" ? 2 : 1;
      for (var n = 0; n < clicks; n++) {
        target.dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true }));
      }
    });
  }
  window.addEventListener("hashchange", sortFromAddress);
  table.setAttribute("data-sortable", "true");
  sortFromAddress();
})();
"""


def _number(value: Optional[float]) -> str:
    return "" if value is None else f"{value:g}"


def _machine_row(machine: Machine) -> str:
    cells = []
    for column in display.COLUMNS:
        classes = [column.key]
        if not display.known(machine, column):
            classes.append("unknown")
        sort = ""
        if column.number is not None:
            sort = f' data-sort="{_number(column.number(machine))}"'
        title = f' title="{escape(machine.file)}"' if column.key == "kind" else ""
        cells.append(f'<td class="{" ".join(classes)}"{sort}{title}>'
                     f"{escape(column.text(machine))}</td>")
    return f'<tr class="{escape(machine.state)}">' + "".join(cells) + "</tr>"


def _machine_table(report: ClassReport) -> str:
    heads = "".join(
        f'<th scope="col" data-key="{c.key}" data-type="{"num" if c.number else "text"}"'
        f' aria-sort="none"><button type="button">{escape(_(c.heading))}</button></th>'
        for c in display.COLUMNS
    )
    rows = "\n".join(_machine_row(m) for m in report.machines)
    return (f'<table id="machines">\n<thead><tr>{heads}</tr></thead>\n'
            f"<tbody>\n{rows}\n</tbody>\n</table>")


def _check_block(check: CheckCount, total: int) -> str:
    percent = 100.0 * check.count / total if total else 0.0
    count = _("{count} of {total} machines").format(count=check.count, total=total)
    parts = [
        f'<div class="check {escape(check.status)}" data-id="{escape(check.id)}">',
        f'<p><strong>{escape(display.result_label(check.status))}</strong> '
        f'<code>{escape(check.id)}</code> <span class="count">{escape(count)}</span></p>',
        f'<div class="bar" role="img" aria-label="{escape(count)}">'
        f'<span style="width:{percent:.1f}%"></span></div>',
    ]
    if check.summary:
        parts.append(f'<p class="summary">{escape(check.summary)}</p>')
    for fix, n in check.fixes:
        label = _("Fix:") if len(check.fixes) == 1 else _("Fix ({count}):").format(count=n)
        parts.append(f'<p class="fix">{escape(label)} <code>{escape(fix)}</code></p>')
    who = _("Machines ({count})").format(count=check.count)
    parts.append(f"<details><summary>{escape(who)}</summary>"
                 f'<p>{escape(", ".join(check.machines))}</p></details>')
    parts.append("</div>")
    return "\n".join(parts)


def _superseded_list(report: ClassReport) -> str:
    items = "\n".join(
        "<li>" + escape(_("{who}: {file} ({kind}, {created}), replaced by {newer}").format(
            who=display.who_label(machine), file=ref.file, kind=ref.kind,
            created=ref.created or display.unknown(), newer=ref.superseded_by)) + "</li>"
        for machine in report.machines for ref in machine.superseded
    )
    summary = ngettext(
        "{n} older report was replaced by a newer one of the same kind",
        "{n} older reports were replaced by newer ones of the same kind",
        report.superseded).format(n=report.superseded)
    return (f'<details id="superseded-reports"><summary>{escape(summary)}</summary>\n'
            f"<ul>\n{items}\n</ul>\n</details>")


def _skipped_list(report: ClassReport) -> str:
    items = "\n".join(
        f"<li><code>{escape(s.path)}</code>: {escape(display.skip_reason(s.reason))}"
        + (f' <span class="muted">({escape(s.detail)})</span>' if s.detail else "")
        + "</li>"
        for s in report.skipped
    )
    return f'<ul id="skipped-files">\n{items}\n</ul>'


def render_html(report: ClassReport, now: Optional[datetime] = None) -> str:
    """The whole page as text."""
    now = now or datetime.now().astimezone()
    title = _("Class report")
    generated = _("Made by cnnsetup {version} on {time}").format(
        version=__version__, time=now.strftime("%Y-%m-%d %H:%M"))
    machines_title = _("Machines")
    sort_hint = _("Click a column heading to sort.")
    blocking_title = _("What blocks the most machines")
    warned_title = _("Checks that warned")
    superseded_title = _("Superseded reports")
    skipped_title = _("Skipped files")
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="totals">{escape(display.totals_line(report))}</p>',
        f'<p class="generated">{escape(generated)}</p>',
        f"<h2>{escape(machines_title)}</h2>",
        f'<p class="hint">{escape(sort_hint)}</p>',
        _machine_table(report),
    ]
    if report.blocking:
        body.append(f'<h2 id="blocking">{escape(blocking_title)}</h2>')
        body += [_check_block(c, len(report.machines)) for c in report.blocking]
    if report.warned:
        body.append(f'<h2 id="warnings">{escape(warned_title)}</h2>')
        body += [_check_block(c, len(report.machines)) for c in report.warned]
    if report.superseded:
        body.append(f'<h2 id="superseded">{escape(superseded_title)}</h2>')
        body.append(_superseded_list(report))
    if report.skipped:
        body.append(f'<h2 id="skipped">{escape(skipped_title)}</h2>')
        body.append(_skipped_list(report))
    lang = _HTML_LANG.get(current_language(), "en")
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{_JS}</script>\n</body>\n</html>\n"
    )


def write_html(report: ClassReport, path: str) -> None:
    """Write the page at `path` (UTF-8)."""
    with open(path, "w", encoding="utf-8", newline="\n") as stream:
        stream.write(render_html(report))
