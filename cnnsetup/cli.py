"""The `cnnsetup` command line: the root group, and the one place errors become messages.

Command families live in `cnnsetup/commands/` and are imported only when used, so a command that
does not need torch (or even ruamel.yaml) never pays for it.
"""

from __future__ import annotations

import importlib
from typing import Any, Sequence

import click

from cnnsetup import __version__
from cnnsetup.commands.base import Group, Option, option
from cnnsetup.errors import EXIT_FAILURE, CnnsetupError
from cnnsetup.i18n import LANGUAGES, N_, _, language_from_environment, set_language
from cnnsetup.render import echo

# name -> "module:attribute" of the click command; imported on first use.
COMMANDS = {
    "mirror": "cnnsetup.commands.mirror:mirror",
    "info": "cnnsetup.commands.info:info",
    "torch-command": "cnnsetup.commands.info:torch_command",
    "verify": "cnnsetup.commands.verify:verify",
    "onboard": "cnnsetup.commands.onboard:onboard",
    "explain": "cnnsetup.commands.explain:explain",
    "report": "cnnsetup.commands.report:report",
}


class RootGroup(Group):
    """Loads command families lazily and turns cnnsetup's errors into messages and exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
        except CnnsetupError as error:
            echo(_("Error: {message}").format(message=error.message), err=True)
            if error.hint:
                echo(error.hint, err=True)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            echo(_("Interrupted; nothing was left half-written."), err=True)
            ctx.exit(130)
        if isinstance(result, int) and result != 0:
            ctx.exit(result)
        return result


def _choose_language(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    language = value or language_from_environment()
    set_language(language)
    return language


@click.group(
    cls=RootGroup,
    help=N_("Get this machine ready for deep learning, and prove that it is."),
    context_settings={"help_option_names": ["-h", "--help"]},
)
@option(
    "--lang",
    type=click.Choice(LANGUAGES),
    callback=_choose_language,
    is_eager=True,
    expose_value=False,
    help=N_("Language of messages (default: CNNSETUP_LANG, else the system locale)."),
)
@click.version_option(__version__, "--version", prog_name="cnnsetup", message="%(prog)s %(version)s",
                      cls=Option, help=N_("Show the version and exit."))
def cli() -> None:
    pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run cnnsetup on `argv` and return its exit status (tests call this directly)."""
    try:
        # Outside standalone mode click returns (not raises) the status of a ctx.exit(N).
        status = cli.main(args=list(argv) if argv is not None else None, prog_name="cnnsetup",
                          standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:  # usage errors: exit 2
        error.show()
        return error.exit_code
    except click.Abort:
        echo(_("Aborted."), err=True)
        return EXIT_FAILURE
    return status if isinstance(status, int) else 0
