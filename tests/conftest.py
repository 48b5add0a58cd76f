"""Shared test fixtures. Every test runs with a fake home: HOME, USERPROFILE, XDG_CONFIG_HOME,
CONDARC and PATH point into `tmp_path`, so nothing here can read or change the real user's files.

Everything the suite reads lives in this repository (`tests/data/`): a fresh clone with nothing
beside it runs the whole suite. Tests that need a genuine conda take the `real_conda` fixture:
the conda named by CNNSETUP_TEST_CONDA, else a `conda` on the PATH the test run started with,
else the test is skipped with that reason (`.ci/run` builds one and sets the variable)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from cnnsetup.cli import cli
from cnnsetup.i18n import set_language

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = REPO_ROOT / "tests" / "data"
# What real conda 26.7.1 made of each recorded configuration (see its README.md).
CONDA_GOLDEN = TEST_DATA / "conda-golden"

# Read before any test changes the environment: the fake home below empties PATH and CNNSETUP_*.
_SESSION_PATH = os.environ.get("PATH", "")
_SESSION_TEST_CONDA = os.environ.get("CNNSETUP_TEST_CONDA", "").strip()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty home directory for every test, and a PATH that holds only `tmp_path/bin`."""
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in list(os.environ):
        if name.startswith(("CONDA", "PIP_", "CNNSETUP_", "LC_")) or name in (
            "LANGUAGE", "NO_COLOR", "VIRTUAL_ENV", "_CE_CONDA", "_CE_M",
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("CONDARC", str(tmp_path / "no-such-condarc" / ".condarc"))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("LANG", "C.UTF-8")
    # A switch probes the mirror's channels first; tests reach only 127.0.0.1, so that check is
    # off unless a test serves the mirror itself (and deletes this variable).
    monkeypatch.setenv("CNNSETUP_OFFLINE", "1")
    set_language("en")
    monkeypatch.delenv("LANGUAGE", raising=False)  # set_language sets it for click's messages
    return home


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """The only folder on PATH: tests put stand-in programs (conda, nvidia-smi) here."""
    return tmp_path / "bin"


def find_real_conda(variable: str = _SESSION_TEST_CONDA,
                    path: str = _SESSION_PATH) -> tuple[str | None, str]:
    """(the genuine conda to test against, or None; why that one or why none)."""
    if variable:
        if os.path.isfile(variable) and os.access(variable, os.X_OK):
            return variable, f"CNNSETUP_TEST_CONDA={variable}"
        return None, f"CNNSETUP_TEST_CONDA={variable} is not an executable file"
    found = shutil.which("conda", path=path)
    if found:
        return found, f"conda on PATH: {found}"
    return None, ("no real conda: set CNNSETUP_TEST_CONDA to a conda executable "
                  "(bash ../shared/tools/conda/install.sh DIR builds one), or put conda on PATH")


@pytest.fixture
def real_conda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The path of a genuine conda, first on the test's PATH; its package cache in `tmp_path`
    so that `conda clean` touches nothing outside the test. Skips when there is none."""
    conda, why = find_real_conda()
    if conda is None:
        pytest.skip(why)
    monkeypatch.setenv("CONDA_PKGS_DIRS", str(tmp_path / "conda-pkgs"))
    monkeypatch.setenv("PATH", os.pathsep.join([os.path.dirname(conda), os.environ["PATH"]]))
    return conda


def write_program(path: Path, body: str) -> Path:
    """Write a small Python program that stands in for a missing executable (conda, nvidia-smi)."""
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body), encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.fixture
def invoke():
    """Run the cnnsetup CLI in this process: `invoke("mirror", "list")` -> click's Result."""

    def _invoke(*args: str, input: str | None = None, env: dict | None = None):
        return CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)

    return _invoke


def run_cnnsetup(*args: str, env: dict | None = None, timeout: float = 120,
                 cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m cnnsetup ARGS` as a real process, with this checkout on PYTHONPATH."""
    full_env = dict(os.environ)
    full_env.pop("LANGUAGE", None)  # left by an in-process --lang; a fresh process chooses anew
    full_env["PYTHONPATH"] = str(REPO_ROOT)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "cnnsetup", *args],
        capture_output=True, text=True, encoding="utf-8", errors="replace",
        env=full_env, timeout=timeout, cwd=cwd,
    )
