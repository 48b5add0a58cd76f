"""The command line as a whole: version, help on every command, exit codes."""

from __future__ import annotations

import pytest

from cnnsetup import __version__
from cnnsetup.cli import COMMANDS, cli, main
from tests.conftest import run_cnnsetup


def test_version_is_printed_and_exits_zero(invoke):
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"cnnsetup {__version__}"


def test_python_dash_m_runs_the_same_program():
    done = run_cnnsetup("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"cnnsetup {__version__}"


def _all_command_paths():
    import click

    paths = [[]]
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        paths.append([name])
        if isinstance(command, click.Group):
            sub_ctx = click.Context(command, parent=ctx)
            paths += [[name, sub] for sub in command.list_commands(sub_ctx)]
    return paths


@pytest.mark.parametrize("path", _all_command_paths(), ids=lambda p: " ".join(p) or "cnnsetup")
def test_every_command_has_help(path, invoke):
    result = invoke(*path, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.stdout


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["no-such-command"]) == 2
    assert "no-such-command" in capsys.readouterr().err


def test_unknown_option_is_a_usage_error(capsys):
    assert main(["--no-such-option"]) == 2
