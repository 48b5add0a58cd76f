"""After a switch: clean the index, ask conda what it uses, and name the file or variable behind
every defaults / conda-forge / pytorch URL that bypasses the mirror."""

from __future__ import annotations

from pathlib import Path

from cnnsetup.mirror import registry
from cnnsetup.mirror.confirm import (channel_family, confirm_switch, expected_base,
                                     mirror_for_channels)
from cnnsetup.mirror.merge import strip_subdir
from tests.conda_helpers import TUNA, TUNA_CONDARC, calls, make_install, write_conda

UPSTREAM = "https://repo.anaconda.com/pkgs"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_clean_switch_is_confirmed_by_conda(tmp_path, isolated_home):
    condarc = _write(isolated_home / ".condarc", TUNA_CONDARC)
    log = tmp_path / "log"
    exe = make_install(tmp_path / "base", log=log)
    report = confirm_switch("tsinghua", str(exe), condarc=str(condarc))
    assert [c[:2] for c in calls(log)] == [["clean", "-i"], ["info", "--json"]]
    assert not (tmp_path / "base" / "pkgs" / "cache").exists()
    assert report.source == "conda" and report.confirmed and report.status == "ok"
    assert report.offenders == [] and report.condarc_read is True
    assert report.channel_urls[0] == f"{TUNA}/pkgs/main/linux-64"
    assert report.lines()[-1][0] == "ok"


def test_upstream_defaults_from_another_file_are_named_with_a_fix(tmp_path, isolated_home):
    condarc = _write(isolated_home / ".condarc", TUNA_CONDARC)
    other = _write(isolated_home / ".config" / "conda" / ".condarc",
                   f"default_channels:\n  - {UPSTREAM}/main\n")
    report = confirm_switch("tsinghua", str(make_install(tmp_path / "base")), condarc=str(condarc))
    assert report.status == "warn" and not report.confirmed
    [offender] = report.offenders
    assert (offender.channel, offender.url) == ("defaults", f"{UPSTREAM}/main")
    assert offender.expected == f"{TUNA}/pkgs"
    assert (offender.responsible, offender.responsible_kind, offender.key) == (
        str(other), "file", "default_channels")
    assert offender.fix_command == ["conda", "config", "--file", str(other), "--remove-key",
                                    "default_channels"]
    text = "\n".join(t for _level, t in report.lines())
    assert str(other) in text and f"{UPSTREAM}/main" in text


def test_a_pasted_channel_url_is_removed_from_its_own_file(tmp_path, isolated_home):
    condarc = _write(isolated_home / ".condarc", TUNA_CONDARC)
    system = tmp_path / "base"
    exe = make_install(system)
    sys_rc = _write(system / ".condarc",
                    "channels:\n  - https://mirrors.bfsu.edu.cn/anaconda/cloud/conda-forge\n")
    report = confirm_switch("tsinghua", str(exe), condarc=str(condarc))
    [offender] = report.offenders
    assert offender.channel == "conda-forge"
    assert offender.responsible == str(sys_rc)
    assert offender.fix_command == ["conda", "config", "--file", str(sys_rc), "--remove",
                                    "channels", "https://mirrors.bfsu.edu.cn/anaconda/cloud/conda-forge"]


def test_an_environment_variable_is_named(tmp_path, isolated_home, monkeypatch):
    condarc = _write(isolated_home / ".condarc", TUNA_CONDARC)
    monkeypatch.setenv("CONDA_CHANNELS", "https://conda.anaconda.org/pytorch")
    report = confirm_switch("tsinghua", str(make_install(tmp_path / "base")), condarc=str(condarc),
                            platform="linux")
    [offender] = report.offenders
    assert (offender.channel, offender.responsible, offender.responsible_kind) == (
        "pytorch", "CONDA_CHANNELS", "env")
    assert offender.fix_command == ["unset", "CONDA_CHANNELS"]


def test_ustc_expects_upstream_defaults(tmp_path, isolated_home):
    ustc = "https://mirrors.ustc.edu.cn/anaconda/cloud"
    condarc = _write(isolated_home / ".condarc",
                     f"channels: [defaults, conda-forge]\ncustom_channels:\n  conda-forge: {ustc}\n")
    report = confirm_switch("ustc", str(make_install(tmp_path / "base")), condarc=str(condarc))
    assert report.confirmed, report.offenders
    assert any(u.startswith(UPSTREAM) for u in report.channel_urls)


def test_official_flags_what_is_left_of_a_mirror(tmp_path, isolated_home):
    condarc = _write(isolated_home / ".condarc", "channels: [defaults]\n")
    leftover = _write(isolated_home / ".conda" / "condarc",
                      f"default_channels:\n  - {TUNA}/pkgs/main\n")
    report = confirm_switch("official", str(make_install(tmp_path / "base")), condarc=str(condarc))
    [offender] = report.offenders
    assert offender.responsible == str(leftover) and offender.expected == UPSTREAM


def test_a_condarc_conda_does_not_read_is_reported(tmp_path, isolated_home):
    elsewhere = _write(tmp_path / "elsewhere" / "mine.condarc", TUNA_CONDARC)
    _write(isolated_home / ".condarc", "channels: [defaults]\n")
    report = confirm_switch("tsinghua", str(make_install(tmp_path / "base")), condarc=str(elsewhere))
    assert report.condarc_read is False
    assert any(str(elsewhere) in note for note in report.notes)
    assert {o.responsible_kind for o in report.offenders} == {"builtin"}


def test_without_conda_the_report_says_what_to_run_by_hand(isolated_home):
    _write(isolated_home / ".condarc", TUNA_CONDARC)
    report = confirm_switch("tsinghua", None)
    assert report.status == "unchecked" and report.source == "computed"
    assert report.manual_commands == [["conda", "clean", "-i"], ["conda", "info"]]
    assert strip_subdir(report.channel_urls[0]) == f"{TUNA}/pkgs/main"
    assert report.offenders == []
    rendered = [t for _level, t in report.lines()]
    assert "  conda clean -i" in rendered and "  conda info" in rendered


def test_a_missing_conda_path_counts_as_absent(tmp_path, isolated_home):
    report = confirm_switch("tsinghua", str(tmp_path / "gone" / "conda"))
    assert report.conda is None and report.status == "unchecked"


def test_a_hanging_or_failing_conda_is_a_warning_not_a_crash(tmp_path, isolated_home):
    _write(isolated_home / ".condarc", TUNA_CONDARC)
    hang = write_conda(tmp_path / "hang" / "conda", modes={"clean": "hang"})
    report = confirm_switch("tsinghua", str(hang), clean_timeout=0.5, info_timeout=5)
    assert report.clean.timed_out and report.info.ok and report.status == "ok"
    assert ["conda", "clean", "-i"] in report.manual_commands
    tos = write_conda(tmp_path / "tos" / "conda", modes={"info": "fail"}, error="ToS not accepted",
                      exception_name="CondaToSNonInteractiveError")
    report = confirm_switch("tsinghua", str(tos))
    assert report.status == "warn" and report.source == "computed"
    assert any("CondaToSNonInteractiveError" in n for n in report.notes)
    data = report.to_dict()
    assert data["info"]["exception_name"] == "CondaToSNonInteractiveError"


def test_channel_families_and_expectations():
    assert channel_family(f"{TUNA}/pkgs/msys2/win-64") == "defaults"
    assert channel_family(f"{TUNA}/cloud/pytorch/noarch") == "pytorch"
    assert channel_family("https://conda.anaconda.org/nvidia/linux-64") is None
    ustc = registry.get("ustc")
    assert expected_base(ustc, "defaults") == UPSTREAM
    assert expected_base(ustc, "pytorch") == "https://conda.anaconda.org/pytorch"
    assert expected_base(registry.get("tuna"), "conda-forge") == f"{TUNA}/cloud/conda-forge"


def test_which_mirror_explains_the_urls():
    tuna = [f"{TUNA}/pkgs/main/linux-64", f"{TUNA}/cloud/conda-forge/noarch"]
    assert mirror_for_channels(tuna) == "tsinghua"
    assert mirror_for_channels([f"{UPSTREAM}/main/linux-64"]) == "official"
    assert mirror_for_channels(tuna + [f"{UPSTREAM}/r/noarch"]) is None
    assert mirror_for_channels([f"{UPSTREAM}/main/linux-64",
                                "https://mirrors.ustc.edu.cn/anaconda/cloud/conda-forge/noarch"]) == "ustc"
    assert mirror_for_channels(["https://conda.anaconda.org/nvidia/noarch"]) is None


def test_on_windows_the_fix_for_a_variable_is_set_to_nothing(tmp_path, isolated_home, monkeypatch):
    _write(isolated_home / ".condarc", TUNA_CONDARC)
    monkeypatch.setenv("CONDA_DEFAULT_CHANNELS", f"{UPSTREAM}/main")
    report = confirm_switch("tsinghua", None, platform="win32")
    assert report.source == "computed"
    [offender] = report.offenders
    assert offender.fix_command == ["set", "CONDA_DEFAULT_CHANNELS="]
    data = report.to_dict()
    assert data["status"] == "unchecked" and data["offenders"][0]["responsible"] == "CONDA_DEFAULT_CHANNELS"
