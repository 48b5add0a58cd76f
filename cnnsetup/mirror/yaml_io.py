"""The one YAML object cnnsetup reads and writes .condarc with, configured as conda's own writer.

conda rewrites its files with ruamel.yaml in round-trip mode and `indent(mapping=2, sequence=4,
offset=2)`: using the same settings means a file cnnsetup touched looks like one conda touched.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from cnnsetup.errors import ConfigError
from cnnsetup.i18n import _


def make_yaml() -> YAML:
    """A round-trip YAML object with conda's settings: comments, order and quotes survive."""
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long URL or comment onto two lines
    return yaml


def load(text: str, *, source: str) -> CommentedMap:
    """Parse .condarc text into a round-trip document; an empty file is an empty mapping.

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
        return CommentedMap()
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
        return ""
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
