"""Output for people and for programs: aligned tables, colour (only on a terminal, never with
NO_COLOR), and JSON. Library modules return data; only commands call these."""

from __future__ import annotations

import json
import os
import sys
import unicodedata
from typing import Any, Iterable, Sequence, TextIO

import click

STATUS_COLOURS = {"pass": "green", "warn": "yellow", "fail": "red", "skip": "bright_black"}


def colour_enabled(stream: TextIO | None = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    stream = stream or sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def style(text: str, fg: str | None = None, bold: bool = False, *, err: bool = False) -> str:
    """`text` coloured when the target stream allows it, unchanged otherwise."""
    if not colour_enabled(sys.stderr if err else sys.stdout):
        return text
    return click.style(text, fg=fg, bold=bold)


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print for a person; never fails on a console that cannot show a character."""
    stream = sys.stderr if err else sys.stdout
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        text = text.encode(encoding, errors="replace").decode(encoding, errors="replace")
    click.echo(text, err=err, nl=nl, color=None)


class JsonOutput:
    """The one JSON object a `--json` command prints, held until the command has finished, so
    that `cnnsetup.cli` can still mark it failed (or replace it with the error) and stdout holds
    exactly one object whatever happens."""

    def __init__(self) -> None:
        self.data: Any = None
        self.printed = False

    def put(self, data: Any) -> None:
        if self.printed:
            raise RuntimeError("a command printed two JSON objects; --json promises one")
        self.data, self.printed = data, True


_json_output: JsonOutput | None = None


def hold_json(output: JsonOutput | None) -> None:
    """Send `print_json` to `output` (None: print at once again). Used by `cnnsetup.cli`."""
    global _json_output
    _json_output = output


def holding_json() -> bool:
    """Whether this run prints JSON (then every message in it is English)."""
    return _json_output is not None


def json_text(data: Any) -> str:
    """The JSON text cnnsetup prints: indented, ASCII-only (any console can show it)."""
    return json.dumps(data, indent=2, ensure_ascii=True, default=str)


def print_json(data: Any) -> None:
    """Print one JSON object on stdout (ASCII-only, so any console can show it).

    Under `cnnsetup.cli` with `--json` the object is held and printed once the command ends."""
    if _json_output is not None:
        _json_output.put(data)
        return
    click.echo(json_text(data))


def silence_stdout() -> None:
    """After stdout was closed under us (`cnnsetup ... | head`): later writes, and Python's own
    last flush, go to the null device instead of raising BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def width(text: str) -> int:
    """Columns `text` takes on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, columns: int) -> str:
    """`text` padded with spaces to `columns` terminal columns."""
    return text + " " * max(0, columns - width(text))


def table(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None, indent: int = 0) -> str:
    """Rows aligned in columns (CJK-aware); the last column is never padded."""
    all_rows = [list(header)] if header else []
    all_rows += [list(r) for r in rows]
    if not all_rows:
        return ""
    ncols = max(len(r) for r in all_rows)
    widths = [max((width(r[i]) for r in all_rows if i < len(r)), default=0) for i in range(ncols)]
    lines = []
    for row in all_rows:
        cells = [pad(cell, widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append(" " * indent + "  ".join(cells).rstrip())
    return "\n".join(lines)


def key_values(pairs: Iterable[tuple[str, str]], indent: int = 2) -> str:
    """"label  value" lines with the values aligned."""
    return table([[k, v] for k, v in pairs], indent=indent)


class ProgressLine:
    """A one-line progress bar on stderr, redrawn in place: "  training cpu  [#####-----]  50%".

    Fed with the worker's events ("DEVICE DONE TOTAL"); only used when stderr is a terminal."""

    def __init__(self, columns: int = 30) -> None:
        self.columns = columns
        self.shown = False

    def event(self, line: str) -> None:
        parts = line.split()
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            return
        device, done, total = parts[0], int(parts[1]), max(1, int(parts[2]))
        filled = self.columns * done // total
        bar = "#" * filled + "-" * (self.columns - filled)
        from cnnsetup.i18n import _

        label = _("training on {device}").format(device=device)
        sys.stderr.write(f"\r  {label}  [{bar}] {100 * done // total:3d}%")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * (self.columns + 40) + "\r")
            sys.stderr.flush()


def wrap(text: str, columns: int) -> list[str]:
    """`text` in lines of at most `columns` terminal columns. Breaks at spaces, and between two
    CJK characters (Chinese has no spaces); a word longer than a line (a URL, a path) is kept
    whole rather than cut, so that it can still be copied."""
    lines: list[str] = []
    line = ""
    for token in _tokens(text):
        candidate = line + token
        if width(candidate.rstrip()) <= columns or not line.strip():
            line = candidate
            continue
        lines.append(line.rstrip())
        line = token.lstrip()
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _tokens(text: str) -> list[str]:
    """Words with their trailing spaces; every CJK character (and the punctuation after it) alone."""
    tokens: list[str] = []
    current = ""
    for ch in text:
        wide = unicodedata.east_asian_width(ch) in "WF"
        if wide and current and not current.endswith(" ") and unicodedata.category(ch).startswith("P"):
            current += ch  # keep CJK punctuation with what it follows
            tokens.append(current)
            current = ""
        elif wide:
            if current:
                tokens.append(current)
            current = ch
        elif current and (current.endswith(" ") and ch != " " or
                          unicodedata.east_asian_width(current[-1]) in "WF"):
            tokens.append(current)
            current = ch
        else:
            current += ch
    if current:
        tokens.append(current)
    return tokens
