"""`cnnsetup onboard`: the whole first day in one command: mirror, torch, verify, report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import click

from cnnsetup.commands.base import command, option
from cnnsetup.commands.report import _clean_student as clean_student_option
from cnnsetup.i18n import N_, _
from cnnsetup.mirror import registry
from cnnsetup.render import ProgressLine, echo, style

# How each step's outcome reads in the summary.
STEP_VERDICTS = {"done": ("PASS", "green"), "already-done": ("PASS", "green"),
                 "skipped": ("SKIP", "bright_black"), "warning": ("WARN", "yellow"),
                 "failed": ("FAIL", "red")}


@command(
    "onboard",
    short_help=N_("The whole first day: mirror, torch, verify, report."),
    help=N_("A student's first day in one command: switch conda and pip to a mirror, check "
            "(and install, when you agree) PyTorch, verify by training, and write the report "
            "for your teaching assistant. It asks before each change; without a terminal it "
            "changes nothing unless told to (--yes, --install-torch) and says what it would "
            "do. Run it again to pick up where it stopped."),
)
@option("--mirror", "mirror_name", default="auto", show_default=True, metavar="NAME|auto",
        help=N_("Mirror to use; auto picks the fastest that answers."))
@option("--install-torch", is_flag=True,
        help=N_("Install the right torch build for this machine if it is missing or wrong."))
@option("--yes", "-y", is_flag=True, help=N_("Do not ask before changing configuration files."))
@option("--student", default=None, metavar="TEXT",
        callback=lambda _ctx, _param, value: _checked_student(value),
        help=N_("Your name or student number, written into the report (asked once on a "
                "terminal, then remembered)."))
@option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help=N_("Where to write the report (default: cnnsetup-HOST-DATE.json here)."))
def onboard(mirror_name: str, install_torch: bool, yes: bool, student: Optional[str],
            report_path: Optional[Path]) -> int:
    from cnnsetup.classroom.onboard import OnboardOptions, run_onboard
    from cnnsetup.commands.verify import render_verify
    from cnnsetup.errors import UsageError

    if mirror_name != "auto" and registry.get(mirror_name) is None:
        raise UsageError(registry.unknown_name_message(mirror_name))
    if report_path is not None:  # refused now, not after the whole day's steps
        from cnnsetup.report_schema import check_report_path

        check_report_path(report_path)
    options = OnboardOptions(mirror=mirror_name, install_torch=install_torch, yes=yes,
                             report=report_path, interactive=_is_terminal(sys.stdin),
                             student=student)
    progress = ProgressLine() if _is_terminal(sys.stderr) else None
    try:
        result = run_onboard(options, say=echo, confirm=_confirm, ask=_ask,
                             show_verify=lambda verified: echo(render_verify(verified)),
                             on_event=progress.event if progress else None)
    finally:
        if progress:
            progress.close()
    echo()
    echo(render_summary(result))
    return 0 if result.ok else 1


def render_summary(result) -> str:
    """Each step with its verdict, the warnings, where the report is, and the day's verdict."""
    lines = [style(_("Summary"), bold=True)]
    for step in result.steps:
        word, colour = STEP_VERDICTS.get(step.status, ("?", None))
        detail = step.detail.splitlines()[0] if step.detail else ""
        lines.append(f"  {style(word, fg=colour, bold=True)}  {step.name:<7} {detail}".rstrip())
    shown = {step.detail for step in result.steps}
    for warning in result.warnings:
        if warning in shown:  # already on its step's line
            continue
        lines.append("  " + style(_("WARN"), fg="yellow", bold=True) + "  " + warning)
    lines.append("")
    if result.report_path is not None:
        lines.append(style(_("Report: {path}").format(path=result.report_path), bold=True))
        lines.append(_("Send this file to your teaching assistant; it holds no passwords or "
                       "personal files, only this machine's setup and the checks."))
    if result.stopped:
        lines.append(style(_("FAIL"), fg="red", bold=True) + ": " + result.stopped)
        lines.append(_("Run `{command}` again to continue: finished steps are not "
                       "repeated.").format(command="cnnsetup onboard"))
    elif result.ok and result.warnings:
        lines.append(_("{verdict}: verify passed, with the warnings above.").format(
            verdict=style(_("PASS"), fg="green", bold=True)))
    elif result.ok:
        lines.append(_("{verdict}: this machine is ready for the course.").format(
            verdict=style(_("PASS"), fg="green", bold=True)))
    else:
        lines.append(_("{verdict}: see the failed steps above and their fixes.").format(
            verdict=style(_("FAIL"), fg="red", bold=True)))
    return "\n".join(lines)


def _confirm(question: str) -> bool:
    """Ask on a terminal; elsewhere (CI, a pipe) the answer is no, and `--yes` says yes."""
    if not _is_terminal(sys.stdin):
        echo("  " + _("Not asking (no terminal); run with --yes to allow the change."))
        return False
    return click.confirm("  " + question, default=True)


def _checked_student(value: Optional[str]) -> Optional[str]:
    """The student as `verify --student` stores it; "" (given, but empty: no name, which
    forgets one remembered from an earlier run) stays "". Raises click.BadParameter for text
    that can never be a name (too long, control characters)."""
    if value is None:
        return None
    return clean_student_option(None, None, value) or ""


def _ask(question: str) -> str:
    """Ask for the student: text that can never be a name is refused as --student refuses it,
    and asked again."""
    return click.prompt("  " + question, default="", show_default=False,
                        value_proc=_checked_student)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
