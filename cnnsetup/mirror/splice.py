"""Minimal edits: the switched .condarc as the original text with only the changed keys replaced.

condarc_edit changes the ruamel.yaml document; dumping the whole document would re-indent every
list, also `envs_dirs` and keys cnnsetup never edits. So the file is cut into top-level pieces,
each a key's line(s) up to the next top-level key (the comment lines just above a key belong to the
piece before it, which is where ruamel.yaml keeps them too), plus the head before the first key.
A piece whose value and full-line comments are the same before and after the edit is copied from
the original byte for byte; only the other pieces come from the dump, written in the file's own
list indentation (conda's, `  - item`, when the file has no block list).

`splice(original, document)` returns the new text, or None when the pieces cannot be matched up
(the caller then writes the plain dump, which is still correct, only less minimal; it does the
same when the bytes it would write do not read back as meant).
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from typing import Optional

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from cnnsetup.mirror import yaml_io


@dataclass(frozen=True)
class Style:
    """ruamel.yaml's indent settings: `offset` is the column of `-` under its key, `sequence` the
    column of the item's text, `mapping` the indent of a nested mapping's keys."""

    mapping: int = 2
    sequence: int = 4
    offset: int = 2


CONDA_STYLE = Style()


def detect_style(text: str, document: CommentedMap) -> Style:
    """The list and mapping indentation the file already uses (the most common one wins; the first
    seen on a tie), else conda's."""
    lines = text.split("\n")
    offsets: list[int] = []
    mappings: list[int] = []
    for key in document:
        value = document[key]
        if not isinstance(value, (CommentedSeq, CommentedMap)) or not len(value):
            continue
        if value.fa.flow_style():
            continue
        try:
            if isinstance(value, CommentedSeq):
                row = value.lc.item(0)[0]
                line = lines[row]
                stripped = line.lstrip(" ")
                if stripped.startswith("-"):
                    offsets.append(len(line) - len(stripped))
            else:
                mappings.append(value.lc.key(next(iter(value)))[1])
        except (IndexError, KeyError, TypeError, AttributeError):
            continue
    offset = _most_common(offsets, CONDA_STYLE.offset)
    mapping = _most_common([m for m in mappings if m > 0], CONDA_STYLE.mapping)
    return Style(mapping=mapping, sequence=offset + 2, offset=offset)


def _most_common(values: list[int], default: int) -> int:
    if not values:
        return default
    return max(values, key=lambda v: (values.count(v), -values.index(v)))


def dump(document: CommentedMap, style: Style) -> str:
    """The document as text in `style` (LF line endings)."""
    if style == CONDA_STYLE or not document:
        return yaml_io.dump(document)
    yaml = YAML(typ="rt")
    yaml.indent(mapping=style.mapping, sequence=style.sequence, offset=style.offset)
    yaml.preserve_quotes = True
    yaml.width = sys.maxsize
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()


@dataclass
class _Pieces:
    head: str
    keys: list[str]
    bodies: dict[str, str]
    column: int = 0  # the column every top-level key starts at (0, or the file's own margin)


def _cut(text: str, keys: list[str], starts: list[int], column: int) -> Optional[_Pieces]:
    if len(set(keys)) != len(keys) or starts != sorted(set(starts)):
        return None
    lines = text.splitlines(keepends=True)
    head = "".join(lines[: starts[0]]) if starts else text
    bodies = {}
    for index, key in enumerate(keys):
        end = starts[index + 1] if index + 1 < len(starts) else len(lines)
        bodies[key] = "".join(lines[starts[index]:end])
    return _Pieces(head, keys, bodies, column)


def _pieces_of(text: str, document: CommentedMap) -> Optional[_Pieces]:
    """Cut the text `document` was read from at each top-level key's first line (the positions
    ruamel.yaml recorded); None when the keys cannot be located."""
    starts = []
    columns = set()
    for key in document:
        try:
            row, column = document.lc.key(key)
        except (KeyError, TypeError, AttributeError):
            return None
        columns.add(column)
        starts.append(row)
    if len(columns) > 1:
        return None
    return _cut(text, [str(k) for k in document], starts, columns.pop() if columns else 0)


def _pieces_of_dump(text: str, document: CommentedMap) -> Optional[_Pieces]:
    """Cut a dump of `document` at its top-level keys: in ruamel.yaml's output they are the lines
    that start in column 0 with something other than a comment, a list dash or a marker."""
    keys = [str(k) for k in document]
    starts = [row for row, line in enumerate(text.splitlines())
              if line and line[0] not in " \t#-" and not line.startswith(("...", "%"))]
    if len(starts) != len(keys):
        return None
    return _cut(text, keys, starts, 0)


def _comments(piece: str) -> list[str]:
    """The full-line comments of a piece, in order."""
    return [line.strip() for line in piece.splitlines() if line.strip().startswith("#")]


def _own(piece: str) -> str:
    """A piece's own lines: without the comment and blank lines after its value."""
    lines = piece.splitlines(keepends=True)
    while lines and (not lines[-1].strip() or lines[-1].strip().startswith("#")):
        lines.pop()
    own = "".join(lines)
    return own if own.endswith("\n") or own == piece else own + "\n"


def _shift(piece: str, columns: int) -> str:
    """`piece` with `columns` spaces put before every non-blank line (a file whose keys all start
    at a margin keeps it for the keys cnnsetup writes)."""
    if columns <= 0:
        return piece
    return "".join(" " * columns + line if line.strip() else line
                   for line in piece.splitlines(keepends=True))


@dataclass
class Layout:
    """What splice needs of the original, taken before the edit: its list and mapping style,
    its pieces (None when the keys cannot be located) and each key's value (plain Python)."""

    style: Style
    pieces: Optional[_Pieces]
    values: dict


def layout(original: str, document: CommentedMap) -> Layout:
    """The layout of `original`, read from `document`, its parse, BEFORE any edit (the edit
    moves comments and positions). Taking it from the document the caller already parsed
    saves parsing `original` a second time."""
    return Layout(detect_style(original, document), _pieces_of(original, document),
                  {str(k): yaml_io.plain(v) for k, v in document.items()})


def splice(original: str, document: CommentedMap, old_layout: Optional[Layout] = None
           ) -> Optional[str]:
    """`document` (the edited form of `original`) written as `original` with only the pieces
    that changed replaced. None when the two cannot be matched piece by piece. `old_layout`:
    layout(original, <its parse before the edit>), else `original` is parsed here.

    The text is not parsed back here: the caller checks the bytes it would write (switch's
    _check_rendered) and falls back to the plain dump when they do not read back as meant."""
    if old_layout is None:
        try:
            old_layout = layout(original, yaml_io.load(original, source=""))
        except Exception:  # noqa: BLE001
            return None
    new_text = dump(document, old_layout.style)
    old = old_layout.pieces
    new = _pieces_of_dump(new_text, document)
    if old is None or new is None:
        return None
    # The head (comments, `---`) stays, unless the edit moved comments into it; ruamel.yaml
    # drops comments above a `---` marker, so a head without comments keeps the original's.
    out = [old.head if _comments(new.head) in ([], _comments(old.head)) else new.head]
    for key, value in document.items():
        key = str(key)
        piece = new.bodies[key]
        before = old.bodies.get(key)
        # Same value and same comments: the user's bytes, whatever their style.
        same = before is not None and old_layout.values[key] == yaml_io.plain(value)
        if same and _comments(before) == _comments(piece):
            out.append(before)
        elif same and _comments(_own(before)) == _comments(_own(piece)):
            # Only the comments below it changed (they describe a key put in after it, and go
            # with that key): the key's own lines keep their bytes.
            out.append(_own(before) + _shift(piece[len(_own(piece)):], old.column))
        else:
            out.append(_shift(piece, old.column))
    # A piece copied from the end of a file without a final newline: the next one starts a line.
    text = ""
    for piece in out:
        if text and not text.endswith("\n"):
            text += "\n"
        text += piece
    if original and not original.endswith("\n") and text.endswith("\n"):
        text = text[:-1]  # the file's own style: no newline at the end
    return text
