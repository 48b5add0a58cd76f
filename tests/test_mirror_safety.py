"""The user's file is never lost, exposed or silently changed, also when things around it are
odd: a damaged backup, a private file, a dangling symlink, pip failing, another run holding the
lock."""

from __future__ import annotations

import json
import os

import pytest

from cnnsetup.mirror import condarc_file, registry
from cnnsetup.mirror.switch import switch

ORIGINAL = "# mine\nchannels:\n  - conda-forge\n"


@pytest.fixture
def condarc(isolated_home):
    path = isolated_home / ".condarc"
    path.write_text(ORIGINAL, encoding="utf-8")
    return path


def test_backup_bytes_without_their_record_are_never_overwritten(invoke, condarc):
    invoke("mirror", "tsinghua", "--no-clean")
    condarc_file.backup_meta_path(condarc).unlink()
    result = invoke("mirror", "bfsu", "--no-clean")
    assert result.exit_code == 0
    aside = [p for p in condarc.parent.iterdir() if ".cnnsetup-backup.unrecorded-" in p.name]
    assert [p.read_text(encoding="utf-8") for p in aside] == [ORIGINAL]
    assert str(aside[0]) in result.stdout


def test_a_missing_backup_file_is_a_message_not_a_traceback(invoke, condarc):
    invoke("mirror", "tsinghua", "--no-clean")
    condarc_file.backup_bytes_path(condarc).unlink()
    result = invoke("mirror", "restore")
    assert result.exit_code == 1
    assert "it does not exist" in result.stderr and "start afresh" in result.stderr
    assert "mirrors.tuna" in condarc.read_text(encoding="utf-8")  # left as it was


def test_a_backup_record_that_is_not_a_record_is_a_message(invoke, condarc):
    invoke("mirror", "tsinghua", "--no-clean")
    condarc_file.backup_meta_path(condarc).write_text("[1, 2]", encoding="utf-8")
    for args in (["mirror", "restore"], ["mirror", "bfsu", "--no-clean"]):
        result = invoke(*args)
        assert result.exit_code == 1
        assert "not a cnnsetup record" in result.stderr


def test_backups_of_a_private_file_stay_private(invoke, condarc):
    condarc.write_text(ORIGINAL + "proxy_servers:\n  https: http://alice:s3cret@proxy:8080\n",
                       encoding="utf-8")
    condarc.chmod(0o600)
    invoke("mirror", "tsinghua", "--no-clean")
    assert condarc_file.backup_bytes_path(condarc).stat().st_mode & 0o777 == 0o600
    assert condarc_file.backup_meta_path(condarc).stat().st_mode & 0o777 == 0o600


def test_restore_through_a_dangling_symlink_removes_what_cnnsetup_made_and_keeps_the_link(
        invoke, isolated_home):
    target = isolated_home / "dotfiles" / "condarc"
    target.parent.mkdir()
    link = isolated_home / ".condarc"
    link.symlink_to(target)  # the target does not exist yet
    assert invoke("mirror", "tsinghua", "--no-clean").exit_code == 0
    assert target.exists() and link.is_symlink()
    assert invoke("mirror", "restore").exit_code == 0
    assert link.is_symlink() and not target.exists()


def test_a_pip_failure_after_the_switch_reports_both(invoke, condarc, monkeypatch):
    from cnnsetup.mirror import pip
    from cnnsetup.mirror.pip import PipConfigError

    def broken(*args, **kwargs):
        raise PipConfigError("pip config --user get global.index-url failed: No module named pip")

    monkeypatch.setattr(pip, "set_index_url", broken)
    result = invoke("mirror", "tsinghua", "--no-clean", "--pip")
    assert result.exit_code == 1
    assert "Switched" in result.stdout and "cnnsetup mirror restore" in result.stdout
    assert "pip was not changed" in result.stderr
    result = invoke("mirror", "bfsu", "--no-clean", "--pip", "--json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["changed"] is True and "No module named pip" in payload["pip"]["error"]


def test_dry_run_explains_a_change_that_only_drops_the_bom(invoke, isolated_home):
    path = isolated_home / ".condarc"
    switch(registry.get("tsinghua"), path)
    for kept in (condarc_file.backup_meta_path(path), condarc_file.backup_bytes_path(path)):
        kept.unlink(missing_ok=True)
    path.write_bytes(condarc_file.BOM + path.read_bytes())
    result = invoke("mirror", "tsinghua", "--dry-run")
    assert "byte-order mark" in result.stdout


def test_a_held_lock_makes_the_second_run_give_up_cleanly(condarc, monkeypatch):
    monkeypatch.setattr(condarc_file, "LOCK_TIMEOUT_S", 0.3)
    with condarc_file.locked(condarc):
        pid = os.fork()
        if pid == 0:  # a second process trying the same file while we hold the lock
            try:
                with condarc_file.locked(condarc, timeout=0.3):
                    os._exit(0)
            except condarc_file.FileSafetyError:
                os._exit(3)
        _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 3
    assert condarc.read_text(encoding="utf-8") == ORIGINAL


def test_the_lock_lives_in_the_users_cache_not_the_shared_temp_folder(condarc, isolated_home):
    with condarc_file.locked(condarc):
        pass
    locks = list((isolated_home / ".cache" / "cnnsetup" / "locks").iterdir())
    assert len(locks) == 1


def test_json_output_is_in_english_even_in_chinese(invoke, condarc):
    condarc.write_text(ORIGINAL + "ssl_verify: false\n", encoding="utf-8")
    result = invoke("--lang", "zh", "mirror", "tsinghua", "--no-clean", "--json")
    payload = json.loads(result.stdout)
    assert payload["warnings"] and payload["warnings"][0].startswith("ssl_verify is false")
