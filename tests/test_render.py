"""Terminal output helpers: widths and wrapping that count a Chinese character as two columns."""

from __future__ import annotations

import pytest

from cnnsetup.render import pad, table, width, wrap


def test_chinese_characters_take_two_columns():
    assert width("清华源") == 6
    assert width("abc") == 3
    assert pad("源", 4) == "源  "


def test_tables_align_mixed_chinese_and_english():
    first, second = table([["清华", "x"], ["bfsu", "y"]]).splitlines()
    # The second column starts at the same terminal column on both lines.
    assert width(first[:first.index("x")]) == width(second[:second.index("y")]) == 6


@pytest.mark.parametrize("text", [
    "没有 NVIDIA 显卡：torch 将在 CPU 上运行，对本课程来说没有问题（只是训练慢一些）。",
    "pip on PATH belongs to another Python, not to this one: packages it installs are invisible here.",
])
def test_wrapped_lines_fit_and_lose_nothing(text):
    lines = wrap(text, 30)
    assert len(lines) > 1
    assert all(width(line) <= 30 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_a_word_longer_than_the_line_is_kept_whole():
    url = "https://mirrors.tuna.tsinghua.edu.cn/anaconda/pkgs/main"
    assert url in wrap(f"use {url} now", 20)
