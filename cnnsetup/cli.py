"""The `cnnsetup` command line: the root group, and the one place errors become messages.

Command families live in `cnnsetup/commands/` and are imported only when used, so a command that
does not need torch (or even ruamel.yaml) never pays for it.

The contract every command keeps (kept here, so a command only raises):

- exit status 0 success, 1 failure, 2 usage error (click's, or `errors.UsageError`: a value that
  can never be valid), 130 interrupted;
- with `--json`, stdout holds exactly one JSON object, also on failure: the command's own object
  (with `"ok": true` on success, `"ok": false` when the command fails), or `{"ok": false, "error": {"code", "message"}}`
  when it raised before printing one; `code` is stable and English (see `cnnsetup.errors.CODES`);
- `--lang en|zh` may come before or after the subcommand; without it the language comes from
  CNNSETUP_LANG, then the locale, for every message including the root help.
"""

from __future__ import annotations

import errno
import importlib
import sys
from typing import Any, Optional, Sequence

import click

from cnnsetup import __version__
from cnnsetup.commands.base import COMMAND_NAME_KEY, Group, Option, option
from cnnsetup.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CnnsetupError
from cnnsetup.i18n import LANGUAGES, N_, _, language_from_environment, set_language
from cnnsetup import render
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

LANG_OPTION = "--lang"
JSON_OPTION = "--json"


def lang_first(args: Sequence[str]) -> list[str]:
    """`args` with every `--lang VALUE` (or `--lang=VALUE`) moved to the front, where the root
    group reads it: `cnnsetup explain --lang zh` means `cnnsetup --lang zh explain`. Nothing
    after `--` is touched, and a `--lang` without a value stays for click to refuse."""
    front: list[str] = []
    rest: list[str] = []
    items = list(args)
    index = 0
    while index < len(items):
        item = items[index]
        if item == "--":
            rest += items[index:]
            break
        if item.startswith(LANG_OPTION + "="):
            front.append(item)
        elif item == LANG_OPTION and index + 1 < len(items):
            front += [item, items[index + 1]]
            index += 1
        else:
            rest.append(item)
        index += 1
    return front + rest


def _asks_for_text(args: Sequence[str]) -> bool:
    """Whether --help or --version is on the command line (they print text, not JSON)."""
    words = list(args)[:list(args).index("--")] if "--" in args else list(args)
    return any(word in ("--help", "-h", "--version") for word in words)


def wants_json(args: Sequence[str]) -> bool:
    """Whether the command line asks for JSON (anywhere before `--`)."""
    for item in args:
        if item == "--":
            return False
        if item == JSON_OPTION:
            return True
    return False


def usage_code(error: click.ClickException) -> str:
    """The stable code of one of click's command-line errors."""
    if error.exit_code != EXIT_USAGE:
        return "failed"
    no_such_command = getattr(click.exceptions, "NoSuchCommand", None)
    if no_such_command is not None and isinstance(error, no_such_command):
        return "usage.no_such_command"
    if isinstance(error, click.NoSuchOption):
        return "usage.no_such_option"
    if isinstance(error, click.MissingParameter):
        return "usage.missing_parameter"
    if isinstance(error, (click.BadParameter, click.BadOptionUsage, click.BadArgumentUsage)):
        return "usage.invalid_value"
    if str(error.message).startswith("No such command"):
        return "usage.no_such_command"
    return "usage.error"


class RootGroup(Group):
    """Loads command families lazily and keeps the contract above for all of them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The language is needed before anything is shown, `--help` included (click handles
        # `--help` as soon as it meets it): from the environment now, from --lang when given.
        args = lang_first(args)
        if not args or args[0] != LANG_OPTION and not args[0].startswith(LANG_OPTION + "="):
            _choose_language(ctx, None, None)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        result = super().invoke(ctx)
        if isinstance(result, int) and result != 0:
            self.failed_command = ctx.meta.get(COMMAND_NAME_KEY)
            ctx.exit(result)
        return result

    def main(self, args: Optional[Sequence[str]] = None, prog_name: Optional[str] = None,
             complete_var: Optional[str] = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        """Run the command line; return its exit status (or exit with it when standalone)."""
        argv = list(sys.argv[1:] if args is None else args)
        status = self.run_with_contract(argv, prog_name or "cnnsetup", complete_var, **extra)
        if standalone_mode:
            sys.exit(status)
        return status

    def run_with_contract(self, argv: list[str], prog_name: str, complete_var: Optional[str],
                          **extra: Any) -> int:
        as_json = wants_json(argv)
        if as_json:
            set_language("en")  # JSON, its error messages included, is always English
        held = render.JsonOutput() if as_json else None
        render.hold_json(held)
        error: Optional[dict] = None
        self.failed_command: Optional[str] = None
        try:
            status = super().main(args=argv, prog_name=prog_name, complete_var=complete_var,
                                  standalone_mode=False, **extra)
            status = status if isinstance(status, int) else EXIT_OK
        except click.ClickException as problem:
            status = problem.exit_code
            error = {"code": usage_code(problem), "message": problem.format_message()}
            if not as_json:
                problem.show()
        except CnnsetupError as problem:
            status = problem.exit_code
            error = {"code": problem.code, "message": problem.message}
            if problem.hint:
                error["hint"] = problem.hint
            if not as_json:
                if problem.exit_code == EXIT_INTERRUPTED:  # after ^C: a line of its own
                    echo("", err=True)
                    echo(problem.message, err=True)
                else:
                    echo(_("Error: {message}").format(message=problem.message), err=True)
                if problem.hint:
                    echo(problem.hint, err=True)
        except click.Abort as problem:
            interrupted = isinstance(problem.__cause__, KeyboardInterrupt)
            status = EXIT_INTERRUPTED if interrupted else EXIT_FAILURE
            message = (_("Interrupted; nothing was left half-written.") if interrupted
                       else _("Aborted."))
            error = {"code": "interrupted" if interrupted else "aborted", "message": message}
            if interrupted:
                echo("", err=True)  # end the line the terminal's ^C was echoed on
            echo(message, err=True)
        except KeyboardInterrupt:
            status = EXIT_INTERRUPTED
            message = _("Interrupted; nothing was left half-written.")
            error = {"code": "interrupted", "message": message}
            echo("", err=True)
            echo(message, err=True)
        except OSError as problem:
            if problem.errno != errno.EPIPE:
                status, error = self._internal_error(as_json)
            else:  # stdout closed (`| head`): nothing more can be said there
                render.silence_stdout()
                render.hold_json(None)
                return EXIT_FAILURE
        except Exception:  # noqa: BLE001 - a bug: the traceback, and still one JSON object
            status, error = self._internal_error(as_json)
        render.hold_json(None)
        if as_json:
            _emit_json(held, status, error, self.failed_command,
                       text_requested=_asks_for_text(argv))
        return status

    @staticmethod
    def _internal_error(as_json: bool) -> tuple[int, dict]:
        if not as_json:
            raise  # noqa: PLE0704 - outside JSON, a bug shows as Python shows it
        import traceback  # only for a bug's report: not on every start

        text = traceback.format_exc()
        sys.stderr.write(text)
        last = text.strip().splitlines()[-1] if text.strip() else "unknown error"
        return EXIT_FAILURE, {"code": "internal.error", "message": last}


def _emit_json(held: Optional[render.JsonOutput], status: int, error: Optional[dict],
               failed_command: Optional[str], text_requested: bool = False) -> None:
    """Print the one JSON object of a `--json` run, whatever happened in it (`text_requested`:
    --help or --version asked for text, which was printed instead)."""
    data = held.data if held is not None and held.printed else None
    if status == EXIT_OK and error is None:
        if isinstance(data, dict) and "ok" not in data:
            data = {"ok": True, **data}  # every answer says how it went, first
        if data is not None:
            _write_stdout(render.json_text(data))
        elif not text_requested:  # a command that printed nothing still answers
            _write_stdout(render.json_text({"ok": True}))
        return
    if error is None:
        error = {"code": "command.failed",
                 "message": f"{failed_command or 'the command'} failed: see the other fields"}
    if isinstance(data, dict):
        data = dict(data)
        data["ok"] = False
        data.setdefault("error", error)
    else:
        data = {"ok": False, "error": error}
    _write_stdout(render.json_text(data))


def _write_stdout(text: str) -> None:
    try:
        click.echo(text)
    except OSError as problem:
        if problem.errno != errno.EPIPE:
            raise
        render.silence_stdout()


def _choose_language(ctx: click.Context, param: Optional[click.Parameter],
                     value: Optional[str]) -> str:
    language = value or language_from_environment()
    set_language("en" if render.holding_json() else language)  # JSON is never translated
    return language


@click.group(
    cls=RootGroup,
    help=N_("Get this machine ready for deep learning, and prove that it is."),
    context_settings={"help_option_names": ["-h", "--help"]},
)
@option(
    LANG_OPTION,
    type=click.Choice(LANGUAGES),
    callback=_choose_language,
    is_eager=True,
    expose_value=False,
    help=N_("Language of messages, before or after the command (default: CNNSETUP_LANG, "
            "else the system locale)."),
)
@click.version_option(__version__, "--version", prog_name="cnnsetup", message="%(prog)s %(version)s",
                      cls=Option, help=N_("Show the version and exit."))
def cli() -> None:
    pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run cnnsetup on `argv` and return its exit status (tests call this directly)."""
    return cli.main(args=list(argv) if argv is not None else None, prog_name="cnnsetup",
                    standalone_mode=False)
