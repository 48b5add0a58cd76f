"""Where the pieces meet: cases found by trying the merged commands on real files. Each one was
wrong once (a refusal of a file conda accepts, a warning after a good switch, a kept-aside file
overwritten, wrong keys named, a report path found unwritable only after training)."""

from __future__ import annotations

import json

import pytest

from cnnsetup.mirror.confirm import on_expected


def test_an_anchored_boolean_is_a_boolean_as_conda_reads_it(invoke, isolated_home):
    (isolated_home / ".condarc").write_text(
        "ssl_verify: &v false\nx: &t true\nshow_channel_urls: *t\nchannels:\n  - defaults\n",
        encoding="utf-8")
    result = invoke("mirror", "tsinghua", "--dry-run", "--offline")
    assert result.exit_code == 0, result.output
    assert "ssl_verify is false" in result.output  # the warning still sees the value


def test_a_mirror_given_by_http_url_counts_as_that_mirror():
    assert on_expected("http://127.0.0.1:8000/anaconda/pkgs/main/linux-64",
                       "http://127.0.0.1:8000/anaconda/pkgs")
    assert not on_expected("https://repo.anaconda.com/pkgs/main", "http://127.0.0.1:8000/anaconda/pkgs")


@pytest.mark.parametrize("text, alias_key", [
    ("default_channels: &d\n  - https://repo.anaconda.com/pkgs/main\nallowlist_channels: *d\n"
     "channels: [defaults]\n", "allowlist_channels"),
    ("my_urls: &u\n  - https://repo.anaconda.com/pkgs/main\ndefault_channels: *u\n"
     "channels: [defaults]\n", "default_channels"),
])
def test_the_alias_refusal_names_the_key_that_holds_the_alias(invoke, isolated_home, text,
                                                              alias_key):
    (isolated_home / ".condarc").write_text(text, encoding="utf-8")
    result = invoke("mirror", "tsinghua", "--dry-run", "--offline")
    assert result.exit_code == 1
    assert "would change default_channels" in result.stderr
    assert f"Write the value of {alias_key} out in full" in result.stderr


def test_a_dry_run_promises_nothing_the_real_run_cannot_do(invoke, tmp_path):
    target = tmp_path / "no-such-folder" / ".condarc"
    result = invoke("mirror", "tsinghua", "--dry-run", "--offline", "--json",
                    "--condarc", str(target))
    assert result.exit_code == 1
    assert json.loads(result.stdout)["ok"] is False


def test_forced_pip_restores_never_overwrite_an_earlier_kept_aside_file(invoke, isolated_home,
                                                                        tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg-dirs"))
    user_file = isolated_home / ".config" / "pip" / "pip.conf"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("[global]\ntimeout = 5\n", encoding="utf-8")
    for n in (1, 2):
        assert invoke("mirror", "tsinghua", "--pip", "--no-clean", "--offline").exit_code == 0
        with user_file.open("a", encoding="utf-8") as handle:
            handle.write(f"# my edit {n}\n")
        assert invoke("mirror", "restore", "--pip", "--force", "--no-clean").exit_code == 0
    kept = sorted(p.read_text(encoding="utf-8") for p in user_file.parent.glob("pip.conf.cnnsetup-edited*"))
    assert len(kept) == 2 and "# my edit 1" in kept[0] + kept[1] and "# my edit 2" in kept[0] + kept[1]
    assert user_file.read_text(encoding="utf-8") == "[global]\ntimeout = 5\n"


def test_the_pip_index_shown_as_before_is_the_one_pip_really_used(invoke, isolated_home, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg-dirs"))
    legacy = isolated_home / ".pip" / "pip.conf"
    legacy.parent.mkdir()
    legacy.write_text("[global]\nindex-url = https://legacy.example/simple\n", encoding="utf-8")
    result = invoke("mirror", "tsinghua", "--pip", "--no-clean", "--offline")
    assert result.exit_code == 0, result.output
    assert "(was: https://legacy.example/simple)" in result.stdout


def test_an_unwritable_report_path_is_refused_before_any_training(invoke, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    result = invoke("verify", "--device", "cpu", "--report", str(blocker / "r.json"), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "report.unwritable"


def test_a_node_rank_outside_a_c10d_job_is_a_usage_error(invoke):
    result = invoke("verify", "--ddp", "2", "--rdzv-endpoint", "127.0.0.1:29999",
                    "--node-rank", "5")
    assert result.exit_code == 2


def test_a_mirror_nobody_answers_for_is_unchecked_not_claimed_written(invoke, isolated_home,
                                                                      monkeypatch):
    """Offline: the switch goes ahead with a warning that says the channels are unchecked, also
    in a dry run (which writes nothing), and onboard's decision knows it for its summary."""
    from cnnsetup.mirror import channel_probe, registry

    mirror = registry.from_url("http://127.0.0.1:9/anaconda")  # port 9: nothing listens
    live = channel_probe.check(mirror, windows=False, timeout=2)
    decision = channel_probe.decide(mirror, live)
    assert decision.unreachable and decision.refusal is None
    monkeypatch.delenv("CNNSETUP_OFFLINE", raising=False)
    result = invoke("mirror", "--url", "http://127.0.0.1:9/anaconda", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "unchecked" in result.output and "written" not in result.output


def test_status_asks_to_fix_a_skipped_file_before_suggesting_a_switch(invoke, isolated_home):
    (isolated_home / ".condarc").write_text("channels:\n\t- defaults\n", encoding="utf-8")
    result = invoke("mirror", "status")
    assert "fix that line first" in result.stdout
    assert "To use a mirror" not in result.stdout


@pytest.mark.parametrize("args", [
    ["mirror", "--url", "https://mirrors.example.edu.cn/anaconda/pkgs/main", "--dry-run"],
    ["mirror", "--url", "https://mirrors.example.edu.cn/anaconda/cloud/conda-forge/"],
    ["mirror", "--url", "https://mirrors.example.edu.cn/anaconda/pkgs/free/linux-64"],
    ["mirror", "test", "--url", "https://mirrors.example.edu.cn/anaconda/pkgs/main"],
])
def test_a_channel_given_as_the_base_is_refused_naming_the_base(invoke, isolated_home, args):
    # Taken as a base, BASE/pkgs/main became .../pkgs/main/pkgs/main in every channel.
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "give its base: https://mirrors.example.edu.cn/anaconda" in result.stderr
    assert "--url" in result.stderr
    assert not (isolated_home / ".condarc").exists()


@pytest.mark.parametrize("base", ["https://pkgs.example.cn/cloud-mirror/anaconda",
                                  "https://mirrors.example.com/cloud/anaconda",
                                  "https://nexus.example.com/repository/cloud/anaconda"])
def test_a_base_that_merely_holds_such_words_is_a_base(invoke, isolated_home, base):
    result = invoke("mirror", "--url", base, "--dry-run", "--offline")
    assert result.exit_code == 0, result.output
    assert f"{base}/pkgs/main" in result.output


@pytest.mark.parametrize("main", [
    "https://example.com/cloud/anaconda/pkgs/main",  # a base under /cloud/NAME: named
    "https://x.example.cn/anaconda/pkgs/main/pkgs/main",  # what a channel taken as base made
])
def test_list_and_status_read_any_channel_url_without_a_traceback(invoke, isolated_home, main):
    (isolated_home / ".condarc").write_text(
        f"channels:\n  - defaults\ndefault_channels:\n  - {main}\n", encoding="utf-8")
    listed = invoke("mirror", "list")
    assert listed.exit_code == 0 and "Traceback" not in listed.output, listed.output
    status = invoke("mirror", "status", "--json")
    assert status.exit_code == 0, status.output
    expected = main.rsplit("/pkgs/main", 1)[0] if main.count("/pkgs/") == 1 else None
    assert json.loads(status.stdout)["mirror"] == expected


def test_mirror_help_shows_how_to_give_a_mirror_by_its_address(invoke):
    result = invoke("mirror", "--help")
    assert "cnnsetup mirror --url BASE" in result.stdout


CAMPUS = "https://mirrors.example.edu.cn/anaconda"


def test_a_mirror_given_by_its_address_is_named_by_status_and_list(invoke, isolated_home):
    assert invoke("mirror", "--url", CAMPUS, "--no-clean", "--offline").exit_code == 0
    status = invoke("mirror", "status", "--json")
    assert json.loads(status.stdout)["mirror"] == CAMPUS
    data = json.loads(status.stdout)
    assert data["channels"]["defaults"]["url"] == f"{CAMPUS}/pkgs/main"  # the first, not the last
    assert [r["url"] for r in data["reasons"]] == [f"{CAMPUS}/pkgs/main", f"{CAMPUS}/pkgs/r"]
    assert {r["mirror"] for r in data["reasons"]} == {CAMPUS}
    human = invoke("mirror", "status")
    assert f"conda uses: the mirror at {CAMPUS} (not in cnnsetup's list)" in human.stdout
    assert "unknown" not in human.stdout.split("Why:")[1].split("\n\n")[0]
    listed = invoke("mirror", "list")
    assert f"points at {CAMPUS}." in listed.stdout


def test_a_campus_mirror_mixed_with_a_known_one_is_still_a_mix(invoke, isolated_home):
    (isolated_home / ".condarc").write_text(
        "channels:\n  - defaults\n  - conda-forge\ndefault_channels:\n"
        "  - https://mirrors.tuna.tsinghua.edu.cn/anaconda/pkgs/main\n"
        f"custom_channels:\n  conda-forge: {CAMPUS}/cloud\n", encoding="utf-8")
    status = invoke("mirror", "status", "--json")
    assert json.loads(status.stdout)["mirror"] is None
    two_bases = (f"default_channels:\n  - {CAMPUS}/pkgs/main\n"
                 "custom_channels:\n  conda-forge: https://other.example.cn/anaconda/cloud\n"
                 "channels:\n  - defaults\n  - conda-forge\n")
    (isolated_home / ".condarc").write_text(two_bases, encoding="utf-8")
    assert json.loads(invoke("mirror", "status", "--json").stdout)["mirror"] is None
    # A known mirror's host is never taken for a campus mirror: USTC keeps no defaults copy, so
    # its pkgs/main URL is a fault of the file, shown as such (the old `defaults` recipe).
    ustc = ("channels:\n  - defaults\ndefault_channels:\n"
            "  - https://mirrors.ustc.edu.cn/anaconda/pkgs/main\n")
    (isolated_home / ".condarc").write_text(ustc, encoding="utf-8")
    assert json.loads(invoke("mirror", "status", "--json").stdout)["mirror"] is None


@pytest.mark.parametrize("url", ["https://[::1", "https://x.example.cn:99999/anaconda",
                                 "https://x.example.cn/anaconda?x=1", "mirrors.example.cn/anaconda"])
def test_an_address_that_cannot_be_a_base_is_a_usage_error(invoke, isolated_home, url):
    result = invoke("mirror", "--url", url, "--dry-run", "--offline")
    assert result.exit_code == 2, result.output
    assert "give the mirror's address" in result.stderr
    assert not (isolated_home / ".condarc").exists()


@pytest.mark.parametrize("tail", ["pkgs", "pkgs/main/linux-64/current_repodata.json",
                                  "cloud/pytorch/linux-64/repodata.json"])
def test_what_condas_errors_print_is_refused_with_the_base(invoke, isolated_home, tail):
    result = invoke("mirror", "--url", f"https://x.example.cn/anaconda/{tail}", "--offline")
    assert result.exit_code == 2, result.output
    assert "give its base: https://x.example.cn/anaconda" in result.stderr


def test_a_file_with_an_unreadable_address_is_read_without_a_traceback(invoke, isolated_home):
    (isolated_home / ".condarc").write_text(
        "channels:\n  - defaults\ndefault_channels:\n  - https://[::1/pkgs/main\n", encoding="utf-8")
    for args in (["mirror", "status"], ["mirror", "list"]):
        result = invoke(*args)
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output


def test_an_address_where_a_name_goes_is_answered_with_the_url_option(invoke, isolated_home):
    result = invoke("mirror", "https://mirrors.example.edu.cn/anaconda")
    assert result.exit_code == 2
    assert "cnnsetup mirror --url https://mirrors.example.edu.cn/anaconda" in result.stderr


def test_a_mirror_given_by_its_address_is_named_once(invoke, isolated_home):
    result = invoke("mirror", "--url", CAMPUS, "--no-clean", "--offline")
    assert result.exit_code == 0, result.output
    assert f"to {CAMPUS}." in result.stdout and f"({CAMPUS})" not in result.stdout
    named = invoke("mirror", "tsinghua", "--no-clean", "--offline", "--lang", "zh")
    assert "tsinghua（清华大学（TUNA））" in named.stdout, named.stdout
