"""click, made to speak the user's language.

Help strings are written in English and marked with `N_()` in the decorators (they are built at
import time, before the language is known); these classes translate them when help is shown.
Every cnnsetup command uses `command`, `group` and `option` from here instead of click's own.
"""

from __future__ import annotations

import functools
import inspect
import re
from typing import Any

import click

from cnnsetup.errors import CnnsetupError
from cnnsetup.i18n import N_, _, label, set_language
from cnnsetup.render import width, wrap


def _translated(text: str | None) -> str | None:
    return _(inspect.cleandoc(text)) if text else text


class Option(click.Option):
    """An option whose help text is translated when shown."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        original = self.help
        self.help = _translated(original)
        try:
            return super().get_help_record(ctx)
        finally:
            self.help = original


class HelpFormatter(click.HelpFormatter):
    """click's help layout, wrapped by display width: a Chinese character takes two columns
    and a line may break between two of them (click counts characters and breaks at spaces)."""

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        for line in _wrap_paragraphs(text, self.width - self.current_indent):
            self.write(f"{indent}{line}\n" if line else "\n")

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        # click writes "Usage:" plus a space; after the full-width "用法：" no space belongs.
        super().write_usage(prog, args, label(_("Usage:")) if prefix is None else prefix)

    def write_heading(self, heading: str) -> None:
        # "Options:" in English, "选项：" in Chinese (click writes a half-width colon after it).
        self.write(" " * self.current_indent + _("{heading}:").format(heading=heading) + "\n")

    def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
        rows = list(rows)
        first_col = min(max((width(first) for first, _ in rows), default=0), col_max) + col_spacing
        text_width = max(self.width - first_col - self.current_indent - 2, 10)
        for first, second in rows:
            self.write(" " * self.current_indent + first)
            if not second:
                self.write("\n")
                continue
            if width(first) <= first_col - col_spacing:
                self.write(" " * (first_col - width(first)))
            else:
                self.write("\n" + " " * (first_col + self.current_indent))
            lines = _wrap_paragraphs(second, text_width) or [""]
            self.write(lines[0] + "\n")
            for line in lines[1:]:
                self.write(" " * (first_col + self.current_indent) + line + "\n")


def _wrap_paragraphs(text: str, columns: int) -> list[str]:
    """Each paragraph (separated by a blank line) re-wrapped; blank lines between them kept."""
    out: list[str] = []
    for number, paragraph in enumerate(text.split("\n\n")):
        if number:
            out.append("")
        out += wrap(" ".join(paragraph.split()), max(columns, 10))
    return out


class Context(click.Context):
    formatter_class = HelpFormatter


# ctx.meta key: the dotted name of the command that runs ("mirror.status"), for cnnsetup.cli.
COMMAND_NAME_KEY = "cnnsetup.command"


# The end of a help text's first sentence (a full stop, full-width or followed by a space), and
# the colon a long first sentence is cut at.
_SENTENCE_END = re.compile(r"。|\.(?=\s)")
_COLON = re.compile(r"：|:(?=\s)")


class Command(click.Command):
    """A command whose help, short help and epilog are translated when shown."""

    context_class = Context

    def invoke(self, ctx: click.Context) -> Any:
        # The innermost command runs last, so the name left here is the one that ran.
        name = ".".join(ctx.command_path.split()[1:]) or ctx.info_name or "cnnsetup"
        ctx.meta[COMMAND_NAME_KEY] = name
        try:
            return super().invoke(ctx)
        except CnnsetupError as error:
            # An error raised without a code of its own gets the command's: "mirror.restore.failed".
            if error.code == CnnsetupError.code:
                error.code = f"{name}.failed"
            raise

    def _with_translated_help(self, method: Any, *args: Any) -> Any:
        saved = (self.help, self.short_help, self.epilog)
        self.help, self.short_help, self.epilog = (_translated(t) for t in saved)
        try:
            return method(*args)
        finally:
            self.help, self.short_help, self.epilog = saved

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._with_translated_help(super().format_help_text, ctx, formatter)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._with_translated_help(super().format_epilog, ctx, formatter)

    def get_short_help_str(self, limit: int = 45) -> str:
        """The first sentence of the translated help, whole: the command list wraps it by display
        width, where click would cut it at `limit` characters (mid-sentence, and in Chinese,
        which has no spaces to cut at, down to "...")."""
        text = " ".join((_translated(self.short_help or self.help) or "").split())
        end = _SENTENCE_END.search(text)
        text = text[:end.start() + 1] if end else text
        colon = _COLON.search(text)
        if width(text) > 2 * limit and colon:  # a long first sentence: up to its colon
            text = text[:colon.start()] + ("。" if colon.group() == "：" else ".")
        return text

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        # click builds --help with its text already translated, and for the root command that
        # happens before --lang is read; keep the English msgid and translate when shown.
        help_option = super().get_help_option(ctx)
        if help_option is not None and not isinstance(help_option, Option):
            help_option.__class__ = Option  # same fields; only get_help_record differs
            help_option.help = HELP_OPTION_TEXT
        return help_option


HELP_OPTION_TEXT = N_("Show this message and exit.")


class Group(Command, click.Group):
    """A group of commands, translated like `Command`; its subcommands are too."""

    command_class = Command
    group_class = type  # subgroups are of the same class as their parent


def command(*args: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("cls", Command)
    return click.command(*args, **kwargs)


def group(*args: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("cls", Group)
    return click.group(*args, **kwargs)


option = functools.partial(click.option, cls=Option)
argument = click.argument

def _json_is_never_translated(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    """JSON is for programs: with --json, every text it holds (and any error) is in English."""
    if value:
        set_language("en")
    return value


json_option = option("--json", "as_json", is_flag=True, is_eager=True,
                     callback=_json_is_never_translated,
                     help=N_("Print one JSON object on stdout (always in English)."))
