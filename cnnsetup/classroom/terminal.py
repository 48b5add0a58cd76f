"""A merged report as terminal text: the totals, one row per machine, what blocks the most
machines (each failing check with how many machines it affects and its fix), the checks that
only warned, then (with --verbose) every superseded report, and the files that were skipped.
A comparison of two report sets has its own text (`render_compare`)."""

from __future__ import annotations

from typing import Callable

from cnnsetup.classroom import display
from cnnsetup.classroom.merge import (
    FIXED, NEW_FAILURE, NOT_REPORTED, NOW_PASSING, NOW_UNTESTED, REGRESSED, STILL_FAILING,
    STILL_PASSING, CheckCount, ClassReport, Comparison)
from cnnsetup.i18n import _, label, ngettext
from cnnsetup.render import table

# How many distinct fixes of one check are listed (the rest are counted).
MAX_FIXES = 3

Style = Callable[..., str]


def _plain(text: str, **_kw) -> str:
    return text


def _fix_lines(check: CheckCount) -> list[str]:
    lines = []
    for fix, n in check.fixes[:MAX_FIXES]:
        text = _("fix:") if len(check.fixes) == 1 else _("fix ({count}):").format(count=n)
        lines.append("      " + label(text) + fix)
    if len(check.fixes) > MAX_FIXES:
        lines.append("      " + _("... and {n} other fixes (see {option})").format(
            n=len(check.fixes) - MAX_FIXES, option="--json"))
    return lines


def blocking_lines(report: ClassReport, style: Style = _plain) -> list[str]:
    """"What blocks the most machines" with one line per failing check, then its fix."""
    if not report.blocking:
        return []
    total = len(report.machines)
    lines = ["", style(_("What blocks the most machines:"), bold=True)]
    rows = [[style(display.result_label("fail"), fg="red"), c.id,
             _("{count} of {total}").format(count=c.count, total=total)]
            for c in report.blocking]
    for check, line in zip(report.blocking, table(rows, indent=2).splitlines()):
        lines.append(line)
        if check.summary:
            lines.append("      " + check.summary)
        lines += _fix_lines(check) or ["      " + _("fix: none given")]
    return lines


def render_text(report: ClassReport, style: Style = _plain, verbose: bool = False) -> str:
    """The whole report as text; `style(text, fg=, bold=)` colours words (render.style);
    `verbose` also lists every superseded report."""
    lines = [style(display.totals_line(report), bold=True), ""]
    if report.machines:
        lines.append(table([display.row(m) for m in report.machines], header=display.headings()))
    lines += blocking_lines(report, style)
    if report.warned:
        total = len(report.machines)
        lines += ["", style(_("Checks that warned:"), bold=True)]
        for check in report.warned:
            lines.append("  {status}  {id}  {count}".format(
                status=style(display.result_label("warn"), fg="yellow"), id=check.id,
                count=_("{count} of {total}").format(count=check.count, total=total)))
            if check.summary:
                lines.append("      " + check.summary)
            lines += _fix_lines(check)
    if report.superseded:
        lines.append("")
        if verbose:
            lines.append(style(_("Superseded reports (a newer report of the same kind was "
                                 "kept):"), bold=True))
            for machine in report.machines:
                for ref in machine.superseded:
                    lines.append("  " + _("{who}: {file} ({kind}, {created}), replaced by "
                                          "{newer}").format(
                        who=display.who_label(machine), file=ref.file, kind=ref.kind,
                        created=ref.created or display.unknown(), newer=ref.superseded_by))
        else:
            lines.append(ngettext(
                "{n} older report was superseded by a newer one of the same kind (see {option}).",
                "{n} older reports were superseded by newer ones of the same kind (see {option}).",
                report.superseded).format(n=report.superseded, option="--verbose"))
    if report.skipped:
        lines += ["", style(_("Skipped files:"), bold=True)]
        lines.append(table(
            [[s.path, display.skip_reason(s.reason) + (f" ({s.detail})" if s.detail else "")]
             for s in report.skipped],
            indent=2,
        ))
    return "\n".join(lines)


def _change_titles() -> list[tuple[tuple[str, ...], str, str]]:
    return [
        ((FIXED,), _("Fixed (FAIL -> PASS): {n}"), "green"),
        ((STILL_FAILING,), _("Still failing: {n}"), "red"),
        ((REGRESSED, NEW_FAILURE), _("New failures: {n}"), "red"),
        ((NOW_UNTESTED,), _("Untested (nothing trained yet): {n}"), "yellow"),
        ((NOW_PASSING,), _("Passing for the first time: {n}"), "green"),
        ((NOT_REPORTED,), _("No new report: {n}"), None),
    ]


def render_compare(comparison: Comparison, style: Style = _plain) -> str:
    """Two report sets side by side: who was fixed, who still fails, who newly fails."""
    old, new = comparison.old, comparison.new
    lines = [
        style(_("Before: {totals}").format(totals=display.totals_line(old)), bold=True),
        style(_("Now:    {totals}").format(totals=display.totals_line(new)), bold=True),
    ]
    for kinds, title, colour in _change_titles():
        changes = comparison.of(*kinds)
        if not changes:
            continue
        lines += ["", style(title.format(n=len(changes)), bold=True, fg=colour)]
        rows = []
        for change in changes:
            before = display.result_label(change.before) if change.before else _("no report")
            after = display.result_label(change.after) if change.after else _("no report")
            rows.append([display.who_label(change.machine), f"{before} -> {after}",
                         display.failing_label(change.machine)])
        lines.append(table(rows, indent=2))
    passing = len(comparison.of(STILL_PASSING))
    if passing:
        lines += ["", ngettext("{n} machine still passes.", "{n} machines still pass.",
                               passing).format(n=passing)]
    lines += blocking_lines(new, style)
    return "\n".join(lines)
