"""The one YAML object cnnsetup reads and writes .condarc with, configured as conda's own writer.

conda rewrites its files with ruamel.yaml in round-trip mode and `indent(mapping=2, sequence=4,
offset=2)`: using the same settings means a file cnnsetup touched looks like one conda touched.
"""

from __future__ import annotations

import io
import re
import sys
from dataclasses import dataclass
from typing import Any, Optional

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken

from cnnsetup.errors import ConfigError
from cnnsetup.i18n import _


def make_yaml() -> YAML:
    """A round-trip YAML object with conda's settings: comments, order and quotes survive."""
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    yaml.width = sys.maxsize  # never fold a long value, list or comment onto two lines
    return yaml


def load(text: str, *, source: str, first_line: int = 1) -> CommentedMap:
    """Parse .condarc text into a round-trip document; an empty file is an empty mapping, which
    keeps the comments of a file that holds nothing else, to write them back before new keys.
    `first_line` is the file's line number of the text's first line (for messages).

    Raises ConfigError, with line, column and what conda does with such a file (`describe`)."""
    try:
        document = make_yaml().load(text)
    except YAMLError as error:
        raise ConfigError(describe(error, text, source, first_line=first_line).message()) from None
    if document is None:
        document = CommentedMap()
        comments = _comment_lines(text)
        if comments:
            document.ca.comment = [None, [CommentToken(comments, CommentMark(0), None)]]
        return document
    if not isinstance(document, CommentedMap):
        raise ConfigError(
            _("{source} must hold a YAML mapping (key: value lines), not a {kind}.").format(
                source=source, kind=type(document).__name__
            )
        )
    return document


@dataclass
class YamlProblem:
    """A YAML error in plain words: where (1-based line and column), what, and what conda
    26.x does with such a file: "refuses" to start (exit 1, the error printed) or "skips" the
    file with a warning (checked with conda 26.7.1: duplicate keys and structure errors stop it;
    tabs, unterminated quotes and other scanner errors, and NUL or control characters, are
    skipped as "invalid yaml")."""

    source: str
    line: Optional[int]
    column: Optional[int]
    problem: str
    conda: str  # "refuses" or "skips"
    name: str  # the YAML library's error class, e.g. "DuplicateKeyError"

    def where(self) -> str:
        if self.line is None:
            return self.source
        return _("{source}, line {line}, column {column}").format(
            source=self.source, line=self.line, column=self.column)

    def conda_words(self) -> str:
        if self.conda == "refuses":
            return _("conda itself refuses to start with this file.")
        return _("conda itself skips this file with a warning, as if it were not there.")

    def message(self) -> str:
        return _("{where}: {problem}. {conda}").format(
            where=self.where(), problem=self.problem, conda=self.conda_words())


def describe(error: Exception, text: str, source: str, *, first_line: int = 1) -> YamlProblem:
    """The one place a YAML error becomes words, for every command that reads a .condarc (mirror
    NAME, mirror list, mirror status, info): never the library's raw repr."""
    from ruamel.yaml.reader import ReaderError
    from ruamel.yaml.scanner import ScannerError

    name = type(error).__name__
    offset = first_line - 1
    if isinstance(error, ReaderError):
        line, column = position_of_char(text, error.position)
        character = error.character
        code = f"U+{character:04X}" if isinstance(character, int) else repr(character)
        if character == 0:
            problem = _("the file holds a NUL byte (U+0000), which YAML does not allow")
        else:
            problem = _("the file holds the control character {code}, which YAML does not "
                        "allow").format(code=code)
        return YamlProblem(source, line + offset, column, problem, "skips", name)
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line = mark.line + 1 + offset if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    detail = str(getattr(error, "problem", None) or getattr(error, "context", None)
                 or str(error).splitlines()[0])
    conda = "skips" if isinstance(error, ScannerError) else "refuses"
    duplicate = re.search(r'duplicate key "(.*?)"', detail)
    if duplicate:
        problem = _("the key {key} appears twice").format(key=duplicate.group(1))
    elif "'\\t'" in detail or "\t" in detail:
        problem = _("YAML does not allow tabs: use spaces")
    elif "another document" in detail:
        problem = _("a second document starts here (a `---` line); a .condarc holds one")
    elif "undefined alias" in detail:
        problem = _("{detail} (an alias `*name` needs an anchor `&name` before it)").format(
            detail=detail)
    elif "expected <block end>" in detail:
        problem = _("this line's indentation does not match the lines above it")
    elif "mapping values are not allowed" in detail:
        problem = _("a `key: value` is not allowed here (a missing space or quote before a "
                    "colon?)")
    elif "end of stream" in detail and "quoted" in str(getattr(error, "context", "")):
        problem = _("a quoted value is never closed")
    else:
        context = getattr(error, "context", None)
        problem = f"{detail} ({context})" if context and context != detail else detail
    return YamlProblem(source, line, column, problem, conda, name)


def position_of_char(text: str, index: int) -> tuple[int, int]:
    """1-based (line, column) of the character at `index` in `text`."""
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def position_of_byte(data: bytes, index: int) -> tuple[int, int]:
    """1-based (line, column, counted in bytes) of the byte at `index` in `data`."""
    before = data[:index]
    return before.count(b"\n") + 1, index - (before.rfind(b"\n") + 1) + 1


@dataclass
class Markers:
    """A document's `%` directives and `---` start line (with the comments above them), and
    its `...` end line (with what follows), split off so they can be written back as they were."""

    header: str
    body: str
    trailer: str

    @property
    def first_line(self) -> int:
        return self.header.count("\n") + 1


def split_markers(text: str, *, source: str) -> Markers:
    """Split off the document markers of `text` (LF line endings). A marker anywhere else (a
    second document, `...` before more content) is refused: cnnsetup would drop it."""
    lines = text.splitlines(keepends=True)
    header_end = 0
    for i, line in enumerate(lines):
        bare = line.strip()
        if bare.startswith("---") and (bare == "---" or bare[3:4] in (" ", "#")) and \
                (bare == "---" or bare[3:].strip().startswith("#")):
            header_end = i + 1
            break
        if bare and not bare.startswith(("#", "%")):
            break
    trailer_start = len(lines)
    for i in range(len(lines) - 1, header_end - 1, -1):
        bare = lines[i].strip()
        if bare == "..." or bare.startswith("... #"):
            trailer_start = i
            break
        if bare and not bare.startswith("#"):
            break
    for number, line in enumerate(lines[header_end:trailer_start], start=header_end + 1):
        if line.startswith(("%", "---", "...")) and (len(line.rstrip()) == 3 or line[3:4] in " \t#"
                                                     or line.startswith("%")):
            raise ConfigError(_(
                "{source}, line {line}: a YAML document marker ({marker}) in the middle of the "
                "file; cnnsetup would drop it, so it left the file untouched. A .condarc holds "
                "one document: remove the marker by hand if it is not needed."
            ).format(source=source, line=number, marker=line.strip()[:3]))
    return Markers("".join(lines[:header_end]), "".join(lines[header_end:trailer_start]),
                   "".join(lines[trailer_start:]))


def dump(document: CommentedMap) -> str:
    """The document as text, LF line endings."""
    if not document:
        return "".join(str(t.value) for t in _start_comments(document))
    stream = io.StringIO()
    make_yaml().dump(document, stream)
    return stream.getvalue()


def plain(value: Any) -> Any:
    """A plain-Python copy (dict, list, scalars) of a round-trip value, for comparisons."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def new_seq(items: list[str]) -> CommentedSeq:
    """A block-style YAML list."""
    return CommentedSeq(items)


def _comment_lines(text: str) -> str:
    """The comment lines (and blank lines between them) of a document that holds nothing else.

    `%YAML` directives and `---` / `...` markers are left out: cnnsetup writes no markers."""
    lines = [line for line in text.splitlines()
             if not line.startswith(("%", "---", "...")) and not line.lstrip("\ufeff").strip()
             or line.lstrip("\ufeff").lstrip().startswith("#")]
    while lines and not lines[0].strip():
        lines.pop(0)
    return "".join(line.lstrip("\ufeff") + "\n" for line in lines)


def _start_comments(document: CommentedMap) -> list:
    comment = document.ca.comment
    return list(comment[1]) if comment and len(comment) > 1 and comment[1] else []
