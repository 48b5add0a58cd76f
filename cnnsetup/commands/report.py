"""`cnnsetup report PATH...`: many machine reports merged into one class summary, or two report
sets compared (`report OLD NEW --compare`). Also the `--student` option that `verify` and
`onboard` share, since `report` is what reads it."""

from __future__ import annotations

from typing import Any, Callable, Optional

import click

from cnnsetup.classroom.merge import compare, merge
from cnnsetup.classroom.terminal import render_compare, render_text
from cnnsetup.commands.base import command, json_option, option
from cnnsetup.errors import CnnsetupError
from cnnsetup.i18n import N_, _
from cnnsetup.render import echo, print_json, style


def _clean_student(_ctx: click.Context, _param: click.Parameter, value: Any) -> Optional[str]:
    from cnnsetup.report_schema import STUDENT_MAX_CHARS, clean_student

    try:
        return clean_student(value)
    except ValueError:
        raise click.BadParameter(_(
            "a name or student number of at most {n} characters, without control characters"
        ).format(n=STUDENT_MAX_CHARS)) from None


def student_option(function: Callable) -> Callable:
    """`--student TEXT`: who the machine belongs to, stored as `student` in the report
    (cleaned by `report_schema.clean_student`; the command receives `student`: str | None)."""
    return option(
        "--student", metavar="TEXT", default=None, callback=_clean_student,
        help=N_("Your name or student number, stored in the report so the teaching assistant "
                "knows whose machine it is."),
    )(function)


def _write(writer, report, path: str) -> None:
    try:
        writer(report, path)
    except OSError as error:
        raise CnnsetupError(
            _("Cannot write {path}: {reason}").format(path=path, reason=error.strerror or error)
        ) from error


@command(
    "report",
    help=N_(
        "Merge machine reports (files, or folders searched for *.json) into one class summary: "
        "one row per student or machine with its state (PASS: trained on at least one device "
        "and nothing failed; FAIL; UNTESTED: nothing trained yet), then what blocks the most "
        "machines, with the fix. With --compare, OLD and NEW report sets (two paths) are "
        "compared: who was fixed, who still fails."
    ),
)
@click.argument("paths", nargs=-1, required=True, type=click.Path(), metavar="PATH...")
@option("--compare", "compare_sets", is_flag=True,
        help=N_("Compare two report sets, OLD then NEW (two paths): who went from FAIL to "
                "PASS, who still fails, who fails anew."))
@option("--verbose", "-v", is_flag=True,
        help=N_("Also list every report that a newer one of the same kind superseded."))
@option("--html", "html_out", type=click.Path(dir_okay=False), metavar="OUT",
        help=N_("Also write a self-contained HTML page (opens without network)."))
@option("--csv", "csv_out", type=click.Path(dir_okay=False), metavar="OUT",
        help=N_("Also write a CSV file for spreadsheets (one row per machine)."))
@json_option
def report(paths: tuple[str, ...], compare_sets: bool, verbose: bool, html_out: str | None,
           csv_out: str | None, as_json: bool) -> int:
    """Merge, then print the table (or JSON) and write the files asked for."""
    if compare_sets:
        return _compare(paths, html_out, csv_out, as_json)
    merged = merge(paths)
    if not merged.machines:
        if as_json:
            print_json(merged.as_json())
        else:
            echo(render_text(merged), err=True)
        raise CnnsetupError(_("No cnnsetup report found in the given paths."))
    written = []
    if html_out:
        from cnnsetup.classroom.html_page import write_html

        _write(write_html, merged, html_out)
        written.append(html_out)
    if csv_out:
        from cnnsetup.classroom.csv_out import write_csv

        _write(write_csv, merged, csv_out)
        written.append(csv_out)
    if as_json:
        print_json(merged.as_json())
        return 0
    echo(render_text(merged, style=style, verbose=verbose))
    for path in written:
        echo(_("Wrote {path}").format(path=path))
    return 0


def _compare(paths: tuple[str, ...], html_out: str | None, csv_out: str | None,
             as_json: bool) -> int:
    if len(paths) != 2:
        raise click.UsageError(_("--compare needs exactly two paths: OLD and NEW."))
    if html_out or csv_out:
        raise click.UsageError(_("--compare writes no --html or --csv: compare first, then "
                                 "run `cnnsetup report NEW --html OUT`."))
    old, new = merge([paths[0]]), merge([paths[1]])
    for merged, path in ((old, paths[0]), (new, paths[1])):
        if not merged.machines:
            raise CnnsetupError(_("No cnnsetup report found in {path}.").format(path=path))
    comparison = compare(old, new)
    if as_json:
        print_json(comparison.as_json())
    else:
        echo(render_compare(comparison, style=style))
    return 0
