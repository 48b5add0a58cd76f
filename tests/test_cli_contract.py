"""One contract for every command, checked by walking the whole click tree: exit status 0
success, 1 failure, 2 usage error; with --json exactly one JSON object on stdout, also on
failure (`ok: false`, `error: {code, message}`); --lang before or after the subcommand; help in
the user's language, the root's included."""

from __future__ import annotations

import json
import re
import socket
import sys

import click
import pytest

from cnnsetup.cli import cli, lang_first, wants_json
from cnnsetup.errors import CnnsetupError
from tests.conftest import REPO_ROOT, run_cnnsetup
from tests.machine_helpers import write_fake_torch

# Mirror names are subcommands of `mirror` resolved on demand; one stands for all of them.
MIRROR_SWITCH = ["mirror", "tsinghua"]


def command_paths() -> list[list[str]]:
    """Every runnable command, found by walking the click tree (a new command is included)."""
    paths: list[list[str]] = []

    def walk(command: click.Command, ctx: click.Context, path: list[str]) -> None:
        if not isinstance(command, click.Group):
            paths.append(path)
            return
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            walk(sub, click.Context(sub, parent=ctx, info_name=name), path + [name])

    walk(cli, click.Context(cli, info_name="cnnsetup"), [])
    return paths + [MIRROR_SWITCH]


def command_of(path: list[str]) -> click.Command:
    ctx = click.Context(cli, info_name="cnnsetup")
    command: click.Command = cli
    for name in path:
        command = command.get_command(ctx, name)
        ctx = click.Context(command, parent=ctx, info_name=name)
    return command


def has_json(path: list[str]) -> bool:
    return any("--json" in p.opts for p in command_of(path).params)


PATHS = command_paths()
JSON_PATHS = [p for p in PATHS if has_json(p)]
ids = " ".join


def one_json_object(stdout: str) -> dict:
    """The JSON object stdout holds, failing unless it is exactly one object and nothing else."""
    data = json.loads(stdout)  # raises on empty output or on two objects
    assert isinstance(data, dict), stdout
    return data


def assert_failure_object(data: dict, code: str | None = None) -> None:
    assert data["ok"] is False, data
    assert isinstance(data["error"]["message"], str) and data["error"]["message"]
    assert re.fullmatch(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*", data["error"]["code"]), data["error"]
    if code is not None:
        assert data["error"]["code"] == code, data["error"]


# --- help, and the language of everything --------------------------------------------------------

@pytest.mark.parametrize("path", [[]] + PATHS, ids=lambda p: ids(p) or "cnnsetup")
def test_help_exits_zero_in_english_and_follows_lang_after_the_command(path, invoke):
    english = invoke(*path, "--help")
    assert english.exit_code == 0 and "Usage:" in english.stdout
    chinese = invoke(*path, "--help", "--lang", "zh")
    assert chinese.exit_code == 0, chinese.output
    assert "用法" in chinese.stdout and "Usage:" not in chinese.stdout


@pytest.mark.parametrize("env", [{"LANG": "zh_CN.UTF-8"}, {"CNNSETUP_LANG": "zh"}],
                         ids=["LANG", "CNNSETUP_LANG"])
def test_the_root_help_follows_the_environment_language(env):
    done = run_cnnsetup("--help", env=env)
    assert done.returncode == 0, done.stderr
    assert "用法" in done.stdout and "命令" in done.stdout
    assert "Get this machine ready" not in done.stdout


def test_lang_is_read_wherever_it_stands():
    assert lang_first(["explain", "--input", "5x5x3", "--lang", "zh"]) == [
        "--lang", "zh", "explain", "--input", "5x5x3"]
    assert lang_first(["mirror", "list", "--lang=en"]) == ["--lang=en", "mirror", "list"]
    assert lang_first(["report", "--", "--lang", "zh"]) == ["report", "--", "--lang", "zh"]
    assert wants_json(["mirror", "list", "--json"]) and not wants_json(["report", "--", "--json"])


def test_a_subcommand_runs_in_the_language_given_after_it(invoke):
    result = invoke("explain", "--input", "5x5x3", "--kernel", "3", "--lang", "zh")
    assert result.exit_code == 0, result.output
    assert "卷积" in result.stdout


def test_an_unknown_language_is_a_usage_error_wherever_it_stands(invoke):
    assert invoke("--lang", "fr", "mirror", "list").exit_code == 2
    assert invoke("mirror", "list", "--lang", "fr").exit_code == 2


# --- usage errors: 2, and one JSON object ---------------------------------------------------------

@pytest.mark.parametrize("path", PATHS, ids=ids)
def test_an_unknown_option_is_a_usage_error(path, invoke):
    result = invoke(*path, "--no-such-option")
    assert result.exit_code == 2
    assert "--no-such-option" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("path", JSON_PATHS, ids=ids)
def test_a_usage_error_with_json_is_one_json_object(path, invoke):
    result = invoke(*path, "--json", "--no-such-option")
    assert result.exit_code == 2
    assert_failure_object(one_json_object(result.stdout), "usage.no_such_option")


def test_an_unknown_command_is_a_usage_error_with_its_code(invoke):
    result = invoke("no-such-command")
    assert result.exit_code == 2 and "no-such-command" in result.stderr


# A value that can never be valid, for every command that takes a value: exit 2, stable code.
NEVER_VALID = {
    "explain": [["--input", "-5x5x3", "--kernel", "3"], ["--input", "0x0x3", "--kernel", "3"],
                ["--input", "5x5x3", "--kernel", "-3"],
                ["--input", "5x5x3", "--kernel", "3", "--stride", "0"]],
    "info": [],
    "mirror.auto": [["--timeout", "-1"]],
    "mirror.by-url": [["--url", "notaurl"]],
    "mirror.list": [],
    "mirror.restore": [],
    "mirror.status": [],
    "mirror.test": [["--timeout", "0"]],
    "mirror.tsinghua": [],
    "onboard": [["--mirror", "nowhere"]],
    "report": [],
    "torch-command": [["--cuda", "bogus"], ["--mirror", "nowhere"]],
    "verify": [["--device", "gpu"], ["--epochs", "0"], ["--ddp", "-1"]],
}


def test_the_never_valid_table_covers_every_command():
    assert sorted(NEVER_VALID) == sorted(".".join(p) for p in PATHS)


def _never_valid_cases():
    for name, cases in NEVER_VALID.items():
        for args in cases:
            key = " ".join([name.replace(".", " "), *args])
            yield pytest.param(name.split("."), args, id=key)


@pytest.mark.parametrize("path, args", list(_never_valid_cases()))
def test_a_value_that_can_never_be_valid_is_a_usage_error(path, args, invoke):
    extra = ["--json"] if has_json(path) else []
    result = invoke(*path, *args, *extra)
    assert result.exit_code == 2, result.output
    if extra:
        data = one_json_object(result.stdout)
        assert_failure_object(data)
        assert data["error"]["code"].startswith("usage."), data["error"]


# --- failures: 1, and one JSON object with ok false and a code -----------------------------------

def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def nothing_answers(monkeypatch):
    """Every mirror probe goes to a closed port on 127.0.0.1."""
    from cnnsetup.mirror import speedtest

    url = f"http://127.0.0.1:{_closed_port()}/repodata.json"
    monkeypatch.setattr(speedtest, "default_targets",
                        lambda mirrors=None: {m: url for m in ("tsinghua", "bfsu", "sjtu", "nju",
                                                               "aliyun", "ustc")})


def _failing_args(name: str, tmp_path) -> list[str] | None:
    broken = tmp_path / "broken.condarc"
    broken.write_text("channels: defaults\n", encoding="utf-8")
    table = {
        "explain": ["--input", "10x10x1", "--kernel", "3", "--stride", "2"],
        "info": [],  # with a torch that cannot be imported (see the test)
        "mirror.auto": ["--timeout", "0.5", "--condarc", str(broken)],
        "mirror.restore": ["--condarc", str(tmp_path / "never-switched.condarc")],
        "mirror.test": ["--timeout", "0.5"],
        "mirror.tsinghua": ["--condarc", str(broken)],
        "mirror.by-url": ["--url", "http://127.0.0.1:9/anaconda", "--condarc", str(broken)],
        "report": [str(tmp_path / "no-reports-here")],
        "verify": ["--device", "cuda"],  # no GPU here: a FAIL, with the report
        # These report what they find and do not fail on their own.
        "mirror.list": None,
        "mirror.status": None,
        "torch-command": None,
    }
    return table[name]


def test_the_failure_table_covers_every_json_command(tmp_path):
    for path in JSON_PATHS:
        _failing_args(".".join(path), tmp_path)  # KeyError for a command added without a case


@pytest.mark.parametrize("path", JSON_PATHS, ids=ids)
def test_a_failure_with_json_is_one_json_object_with_ok_false_and_a_code(
        path, invoke, tmp_path, nothing_answers, monkeypatch):
    name = ".".join(path)
    args = _failing_args(name, tmp_path)
    if args is None:
        pytest.skip(f"{name} has no failure of its own")
    env = None
    if name == "info":
        fake = write_fake_torch(tmp_path / "fake",
                                body="raise OSError('libtorch_cpu.so: cannot open shared object file')\n")
        env = {"PYTHONPATH": f"{fake}:{REPO_ROOT}"}
    if name == "verify":
        pytest.importorskip("torch", reason="verify needs torch")
    result = invoke(*path, *args, "--json", env=env)
    assert result.exit_code == 1, result.output
    assert_failure_object(one_json_object(result.stdout))


def test_an_error_without_a_code_of_its_own_gets_the_commands(invoke, tmp_path):
    result = invoke("mirror", "restore", "--condarc", str(tmp_path / "never.condarc"), "--json")
    assert result.exit_code == 1
    assert_failure_object(one_json_object(result.stdout), "mirror.restore.failed")


def test_a_config_error_keeps_its_code(invoke, tmp_path):
    broken = tmp_path / "broken.condarc"
    broken.write_text("channels: defaults\n", encoding="utf-8")
    result = invoke("mirror", "tsinghua", "--condarc", str(broken), "--json")
    assert result.exit_code == 1
    assert_failure_object(one_json_object(result.stdout), "config.invalid")
    assert broken.read_text(encoding="utf-8") == "channels: defaults\n"


def test_without_json_a_failure_is_on_stderr_and_stdout_holds_no_json(invoke, tmp_path):
    result = invoke("mirror", "restore", "--condarc", str(tmp_path / "never.condarc"))
    assert result.exit_code == 1
    assert "Error:" in result.stderr and "nothing to restore" in result.stderr


# --- successes: 0, and one JSON object that says ok first ----------------------------------------

@pytest.mark.parametrize("args", [
    ["explain", "--input", "5x5x3", "--kernel", "3", "--json"],
    ["explain", "--net", "conv(4,3),relu,maxpool(2),fc(10)", "--input", "8x8x1", "--json"],
    ["explain", "--demo", "--json"],
    ["mirror", "list", "--json"],
    ["mirror", "status", "--json"],
    ["mirror", "tsinghua", "--dry-run", "--json"],
    ["mirror", "--url", "http://127.0.0.1:9/anaconda", "--dry-run", "--offline", "--json"],
    ["torch-command", "--cuda", "cpu", "--json"],
], ids=ids)
def test_a_success_with_json_is_one_json_object_with_ok_true_first(args, invoke):
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    data = one_json_object(result.stdout)
    assert list(data)[0] == "ok" and data["ok"] is True, list(data)[:3]


# --- the mechanism itself, on a command made for the test ----------------------------------------

@pytest.fixture
def probe_command(monkeypatch):
    """A `probe` command added to the tree for one test: behaves as told by --how."""
    from cnnsetup import cli as cli_module
    from cnnsetup.commands.base import command, json_option, option
    from cnnsetup.render import print_json

    @command("probe")
    @option("--how", default="ok")
    @json_option
    def probe(how: str, as_json: bool) -> int:
        if how == "printed-then-raise":
            print_json({"partial": True})
            raise CnnsetupError("late failure", code="probe.late")
        if how == "returns-one":
            print_json({"ok": False, "checks": []})
            return 1
        if how == "returns-one-silently":
            return 1
        if how == "prints-nothing":
            return 0
        if how == "interrupt":
            raise KeyboardInterrupt
        if how == "bug":
            raise ZeroDivisionError("division by zero")
        if how == "broken-pipe":
            raise BrokenPipeError(32, "Broken pipe")
        print_json({"fine": True})
        return 0

    monkeypatch.setitem(cli_module.COMMANDS, "probe", f"{__name__}:_probe")
    monkeypatch.setattr(sys.modules[__name__], "_probe", probe, raising=False)
    return probe


@pytest.mark.parametrize("how, status, code", [
    ("ok", 0, None),
    ("prints-nothing", 0, None),
    ("printed-then-raise", 1, "probe.late"),
    ("returns-one", 1, "command.failed"),
    ("returns-one-silently", 1, "command.failed"),
    ("interrupt", 130, "interrupted"),
    ("bug", 1, "internal.error"),
])
def test_whatever_happens_json_mode_prints_exactly_one_object(how, status, code, invoke,
                                                              probe_command):
    result = invoke("probe", "--how", how, "--json")
    assert result.exit_code == status, result.output
    data = one_json_object(result.stdout)
    if code is None:
        assert data == ({"ok": True, "fine": True} if how == "ok" else {"ok": True})
    else:
        assert_failure_object(data, code)


def test_a_bug_outside_json_mode_still_shows_its_traceback(probe_command):
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["probe", "--how", "bug"])
    assert isinstance(result.exception, ZeroDivisionError)

