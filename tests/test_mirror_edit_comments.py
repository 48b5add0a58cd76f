"""Switching mirrors keeps the user's comments where they were, and A -> B -> A gives back A."""

from __future__ import annotations

import re

import pytest

from cnnsetup.mirror import condarc_edit, registry, yaml_io

TUNA = "https://mirrors.tuna.tsinghua.edu.cn/anaconda"
USTC = "https://mirrors.ustc.edu.cn/anaconda"

# The TUNA help page's template as students paste it, with notes between and after the blocks.
TUNA_NOTES = f"""\
# 清华镜像 (TUNA) 配置，抄自帮助页
# see {TUNA}/ for the help page
channels:
  - defaults   # 通过 default_channels 解析
show_channel_urls: true
default_channels:
  - {TUNA}/pkgs/main
  - {TUNA}/pkgs/r
  - {TUNA}/pkgs/msys2
# pip settings live in pip.ini (pip 的设置不在这里)
custom_channels:
  conda-forge: {TUNA}/cloud
  pytorch: {TUNA}/cloud
  bioconda: {TUNA}/cloud
# 以上是镜像设置 -- notes after custom_channels
# second line of the notes

# 不要自动激活 base
auto_activate_base: false  # 学校机房要求
envs_dirs:
  - D:/conda/envs
"""


def switched(text: str, *names: str, windows: bool = False) -> str:
    """`text` after switching to each mirror in turn, as `cnnsetup mirror NAME` writes it."""
    for name in names:
        document = yaml_io.load(text, source=".condarc")
        mirror = registry.get(name)
        assert mirror is not None
        condarc_edit.apply_mirror(document, mirror, windows=windows)
        text = yaml_io.dump(document)
    return text


def data(text: str) -> dict:
    return yaml_io.plain(yaml_io.load(text, source=".condarc"))


def full_line_comments(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("#")]


def line_before(text: str, line: str) -> str:
    lines = text.splitlines()
    return lines[lines.index(line) - 1]


@pytest.mark.parametrize("name", ["tsinghua", "bfsu", "sjtu", "aliyun", "ustc", "official"])
@pytest.mark.parametrize("windows", [False, True])
def test_every_full_line_comment_survives_any_switch(name, windows):
    after = switched(TUNA_NOTES, name, windows=windows)
    assert full_line_comments(after) == full_line_comments(TUNA_NOTES)
    # The notes still come right before the key they describe.
    assert line_before(after, "# 不要自动激活 base") == ""
    assert after.index("# 不要自动激活 base\nauto_activate_base: false  # 学校机房要求\n") > 0
    assert data(after)["auto_activate_base"] is False


def test_comment_after_a_shortened_list_stays_after_it():
    # Linux drops msys2: the note below the list moves up to the new last item.
    text = TUNA_NOTES.replace("pkgs/msys2\n", "pkgs/msys2  # Windows 才需要\n")
    after = switched(text, "bfsu")
    assert (
        "  - https://mirrors.bfsu.edu.cn/anaconda/pkgs/r\n"
        "# pip settings live in pip.ini (pip 的设置不在这里)\n"
        "custom_channels:\n"
    ) in after
    assert "Windows 才需要" not in after  # the inline note on the removed URL goes with it


def test_comment_after_a_lengthened_list_stays_after_it():
    linux = switched(TUNA_NOTES, "tsinghua")
    after = switched(linux, "tsinghua", windows=True)
    assert (
        f"  - {TUNA}/pkgs/r\n  - {TUNA}/pkgs/msys2\n"
        "# pip settings live in pip.ini (pip 的设置不在这里)\n"
    ) in after


def test_inline_comments_on_kept_items_and_entries_stay():
    text = TUNA_NOTES.replace(f"  pytorch: {TUNA}/cloud\n", f"  pytorch: {TUNA}/cloud   # 官方源太慢\n")
    after = switched(text, "bfsu")
    assert "  - defaults   # 通过 default_channels 解析\n" in after
    assert re.search(r"\n  pytorch: https://mirrors\.bfsu\.edu\.cn/anaconda/cloud +# 官方源太慢\n", after)
    # Back on the first mirror, the comment is where it was.
    assert switched(text, "tsinghua", "bfsu", "tsinghua") == switched(text, "tsinghua")


def test_official_after_a_mirror_keeps_the_notes_after_custom_channels():
    after = switched(TUNA_NOTES, "tsinghua", "official")
    assert "default_channels" not in data(after) and "custom_channels" not in data(after)
    assert (
        "show_channel_urls: true\n"
        "# pip settings live in pip.ini (pip 的设置不在这里)\n"
        "# 以上是镜像设置 -- notes after custom_channels\n"
        "# second line of the notes\n"
        "\n"
        "# 不要自动激活 base\n"
        "auto_activate_base: false  # 学校机房要求\n"
    ) in after


def test_removing_the_first_entry_keeps_the_comments_below_it():
    text = f"""\
custom_channels:
  conda-forge: {TUNA}/cloud
  # 我自己的频道
  my-lab: https://lab.example.edu/conda
"""
    after = switched(text, "official")
    assert data(after)["custom_channels"] == {"my-lab": "https://lab.example.edu/conda"}
    assert "  # 我自己的频道\n  my-lab: https://lab.example.edu/conda\n" in after


def test_removing_the_first_key_keeps_the_comments_below_it():
    text = f"""\
# header
channel_alias: {TUNA}
# 下面是我的频道
channels:
  - conda-forge
"""
    after = switched(text, "tsinghua")
    assert "channel_alias" not in data(after)
    assert after.startswith("# header\n# 下面是我的频道\nchannels:\n  - conda-forge\n")


def test_removed_alias_and_multichannel_leave_their_neighbours_comments():
    text = f"""\
channels:
  - defaults
channel_alias: {TUNA}  # 旧教程
# keep me: about ssl
ssl_verify: truststore
custom_multichannels:
  defaults:
    - {TUNA}/pkgs/main
    # keep me too
  my-group:
    - https://lab.example.edu/conda
"""
    after = switched(text, "official")
    assert "channel_alias" not in data(after)
    assert data(after)["custom_multichannels"] == {"my-group": ["https://lab.example.edu/conda"]}
    assert "# keep me: about ssl\nssl_verify: truststore\n" in after
    assert "# keep me too" in after
    assert "旧教程" not in after


def test_a_duplicate_channel_goes_but_the_comments_below_it_stay():
    text = f"""\
channels:
  - {TUNA}/pkgs/main
  - {TUNA}/pkgs/free   # 旧地址
  # 下面是 conda-forge
  - conda-forge
"""
    after = switched(text, "tsinghua")
    assert data(after)["channels"] == ["defaults", "conda-forge"]
    assert "  - defaults\n  # 下面是 conda-forge\n  - conda-forge\n" in after


# Inline comments on lines that B removes cannot come back (B has no line to hold them), and a
# comment right above a key that B removes cannot be told apart, in B, from one above the key
# after it: the round trips below start from files where neither happens.
PAIRS = [("tsinghua", "ustc"), ("tsinghua", "official"), ("bfsu", "sjtu"), ("ustc", "tsinghua"),
         ("official", "aliyun"), ("sjtu", "official"), ("nju", "ustc")]


# `official` removes both default_channels and custom_channels: a note between them is, in B, one
# block with the notes after custom_channels.
NOTES_AFTER_BLOCKS = TUNA_NOTES.replace("# pip settings live in pip.ini (pip 的设置不在这里)\n", "")


ROUND_TRIPS = [pytest.param(text, a, b, id=f"{label}-{a}-{b}")
               for label, text in (("notes", TUNA_NOTES), ("after-blocks", NOTES_AFTER_BLOCKS))
               for a, b in PAIRS if label == "after-blocks" or "official" not in (a, b)]


@pytest.mark.parametrize("text, a, b", ROUND_TRIPS)
@pytest.mark.parametrize("windows", [False, True])
def test_a_then_b_then_a_gives_back_a_byte_for_byte(text, a, b, windows):
    after_a = switched(text, a, windows=windows)
    after_b = switched(after_a, b, windows=windows)
    assert after_b != after_a
    assert switched(after_b, a, windows=windows) == after_a


def test_tsinghua_ustc_tsinghua_keeps_key_and_entry_order():
    after_a = switched(TUNA_NOTES, "tsinghua")
    after_b = switched(after_a, "ustc")
    assert "pytorch" not in data(after_b)["custom_channels"]
    again = switched(after_b, "tsinghua")
    keys = list(data(again))
    assert keys.index("default_channels") == keys.index("show_channel_urls") + 1
    assert keys.index("custom_channels") == keys.index("default_channels") + 1
    assert list(data(again)["custom_channels"]) == ["conda-forge", "pytorch", "bioconda"]
    assert again == after_a


def test_a_header_above_custom_channels_survives_the_round_trip():
    text = TUNA_NOTES.replace("custom_channels:\n", "# 社区频道 community channels\ncustom_channels:\n")
    after_a = switched(text, "tsinghua")
    assert switched(after_a, "ustc", "tsinghua") == after_a


def test_the_users_own_custom_channel_keeps_its_place():
    text = f"""\
custom_channels:
  my-lab: https://lab.example.edu/conda
  conda-forge: {TUNA}/cloud
  bioconda: {TUNA}/cloud
"""
    after = switched(text, "tsinghua")
    assert list(data(after)["custom_channels"]) == ["my-lab", "conda-forge", "pytorch", "bioconda"]


@pytest.mark.parametrize("text", ["# nothing here\n", "# 还没有配置\n\n# second note\n",
                                  "---\n# after a marker\n"])
def test_a_comment_only_file_keeps_its_comments(text):
    after = switched(text, "tsinghua")
    comments = full_line_comments(text)
    assert full_line_comments(after)[: len(comments)] == comments
    assert after.startswith(comments[0])
    assert data(after)["default_channels"][0] == f"{TUNA}/pkgs/main"


def test_a_comment_only_file_through_the_command(invoke, isolated_home):
    condarc = isolated_home / ".condarc"
    condarc.write_text("# 我的 conda 配置\n", encoding="utf-8")
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 0, result.output
    text = condarc.read_text(encoding="utf-8")
    assert text.startswith("# 我的 conda 配置\nchannels:\n")


def test_a_comment_only_file_unchanged_dumps_to_its_comments():
    document = yaml_io.load("# nothing here\n", source=".condarc")
    assert document == {}
    assert yaml_io.dump(document) == "# nothing here\n"


def test_long_lines_are_never_refolded():
    long_value = "D:/" + "x" * 6000
    long_list = "[" + ", ".join(f"https://lab.example.edu/conda/channel-{i:04d}" for i in range(150)) + "]"
    assert len(long_list) > 6000
    text = f"channels:\n  - defaults\nenvs_dirs:\n  - {long_value}\nwhitelist_channels: {long_list}\n"
    after = switched(text, "tsinghua")
    assert f"  - {long_value}\n" in after
    assert f"whitelist_channels: {long_list}\n" in after


# --- what conda refuses, refused first; minimal edits ------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("channels:\n  - defaults\nchannel_alias:\n  - https://mirrors.tuna.tsinghua.edu.cn/anaconda\n",
     ["line 3", "channel_alias", "has type list", "str"]),
    ("show_channel_urls: maybe\n", ["line 1", "show_channel_urls", "bool"]),
    ("custom_channels:\n  conda-forge:\n    - https://x.example/cloud\n", ["line 2", "custom_channels.conda-forge"]),
    ("custom_multichannels:\n  defaults: https://x.example/pkgs/main\n", ["line 2", "tuple"]),
    ("channel_alias: mirrors.tuna.tsinghua.edu.cn/anaconda\n", ["line 1", "scheme/protocol"]),
    ("default_threads: ${DEFAULT_THREADS}\n", ["line 1", "default_threads", "int"]),
    ("channels:\n  - defaults\n  - [a, b]\n", ["line 3", "channels"]),
], ids=["alias-list", "urls-word", "custom-list", "multichannel-scalar", "alias-no-scheme",
        "threads-variable", "nested-list"])
def test_what_conda_refuses_is_refused_in_its_words_with_the_line(text, words, tmp_path):
    from cnnsetup.errors import ConfigError
    from cnnsetup.mirror.switch import switch

    condarc = tmp_path / "user" / ".condarc"
    condarc.parent.mkdir()
    condarc.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        switch(registry.get("tsinghua"), condarc)
    for word in words:
        assert word in refused.value.message
    assert condarc.read_text(encoding="utf-8") == text
    assert [p.name for p in condarc.parent.iterdir()] == [".condarc"]


def plan_text(text: str, name: str, tmp_path, windows: bool = False) -> str:
    from cnnsetup.mirror.switch import make_plan

    path = tmp_path / "p" / ".condarc"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(text.encode())
    return make_plan(registry.get(name), path, platform="win32" if windows else "linux").new_text


FOUR_SPACES = """\
channels:
    - conda-forge
    - defaults
always_yes: false #!final
# this line describes envs_dirs, below
envs_dirs:
-   D:/envs
pkgs_dirs: [D:/pkgs, E:/pkgs]
"""


def test_keys_the_switch_leaves_alone_keep_their_bytes_and_new_lists_follow_the_file(tmp_path):
    new = plan_text(FOUR_SPACES, "tsinghua", tmp_path)
    assert new.startswith(FOUR_SPACES)  # every original line, byte for byte, in place
    assert f"default_channels:\n    - {TUNA}/pkgs/main\n    - {TUNA}/pkgs/r\n" in new
    # The comment under the #!final key stays there, and A -> B -> A is exact.
    back = plan_text(plan_text(new, "ustc", tmp_path), "tsinghua", tmp_path)
    assert back == new
    official = plan_text(new, "official", tmp_path)
    assert official == FOUR_SPACES + "show_channel_urls: true\n"
