"""`cnnsetup report PATH...`: many machine reports merged into one class summary."""

from __future__ import annotations

import click

from cnnsetup.classroom.merge import merge
from cnnsetup.classroom.terminal import render_text
from cnnsetup.commands.base import command, json_option, option
from cnnsetup.errors import CnnsetupError
from cnnsetup.i18n import N_, _
from cnnsetup.render import echo, print_json, style


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
        "one row per machine, then each failing check with its count and its fix."
    ),
)
@click.argument("paths", nargs=-1, required=True, type=click.Path(), metavar="PATH...")
@option("--html", "html_out", type=click.Path(dir_okay=False), metavar="OUT",
        help=N_("Also write a self-contained HTML page (opens without network)."))
@option("--csv", "csv_out", type=click.Path(dir_okay=False), metavar="OUT",
        help=N_("Also write a CSV file for spreadsheets (one row per machine)."))
@json_option
def report(paths: tuple[str, ...], html_out: str | None, csv_out: str | None,
           as_json: bool) -> int:
    """Merge, then print the table (or JSON) and write the files asked for."""
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
    echo(render_text(merged, style=style))
    for path in written:
        echo(_("Wrote {path}").format(path=path))
    return 0
