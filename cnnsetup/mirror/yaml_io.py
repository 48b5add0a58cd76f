"""The one YAML object cnnsetup reads and writes .condarc with, configured as conda's own writer.

conda rewrites its files with ruamel.yaml in round-trip mode and `indent(mapping=2, sequence=4,
offset=2)`: using the same settings means a file cnnsetup touched looks like one conda touched.
"""

from __future__ import annotations

import io
import sys
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, MarkedYAMLError, YAMLError
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


def load(text: str, *, source: str) -> CommentedMap:
    """Parse .condarc text into a round-trip document; an empty file is an empty mapping, which
    keeps the comments of a file that holds nothing else, to write them back before new keys.

    Raises ConfigError, with line and column, for anything conda itself would choke on."""
    try:
        document = make_yaml().load(text)
    except MarkedYAMLError as error:
        raise ConfigError(_describe(error, source)) from None
    except YAMLError as error:  # duplicate keys and other errors without a position
        raise ConfigError(
            _("{source} is not valid YAML: {problem}").format(source=source, problem=error)
        ) from None
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


def _describe(error: MarkedYAMLError, source: str) -> str:
    mark = error.problem_mark or error.context_mark
    problem = error.problem or error.context or str(error)
    if "duplicate key" in str(error).lower():
        problem = _("the same key appears twice ({problem})").format(problem=problem)
    if mark is None:
        return _("{source} is not valid YAML: {problem}").format(source=source, problem=problem)
    return _("{source}, line {line}, column {column}: {problem}").format(
        source=source, line=mark.line + 1, column=mark.column + 1, problem=problem
    )


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
