"""Finding conda: --conda, CONDA_EXE, PATH, then the usual install folders; on Windows the
`Scripts\\conda.exe` beside `condabin\\conda.bat`, never the batch file itself."""

from __future__ import annotations

from pathlib import Path

from cnnsetup.mirror.conda import CondaLocation, find_conda, locate_conda, root_prefix_of
from tests.conftest import write_program


def _exe(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_program(path, "print('{}')\n")
    return str(path)


def _plain_file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("@echo off\n", encoding="utf-8")
    return str(path)


def test_explicit_path_wins_over_everything(tmp_path):
    on_path = _exe(tmp_path / "bin" / "conda")
    env = {"PATH": str(tmp_path / "bin"), "CONDA_EXE": on_path, "HOME": str(tmp_path)}
    location = locate_conda("/somewhere/else/conda", env=env, platform="linux")
    assert (location.path, location.how) == ("/somewhere/else/conda", "explicit")


def test_conda_exe_wins_over_path(tmp_path):
    from_env = _exe(tmp_path / "base" / "bin" / "conda")
    _exe(tmp_path / "bin" / "conda")
    env = {"PATH": str(tmp_path / "bin"), "CONDA_EXE": from_env, "HOME": str(tmp_path)}
    location = locate_conda(env=env, platform="linux", system_dirs=())
    assert (location.path, location.how) == (from_env, "CONDA_EXE")


def test_a_stale_conda_exe_falls_through_to_path(tmp_path):
    on_path = _exe(tmp_path / "bin" / "conda")
    env = {"PATH": str(tmp_path / "bin"), "CONDA_EXE": str(tmp_path / "gone" / "conda"),
           "HOME": str(tmp_path)}
    assert locate_conda(env=env, platform="linux", system_dirs=()) == CondaLocation(on_path, "PATH")


def test_path_search_skips_folders_without_an_executable_conda(tmp_path):
    not_executable = tmp_path / "first" / "conda"
    not_executable.parent.mkdir()
    not_executable.write_text("", encoding="utf-8")
    second = _exe(tmp_path / "second" / "conda")
    env = {"PATH": f"{tmp_path / 'first'}:{tmp_path / 'second'}", "HOME": str(tmp_path)}
    assert find_conda(env=env, platform="linux", system_dirs=()) == second


def test_path_beats_install_folders(tmp_path):
    _exe(tmp_path / "home" / "miniconda3" / "bin" / "conda")
    on_path = _exe(tmp_path / "bin" / "conda")
    env = {"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path / "home")}
    assert find_conda(env=env, platform="linux", system_dirs=()) == on_path


def test_usual_install_folders_are_searched_last(tmp_path):
    home = tmp_path / "home"
    forge = _exe(home / "miniforge3" / "bin" / "conda")
    env = {"PATH": str(tmp_path / "empty"), "HOME": str(home)}
    location = locate_conda(env=env, platform="linux", system_dirs=())
    assert (location.path, location.how) == (forge, "install_folder")
    anaconda = _exe(home / "anaconda3" / "bin" / "conda")  # listed before miniforge3
    assert find_conda(env=env, platform="linux", system_dirs=()) == anaconda


def test_system_install_folders_are_searched(tmp_path):
    opt = _exe(tmp_path / "opt" / "conda" / "bin" / "conda")
    env = {"PATH": "", "HOME": str(tmp_path / "home")}
    assert find_conda(env=env, platform="linux", system_dirs=[str(tmp_path / "opt" / "conda")]) == opt


def test_nothing_found_is_none(tmp_path):
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    assert find_conda(env=env, platform="linux", system_dirs=()) is None
    assert find_conda(env=env, platform="win32", system_dirs=()) is None


def test_windows_prefers_scripts_conda_exe_over_condabin_batch_file(tmp_path):
    base = tmp_path / "miniconda3"
    _plain_file(base / "condabin" / "conda.bat")
    exe = _plain_file(base / "Scripts" / "conda.exe")
    env = {"PATH": f"{tmp_path / 'other'};{base / 'condabin'}", "USERPROFILE": str(tmp_path / "u")}
    location = locate_conda(env=env, platform="win32", system_dirs=())
    assert (location.path, location.how) == (exe, "PATH")


def test_windows_never_returns_a_batch_file(tmp_path):
    base = tmp_path / "miniconda3"
    _plain_file(base / "condabin" / "conda.bat")  # no Scripts\conda.exe beside it
    env = {"PATH": str(base / "condabin"), "USERPROFILE": str(tmp_path / "u")}
    assert find_conda(env=env, platform="win32", system_dirs=()) is None


def test_windows_conda_exe_on_path_is_used(tmp_path):
    exe = _plain_file(tmp_path / "base" / "Scripts" / "conda.exe")
    env = {"PATH": str(tmp_path / "base" / "Scripts"), "USERPROFILE": str(tmp_path / "u")}
    assert find_conda(env=env, platform="win32", system_dirs=()) == exe


def test_windows_conda_exe_variable_and_user_install_folder(tmp_path):
    user = tmp_path / "u"
    installed = _plain_file(user / "anaconda3" / "Scripts" / "conda.exe")
    env = {"PATH": "", "USERPROFILE": str(user), "HOME": str(tmp_path / "unix-home")}
    assert locate_conda(env=env, platform="win32", system_dirs=()).how == "install_folder"
    assert find_conda(env=env, platform="win32", system_dirs=()) == installed
    other = _plain_file(tmp_path / "other" / "Scripts" / "conda.exe")
    env["CONDA_EXE"] = other
    assert find_conda(env=env, platform="win32", system_dirs=()) == other


def test_root_prefix_of_each_layout():
    assert root_prefix_of("/opt/conda/bin/conda") == "/opt/conda"
    assert root_prefix_of("/opt/conda/condabin/conda") == "/opt/conda"
    assert root_prefix_of("/opt/conda/Scripts/conda.exe") == "/opt/conda"
    assert root_prefix_of("/usr/local/weird/conda") is None
