"""The Chinese catalog speaks with one voice (the rule is in cnnsetup/locale/GLOSSARY.zh.md):
full-width punctuation in Chinese sentences with no spaces around it, half-width only inside
code, commands, paths, URLs, option names, placeholders and numbers; SI unit symbols after a
space in both languages ("3.4 s", never "3.4s" or "3.4 秒"); placeholders and PASS/WARN/FAIL
unchanged. Each failure names the msgid and the rule it breaks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PO_PATH = REPO_ROOT / "cnnsetup" / "locale" / "zh_CN" / "LC_MESSAGES" / "cnnsetup.po"

CJK = "\u3400-\u4dbf\u4e00-\u9fff"
FULL_WIDTH = "，。：；！？（）"
HALF_WIDTH = ",.:;!?()"
UNITS = r"(?:ms|s|min|h|B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|GB/s|MB/s)"
# What may hold half-width characters: masked before the punctuation rules look.
PROTECTED = [
    r"`[^`]*`",                                   # code and commands
    r"[a-z][a-z0-9+.-]*://[^\s`，。；：（）]+",      # URLs
    r"\{[^{}]*\}",                                # placeholders
    r"(?<![\w-])--?[A-Za-z][\w-]*(?:=\S+)?",      # option names
    r"[A-Za-z_][\w.]*\([^()\s]*\)",               # calls: torch.cuda.is_available()
    r"(?:[A-Za-z]:)?[~\w.-]*[/\\][\w.~/\\*-]+",    # paths
    r"\.?[\w-]+(?:\.[A-Za-z0-9_-]+)+",            # file and module names, versions: pip.conf
    r"(?<![\w.])\.[A-Za-z][\w-]*",                # dotfiles: .condarc
    r"\d+(?:[.:]\d+)+",                           # numbers and times: 3.4, 12.8, 08:30
    r"\.\.\.",                                    # an ellipsis after an English word
    r"(?<=[\s，])[.#*o](?= )",                     # a symbol named as a word: ". 为填充"
]
MASK = "X"


def read_catalog(path: Path = PO_PATH) -> list[tuple[str, str]]:
    """(msgid, msgstr) pairs; plural forms give one pair per form."""
    from babel.messages.pofile import read_po

    with path.open("rb") as handle:
        catalog = read_po(handle)
    pairs = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, (tuple, list)) else (message.id,)
        strings = message.string if isinstance(message.string, (tuple, list)) else (message.string,)
        for index, string in enumerate(strings):
            # Chinese has one plural form: it stands for the plural msgid (its placeholders).
            pairs.append((ids[-1] if len(strings) == 1 else ids[min(index, len(ids) - 1)],
                          string or ""))
    return pairs


def mask(text: str) -> str:
    for pattern in PROTECTED:
        text = re.sub(pattern, MASK, text)
    return text


def style_problems(msgid: str, msgstr: str) -> list[str]:
    """Every rule `msgstr` (the Chinese for `msgid`) breaks, each as one sentence."""
    problems: list[str] = []
    where = f"msgid {msgid!r}"
    if re.findall(r"\{[^{}]*\}", msgid) and sorted(re.findall(r"\{[^{}]*\}", msgid)) != sorted(
            re.findall(r"\{[^{}]*\}", msgstr)):
        problems.append(f"{where}: placeholders must stay unchanged "
                        f"({sorted(set(re.findall(r'{[^{}]*}', msgid)))} in the English)")
    for word in ("PASS", "WARN", "FAIL", "SKIP"):
        if re.search(rf"\b{word}\b", msgid) and word not in msgstr:
            problems.append(f"{where}: {word} stays English in the Chinese")
    for text, language in ((msgid, "English"), (msgstr, "Chinese")):
        for found in re.finditer(rf"(?:\d|\}})({UNITS})(?![\w/])", re.sub(r"\{[^{}]*\}", "}", text)):
            problems.append(f"{where}: unit {found.group(1)!r} needs a space after the number "
                            f"in the {language} ('3.4 s', not '3.4s')")
    for found in re.finditer(r"(?:\d|\})\s*(秒|毫秒|兆)", msgstr):
        problems.append(f"{where}: write the SI symbol, not {found.group(1)!r} "
                        "('3.4 s', '120 MB')")
    if not re.search(f"[{CJK}]", msgstr):
        return problems  # no Chinese sentence: a name, a command, PASS
    masked = mask(msgstr)
    for found in re.finditer(rf"[{CJK}{FULL_WIDTH}] *[{re.escape(HALF_WIDTH)}]|"
                             rf"[{re.escape(HALF_WIDTH)}] *[{CJK}]", masked):
        mark = next(ch for ch in found.group(0) if ch in HALF_WIDTH)
        problems.append(f"{where}: half-width {mark!r} in a Chinese sentence (use full-width "
                        f"{FULL_WIDTH}) near {found.group(0)!r}")
    if re.search(r"[.:;!?,]$", masked.rstrip()):
        problems.append(f"{where}: a Chinese sentence ends with half-width "
                        f"{masked.rstrip()[-1]!r} (use full-width)")
    for found in re.finditer(rf"[ \t][{FULL_WIDTH}]|[{FULL_WIDTH}][ \t]", masked):
        problems.append(f"{where}: no space around full-width punctuation near "
                        f"{found.group(0)!r}")
    return problems


@pytest.mark.parametrize("msgid, msgstr, broken", [
    ("Done: {n} files.", "完成: {n} 个文件.", "half-width ':'"),
    ("Done.", "完成.", "ends with half-width '.'"),
    ("It took {seconds} s.", "耗时 {seconds} 秒。", "write the SI symbol"),
    ("It took {seconds}s.", "耗时 {seconds} s。", "needs a space"),
    ("Saved (see {path}).", "已保存 （见 {path}）。", "no space around full-width"),
    ("Run {command}.", "运行 {cmd}。", "placeholders must stay unchanged"),
    ("{verdict}: PASS", "{verdict}：通过", "PASS stays English"),
])
def test_the_checker_catches_each_rule(msgid, msgstr, broken):
    problems = style_problems(msgid, msgstr)
    assert any(broken in p for p in problems), problems
    assert all(msgid in p for p in problems)


@pytest.mark.parametrize("msgid, msgstr", [
    ("Run `conda clean -i`, then {command}.", "运行 `conda clean -i`，然后运行 {command}。"),
    ("Edit ~/.condarc (see https://mirrors.tuna.tsinghua.edu.cn/help/anaconda/).",
     "编辑 ~/.condarc（见 https://mirrors.tuna.tsinghua.edu.cn/help/anaconda/）。"),
    ("Took {seconds:.1f} s at 1.5 GB/s.", "耗时 {seconds:.1f} s，速度 1.5 GB/s。"),
    ("Use --pip to change pip.conf too.", "加上 --pip 也修改 pip.conf。"),
    ("torch 2.13.0 on Python 3.11", "Python 3.11 上的 torch 2.13.0"),
    ("PASS", "PASS"),
])
def test_the_checker_leaves_code_commands_paths_urls_and_numbers_alone(msgid, msgstr):
    assert style_problems(msgid, msgstr) == []


def test_every_chinese_message_follows_the_one_voice_rule():
    problems = [p for msgid, msgstr in read_catalog() if msgstr
                for p in style_problems(msgid, msgstr)]
    assert not problems, "\n" + "\n".join(problems)


def test_the_rule_is_written_in_the_glossary():
    glossary = (REPO_ROOT / "cnnsetup" / "locale" / "GLOSSARY.zh.md").read_text(encoding="utf-8")
    assert "full-width" in glossary and "3.4 s" in glossary
