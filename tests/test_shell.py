"""Commands to paste, quoted for the shell they are pasted into; checked by running them."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from cnnsetup import shell


@pytest.mark.parametrize("kind, expected", [
    ("posix", '"/opt/My Env/bin/python" -m pip install "numpy<2" -i https://m/simple'),
    ("cmd", '"/opt/My Env/bin/python" -m pip install "numpy<2" -i https://m/simple'),
    ("powershell", "& '/opt/My Env/bin/python' -m pip install 'numpy<2' -i https://m/simple"),
])
def test_pip_install_names_the_interpreter_by_its_quoted_path(kind, expected):
    assert shell.pip_install("/opt/My Env/bin/python", ["numpy<2"], kind,
                             index_url="https://m/simple") == expected


def test_windows_paths_and_quotes_inside_them():
    path = r"C:\Users\O'Brien Li\miniconda3\python.exe"
    assert shell.python_command(path, ["-V"], "cmd") == f'"{path}" -V'
    assert shell.python_command(path, ["-V"], "powershell") == \
        r"& 'C:\Users\O''Brien Li\miniconda3\python.exe' -V"


def test_posix_words_with_shell_characters_are_single_quoted():
    assert shell.quote_always("/tmp/$HOME/x", "posix") == "'/tmp/$HOME/x'"
    assert shell.quote("plain-word", "posix") == "plain-word"
    assert shell.quote(shell.PathArg("/plain/path"), "posix") == '"/plain/path"'


def test_without_an_interpreter_the_command_says_python():
    assert shell.python_command(None, ["-m", "pip", "list"]) == "python -m pip list"


def test_the_shell_comes_from_cnnsetup_shell_then_the_platform(monkeypatch):
    monkeypatch.setattr(shell, "_parent_shell", lambda: None)
    assert shell.detect("win32", {"CNNSETUP_SHELL": "cmd"}) == "cmd"
    assert shell.detect("win32", {}) == "powershell"
    assert shell.detect("linux", {}) == "posix"
    monkeypatch.setattr(shell, "_parent_shell", lambda: "cmd")
    assert shell.detect("win32", {}) == "cmd"
    assert shell.detect("linux", {}) == "posix"  # a cmd above a Linux process is not believed


def test_a_posix_command_runs_the_named_interpreter(tmp_path):
    sh = shutil.which("sh", path="/bin:/usr/bin")
    if sh is None:
        pytest.skip("no POSIX sh here")
    odd = tmp_path / "dir with $dollar and 'quote'"
    odd.mkdir()
    python = odd / "python"
    python.symlink_to(sys.executable)
    line = shell.python_command(str(python), ["-c", "import sys; print(sys.argv[1])", "a b"])
    done = subprocess.run([sh, "-c", line], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "a b"
