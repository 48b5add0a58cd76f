"""`cnnsetup onboard`: the whole first day in one command: mirror, torch, verify, report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import click

from cnnsetup.commands.base import command, option
from cnnsetup.i18n import N_, _
from cnnsetup.mirror import registry
from cnnsetup.render import ProgressLine, echo, style


@command(
    "onboard",
    short_help=N_("The whole first day: mirror, torch, verify, report."),
    help=N_("A student's first day in one command: switch conda and pip to a mirror, check "
            "(and optionally install) PyTorch, verify by training, and write the report for "
            "your teaching assistant. Run it again to pick up where it stopped."),
)
@option("--mirror", "mirror_name", default="auto", show_default=True, metavar="NAME|auto",
        help=N_("Mirror to use; auto picks the fastest that answers."))
@option("--install-torch", is_flag=True,
        help=N_("Install the right torch build for this machine if it is missing or wrong."))
@option("--yes", "-y", is_flag=True, help=N_("Do not ask before changing configuration files."))
@option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help=N_("Where to write the report (default: cnnsetup-HOST-DATE.json here)."))
def onboard(mirror_name: str, install_torch: bool, yes: bool,
            report_path: Optional[Path]) -> int:
    from cnnsetup.classroom.onboard import OnboardOptions, run_onboard
    from cnnsetup.errors import UsageError

    if mirror_name != "auto" and registry.get(mirror_name) is None:
        raise UsageError(_("Unknown mirror {name!r}. Known mirrors: {mirrors}.").format(
            name=mirror_name, mirrors=", ".join(registry.names())))
    options = OnboardOptions(mirror=mirror_name, install_torch=install_torch, yes=yes,
                             report=report_path)
    progress = ProgressLine() if _is_terminal(sys.stderr) else None
    from cnnsetup.commands.verify import render_verify

    result = run_onboard(options, say=echo, confirm=_confirm,
                         show_verify=lambda verified: echo(render_verify(verified)),
                         on_event=progress.event if progress else None)
    if progress:
        progress.close()
    echo()
    echo(style(_("Report: {path}").format(path=result.report_path), bold=True))
    echo(_("Send this file to your teaching assistant; it holds no passwords or personal files, "
           "only this machine's setup and the checks."))
    return 0 if result.ok else 1


def _confirm(question: str) -> bool:
    """Ask on a terminal; elsewhere (CI, a pipe) the answer is no, and `--yes` says yes."""
    if not _is_terminal(sys.stdin):
        echo("  " + _("Not asking (no terminal); run with --yes to allow the change."))
        return False
    return click.confirm("  " + question, default=True)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
