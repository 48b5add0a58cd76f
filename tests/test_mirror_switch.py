"""`cnnsetup mirror NAME`, `official` and `restore`: the user's file is edited safely and can
always be put back byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cnnsetup.mirror import condarc_file, registry, yaml_io
from cnnsetup.mirror.switch import make_plan, restore, switch
from tests.conftest import CONDA_GOLDEN, REPO_ROOT, write_program

TUNA = "https://mirrors.tuna.tsinghua.edu.cn/anaconda"
BFSU = "https://mirrors.bfsu.edu.cn/anaconda"

COMMENTED = """\
# my conda settings  -- keep these comments!
ssl_verify: truststore   # company proxy
channels:
  - conda-forge  # first choice
  - defaults
envs_dirs:
  - "D:/envs"      # quoted on purpose
auto_activate_base: false
"""


def home_files(home: Path) -> list[str]:
    """What is in the home folder, besides cnnsetup's own cache (~/.cache/cnnsetup: locks)."""
    return sorted(p.name for p in home.iterdir() if p.name != ".cache")


def data(path: Path) -> dict:
    return yaml_io.plain(yaml_io.load(path.read_text(encoding="utf-8"), source=str(path)))


def test_no_file_becomes_the_mirror_template(invoke, isolated_home):
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 0, result.output
    condarc = isolated_home / ".condarc"
    assert data(condarc) == {
        "channels": ["defaults"],
        "show_channel_urls": True,
        "default_channels": [f"{TUNA}/pkgs/main", f"{TUNA}/pkgs/r"],
        "custom_channels": {name: f"{TUNA}/cloud" for name in ("conda-forge", "pytorch", "bioconda")},
    }
    assert condarc.read_bytes().isascii()


def test_alias_tuna_is_tsinghua(invoke, isolated_home):
    assert invoke("mirror", "tuna", "--no-clean").exit_code == 0
    assert data(isolated_home / ".condarc")["default_channels"][0] == f"{TUNA}/pkgs/main"


def test_unknown_mirror_is_a_usage_error_listing_the_names(invoke, isolated_home):
    result = invoke("mirror", "tsinghau")
    assert result.exit_code == 2
    for name in registry.names():
        assert name in result.stderr
    assert "Did you mean tsinghua?" in result.stderr
    assert not (isolated_home / ".condarc").exists()


@pytest.mark.parametrize("args, meant", [
    (["mirror", "bsfu"], "bfsu"),
    (["mirror", "TUNA2"], "tuna"),
    (["onboard", "--mirror", "tsinhua"], "tsinghua"),
    (["torch-command", "--mirror", "aliyn"], "aliyun"),
    (["mirror", "stauts"], "status"),  # a subcommand, not a mirror to switch to
    (["mirror", "restroe"], "restore"),
    (["mirror", "pytorch"], None),  # nothing close: no guess, only the list
])
def test_a_mistyped_mirror_name_is_answered_with_the_likely_one(invoke, isolated_home, args,
                                                                 meant):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Known mirrors: tsinghua, bfsu" in result.stderr
    if meant:
        assert f"Did you mean {meant}?" in result.stderr
    else:
        assert "Did you mean" not in result.stderr
    assert not (isolated_home / ".condarc").exists()


def test_comments_order_quotes_and_other_keys_survive(invoke, isolated_home):
    condarc = isolated_home / ".condarc"
    condarc.write_text(COMMENTED, encoding="utf-8")
    assert invoke("mirror", "bfsu", "--no-clean").exit_code == 0
    text = condarc.read_text(encoding="utf-8")
    for fragment in ("# my conda settings  -- keep these comments!", "# company proxy",
                     "- conda-forge  # first choice", '"D:/envs"      # quoted on purpose',
                     "auto_activate_base: false", "ssl_verify: truststore"):
        assert fragment in text
    keys = list(data(condarc))
    assert keys[:4] == ["ssl_verify", "channels", "envs_dirs", "auto_activate_base"]
    assert data(condarc)["channels"] == ["conda-forge", "defaults"]


def test_pasted_mirror_urls_in_channels_become_defaults_without_duplicates(invoke, isolated_home):
    condarc = isolated_home / ".condarc"
    shutil.copy(CONDA_GOLDEN / "seed-style" / "files" / ".condarc", condarc)
    assert invoke("mirror", "tsinghua", "--no-clean").exit_code == 0
    assert data(condarc)["channels"] == ["defaults"]


def test_pasted_cloud_and_http_urls_become_channel_names(invoke, isolated_home):
    condarc = isolated_home / ".condarc"
    condarc.write_text(
        "channels:\n"
        "  - http://mirrors.aliyun.com/anaconda/cloud/conda-forge/\n"
        "  - https://mirrors.aliyun.com/anaconda/pkgs/free\n"
        "  - my-lab-channel\n"
        "  - https://repo.anaconda.com/pkgs/main\n",
        encoding="utf-8",
    )
    assert invoke("mirror", "sjtu", "--no-clean").exit_code == 0
    assert data(condarc)["channels"] == ["conda-forge", "defaults", "my-lab-channel"]


def test_defaults_is_added_after_the_users_own_channels(invoke, isolated_home):
    condarc = isolated_home / ".condarc"
    condarc.write_text("channels:\n  - conda-forge\n", encoding="utf-8")
    assert invoke("mirror", "nju", "--no-clean").exit_code == 0
    assert data(condarc)["channels"] == ["conda-forge", "defaults"]


def test_empty_channels_list_gets_defaults(invoke, isolated_home):
    condarc = isolated_home / ".condarc"
    condarc.write_text("channels: []\n", encoding="utf-8")
    assert invoke("mirror", "nju", "--no-clean").exit_code == 0
    assert data(condarc)["channels"] == ["defaults"]


def test_empty_file_is_fine(invoke, isolated_home):
    condarc = isolated_home / ".condarc"
    condarc.write_bytes(b"")
    assert invoke("mirror", "tsinghua", "--no-clean").exit_code == 0
    assert data(condarc)["channels"] == ["defaults"]
    assert invoke("mirror", "restore").exit_code == 0
    assert condarc.read_bytes() == b""


def test_running_the_same_mirror_again_changes_no_byte(invoke, isolated_home):
    condarc = isolated_home / ".condarc"
    condarc.write_text(COMMENTED, encoding="utf-8")
    assert invoke("mirror", "tsinghua", "--no-clean").exit_code == 0
    first = condarc.read_bytes()
    stat_before = condarc.stat()
    result = invoke("mirror", "tsinghua", "--no-clean", "--json")
    assert json.loads(result.stdout)["changed"] is False
    assert condarc.read_bytes() == first
    assert condarc.stat().st_ino == stat_before.st_ino  # not even rewritten


def test_a_then_b_then_a_ends_where_a_did(invoke, isolated_home):
    condarc = isolated_home / ".condarc"
    condarc.write_text(COMMENTED, encoding="utf-8")
    invoke("mirror", "tsinghua", "--no-clean")
    after_a = condarc.read_bytes()
    invoke("mirror", "bfsu", "--no-clean")
    assert data(condarc)["default_channels"][0] == f"{BFSU}/pkgs/main"
    assert TUNA not in condarc.read_text(encoding="utf-8")
    invoke("mirror", "tsinghua", "--no-clean")
    assert condarc.read_bytes() == after_a


@pytest.mark.parametrize("case", sorted(p.name for p in CONDA_GOLDEN.iterdir() if p.is_dir()))
def test_restore_after_several_switches_gives_back_the_exact_bytes(case, invoke, isolated_home):
    source = CONDA_GOLDEN / case / "files" / ".condarc"
    condarc = isolated_home / ".condarc"
    if source.exists():
        shutil.copy(source, condarc)
    original = condarc.read_bytes() if condarc.exists() else None
    first = invoke("mirror", "tsinghua", "--no-clean")
    if first.exit_code == 1:  # files conda itself rejects are refused, and left alone
        assert condarc.read_bytes() == original
        assert not condarc_file.backup_meta_path(condarc).exists()
        return
    for name in ("bfsu", "ustc", "official", "aliyun"):
        assert invoke("mirror", name, "--no-clean").exit_code == 0
    assert invoke("mirror", "restore").exit_code == 0
    if original is None:
        assert not condarc.exists()
    else:
        assert condarc.read_bytes() == original
    assert home_files(isolated_home) == (
        [".condarc"] if original is not None else []
    )


def test_crlf_stays_crlf(invoke, isolated_home):
    condarc = isolated_home / ".condarc"
    condarc.write_bytes(b"# from Notepad\r\nchannels:\r\n  - conda-forge\r\n")
    assert invoke("mirror", "tsinghua", "--no-clean").exit_code == 0
    raw = condarc.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n") > 5
    assert raw.startswith(b"# from Notepad\r\n")


def test_a_utf8_bom_is_dropped(invoke, isolated_home):
    condarc = isolated_home / ".condarc"
    shutil.copy(CONDA_GOLDEN / "bom-crlf" / "files" / ".condarc", condarc)
    assert condarc.read_bytes().startswith(condarc_file.BOM)
    assert invoke("mirror", "tsinghua", "--no-clean").exit_code == 0
    assert not condarc.read_bytes().startswith(condarc_file.BOM)
    assert invoke("mirror", "restore").exit_code == 0
    assert condarc.read_bytes().startswith(condarc_file.BOM)


def test_a_bom_alone_is_dropped_even_when_nothing_else_changes(isolated_home):
    condarc = isolated_home / ".condarc"
    switch(registry.get("tsinghua"), condarc, platform="linux")
    condarc.write_bytes(condarc_file.BOM + condarc.read_bytes())
    result = switch(registry.get("tsinghua"), condarc, platform="linux")
    assert result.changed and not condarc.read_bytes().startswith(condarc_file.BOM)


def test_gbk_file_keeps_its_encoding_and_chinese_comment(isolated_home):
    condarc = isolated_home / ".condarc"
    original = "# 我的配置：清华源\nchannels:\n  - defaults\n".encode("gbk")
    condarc.write_bytes(original)
    switch(registry.get("tsinghua"), condarc, platform="win32", fallback_encoding="gbk")
    raw = condarc.read_bytes()
    assert raw.startswith("# 我的配置：清华源\n".encode("gbk"))
    assert "清华源" in raw.decode("gbk")
    restore(condarc)
    assert condarc.read_bytes() == original


def test_bytes_neither_utf8_nor_system_encoding_are_refused(invoke, isolated_home):
    condarc = isolated_home / ".condarc"
    original = b"channels:\n  - defaults\n# \xff\xfe\xfa broken\n"
    condarc.write_bytes(original)
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 1
    assert "UTF-8" in result.stderr
    assert condarc.read_bytes() == original


@pytest.mark.parametrize(
    "text, words",
    [
        ("channels: [defaults\nshow_channel_urls: true\n", ["line 2"]),
        ("channels:\n  - defaults\nchannels:\n  - conda-forge\n", ["line 3", "twice"]),
        ("channels: defaults\n", ["channels", "list"]),
        ("default_channels: https://mirror.example/pkgs/main\n", ["default_channels", "list"]),
        ("custom_channels:\n  - conda-forge\n", ["custom_channels"]),
        ("channels:\n\t- defaults\n", ["line 2", "column 1"]),
        ("- just\n- a list\n", ["mapping"]),
    ],
    ids=["parser-error", "duplicate-key", "channels-scalar", "default-channels-scalar",
         "custom-channels-list", "tab", "not-a-mapping"],
)
def test_broken_files_are_refused_with_a_clear_message_and_left_alone(text, words, invoke, isolated_home):
    condarc = isolated_home / ".condarc"
    condarc.write_text(text, encoding="utf-8")
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 1
    for word in words:
        assert word in result.stderr
    assert "Traceback" not in result.stderr
    assert condarc.read_text(encoding="utf-8") == text
    assert home_files(isolated_home) == [".condarc"]


def test_a_directory_is_refused(invoke, tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    result = invoke("mirror", "tsinghua", "--condarc", str(folder))
    assert result.exit_code == 1
    assert "folder" in result.stderr


def test_an_unreadable_file_is_refused(invoke, isolated_home, monkeypatch):
    condarc = isolated_home / ".condarc"
    condarc.write_text(COMMENTED, encoding="utf-8")
    if os.geteuid() != 0:
        condarc.chmod(0)
    else:  # root reads anything: stand in for the permission error it cannot get
        real_open = os.open

        def deny(path, *args, **kwargs):
            if str(path) == str(condarc):
                raise PermissionError(13, "Permission denied")
            return real_open(path, *args, **kwargs)
        monkeypatch.setattr(os, "open", deny)
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 1
    assert "Permission denied" in result.stderr


def test_an_unwritable_file_is_refused_before_any_change(invoke, isolated_home, monkeypatch):
    condarc = isolated_home / ".condarc"
    condarc.write_text(COMMENTED, encoding="utf-8")
    if os.geteuid() != 0:
        condarc.chmod(0o444)
    else:  # root writes anything: stand in for the answer a normal user gets
        real_access = os.access
        monkeypatch.setattr(condarc_file.os, "access",
                            lambda p, mode: False if str(p) == str(condarc) else real_access(p, mode))
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 1
    assert "not writable" in result.stderr
    assert condarc.read_text(encoding="utf-8") == COMMENTED
    assert not condarc_file.backup_meta_path(condarc).exists()


def test_a_failure_mid_write_leaves_the_original_untouched(invoke, isolated_home, monkeypatch):
    condarc = isolated_home / ".condarc"
    condarc.write_text(COMMENTED, encoding="utf-8")
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst) == condarc:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    result = invoke("mirror", "tsinghua", "--no-clean")
    assert result.exit_code == 1
    assert "No space left on device" in result.stderr
    assert condarc.read_text(encoding="utf-8") == COMMENTED
    assert home_files(isolated_home) == [".condarc"]  # no temp, no backup


def test_a_write_that_does_not_read_back_is_undone(isolated_home, monkeypatch):
    condarc = isolated_home / ".condarc"
    condarc.write_text(COMMENTED, encoding="utf-8")
    from cnnsetup.mirror import journal

    real_write = journal.write_atomic
    writes_to_condarc = []

    def corrupting_write(path, payload, **kwargs):  # the first write loses its tail; later ones are fine
        if Path(path) == condarc:
            writes_to_condarc.append(payload)
            if len(writes_to_condarc) == 1:
                payload = payload[:-20]
        return real_write(path, payload, **kwargs)

    monkeypatch.setattr(journal, "write_atomic", corrupting_write)
    with pytest.raises(Exception, match="original was put back"):
        switch(registry.get("tsinghua"), condarc)
    assert condarc.read_text(encoding="utf-8") == COMMENTED
    assert home_files(isolated_home) == [".condarc"]  # the journal rolled back too


def test_permission_bits_are_kept(invoke, isolated_home):
    condarc = isolated_home / ".condarc"
    condarc.write_text(COMMENTED, encoding="utf-8")
    condarc.chmod(0o600)
    invoke("mirror", "tsinghua", "--no-clean")
    assert condarc.stat().st_mode & 0o777 == 0o600


def test_a_symlink_stays_a_link_and_its_target_is_edited(invoke, isolated_home):
    dotfiles = isolated_home / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "condarc"
    target.write_text(COMMENTED, encoding="utf-8")
    link = isolated_home / ".condarc"
    link.symlink_to(target)
    assert invoke("mirror", "tsinghua", "--no-clean").exit_code == 0
    assert link.is_symlink()
    assert data(target)["default_channels"][0] == f"{TUNA}/pkgs/main"
    assert invoke("mirror", "restore").exit_code == 0
    assert link.is_symlink()
    assert target.read_text(encoding="utf-8") == COMMENTED


def test_dry_run_prints_the_diff_and_changes_nothing(invoke, isolated_home, bin_dir):
    calls = bin_dir / "calls.txt"
    write_program(bin_dir / "conda", f"import sys\nopen({str(calls)!r}, 'a').write(' '.join(sys.argv[1:]))\n")
    condarc = isolated_home / ".condarc"
    condarc.write_text(COMMENTED, encoding="utf-8")
    result = invoke("mirror", "tsinghua", "--dry-run")
    assert result.exit_code == 0
    assert f"+  - {TUNA}/pkgs/main" in result.stdout
    assert "conda clean -i -y --json" in result.stdout
    assert condarc.read_text(encoding="utf-8") == COMMENTED
    assert home_files(isolated_home) == [".condarc"]
    assert not calls.exists()


def test_json_output_is_one_object(invoke, isolated_home):
    result = invoke("mirror", "bfsu", "--no-clean", "--json")
    payload = json.loads(result.stdout)
    assert payload["changed"] is True
    assert payload["mirror"] == "bfsu"
    assert payload["condarc"] == str(isolated_home / ".condarc")
    assert payload["backup"] == str(condarc_file.backup_meta_path(isolated_home / ".condarc"))


def test_conda_clean_runs_after_writing(invoke, isolated_home, bin_dir):
    calls = bin_dir / "calls.txt"
    write_program(bin_dir / "conda", f"""
        import json, sys
        open({str(calls)!r}, "a").write(" ".join(sys.argv[1:]) + "\\n")
        print(json.dumps({{"success": True, "index_cache": {{"files": []}}}}))
    """)
    result = invoke("mirror", "tsinghua")
    assert result.exit_code == 0
    assert calls.read_text().splitlines()[0] == "clean -i -y --json"


def test_no_clean_skips_conda_clean(invoke, isolated_home, bin_dir):
    calls = bin_dir / "calls.txt"
    write_program(bin_dir / "conda", f"import sys\nopen({str(calls)!r}, 'a').write(sys.argv[1] + '\\n')\n")
    assert invoke("mirror", "tsinghua", "--no-clean").exit_code == 0
    assert "clean" not in calls.read_text().split()


def test_conda_missing_is_a_note_not_a_failure(invoke, isolated_home):
    result = invoke("mirror", "tsinghua")
    assert result.exit_code == 0
    assert "conda clean -i" in result.stdout
    assert (isolated_home / ".condarc").exists()


def test_windows_gets_msys2_and_uses_userprofile(isolated_home, tmp_path):
    profile = tmp_path / "Users" / "student"
    profile.mkdir(parents=True)
    env = {"USERPROFILE": str(profile), "HOME": "/nonexistent"}
    assert condarc_file.default_condarc(env, "win32") == profile / ".condarc"
    assert condarc_file.default_condarc(env, "linux") == Path("/nonexistent/.condarc")
    plan = make_plan(registry.get("tsinghua"), profile / ".condarc", platform="win32")
    assert plan.expected["default_channels"][-1] == f"{TUNA}/pkgs/msys2"
    plan = make_plan(registry.get("tsinghua"), profile / ".condarc", platform="linux")
    assert all("msys2" not in url for url in plan.expected["default_channels"])


def test_ustc_keeps_defaults_upstream_and_says_so(invoke, isolated_home):
    invoke("mirror", "tsinghua", "--no-clean")
    result = invoke("mirror", "ustc", "--no-clean")
    assert result.exit_code == 0
    assert "conda-forge and bioconda only" in result.stdout
    config = data(isolated_home / ".condarc")
    assert "default_channels" not in config
    assert config["custom_channels"] == {
        "conda-forge": "https://mirrors.ustc.edu.cn/anaconda/cloud",
        "bioconda": "https://mirrors.ustc.edu.cn/anaconda/cloud",
    }


def test_official_removes_mirror_keys_and_keeps_the_rest(invoke, isolated_home):
    condarc = isolated_home / ".condarc"
    condarc.write_text(
        COMMENTED + "channel_alias: https://mirrors.tuna.tsinghua.edu.cn/anaconda/cloud\n"
        "custom_channels:\n  my-lab: https://lab.example.edu/conda\n",
        encoding="utf-8",
    )
    invoke("mirror", "tsinghua", "--no-clean")
    result = invoke("mirror", "official", "--no-clean")
    assert result.exit_code == 0
    assert "terms of service" in result.stdout
    config = data(condarc)
    assert config["channels"] == ["conda-forge", "defaults"]
    assert "default_channels" not in config and "channel_alias" not in config
    assert config["custom_channels"] == {"my-lab": "https://lab.example.edu/conda"}
    assert config["ssl_verify"] == "truststore"
    assert "tuna" not in condarc.read_text(encoding="utf-8")


def test_restore_without_a_backup_is_a_clear_failure(invoke, isolated_home):
    result = invoke("mirror", "restore")
    assert result.exit_code == 1
    assert "no cnnsetup backup" in result.stderr


def test_restore_stops_when_the_file_was_edited_since(invoke, isolated_home):
    condarc = isolated_home / ".condarc"
    condarc.write_text(COMMENTED, encoding="utf-8")
    invoke("mirror", "tsinghua", "--no-clean")
    edited = condarc.read_text(encoding="utf-8") + "pip_interop_enabled: true\n"
    condarc.write_text(edited, encoding="utf-8")
    result = invoke("mirror", "restore")
    assert result.exit_code == 1
    assert "--force" in result.stderr
    assert condarc.read_text(encoding="utf-8") == edited
    result = invoke("mirror", "restore", "--force")
    assert result.exit_code == 0
    assert condarc.read_text(encoding="utf-8") == COMMENTED
    aside = [p for p in isolated_home.iterdir() if ".cnnsetup-edited-" in p.name]
    assert len(aside) == 1 and aside[0].read_text(encoding="utf-8") == edited
    assert str(aside[0]) in result.stdout


def test_custom_condarc_path(invoke, tmp_path, isolated_home):
    target = tmp_path / "elsewhere" / "condarc.yml"
    target.parent.mkdir()
    assert invoke("mirror", "aliyun", "--condarc", str(target), "--no-clean").exit_code == 0
    assert data(target)["default_channels"][0] == "https://mirrors.aliyun.com/anaconda/pkgs/main"
    assert not (isolated_home / ".condarc").exists()
    assert invoke("mirror", "restore", "--condarc", str(target)).exit_code == 0
    assert not target.exists()


@pytest.mark.slow
def test_two_processes_switching_at_once_never_interleave(isolated_home, tmp_path):
    condarc = isolated_home / ".condarc"
    condarc.write_text(COMMENTED, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    script = (
        "import sys\nfrom pathlib import Path\nfrom cnnsetup.mirror import registry\n"
        "from cnnsetup.mirror.switch import switch\n"
        "for i in range(15):\n"
        "    switch(registry.get(sys.argv[1] if i % 2 else sys.argv[2]), Path(sys.argv[3]))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, a, b, str(condarc)], env=env,
                         stderr=subprocess.PIPE, text=True)
        for a, b in (("tsinghua", "bfsu"), ("bfsu", "nju"))
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    final = data(condarc)
    assert final["default_channels"][0].rsplit("/anaconda", 1)[0] in (
        "https://mirrors.tuna.tsinghua.edu.cn", "https://mirrors.bfsu.edu.cn", "https://mirror.nju.edu.cn")
    assert condarc_file.backup_bytes_path(condarc).read_text(encoding="utf-8") == COMMENTED
    restore(condarc)
    assert condarc.read_text(encoding="utf-8") == COMMENTED


def test_bytes_that_do_not_read_back_as_meant_are_never_written(tmp_path, monkeypatch):
    """The one gate before a write: the minimal-edit text that does not read back gives way to
    the plain dump; a dump that does not read back either refuses the switch, nothing written."""
    from cnnsetup.errors import FileSafetyError
    from cnnsetup.mirror import splice

    condarc = tmp_path / "user" / ".condarc"
    condarc.parent.mkdir()
    original = b"channels:\n  - conda-forge\nssl_verify: true\n"
    condarc.write_bytes(original)
    # A splice that loses keys: the plan is the whole dump, which reads back as intended.
    monkeypatch.setattr(splice, "splice", lambda *args: "ssl_verify: true\n")
    plan = make_plan(registry.get("tsinghua"), condarc, platform="linux")
    assert yaml_io.plain(yaml_io.load(plan.new_text, source="")) == plan.expected
    assert "default_channels" in plan.expected and "channels" in plan.expected
    # And a dump that loses them too: refused, the file and its folder as they were.
    monkeypatch.setattr(yaml_io, "dump", lambda document: "ssl_verify: true\n")
    with pytest.raises(FileSafetyError, match="would not read back"):
        switch(registry.get("tsinghua"), condarc, platform="linux")
    assert condarc.read_bytes() == original
    assert sorted(p.name for p in condarc.parent.iterdir()) == [".condarc"]
