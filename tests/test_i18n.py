"""Every message exists in Chinese and English; the language follows --lang, CNNSETUP_LANG, then
the locale; output never crashes on a console that cannot show a character."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cnnsetup import i18n
from cnnsetup.i18n import UNTRANSLATED_MARK, language_from_environment
from cnnsetup.mirror import registry
from tests.conftest import REPO_ROOT, run_cnnsetup


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, "en"),
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "zh_TW.Big5"}, "zh"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LC_ALL": "zh_CN.GBK", "LANG": "en_US.UTF-8"}, "zh"),
        ({"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
        ({"LANGUAGE": "en_US:zh_CN", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"CNNSETUP_LANG": "en", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"CNNSETUP_LANG": "zh"}, "zh"),
        ({"LC_ALL": "", "LANG": "zh_CN.UTF-8"}, "zh"),  # empty variables are skipped, as gettext does
    ],
)
def test_language_follows_the_environment_the_way_gettext_reads_it(env, expected):
    assert language_from_environment(env, platform="linux") == expected


def test_on_windows_the_ui_language_decides_when_no_variable_is_set(monkeypatch):
    monkeypatch.setattr(i18n, "_windows_ui_language", lambda: "zh_CN")
    assert language_from_environment({}, platform="win32") == "zh"
    monkeypatch.setattr(i18n, "_windows_ui_language", lambda: "en_GB")
    assert language_from_environment({}, platform="win32") == "en"


def test_the_catalog_is_complete_and_the_compiled_catalog_is_up_to_date():
    pytest.importorskip("babel")
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "update_catalog.py"), "--check"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_lang_option_switches_help_and_click_messages_to_chinese(invoke):
    result = invoke("--lang", "zh", "mirror", "--help")
    assert result.exit_code == 0
    assert "用法" in result.stdout
    assert "镜像源" in result.stdout


def test_lang_en_keeps_english_even_under_a_chinese_locale(invoke):
    result = invoke("--lang", "en", "mirror", "--help", env={"LANG": "zh_CN.UTF-8"})
    assert result.exit_code == 0
    assert "Usage:" in result.stdout
    assert "Point conda (and pip) at a mirror" in result.stdout


def test_chinese_locale_is_used_without_the_option():
    done = run_cnnsetup("mirror", "tsinghua", "--dry-run", env={"LANG": "zh_CN.UTF-8"})
    assert done.returncode == 0, done.stderr
    assert "清华" in done.stdout


def test_usage_errors_are_translated_too():
    done = run_cnnsetup("--lang", "zh", "mirror", "no-such-mirror")
    assert done.returncode == 2
    assert "no-such-mirror" in done.stderr
    assert "tsinghua" in done.stderr
    assert "Unknown mirror" not in done.stderr


# Every command, and the message paths the Chinese check walks: all of them under LANG.
CHINESE_COMMANDS = [
    ["--help"],
    ["mirror", "--help"],
    ["mirror", "list"],
    ["mirror", "tsinghua", "--dry-run"],
    ["mirror", "--url", "http://127.0.0.1:9/mirror", "--dry-run"],
    ["mirror", "tsinghua", "--no-clean"],
    ["mirror", "tsinghua", "--no-clean"],
    ["mirror", "official", "--no-clean"],
    ["mirror", "restore"],
    ["mirror", "restore"],
    ["mirror", "status"],
    ["mirror", "test", "--url", "http://127.0.0.1:9/mirror", "--timeout", "0.5"],  # loopback only
    ["info"],
    ["torch-command"],
    ["torch-command", "--cuda", "12.8", "--mirror", "aliyun"],
    ["explain"],
    ["explain", "--input", "5x5x3", "--kernel", "3", "--stride", "2", "--pad", "1", "--filters", "2"],
    ["explain", "--input", "10x10x1", "--kernel", "3", "--stride", "2"],
    ["explain", "--input", "4x4x1", "--pool", "max", "--kernel", "2"],
    # No CUDA here: verify's own words for a device that fails, its report written. Its words
    # for a pass (the table of a training run) come with onboard's verify step below.
    ["verify", "--device", "cuda", "--report", "{tmp}/me.json"],
    ["onboard", "--mirror", "tsinghua", "--report", "{tmp}/onboard.json"],
    ["report", "{tmp}"],  # a machine that failed, and onboard's that passed
]

# --lang is read by the root group, before the command runs: under it every command runs once
# (each of mirror's too), to show that the choice reaches the command's own words, and verify
# trains, for the words of a pass shown by verify itself and the class table of a machine that
# passed. Together with the list above, every message path is walked in Chinese.
LANG_OPTION_COMMANDS = [
    ["--help"],
    ["mirror", "list"],
    ["mirror", "tsinghua", "--dry-run"],
    ["mirror", "--url", "http://127.0.0.1:9/mirror", "--dry-run"],
    ["mirror", "restore"],
    ["mirror", "status"],
    ["mirror", "test", "--url", "http://127.0.0.1:9/mirror", "--timeout", "0.5"],  # loopback only
    ["info"],
    ["torch-command"],
    ["explain", "--input", "10x10x1", "--kernel", "3", "--stride", "2"],
    ["verify", "--device", "cpu", "--report", "{tmp}/me.json"],
    ["report", "{tmp}"],
    ["onboard", "--mirror", "nowhere"],  # its own refusal, before any step
]


HALF_WIDTH_AROUND_CHINESE = re.compile(r"\([^()\n]*[\u4e00-\u9fff][^()\n]*\)")


SPACE_AFTER_FULL_WIDTH = re.compile(r".{0,12}[，。：；！？] +\S.{0,12}")


def _holds_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.mark.parametrize("how", ["LANG", "--lang"])
def test_chinese_output_holds_no_untranslated_message(how, tmp_path):
    env = {"CNNSETUP_I18N_CHECK": "1"}
    prefix: list[str] = []
    commands = CHINESE_COMMANDS
    if how == "LANG":
        env["LANG"] = "zh_CN.UTF-8"
    else:
        prefix, commands = ["--lang", "zh"], LANG_OPTION_COMMANDS
    for args in commands:
        args = [a.replace("{tmp}", str(tmp_path)) for a in args]
        done = run_cnnsetup(*prefix, *args, env=env)
        output = done.stdout + done.stderr
        assert UNTRANSLATED_MARK not in output, (args, output)
        assert "Traceback" not in output, (args, output)
        assert _holds_chinese(output), (args, output)  # the choice reached this command
        # One voice, also where code composes the text: Chinese words in brackets take
        # full-width ones ("2.13.0+cpu (仅 CPU)" was), and no space follows full-width
        # punctuation ("修复方法： cmd", "用法： cnnsetup" were).
        assert not HALF_WIDTH_AROUND_CHINESE.findall(output), (
            args, HALF_WIDTH_AROUND_CHINESE.findall(output))
        assert not SPACE_AFTER_FULL_WIDTH.findall(output), (
            args, SPACE_AFTER_FULL_WIDTH.findall(output))


class _Answers(BaseHTTPRequestHandler):
    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_ranking_of_every_mirror_is_chinese_too(invoke, monkeypatch):
    """`mirror test` without --url probes every mirror's real address, which tests never reach:
    here every mirror (upstream too) lives on loopback, one answering and the others refused."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    live, dead = f"http://127.0.0.1:{server.server_address[1]}", "http://127.0.0.1:9"
    monkeypatch.setattr(registry, "MIRRORS", tuple(
        dataclasses.replace(m, defaults_base=(live if m.name == "tsinghua" else dead)
                            if m.defaults_base else None,
                            cloud_base=(live if m.name == "tsinghua" else dead)
                            if m.cloud_base else None)
        for m in registry.MIRRORS))
    monkeypatch.setenv("CNNSETUP_I18N_CHECK", "1")
    try:
        result = invoke("--lang", "zh", "mirror", "test", "--timeout", "2")
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, result.output
    assert "cnnsetup mirror tsinghua" in result.stdout
    assert UNTRANSLATED_MARK not in result.output, result.output
    assert _holds_chinese(result.output), result.output


def test_every_command_is_shown_in_chinese_both_ways():
    """Both lists name every command, and each of mirror's."""
    import click

    from cnnsetup.cli import cli

    context = click.Context(cli)
    mirror = cli.get_command(context, "mirror")
    names = mirror.list_commands(click.Context(mirror, parent=context))
    # `mirror auto` probes the real mirrors: its words are `mirror NAME`'s and `mirror test`'s.
    every = {(name,) for name in cli.list_commands(context)} | {
        ("mirror", name) for name in names if name != "auto"} | {
        ("mirror", "NAME"), ("mirror", "by-url")}

    def named(commands):
        seen = set()
        for args in commands:
            words = [a for a in args if not a.startswith("-")]
            if args[:2] == ["mirror", "--url"]:
                seen.add(("mirror", "by-url"))  # `mirror --url BASE`
            elif words and words[0] == "mirror" and len(words) > 1:
                seen.add(("mirror", words[1] if words[1] in names else "NAME"))
            if words:
                seen.add((words[0],))
        return seen

    assert every <= named(CHINESE_COMMANDS), every - named(CHINESE_COMMANDS)
    assert every <= named(LANG_OPTION_COMMANDS), every - named(LANG_OPTION_COMMANDS)


@pytest.mark.parametrize("encoding", ["gbk", "ascii"])
def test_output_never_crashes_on_a_narrow_console(encoding):
    for args in (["--lang", "zh", "mirror", "list"], ["--lang", "zh", "--help"],
                 ["--lang", "zh", "mirror", "tsinghua", "--dry-run"],
                 ["--lang", "zh", "mirror", "nope"]):
        done = run_cnnsetup(*args, env={"PYTHONIOENCODING": encoding})
        assert done.returncode in (0, 2), (args, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        assert "UnicodeEncodeError" not in done.stderr


def test_the_check_mode_marks_a_message_the_catalog_lacks(monkeypatch):
    from cnnsetup.i18n import _, set_language

    monkeypatch.setenv("CNNSETUP_I18N_CHECK", "1")
    set_language("zh")
    try:
        assert _("A message nobody translated").startswith(UNTRANSLATED_MARK)
        assert not _("Usage:").startswith(UNTRANSLATED_MARK)
    finally:
        set_language("en")


def test_the_language_cnnsetup_chose_does_not_pass_for_the_users_choice(monkeypatch):
    """set_language writes LANGUAGE for click; the next run in the same process (a test, an
    embedding program) still reads the user's own environment."""
    from cnnsetup.i18n import set_language

    monkeypatch.setenv("LANG", "C.UTF-8")
    set_language("zh")
    try:
        assert language_from_environment() == "en"
        monkeypatch.setenv("LANGUAGE", "zh_TW")  # the user's own, set after ours
        assert language_from_environment() == "zh"
    finally:
        set_language("en")


def test_root_help_follows_cnnsetup_lang_in_process(invoke):
    result = invoke("--help", env={"CNNSETUP_LANG": "zh"})
    assert result.exit_code == 0 and "用法" in result.stdout


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("path", [[], ["mirror"]])
def test_command_lists_show_whole_first_sentences(invoke, lang, path):
    # click cut each summary at 45 characters: in Chinese, which has no spaces, down to "...",
    # and `mirror test` showed nothing at all; its headings kept a half-width colon.
    result = invoke("--lang", lang, *path, "--help")
    assert result.exit_code == 0, result.output
    commands = result.stdout.split("Commands:" if lang == "en" else "命令：", 1)[1]
    assert "..." not in commands and "…" not in commands, commands
    if lang == "zh":
        assert "选项：" in result.stdout and "选项:" not in result.stdout
