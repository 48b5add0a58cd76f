"""The backup journal: a crash at any step (kill -9, Ctrl-C, SIGTERM, a full disk) loses nothing,
the next run repairs it and says so, and nothing is claimed that is not on disk."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnsetup.mirror import condarc_file
from tests.journal_helpers import (SignalServer, claimed_backup, disk_state, files_beside,
                                   leftovers, put_back, read_or_none)

ORIGINAL = b"# mine\nchannels:\n  - conda-forge\nssl_verify: true\n"


@pytest.fixture
def server(isolated_home, tmp_path):
    """Runs cnnsetup in processes killed or interrupted at a chosen file operation."""
    with SignalServer(tmp_path / "signal-server") as running:
        yield running


@pytest.fixture
def condarc(isolated_home):
    path = isolated_home / ".condarc"
    path.write_bytes(ORIGINAL)
    return path


def switched_bytes(invoke, home: Path, name: str, original: bytes | None) -> bytes:
    """What `mirror NAME` writes for `original`, computed in a scratch copy."""
    scratch = home.parent / f"scratch-{name}"
    scratch.mkdir(exist_ok=True)
    target = scratch / ".condarc"
    if original is not None:
        target.write_bytes(original)
    result = invoke("mirror", name, "--no-clean", "--condarc", str(target))
    assert result.exit_code == 0, result.output
    return target.read_bytes()


def assert_recoverable(invoke, condarc: Path, original: bytes | None, states: list) -> None:
    """The file is one of `states` exactly; a clean switch then claims only a backup that is on
    disk and holds the original; restore gives the original back byte for byte; nothing stays."""
    assert read_or_none(condarc) in states
    result = invoke("mirror", "bfsu", "--no-clean")
    assert result.exit_code == 0, result.output
    claimed = claimed_backup(result.output)
    if original is not None:
        assert claimed is not None, result.output
        assert claimed.read_bytes() == original
    else:
        assert claimed is None
    result = invoke("mirror", "restore")
    assert result.exit_code == 0, result.output
    assert read_or_none(condarc) == original
    assert leftovers(condarc.parent) == []


# --- kill -9 at every step, then the next run ---------------------------------------------------

SCENARIOS = {
    # name: (commands run before, the command that crashes)
    "switch": ([], ["mirror", "tsinghua", "--no-clean"]),
    "switch-again": ([["mirror", "tsinghua", "--no-clean"]], ["mirror", "ustc", "--no-clean"]),
    "restore": ([["mirror", "tsinghua", "--no-clean"]], ["mirror", "restore"]),
    "switch-restore-switch": ([["mirror", "tsinghua", "--no-clean"],
                               ["mirror", "restore"]],
                              ["mirror", "tsinghua", "--no-clean"]),
}


@pytest.mark.parametrize("had_file", [True, False], ids=["file", "no-file"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_kill_after_any_step_is_repaired_by_the_next_run(scenario, had_file, invoke,
                                                           isolated_home, server):
    condarc = isolated_home / ".condarc"
    original = ORIGINAL if had_file else None
    tsinghua = switched_bytes(invoke, isolated_home, "tsinghua", original)
    ustc = switched_bytes(invoke, isolated_home, "ustc", tsinghua)
    states = {"switch": [original, tsinghua], "switch-again": [tsinghua, ustc],
              "restore": [tsinghua, original],
              "switch-restore-switch": [original, tsinghua]}[scenario]
    before, crashing = SCENARIOS[scenario]
    for path in [condarc] + [isolated_home / n for n in leftovers(isolated_home)]:
        path.unlink(missing_ok=True)
    if original is not None:
        condarc.write_bytes(original)
    for args in before:
        assert invoke(*args).exit_code == 0
    start = files_beside(condarc)  # the commands before, run once: their files, put back each time
    step = 1
    while True:
        put_back(condarc, start)
        result = server.crash_after_step(crashing, step)
        if result.returncode != 137:  # ran to the end: every step has been a crash point
            assert result.returncode == 0, result.stderr
            assert step > 2
            break
        assert_recoverable(invoke, condarc, original, states)
        step += 1


def test_a_sigint_after_any_step_finishes_the_step_and_says_so(invoke, condarc, server):
    tsinghua = switched_bytes(invoke, condarc.parent, "tsinghua", ORIGINAL)
    step = 1
    while True:
        for name in leftovers(condarc.parent):
            (condarc.parent / name).unlink()
        condarc.write_bytes(ORIGINAL)
        result = server.crash_after_step(["mirror", "tsinghua", "--no-clean"], step,
                                         mode="sigint")
        if result.returncode == 0:
            break
        assert result.returncode == 130, result.stderr
        now = condarc.read_bytes()
        if "was switched" in result.stderr:
            assert now == tsinghua
            assert condarc_file.backup_bytes_path(condarc).read_bytes() == ORIGINAL
            record = json.loads(condarc_file.backup_meta_path(condarc).read_text())
            assert record["pending"] is None
        else:
            assert "half-written" in result.stderr or "cleaned up" in result.stderr
            assert now in (ORIGINAL, tsinghua)
        assert "Traceback" not in result.stderr
        assert_recoverable(invoke, condarc, ORIGINAL, [ORIGINAL, tsinghua])
        step += 1


# --- kill -9 and SIGINT right before every file operation -----------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGINT],
                         ids=["kill-9", "sigint"])
@pytest.mark.parametrize("scenario", ["switch", "restore", "switch-restore-switch"])
def test_a_signal_at_any_moment_never_loses_the_original(scenario, signal_number, invoke,
                                                         isolated_home, server):
    """A real signal (kill -9, or SIGINT as Ctrl-C sends it) right before each file operation
    of the command in turn, N = 1, 2, ... until the command finishes first: every disk state
    a signal at any moment can leave (see journal_helpers.SERVER_PROGRAM). Each state is shown
    recoverable (assert_recoverable) the first time it is seen: recovery reads only the files.
    SIGINT is deferred while a step runs: it leaves the files as they were before the command
    or as the whole command leaves them, never in between."""
    condarc = isolated_home / ".condarc"
    tsinghua = switched_bytes(invoke, isolated_home, "tsinghua", ORIGINAL)
    before, crashing = SCENARIOS[scenario]
    condarc.write_bytes(ORIGINAL)
    for args in before:
        assert invoke(*args).exit_code == 0
    start = files_beside(condarc)  # the commands before, run once: their files, put back each time
    untouched = disk_state(isolated_home)
    assert not server.run(crashing, 10**6, signal_number).fired
    finished = disk_state(isolated_home)
    recoverable: set[tuple] = set()
    at = 1
    while True:
        put_back(condarc, start)
        result = server.run(crashing, at, signal_number)
        if not result.fired:  # the command finished: every operation has had its signal
            assert result.returncode == 0, result.stderr
            assert at > 15, at  # the journal's steps are all in there
            break
        if signal_number == signal.SIGKILL:
            assert result.returncode == -signal.SIGKILL
        else:
            assert result.returncode == 130, result.stderr
            assert "Traceback" not in result.stderr
            if "was switched" in result.stderr:
                assert condarc.read_bytes() == tsinghua
            if "restored to the original" in result.stderr:
                assert condarc.read_bytes() == ORIGINAL
            assert disk_state(isolated_home) in (untouched, finished), (at, result.stderr)
        state = disk_state(isolated_home)
        if state in recoverable:
            assert read_or_none(condarc) in (ORIGINAL, tsinghua)
        else:
            assert_recoverable(invoke, condarc, ORIGINAL, [ORIGINAL, tsinghua])
            recoverable.add(state)
        at += 1


# --- the numbered cases -----------------------------------------------------------------------

def test_a_record_whose_bytes_are_gone_is_never_claimed_and_the_fix_works(invoke, condarc):
    invoke("mirror", "tsinghua", "--no-clean")
    condarc_file.backup_bytes_path(condarc).unlink()
    result = invoke("mirror", "bfsu", "--no-clean")
    assert result.exit_code == 1
    assert claimed_backup(result.output) is None
    assert "cannot bring that original back" in result.stderr
    fix = result.stderr.split("start afresh: ", 1)[1].strip()
    assert fix.startswith("rm -- ")
    subprocess.run(fix, shell=True, check=True, env=dict(os.environ, PATH="/usr/bin:/bin"))
    result = invoke("mirror", "bfsu", "--no-clean")
    assert result.exit_code == 0, result.output
    assert claimed_backup(result.output).exists()


def test_a_record_without_bytes_is_repaired_when_the_file_is_still_the_original(invoke, condarc):
    import hashlib

    # A switch died after its record, before the file changed; then the bytes were lost.
    record = {"format": 2, "existed": True, "original_sha256": hashlib.sha256(ORIGINAL).hexdigest(),
              "written": [], "pending": {"action": "write", "sha256": "0" * 64},
              "last_written_sha256": None, "created": "x"}
    condarc_file.backup_meta_path(condarc).write_text(json.dumps(record))
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 0, result.output
    assert "kept again" in result.output
    assert claimed_backup(result.output).read_bytes() == ORIGINAL


def test_backup_bytes_without_a_record_that_differ_are_kept_aside_and_named(invoke, condarc):
    condarc_file.backup_bytes_path(condarc).write_bytes(b"channels: [older]\n")
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 0, result.output
    aside = [p for p in condarc.parent.iterdir() if ".cnnsetup-backup.unrecorded-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == b"channels: [older]\n"
    assert str(aside[0]) in result.output
    assert claimed_backup(result.output).read_bytes() == ORIGINAL


def test_a_full_disk_before_the_record_blocks_nothing_later(invoke, condarc, monkeypatch):
    real_replace = os.replace

    def full(src, dst, *args, **kwargs):
        if str(dst).endswith(".cnnsetup-backup.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 1
    assert condarc.read_bytes() == ORIGINAL
    monkeypatch.setattr(os, "replace", real_replace)
    for args in (["mirror", "tsinghua", "--no-clean"], ["mirror", "restore"]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
    assert condarc.read_bytes() == ORIGINAL
    assert leftovers(condarc.parent) == []


def test_a_kill_between_the_write_and_the_record_needs_no_force(invoke, condarc, server):
    assert invoke("mirror", "tsinghua", "--no-clean").exit_code == 0
    # The second switch dies right after the new file replaced the old one (its 2nd step here:
    # record, file); restore must see a file cnnsetup wrote, not a hand edit.
    for step in (1, 2, 3):
        result = server.crash_after_step(["mirror", "ustc", "--no-clean"], step)
        if result.returncode == 137 and b"ustc" in condarc.read_bytes():
            break
    else:
        pytest.fail("no crash point fell between the write and the record")
    result = invoke("mirror", "restore")
    assert result.exit_code == 0, result.output
    assert condarc.read_bytes() == ORIGINAL


def test_ctrl_c_right_after_the_replace_keeps_backup_and_tells_the_truth(invoke, condarc,
                                                                         monkeypatch):
    real_replace = os.replace

    def interrupted(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if Path(dst) == condarc:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, "replace", interrupted)
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 130
    assert "was switched" in result.stderr and "half-written" not in result.stderr
    assert b"tuna" in condarc.read_bytes()
    assert condarc_file.backup_bytes_path(condarc).read_bytes() == ORIGINAL
    monkeypatch.setattr(os, "replace", real_replace)
    assert invoke("mirror", "restore").exit_code == 0
    assert condarc.read_bytes() == ORIGINAL


def test_sigterm_during_the_write_is_deferred_too(invoke, condarc, monkeypatch):
    real_replace = os.replace
    monkeypatch.setattr(signal, "SIGTERM", signal.SIGTERM)

    def terminated(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if Path(dst) == condarc:
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, lambda *a: pytest.fail("SIGTERM not deferred"))
    try:
        monkeypatch.setattr(os, "replace", terminated)
        result = invoke("mirror", "tsinghua", "--no-clean")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.exit_code == 130
    assert "was switched" in result.stderr
    assert condarc_file.backup_bytes_path(condarc).read_bytes() == ORIGINAL


def test_hand_edits_survive_official_and_restore_asks_for_force(invoke, condarc):
    invoke("mirror", "tsinghua", "--no-clean")
    condarc.write_bytes(condarc.read_bytes() + b"my_edit: 1\n")
    result = invoke("mirror", "official", "--no-clean")
    assert result.exit_code == 0
    assert b"my_edit: 1" in condarc.read_bytes()
    edited = condarc.read_bytes()
    result = invoke("mirror", "restore")
    assert result.exit_code == 1
    assert "--force" in result.stderr
    assert condarc.read_bytes() == edited
    result = invoke("mirror", "restore", "--force")
    assert result.exit_code == 0
    assert condarc.read_bytes() == ORIGINAL
    aside = [p for p in condarc.parent.iterdir() if ".cnnsetup-edited-" in p.name]
    assert [p.read_bytes() for p in aside] == [edited]


def test_a_hand_edit_after_a_killed_first_write_is_not_thrown_away(invoke, condarc):
    # An older run died after writing the file, before recording it (last_written_sha256 null).
    invoke("mirror", "tsinghua", "--no-clean")
    meta = condarc_file.backup_meta_path(condarc)
    record = json.loads(meta.read_text())
    meta.write_text(json.dumps({"format": 1, "condarc": str(condarc), "existed": True,
                                "original_sha256": record["original_sha256"],
                                "last_written_sha256": None, "created": "x"}))
    condarc.write_bytes(condarc.read_bytes() + b"my_edit: 1\n")
    edited = condarc.read_bytes()
    result = invoke("mirror", "restore")
    assert result.exit_code == 1
    assert condarc.read_bytes() == edited


def test_leftover_temp_files_are_removed_by_the_next_run(invoke, condarc):
    stale = [condarc.parent / ".condarc.k3j_x9ab.tmp",
             condarc.parent / ".condarc.cnnsetup-backup.abcdefgh.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    mine = condarc.parent / ".condarc.notes.tmp"  # not a cnnsetup name: left alone
    mine.write_bytes(b"keep")
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 0
    assert not any(p.exists() for p in stale)
    assert mine.exists()
    assert "temporary file" in result.output


def test_restore_and_dry_run_wait_for_a_running_first_switch(invoke, condarc, tmp_path):
    """A first switch is holding the lock with the backup bytes written, the record not yet."""
    ready = tmp_path / "ready"
    program = f"""
import sys, time
from pathlib import Path
from cnnsetup.mirror import condarc_file
path = Path({str(condarc)!r})
with condarc_file.locked(path):
    condarc_file.backup_bytes_path(path).write_bytes(path.read_bytes())
    Path({str(ready)!r}).write_text("1")
    time.sleep(3)
    condarc_file.backup_bytes_path(path).unlink()
"""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    holder = subprocess.Popen([sys.executable, "-c", program], env=env)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        result = invoke("mirror", "tsinghua", "--dry-run")
        assert result.exit_code == 0, result.output
        assert "somewhere safe" not in result.output
    finally:
        holder.wait(timeout=60)


def test_status_repairs_an_interrupted_switch_and_says_so(invoke, condarc):
    # A first switch died after keeping the bytes, before its record.
    condarc_file.backup_bytes_path(condarc).write_bytes(ORIGINAL)
    result = invoke("mirror", "status")
    assert "interrupted run" in result.output
    assert leftovers(condarc.parent) == []
    assert condarc.read_bytes() == ORIGINAL
