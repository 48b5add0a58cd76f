"""pip's global.index-url through pip's own writer, with the real pip and a redirected home:
the previous value comes back exactly, and whatever overrides the user file is reported."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cnnsetup.mirror import pip

TUNA = "https://pypi.tuna.tsinghua.edu.cn/simple"
BFSU = "https://mirrors.bfsu.edu.cn/pypi/web/simple"


@pytest.fixture(autouse=True)
def pip_home(tmp_path, isolated_home, monkeypatch):
    """pip's global files come from XDG_CONFIG_DIRS (and /etc): point that at an empty folder so
    the machine's own /etc/xdg/pip/pip.conf plays no part."""
    xdg_dirs = tmp_path / "xdg-dirs"
    xdg_dirs.mkdir()
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(xdg_dirs))
    return isolated_home


def _user_file(home: Path) -> Path:
    return home / ".config" / "pip" / "pip.conf"


def test_set_keeps_no_previous_value_when_there_was_none(pip_home):
    change = pip.set_index_url(TUNA)
    assert (change.previous, change.current, change.changed) == (None, TUNA, True)
    assert change.user_file == str(_user_file(pip_home))
    assert TUNA in _user_file(pip_home).read_text(encoding="utf-8")
    assert pip.get_index_url() == TUNA


def test_setting_the_same_value_changes_nothing(pip_home):
    pip.set_index_url(TUNA)
    before = _user_file(pip_home).read_bytes()
    change = pip.set_index_url(TUNA)
    assert (change.previous, change.changed) == (TUNA, False)
    assert _user_file(pip_home).read_bytes() == before


def test_restore_puts_back_the_previous_value_exactly(pip_home):
    pip.set_index_url(BFSU)
    previous = pip.set_index_url(TUNA).previous
    assert previous == BFSU
    change = pip.restore(previous)
    assert change.current == BFSU and pip.get_index_url() == BFSU


def test_restore_of_nothing_unsets_the_key(pip_home):
    previous = pip.set_index_url(TUNA).previous
    change = pip.restore(previous)
    assert (change.previous, change.current) == (TUNA, None)
    assert pip.get_index_url() is None
    assert not _user_file(pip_home).exists()  # no empty pip.conf left behind
    assert pip.restore(None).changed is False  # nothing to unset is fine


def test_restore_keeps_a_user_file_that_holds_other_settings(pip_home):
    user_file = _user_file(pip_home)
    user_file.parent.mkdir(parents=True)
    user_file.write_text("[global]\ntimeout = 60\n", encoding="utf-8")
    pip.restore(pip.set_index_url(TUNA).previous)
    assert "timeout = 60" in user_file.read_text(encoding="utf-8")


def test_pip_index_url_variable_overrides(pip_home, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", BFSU)
    change = pip.set_index_url(TUNA)
    assert [(o.kind, o.where, o.value, o.wins) for o in change.overrides] == [
        ("env_var", "PIP_INDEX_URL", BFSU, True)]
    assert "PIP_INDEX_URL" in change.overrides[0].describe()


def test_pip_config_file_variable_hides_the_user_file(pip_home, tmp_path, monkeypatch):
    env_file = tmp_path / "team-pip.conf"
    env_file.write_text(f"[global]\nindex-url = {BFSU}\n", encoding="utf-8")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(env_file))
    found = {(o.kind, o.where, o.wins) for o in pip.overrides()}
    assert ("user_file_ignored", str(env_file), True) in found
    assert ("env_file", str(env_file), True) in found


def test_global_and_install_sections_in_other_files(pip_home, tmp_path):
    global_file = tmp_path / "xdg-dirs" / "pip" / "pip.conf"
    global_file.parent.mkdir(parents=True)
    global_file.write_text(f"[global]\nindex-url = {BFSU}\n", encoding="utf-8")
    pip.set_index_url(TUNA)
    [global_override] = pip.overrides()
    assert (global_override.kind, global_override.where, global_override.wins) == (
        "global", str(global_file), False)
    global_file.write_text(f"[install]\nindex-url = {BFSU}\n", encoding="utf-8")
    [install_override] = pip.overrides()
    assert (install_override.key, install_override.wins) == ("install.index-url", True)


def test_a_python_without_pip_is_a_clear_error(tmp_path):
    with pytest.raises(pip.PipConfigError) as caught:
        pip.get_index_url(python=str(tmp_path / "no-python"))
    assert "no-python" in caught.value.message


def test_pip_command_uses_the_given_python():
    assert pip.pip_command() == [sys.executable, "-m", "pip"]
    assert pip.pip_command("/x/python") == ["/x/python", "-m", "pip"]


def test_parse_config_debug_reads_every_section():
    text = (
        "env_var:\n  PIP_INDEX_URL='https://a.example/simple'\n"
        "env:\n"
        "global:\n  C:\\ProgramData\\pip\\pip.ini, exists: True\n    global.index-url: https://g\n"
        "site:\n  C:\\venv\\pip.ini, exists: False\n"
        "user:\n  C:\\Users\\u\\pip\\pip.ini, exists: False\n"
        "  C:\\Users\\u\\AppData\\Roaming\\pip\\pip.ini, exists: True\n"
        "    global.index-url: https://u\n    install.trusted-host: u\n"
    )
    info = pip.parse_config_debug(text)
    assert info.env_vars == {"PIP_INDEX_URL": "https://a.example/simple"}
    assert [(f.variant, f.exists) for f in info.files] == [
        ("global", True), ("site", False), ("user", False), ("user", True)]
    assert info.user_file == "C:\\Users\\u\\AppData\\Roaming\\pip\\pip.ini"
    assert info.files[-1].values["global.index-url"] == "https://u"
    found = pip.overrides_from(info, env={})
    assert [(o.where, o.wins) for o in found] == [("C:\\ProgramData\\pip\\pip.ini", False)]
