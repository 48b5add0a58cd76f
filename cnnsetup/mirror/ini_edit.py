"""One option of an INI file (pip.conf, pip.ini) changed as text, every other byte kept.

pip reads its configuration with Python's `configparser.RawConfigParser` and writes it back
through the same parser (`pip config set`), which drops every comment and blank line. Here the
file stays text: setting an option rewrites the one line that holds it (keeping how the key and
its separator were written) or adds `key = value` right below the section header; removing it
deletes that line and its continuation lines. Nothing else moves, so a comment stays above the
line it describes and the file's line endings are kept.

The rules follow configparser's own reading (Python's `Lib/configparser.py`, `_read`): a section
header is `[name]`; an option line is `key = value` or `key: value`; a line indented deeper than
its option continues the value; lines starting with `#` or `;` are comments. Callers check the
result by reading it back with configparser (see `cnnsetup.mirror.pip`), so a file this module
misreads is refused, never written wrong.
"""

from __future__ import annotations

import re
from typing import Callable, Optional

_SECTION = re.compile(r"\[(?P<header>.+)\]")
_OPTION = re.compile(r"(?P<option>.*?)\s*(?P<sep>[=:])\s*(?P<value>.*)$")
_COMMENT_PREFIXES = ("#", ";")


def line_ending(text: str) -> str:
    """The file's line ending: "\\r\\n" when its first line ends so, else "\\n"."""
    first = text.find("\n")
    return "\r\n" if first > 0 and text[first - 1] == "\r" else "\n"


def _is_blank_or_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith(_COMMENT_PREFIXES)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _find_option(lines: list[str], section: str,
                 matches: Callable[[str], bool]) -> tuple[Optional[int], Optional[tuple[int, int]]]:
    """(index of the section's header line, (first, end) line span of the option) - either None."""
    header_at: Optional[int] = None
    in_section = False
    index = 0
    while index < len(lines):
        line = lines[index]
        if _is_blank_or_comment(line):
            index += 1
            continue
        header = _SECTION.match(line.strip())
        if header and _indent(line) == 0:
            in_section = header.group("header") == section
            if in_section and header_at is None:
                header_at = index
            index += 1
            continue
        option = _OPTION.match(line.strip())
        if in_section and option and matches(option.group("option")):
            end = index + 1
            # Continuation lines: deeper indented than the option; blank lines only count when
            # a deeper line follows them (configparser's empty_lines_in_values).
            probe = end
            while probe < len(lines):
                if not lines[probe].strip():
                    probe += 1
                    continue
                if _indent(lines[probe]) > _indent(line):
                    probe += 1
                    end = probe
                    continue
                break
            return header_at, (index, end)
        index += 1
    return header_at, None


def set_option(text: str, section: str, key: str, value: str,
               matches: Callable[[str], bool]) -> str:
    """`text` with `key = value` in `[section]`: the existing option line (the first that
    `matches`) rewritten in place, else a new line right below the header, else a new section
    at the end. `value` must be one line."""
    if "\n" in value or "\r" in value:
        raise ValueError("an option value must be a single line")
    newline = line_ending(text)
    lines = text.splitlines(keepends=True)
    header_at, span = _find_option(lines, section, matches)
    if span is not None:
        first, end = span
        line = lines[first]
        option = _OPTION.match(line.strip())
        assert option is not None
        lead = line[: _indent(line)]
        ending = line[len(line.rstrip("\r\n")):] or newline
        lines[first:end] = [f"{lead}{option.group('option')} {option.group('sep')} {value}{ending}"]
        return "".join(lines)
    new_line = f"{key} = {value}{newline}"
    if header_at is not None:
        if not lines[header_at].endswith(("\n", "\r")):
            lines[header_at] += newline
        lines.insert(header_at + 1, new_line)
        return "".join(lines)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline
    if lines and lines[-1].strip():
        lines.append(newline)
    lines += [f"[{section}]{newline}", new_line]
    return "".join(lines)


def remove_option(text: str, section: str, matches: Callable[[str], bool]) -> str:
    """`text` without the first option of `[section]` that `matches` (and its continuation
    lines); the text unchanged when there is none."""
    lines = text.splitlines(keepends=True)
    _header_at, span = _find_option(lines, section, matches)
    if span is None:
        return text
    first, end = span
    del lines[first:end]
    return "".join(lines)


def only_empty_sections(text: str) -> bool:
    """True when `text` holds nothing but section headers and blank lines (no option, no
    comment): what is left of a file cnnsetup wrote once its option is removed."""
    for line in text.splitlines():
        if line.strip() and not (_SECTION.match(line.strip()) and _indent(line) == 0):
            return False
    return True
