"""pip's index in the user file: read file by file as pip reads them (checked against the real
pip), changed one line at a time, backed up and restored byte for byte; whatever overrides the
user file is reported, and a switch that pip will not follow says so."""

from __future__ import annotations

import json
import os
import subprocess
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


def test_a_python_that_does_not_start_is_a_clear_error(tmp_path):
    with pytest.raises(pip.PipConfigError) as caught:
        pip.get_index_url(python=str(tmp_path / "no-python"))
    assert "no-python" in caught.value.message


# --- reading: each value belongs to the one file that sets it --------------------------------

def _real_pip(*args: str) -> str:
    """The real pip of this Python, in the test's environment."""
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          check=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
                          ).stdout


def test_the_files_are_the_ones_real_pip_reads(pip_home, tmp_path):
    """`pip config debug` lists pip's files by variant (the variants sorted by name, each
    variant's files in reading order): the same files, variant by variant."""
    listed: dict[str, list[str]] = {}
    variant = ""
    for line in _real_pip("config", "debug").splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            variant = line[:-1]
        elif ", exists: " in line:
            listed.setdefault(variant, []).append(line.strip().rpartition(", exists: ")[0])
    config = pip.read_config()
    mine: dict[str, list[str]] = {}
    for entry in config.files:
        mine.setdefault(entry.variant, []).append(entry.path)
    assert mine == listed
    assert config.user_file == listed["user"][-1] == str(_user_file(pip_home))


def test_a_system_wide_file_is_not_taken_for_the_users_own(pip_home, tmp_path):
    """Two global files (as /etc/xdg/pip/pip.conf and /etc/pip.conf are): each keeps its own
    values. `pip config debug` of older pips prints both files' values under each file."""
    first = tmp_path / "xdg-dirs" / "pip" / "pip.conf"
    second = tmp_path / "xdg-two" / "pip" / "pip.conf"
    for path, text in ((first, f"[global]\nindex-url = {BFSU}\n"),
                       (second, "[global]\ntimeout = 30\n")):
        path.parent.mkdir(parents=True)
        path.write_text(text, encoding="utf-8")
    os.environ["XDG_CONFIG_DIRS"] = f"{tmp_path / 'xdg-dirs'}{os.pathsep}{tmp_path / 'xdg-two'}"
    config = pip.read_config()
    by_path = {entry.path: entry.values for entry in config.files}
    assert by_path[str(first)] == {"global.index-url": BFSU}
    assert by_path[str(second)] == {"global.timeout": "30"}
    assert config.user_value() is None
    assert pip.get_index_url() is None
    assert config.install_index() == (BFSU, str(first))
    # What real pip merges is what this model merges.
    assert f"global.index-url='{BFSU}'" in _real_pip("config", "list")
    [override] = config.overrides()
    assert (override.where, override.wins) == (str(first), False)


def test_pip_config_list_agrees_with_the_merged_model(pip_home, tmp_path):
    global_file = tmp_path / "xdg-dirs" / "pip" / "pip.conf"
    global_file.parent.mkdir(parents=True)
    global_file.write_text(f"[global]\nindex-url = {BFSU}\n[install]\nIndex_URL = {BFSU}\n",
                           encoding="utf-8")
    pip.set_index_url(TUNA)
    listed = _real_pip("config", "list")
    assert f"global.index-url='{TUNA}'" in listed
    assert f"install.index-url='{BFSU}'" in listed
    assert pip.read_config().install_index() == (BFSU, str(global_file))


# --- writing: one line changes, comments stay ----------------------------------------------

COMMENTED = (
    "# Campus settings: keep the proxy for the lab network\r\n"
    "[global]\r\n"
    "# the old mirror, slow from the dorms\r\n"
    "index_url: https://pypi.example.edu/simple\r\n"
    "timeout = 60\r\n"
    "\r\n"
    "; trusted because of the campus proxy\r\n"
    "[install]\r\n"
    "trusted-host = pypi.example.edu\r\n"
)


def test_a_switch_changes_one_line_and_keeps_comments_and_line_endings(pip_home):
    user_file = _user_file(pip_home)
    user_file.parent.mkdir(parents=True)
    user_file.write_bytes(COMMENTED.encode())
    change = pip.set_index_url(TUNA)
    assert (change.previous, change.current, change.changed) == (
        "https://pypi.example.edu/simple", TUNA, True)
    expected = COMMENTED.replace("index_url: https://pypi.example.edu/simple",
                                 f"index_url : {TUNA}")
    assert user_file.read_bytes() == expected.encode()


def test_a_new_option_goes_right_below_the_header(pip_home):
    user_file = _user_file(pip_home)
    user_file.parent.mkdir(parents=True)
    user_file.write_text("[global]\n# proxy for the lab\nproxy = http://p:3128\n", encoding="utf-8")
    pip.set_index_url(TUNA)
    assert user_file.read_text(encoding="utf-8") == (
        f"[global]\nindex-url = {TUNA}\n# proxy for the lab\nproxy = http://p:3128\n")
    pip.unset_index_url()
    assert user_file.read_text(encoding="utf-8") == (
        "[global]\n# proxy for the lab\nproxy = http://p:3128\n")


def test_a_file_pip_itself_refuses_is_not_touched(pip_home):
    user_file = _user_file(pip_home)
    user_file.parent.mkdir(parents=True)
    broken = b"[global]\nindex-url = a\nindex-url = b\n"
    user_file.write_bytes(broken)
    with pytest.raises(pip.PipConfigError) as caught:
        pip.set_index_url(TUNA)
    assert "index-url" in caught.value.message
    assert user_file.read_bytes() == broken


def test_undecodable_bytes_are_refused_with_line_and_column(pip_home):
    user_file = _user_file(pip_home)
    user_file.parent.mkdir(parents=True)
    user_file.write_bytes(b"[global]\ntimeout = 6\xff0\n")
    with pytest.raises(pip.PipConfigError) as caught:
        pip.set_index_url(TUNA)
    assert "line 2, column 12" in caught.value.message


# --- the backup: exact bytes back, a created file removed ----------------------------------

def test_point_at_then_restore_gives_back_the_exact_bytes(pip_home, tmp_path):
    from cnnsetup.mirror import registry

    user_file = _user_file(pip_home)
    user_file.parent.mkdir(parents=True)
    user_file.write_bytes(COMMENTED.encode())
    condarc = pip_home / ".condarc"
    pip.point_at(registry.get("tsinghua"), condarc)
    pip.point_at(registry.get("bfsu"), condarc)
    assert pip.get_index_url() == BFSU
    restored = pip.restore_backup(condarc)
    assert restored is not None and not restored.removed
    assert user_file.read_bytes() == COMMENTED.encode()
    assert not pip.record_path(condarc).exists()
    assert pip.restore_backup(condarc) is None


def test_only_a_legacy_file_restore_removes_the_file_cnnsetup_created(pip_home):
    from cnnsetup.mirror import registry

    legacy = pip_home / ".pip" / "pip.conf"
    legacy.parent.mkdir()
    legacy.write_text(f"# mine\n[global]\nindex-url = {BFSU}\n", encoding="utf-8")
    condarc = pip_home / ".condarc"
    change = pip.point_at(registry.get("tsinghua"), condarc)
    assert change.in_effect and change.effective == TUNA
    restored = pip.restore_backup(condarc)
    assert restored.removed and not _user_file(pip_home).exists()
    assert legacy.read_text(encoding="utf-8") == f"# mine\n[global]\nindex-url = {BFSU}\n"
    assert restored.change.effective == BFSU


def test_restore_removes_the_folders_the_switch_created_when_they_are_empty(pip_home):
    from cnnsetup.mirror import registry

    config = Path(os.environ["XDG_CONFIG_HOME"])
    existed = config.exists()
    condarc = pip_home / ".condarc"
    pip.point_at(registry.get("tsinghua"), condarc)
    assert _user_file(pip_home).exists()
    restored = pip.restore_backup(condarc)
    assert restored.removed and not _user_file(pip_home).parent.exists()
    assert config.exists() == existed  # ~/.config too, when the switch made it
    assert str(_user_file(pip_home).parent) in restored.to_dict()["removed_dirs"]


def test_restore_pip_says_which_folders_it_removed(invoke, pip_home):
    assert invoke("mirror", "tsinghua", "--no-clean", "--pip").exit_code == 0
    result = invoke("mirror", "restore", "--pip")
    assert result.exit_code == 0, result.output
    folder = _user_file(pip_home).parent
    assert f"Removed the empty folder {folder}" in result.stdout
    assert not folder.exists()


def test_a_folder_that_holds_something_else_after_the_switch_stays(pip_home):
    from cnnsetup.mirror import registry

    condarc = pip_home / ".condarc"
    pip.point_at(registry.get("tsinghua"), condarc)
    mine = _user_file(pip_home).parent / "notes.txt"
    mine.write_text("mine", encoding="utf-8")
    restored = pip.restore_backup(condarc)
    assert restored.removed and not _user_file(pip_home).exists()
    assert mine.read_text(encoding="utf-8") == "mine" and restored.removed_dirs == []


def test_restore_refuses_a_file_edited_after_the_switch_and_force_keeps_it(pip_home):
    from cnnsetup.errors import FileSafetyError
    from cnnsetup.mirror import registry

    condarc = pip_home / ".condarc"
    pip.point_at(registry.get("tsinghua"), condarc)
    user_file = _user_file(pip_home)
    edited = user_file.read_text(encoding="utf-8") + "timeout = 99\n"
    user_file.write_text(edited, encoding="utf-8")
    with pytest.raises(FileSafetyError) as caught:
        pip.restore_backup(condarc)
    assert "--force" in caught.value.message
    assert user_file.read_text(encoding="utf-8") == edited
    restored = pip.restore_backup(condarc, force=True)
    assert Path(restored.kept_aside).read_text(encoding="utf-8") == edited
    assert not user_file.exists()


def test_a_crash_between_the_record_and_the_write_is_harmless(pip_home):
    """The record is saved before the file changes: if cnnsetup dies there, the file still
    holds the original, and restore accepts it as it is."""
    condarc = pip_home / ".condarc"
    user_file = _user_file(pip_home)
    user_file.parent.mkdir(parents=True)
    user_file.write_text("[global]\ntimeout = 5\n", encoding="utf-8")
    record = {"format": 2, "path": str(user_file), "existed": True,
              "original_b64": __import__("base64").b64encode(user_file.read_bytes()).decode(),
              "original_sha256": __import__("hashlib").sha256(user_file.read_bytes()).hexdigest(),
              "written_sha256": []}
    pip.record_path(condarc).write_text(json.dumps(record), encoding="utf-8")
    restored = pip.restore_backup(condarc)
    assert user_file.read_text(encoding="utf-8") == "[global]\ntimeout = 5\n"
    assert not restored.removed and not pip.record_path(condarc).exists()


def test_a_record_from_an_older_cnnsetup_still_restores_the_value(pip_home):
    condarc = pip_home / ".condarc"
    pip.set_index_url(TUNA)
    pip.record_path(condarc).write_text(json.dumps({"format": 1, "previous": BFSU}),
                                        encoding="utf-8")
    pip.restore_backup(condarc)
    assert pip.get_index_url() == BFSU


# --- a switch that pip will not follow says so ----------------------------------------------

def test_pip_index_url_variable_makes_the_switch_fail_honestly(invoke, pip_home, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", BFSU)
    result = invoke("mirror", "tsinghua", "--no-clean", "--pip")
    assert result.exit_code == 1
    assert "pip now uses" not in result.stdout
    assert BFSU in result.stdout and "PIP_INDEX_URL" in result.stdout
    payload = json.loads(invoke("mirror", "tsinghua", "--no-clean", "--pip", "--json").stdout)
    assert payload["pip"]["in_effect"] is False
    assert payload["pip"]["effective_index_url"] == BFSU
    assert payload["pip"]["index_url"] == TUNA


def test_pip_config_file_variable_makes_the_switch_fail_honestly(invoke, pip_home, tmp_path,
                                                                 monkeypatch):
    team = tmp_path / "team.conf"
    team.write_text("[global]\ntimeout = 5\n", encoding="utf-8")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(team))
    result = invoke("mirror", "tsinghua", "--no-clean", "--pip", "--json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["pip"]["in_effect"] is False
    assert payload["pip"]["effective_index_url"] == "https://pypi.org/simple"


def test_dry_run_says_which_file_and_line(invoke, pip_home):
    result = invoke("mirror", "tsinghua", "--dry-run", "--pip")
    assert result.exit_code == 0
    assert f"[global] index-url = {TUNA}" in result.stdout
    assert str(_user_file(pip_home)) in result.stdout
    assert not _user_file(pip_home).exists()


def test_restore_pip_from_the_command_line_is_byte_exact(invoke, pip_home):
    user_file = _user_file(pip_home)
    user_file.parent.mkdir(parents=True)
    user_file.write_bytes(COMMENTED.encode())
    assert invoke("mirror", "tsinghua", "--no-clean", "--pip").exit_code == 0
    assert "# the old mirror" in user_file.read_text(encoding="utf-8")
    result = invoke("mirror", "restore", "--pip")
    assert result.exit_code == 0, result.output
    assert user_file.read_bytes() == COMMENTED.encode()


# --- other platforms' files -----------------------------------------------------------------

def test_windows_files_in_pips_order():
    env = {"USERPROFILE": "C:\\Users\\li", "APPDATA": "C:\\Users\\li\\AppData\\Roaming",
           "PROGRAMDATA": "C:\\ProgramData"}
    files = pip.config_files(env, platform="win32", prefix="C:\\venv")
    assert [str(p).replace("/", "\\") for p in files["user"]] == [
        "C:\\Users\\li\\pip\\pip.ini", "C:\\Users\\li\\AppData\\Roaming\\pip\\pip.ini"]
    assert str(files["global"][0]).replace("/", "\\") == "C:\\ProgramData\\pip\\pip.ini"
    assert str(files["site"][0]).replace("/", "\\") == "C:\\venv\\pip.ini"
