"""README.md and README.zh.md stay true: every cnnsetup command they show parses, and CI runs
the test command README.md gives."""

from __future__ import annotations

import re
import shlex
import warnings

import click
import pytest

from cnnsetup.cli import cli
from tests.conftest import REPO_ROOT


def _commands(name: str) -> list[str]:
    text = (REPO_ROOT / name).read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("cnnsetup ")]


COMMANDS = sorted(set(_commands("README.md") + _commands("README.zh.md")))


def test_the_readmes_show_commands():
    assert len(COMMANDS) > 20


def _parse(args: list[str]) -> None:
    """Parse `cnnsetup ARGS` as click would (every option, value and choice checked) without
    running the command."""
    ctx = cli.make_context("cnnsetup", list(args))
    command: click.Command = cli
    while isinstance(command, click.Group):
        with warnings.catch_warnings():  # click 8.5 deprecates protected_args; 9.0 folds it in
            warnings.simplefilter("ignore", DeprecationWarning)
            rest = [*getattr(ctx, "protected_args", []), *ctx.args]
        if not rest:
            return
        name, command, rest = command.resolve_command(ctx, rest)
        ctx = command.make_context(name, rest, parent=ctx)


@pytest.mark.parametrize("line", COMMANDS)
def test_every_command_in_the_readmes_parses(line):
    try:
        _parse(shlex.split(line)[1:])
    except click.exceptions.Exit as done:  # --version, --help
        assert done.exit_code == 0


@pytest.mark.parametrize("line", ["cnnsetup mirror tsinghua --bogus", "cnnsetup verify --device gpu",
                                  "cnnsetup mirror nowhere"])
def test_the_parse_check_catches_a_wrong_command(line):
    with pytest.raises(click.UsageError):
        _parse(shlex.split(line)[1:])


def test_ci_runs_the_test_command_the_readme_gives():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = 'python -m pip install -e ".[test]" && python -m pytest'
    assert f"```bash\n{command}\n```" in readme.split("##")[0]  # one of the two opening commands
    assert command in ci


def test_the_first_command_installs_cnnsetup_and_runs_the_whole_first_day():
    for name in ("README.md", "README.zh.md"):
        top = (REPO_ROOT / name).read_text(encoding="utf-8").split("##")[0]
        assert "```bash\npython -m pip install . && cnnsetup onboard\n```" in top, name


def test_ci_also_runs_the_suite_in_a_clone_with_nothing_beside_it():
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = 'python -m pip install -e ".[test]" && python -m pytest'
    clone = ci.split("git clone", 1)[1]
    assert command in clone and "unset CNNSETUP_TEST_CONDA" in clone
    assert 'test ! -e "$fresh/shared"' in ci
    assert "CNNSETUP_TEST_CONDA" in ci.split("git clone", 1)[0]  # real conda in the first run


def test_no_test_reads_anything_beside_the_repository():
    """The data the tests use lives in tests/data/; `../shared` exists only beside CI."""
    pattern = re.compile(r"""parent\s*/\s*["']shared["']|["']\.\./shared""")
    offenders = [p.name for p in (REPO_ROOT / "tests").glob("*.py")
                 if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
    from tests.conftest import CONDA_GOLDEN

    assert CONDA_GOLDEN.is_relative_to(REPO_ROOT) and (CONDA_GOLDEN / "README.md").is_file()
