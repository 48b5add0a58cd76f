"""conda facts through the conda module, with stand-in conda executables; the report's shape."""

from __future__ import annotations

import json

from cnnsetup.machine import jupyter
from cnnsetup.machine.facts import collect_conda, facts_to_json, host_platform, system_root
from cnnsetup.machine.findings import Finding, evaluate
from cnnsetup.report_schema import TOP_LEVEL_KEYS
from tests.conftest import write_program
from tests.machine_helpers import make_env, make_facts, write_kernel


def test_conda_found_on_path_reports_version_base_env_and_package_cache(bin_dir, tmp_path):
    info = {"conda_version": "24.9.2", "root_prefix": str(tmp_path / "miniconda3"),
            "active_prefix_name": "dl", "pkgs_dirs": [str(tmp_path / "miniconda3" / "pkgs")]}
    write_program(bin_dir / "conda", f"""
        import sys
        assert sys.argv[1:] == ["info", "--json"], sys.argv
        print({json.dumps(info)!r})
    """)
    facts = collect_conda()
    assert facts.found and facts.error is None
    assert (facts.version, facts.base, facts.active_env) == ("24.9.2", info["root_prefix"], "dl")
    assert facts.pkgs_dirs == info["pkgs_dirs"]


def test_a_failing_conda_is_a_warning_with_its_own_words(bin_dir):
    write_program(bin_dir / "conda", """
        import sys
        sys.stderr.write("CondaError: something broke in .condarc\\n")
        sys.exit(1)
    """)
    facts = collect_conda()
    assert facts.found
    assert "something broke in .condarc" in facts.error
    finding = next(f for f in evaluate(make_facts(conda=facts)) if f.id == "conda.error")
    assert finding.status == "warn"


def test_no_conda_is_a_skip_and_keeps_the_shells_env_name(monkeypatch):
    monkeypatch.setenv("CONDA_DEFAULT_ENV", "dl")
    facts = collect_conda()
    assert not facts.found and facts.active_env == "dl"
    assert [f.status for f in evaluate(make_facts(conda=facts)) if f.id == "conda.none"] == ["skip"]


def test_report_keys_follow_the_schema_and_ok_follows_the_checks():
    facts = make_facts()
    data = facts_to_json(facts, [Finding("a.b", "pass", "fine")])
    assert list(data) == list(TOP_LEVEL_KEYS)
    assert data["ok"] is True
    assert facts_to_json(facts, [Finding("a.b", "fail", "broken")])["ok"] is False
    assert json.loads(json.dumps(data)) == data  # plain JSON all the way down


def test_the_platform_and_the_system_root_are_read_from_one_place():
    assert host_platform({}) == __import__("sys").platform
    assert host_platform({"CNNSETUP_PLATFORM": "win32"}) == "win32"
    assert system_root({}) is None and system_root({"CNNSETUP_SYSTEM_ROOT": "/x"}) == "/x"


# ---------------------------------------------------------------- Jupyter's search path


def test_jupyter_path_then_user_then_environments_then_system_on_linux():
    env = {"HOME": "/home/li", "JUPYTER_PATH": "/opt/a:/opt/b/"}
    dirs = [d for d, _p in jupyter.data_dirs("linux", env, ["/home/li/miniconda3"])]
    assert dirs == ["/opt/a", "/opt/b", "/home/li/.local/share/jupyter",
                    "/home/li/miniconda3/share/jupyter", "/usr/local/share/jupyter",
                    "/usr/share/jupyter"]


def test_user_folder_per_platform_and_its_overrides():
    assert jupyter.user_data_dir("linux", {"HOME": "/h", "XDG_DATA_HOME": "/x"}) == "/x/jupyter"
    assert jupyter.user_data_dir("darwin", {"HOME": "/Users/li"}) == "/Users/li/Library/Jupyter"
    assert jupyter.user_data_dir("win32", {"APPDATA": r"C:\Users\li\AppData\Roaming"}) == \
        r"C:\Users\li\AppData\Roaming\jupyter"
    assert jupyter.user_data_dir("linux", {"JUPYTER_DATA_DIR": "/d", "HOME": "/h"}) == "/d"


def test_windows_search_path_uses_programdata_and_semicolons():
    env = {"APPDATA": r"C:\U\AppData\Roaming", "PROGRAMDATA": r"C:\ProgramData",
           "JUPYTER_PATH": r"D:\k;E:\k"}
    dirs = [d for d, _p in jupyter.data_dirs("win32", env, [r"C:\U\miniconda3"])]
    assert dirs == [r"D:\k", r"E:\k", r"C:\U\AppData\Roaming\jupyter",
                    r"C:\U\miniconda3\share\jupyter", r"C:\ProgramData\jupyter"]


def test_environment_folders_first_when_jupyter_prefers_them():
    env = {"HOME": "/h", "JUPYTER_PREFER_ENV_PATH": "1"}
    dirs = [d for d, _p in jupyter.data_dirs("linux", env, ["/env"])]
    assert dirs.index("/env/share/jupyter") < dirs.index("/h/.local/share/jupyter")
    env["JUPYTER_PREFER_ENV_PATH"] = "no"
    dirs = [d for d, _p in jupyter.data_dirs("linux", env, ["/env"], prefer_env=True)]
    assert dirs.index("/env/share/jupyter") > dirs.index("/h/.local/share/jupyter")


def test_the_first_folder_with_a_kernel_name_wins_and_plain_python_is_that_environments(tmp_path):
    first, env_dir = tmp_path / "first", tmp_path / "env" / "share" / "jupyter"
    write_kernel(first, "DL", "/opt/dl/bin/python", "first")
    write_kernel(env_dir, "dl", "/opt/other/bin/python", "second")
    write_kernel(env_dir, "python3", "python", "Python 3 (ipykernel)")
    (first / "kernels" / "broken").mkdir()
    (first / "kernels" / "broken" / "kernel.json").write_text("{not json")
    kernels = {k.name: k for k in jupyter.find_kernels(
        [(str(first), None), (str(env_dir), str(tmp_path / "env"))], "linux")}
    assert set(kernels) == {"dl", "python3"}
    assert kernels["dl"].display_name == "first"
    assert kernels["python3"].interpreter == str(tmp_path / "env" / "bin" / "python")
    assert kernels["dl"].interpreter_exists is False


def test_a_kernel_that_hangs_is_given_up_and_the_others_still_answer(tmp_path):
    import time

    bare = make_env(tmp_path, "bare")
    hanging_site = tmp_path / "hangsite"
    hanging_site.mkdir()
    (hanging_site / "sitecustomize.py").write_text("import time; time.sleep(60)\n")
    # kernel.json's "env" reaches the probe as it reaches the kernel: here it makes it hang.
    write_kernel(tmp_path, "slow", bare, env={"PYTHONPATH": str(hanging_site)})
    write_kernel(tmp_path, "fine", bare)
    kernels = jupyter.find_kernels([(str(tmp_path), None)], "linux")
    started = time.monotonic()
    jupyter.probe(kernels, timeout=3)
    assert time.monotonic() - started < 30
    by_name = {k.name: k for k in kernels}
    assert "no answer within 3 s" in by_name["slow"].probe_error
    assert by_name["fine"].probe_error is None and by_name["fine"].python
    assert by_name["fine"].torch is None
    assert "No module named 'torch'" in by_name["fine"].torch_error


def test_a_kernel_that_finds_the_workers_own_torch_install_does_not_import_it_again(tmp_path):
    import platform

    from tests.machine_helpers import CPU_TORCH, write_fake_torch

    site = write_fake_torch(tmp_path / "site", CPU_TORCH)
    bare = make_env(tmp_path, "other")
    write_kernel(tmp_path / "data", "shared", bare, env={"PYTHONPATH": str(site)})
    known = {"python": platform.python_version(), "torch_dir": str(site / "torch")}
    [kernel] = jupyter.probe(jupyter.find_kernels([(str(tmp_path / "data"), None)], "linux"),
                             known_torch=known)
    assert kernel.same_torch == str(site / "torch") and kernel.torch is None
    # Another Python version could not load the same compiled torch: then it is imported.
    [kernel] = jupyter.probe(jupyter.find_kernels([(str(tmp_path / "data"), None)], "linux"),
                             known_torch=dict(known, python="3.0.0"))
    assert kernel.same_torch is None and kernel.torch == "2.13.0+cpu"
