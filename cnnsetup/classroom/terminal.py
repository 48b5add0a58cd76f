"""A merged report as terminal text: the totals, one row per machine, then each failing or
warning check with its count and its fix, then the files that were skipped."""

from __future__ import annotations

from typing import Callable

from cnnsetup.classroom import display
from cnnsetup.classroom.merge import FAIL, ClassReport
from cnnsetup.i18n import _
from cnnsetup.render import table

# How many distinct fixes of one check are listed (the rest are counted).
MAX_FIXES = 3


def render_text(report: ClassReport, style: Callable[..., str] = lambda text, **_kw: text) -> str:
    """The whole report as text; `style(text, fg=, bold=)` colours words (render.style)."""
    lines = [style(display.totals_line(report), bold=True), ""]
    if report.machines:
        lines.append(table([display.row(m) for m in report.machines], header=display.headings()))
    if report.checks:
        lines += ["", style(_("Checks that failed or warned:"), bold=True)]
        total = len(report.machines)
        for check in report.checks:
            word = display.result_label(check.status)
            colour = "red" if check.status == FAIL else "yellow"
            lines.append("  {status}  {id}  {count}".format(
                status=style(word, fg=colour), id=check.id,
                count=_("{count} of {total}").format(count=check.count, total=total)))
            if check.summary:
                lines.append("      " + check.summary)
            for fix, n in check.fixes[:MAX_FIXES]:
                label = _("fix:") if len(check.fixes) == 1 else \
                    _("fix ({count}):").format(count=n)
                lines.append(f"      {label} {fix}")
            if len(check.fixes) > MAX_FIXES:
                lines.append("      " + _("... and {n} other fixes (see {option})").format(
                    n=len(check.fixes) - MAX_FIXES, option="--json"))
    if report.skipped:
        lines += ["", style(_("Skipped files:"), bold=True)]
        lines.append(table(
            [[s.path, display.skip_reason(s.reason) + (f" ({s.detail})" if s.detail else "")]
             for s in report.skipped],
            indent=2,
        ))
    return "\n".join(lines)
