"""Odd files around the .condarc: devices, FIFOs, planted links, another user's home, YAML
aliases, document markers, bad bytes, huge files, broken YAML read the same in every command."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from cnnsetup.mirror import condarc_file
from tests.conftest import run_cnnsetup, write_program

ORIGINAL = "# mine\nchannels:\n  - conda-forge\n"
REAL_CONDA = os.environ.get("CNNSETUP_TEST_CONDA")  # read before the fixture clears CNNSETUP_*
needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="needs root (a device file, another user's files)")


@pytest.fixture
def condarc(isolated_home):
    path = isolated_home / ".condarc"
    path.write_text(ORIGINAL, encoding="utf-8")
    return path


def home_files(home: Path) -> list[str]:
    return sorted(p.name for p in home.iterdir() if p.name.startswith(".condarc"))


# --- only regular files ---------------------------------------------------------------------

@needs_root
def test_a_link_to_a_device_is_refused_and_the_device_stays(invoke, isolated_home):
    device = isolated_home / "null"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own
    (isolated_home / ".condarc").symlink_to(device)
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 1
    assert "a device" in result.stderr and "regular file" in result.stderr
    assert stat.S_ISCHR(os.stat(device).st_mode)
    assert home_files(isolated_home) == [".condarc"]


def test_a_fifo_is_refused_at_once_by_every_command(isolated_home):
    os.mkfifo(isolated_home / ".condarc")
    for args in (["mirror", "tsinghua", "--no-clean"], ["mirror", "tsinghua", "--dry-run"],
                 ["mirror", "list"]):
        try:
            result = run_cnnsetup(*args, timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{args} blocked on the FIFO")
        if args[1] != "list":
            assert result.returncode == 1
            assert "FIFO" in result.stderr
    assert stat.S_ISFIFO(os.lstat(isolated_home / ".condarc").st_mode)


@pytest.mark.parametrize("planted", [".condarc.cnnsetup-backup", ".condarc.cnnsetup-backup.json"])
def test_planted_dangling_links_are_refused_not_followed(planted, invoke, condarc, tmp_path):
    outside = tmp_path / "outside" / "stolen"
    outside.parent.mkdir()
    (condarc.parent / planted).symlink_to(outside)
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 1
    assert "link" in result.stderr
    assert not outside.exists()
    assert condarc.read_text(encoding="utf-8") == ORIGINAL


# --- another user's home, run as root ---------------------------------------------------------

@needs_root
def test_root_keeps_the_users_owner_group_and_mode(isolated_home, condarc):
    user, group = 4242, 4343
    for path in (isolated_home, condarc):
        os.chown(path, user, group)
    condarc.chmod(0o600)
    result = run_cnnsetup("mirror", "tsinghua", "--no-clean")
    assert result.returncode == 0, result.stderr
    made = [condarc, condarc_file.backup_bytes_path(condarc),
            condarc_file.backup_meta_path(condarc), isolated_home / ".cache",
            isolated_home / ".cache" / "cnnsetup", isolated_home / ".cache" / "cnnsetup" / "locks"]
    made += list((isolated_home / ".cache" / "cnnsetup" / "locks").iterdir())
    for path in made:
        info = os.lstat(path)
        assert (info.st_uid, info.st_gid) == (user, group), path
    assert stat.S_IMODE(os.stat(condarc).st_mode) == 0o600
    result = run_cnnsetup("mirror", "restore", "--no-clean")
    assert result.returncode == 0, result.stderr
    assert (os.stat(condarc).st_uid, os.stat(condarc).st_gid) == (user, group)
    assert condarc.read_text(encoding="utf-8") == ORIGINAL


# --- YAML anchors, markers, bytes, size -------------------------------------------------------

def test_an_alias_shared_with_a_channel_key_is_refused_naming_both(invoke, condarc):
    text = ("my_urls: &urls\n  - https://example.org/a\ndefault_channels: *urls\n"
            "channels:\n  - defaults\n")
    condarc.write_text(text, encoding="utf-8")
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 1
    assert "my_urls" in result.stderr and "default_channels" in result.stderr
    assert condarc.read_text(encoding="utf-8") == text


def test_document_markers_are_kept(invoke, condarc):
    text = "# top\n%YAML 1.2\n---\nchannels:\n  - conda-forge\n...\n"
    condarc.write_text(text, encoding="utf-8")
    assert invoke("mirror", "tsinghua", "--no-clean").exit_code == 0
    new = condarc.read_text(encoding="utf-8")
    assert new.startswith("# top\n%YAML 1.2\n---\n") and new.endswith("...\n")
    assert invoke("mirror", "restore", "--no-clean").exit_code == 0
    assert condarc.read_text(encoding="utf-8") == text


def test_a_marker_in_the_middle_is_refused_untouched(invoke, condarc):
    text = "channels:\n  - conda-forge\n---\nx: 1\n"
    condarc.write_text(text, encoding="utf-8")
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 1
    assert "line 3" in result.stderr
    assert condarc.read_text(encoding="utf-8") == text


def test_a_nul_byte_gets_line_and_column(invoke, condarc):
    condarc.write_bytes(b"channels:\n  - conda\x00forge\n")
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 1
    assert "line 2, column 10" in result.stderr and "NUL" in result.stderr


def test_undecodable_bytes_get_line_and_column(invoke, condarc):
    condarc.write_bytes(b"channels:\n  - a\xff\xfeb\n")
    result = invoke("mirror", "tsinghua", "--no-clean", env={"LC_ALL": "C.UTF-8"})
    assert result.exit_code == 1
    assert "line 2, column 6" in result.stderr


def test_a_huge_file_is_refused_before_it_is_read(invoke, condarc):
    condarc.write_text(ORIGINAL + "# padding\n" * 200_000, encoding="utf-8")
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 1
    assert str(condarc_file.MAX_CONDARC_BYTES) in result.stderr
    assert home_files(condarc.parent) == [".condarc"]


# --- restore runs conda clean -i ---------------------------------------------------------------

def test_restore_runs_conda_clean_when_conda_is_there(invoke, condarc, bin_dir, tmp_path):
    log = tmp_path / "calls.log"
    write_program(bin_dir / "conda", f"""
        import json, sys
        with open({str(log)!r}, "a") as f:
            f.write(" ".join(sys.argv[1:]) + "\\n")
        print(json.dumps({{"success": True}}))
    """)
    assert invoke("mirror", "tsinghua", "--no-clean").exit_code == 0
    result = invoke("mirror", "restore")
    assert result.exit_code == 0
    assert "clean -i -y --json" in log.read_text()
    assert "Ran `conda clean -i`" in result.output


# --- a broken .condarc reads the same everywhere -------------------------------------------------

BROKEN = {
    "duplicate": ("channels:\n  - defaults\nchannels:\n  - conda-forge\n",
                  "line 3, column 1: the key channels appears twice", "refuse"),
    "tab": ("channels:\n\t- defaults\n", "line 2, column 1: YAML does not allow tabs",
            "skips"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_file_reads_the_same_in_every_command(case, invoke, condarc):
    text, words, conda_does = BROKEN[case]
    condarc.write_text(text, encoding="utf-8")
    outputs = {}
    for args in (["mirror", "tsinghua", "--no-clean"], ["mirror", "list"],
                 ["mirror", "status"]):
        result = invoke(*args)
        outputs[" ".join(args)] = result.output + (result.stderr or "")
    real_conda = REAL_CONDA
    if real_conda:  # conda's own failure, as `mirror status` and `info` show it
        result = invoke("mirror", "status", "--conda", real_conda)
        outputs["mirror status --conda"] = result.output + (result.stderr or "")
    for command, output in outputs.items():
        assert words in output, command
        assert conda_does in output, command
        assert "FileMark" not in output and "Error(" not in output, command
