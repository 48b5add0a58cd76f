"""The files conda reads, in conda's order, each with where it comes from."""

from __future__ import annotations

from pathlib import Path

from cnnsetup.mirror import search_path
from cnnsetup.mirror.search_path import config_files


def _touch(path: Path, text: str = "channels: [defaults]\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _existing(files):
    return [(f.path, f.origin) for f in files if f.readable]


def test_full_order_of_every_location(tmp_path):
    home, system, root, xdg, env_prefix = (tmp_path / n for n in ("home", "etc", "base", "xdg", "env"))
    expected = [
        (_touch(system / ".condarc"), "system"),
        (_touch(system / "condarc"), "system"),
        (_touch(system / "condarc.d" / "a.yml"), "system"),
        (_touch(root / ".condarc"), "CONDA_ROOT"),
        (_touch(xdg / "conda" / "condarc"), "XDG_CONFIG_HOME"),
        (_touch(home / ".config" / "conda" / ".condarc"), "user_config"),
        (_touch(home / ".conda" / "condarc.d" / "x.yaml"), "user_conda"),
        (_touch(home / ".condarc"), "user"),
        (_touch(env_prefix / ".condarc"), "CONDA_PREFIX"),
        (_touch(tmp_path / "custom" / "mine.yml"), "CONDARC"),
    ]
    env = {"XDG_CONFIG_HOME": str(xdg), "CONDARC": str(tmp_path / "custom" / "mine.yml"),
           "CONDA_PREFIX": str(env_prefix)}
    files = config_files(env, str(home), "linux", conda_root=str(root), system_dirs=[str(system)])
    assert _existing(files) == [(str(p), o) for p, o in expected]


def test_missing_places_are_listed_as_not_existing(tmp_path):
    files = config_files({}, str(tmp_path), "linux", system_dirs=[])
    assert [f.path for f in files] == [
        str(tmp_path / ".config" / "conda" / ".condarc"),
        str(tmp_path / ".config" / "conda" / "condarc"),
        str(tmp_path / ".config" / "conda" / "condarc.d"),
        str(tmp_path / ".conda" / ".condarc"),
        str(tmp_path / ".conda" / "condarc"),
        str(tmp_path / ".conda" / "condarc.d"),
        str(tmp_path / ".condarc"),
    ]
    assert not any(f.exists for f in files)
    assert [f.kind for f in files].count("dir") == 2


def test_condarc_d_reads_only_yaml_files_sorted_by_name(tmp_path):
    folder = tmp_path / ".conda" / "condarc.d"
    for name in ("20-b.yaml", "notes.txt", "10-a.yml", "30-c.YML.bak"):
        _touch(folder / name)
    files = config_files({}, str(tmp_path), "linux", system_dirs=[])
    assert [Path(p).name for p, _ in _existing(files)] == ["10-a.yml", "20-b.yaml"]


def test_condarc_variable_follows_condas_name_rule(tmp_path):
    for name, read in (("mycondarc", False), ("condarc", True), (".condarc", True),
                       ("settings.yaml", True), ("settings.txt", False)):
        target = _touch(tmp_path / "c" / name)
        files = config_files({"CONDARC": str(target)}, str(tmp_path / "h"), "linux", system_dirs=[])
        last = files[-1]
        assert last.origin == "CONDARC" and last.exists
        assert last.readable is read, name
        assert (last.ignored == "name") is (not read)


def test_condarc_variable_may_name_a_folder_and_may_use_tilde(tmp_path):
    home = tmp_path / "h"
    _touch(home / "confs" / "b.yml")
    _touch(home / "confs" / "a.yaml")
    files = config_files({"CONDARC": "~/confs"}, str(home), "linux", system_dirs=[])
    assert [Path(p).name for p, o in _existing(files) if o == "CONDARC"] == ["a.yaml", "b.yml"]


def test_a_path_reached_twice_is_read_once_in_its_first_place(tmp_path):
    _touch(tmp_path / ".config" / "conda" / ".condarc")
    _touch(tmp_path / ".condarc")
    env = {"XDG_CONFIG_HOME": str(tmp_path / ".config"), "CONDARC": str(tmp_path / ".condarc")}
    files = config_files(env, str(tmp_path), "linux", system_dirs=[])
    assert _existing(files) == [
        (str(tmp_path / ".config" / "conda" / ".condarc"), "XDG_CONFIG_HOME"),
        (str(tmp_path / ".condarc"), "user"),
    ]


def test_unset_xdg_and_conda_variables_add_nothing(tmp_path):
    files = config_files({}, str(tmp_path), "linux", system_dirs=[])
    assert {f.origin for f in files} == {"user_config", "user_conda", "user"}


def test_system_folders_per_platform(tmp_path):
    linux = config_files({}, str(tmp_path), "linux")
    windows = config_files({}, str(tmp_path), "win32")
    assert linux[0].path == "/etc/conda/.condarc"
    assert any(f.path.startswith("/var/lib/conda") for f in linux)
    assert windows[0].path.replace("\\", "/") == "C:/ProgramData/conda/.condarc"
    assert not any(f.path.startswith("/etc") for f in windows)


def test_windows_home_is_userprofile(tmp_path):
    env = {"USERPROFILE": str(tmp_path / "u"), "HOME": str(tmp_path / "msys-home")}
    files = config_files(env, None, "win32", system_dirs=[])
    assert files[-1].path == str(tmp_path / "u" / ".condarc")
    assert search_path.user_condarc(str(tmp_path / "u")) == str(tmp_path / "u" / ".condarc")


def test_origin_labels_are_words():
    assert "~/.condarc" in search_path.origin_label("user")
    assert "$CONDARC" in search_path.origin_label("CONDARC")
