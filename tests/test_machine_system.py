"""OS, Python and pip facts: read without raising, and `pip` of another interpreter is noticed."""

from __future__ import annotations

import importlib.util
import sys

from cnnsetup.machine import system
from tests.conftest import write_program


def test_system_facts_are_read_from_this_machine(isolated_home):
    facts = system.collect_system()
    assert facts.os == "Linux"
    assert facts.cpu_cores_logical >= 1
    assert 0 < facts.ram_available_bytes <= facts.ram_total_bytes
    assert facts.disk_free_home_bytes > 0
    assert facts.home == str(isolated_home)
    assert facts.disk_free_pkgs_bytes is None


def test_disk_of_a_folder_that_does_not_exist_yet_is_its_parents(tmp_path):
    facts = system.collect_system(pkgs_dir=str(tmp_path / "no" / "pkgs"))
    assert facts.disk_free_pkgs_bytes > 0


def test_python_facts_describe_this_interpreter():
    facts = system.collect_python()
    assert facts.executable == sys.executable
    assert facts.bits in (32, 64)
    assert facts.version.startswith(f"{sys.version_info[0]}.{sys.version_info[1]}.")
    expected_kind = "venv" if sys.prefix != sys.base_prefix else facts.env_kind
    assert facts.env_kind == expected_kind


def test_no_pip_on_path_is_unknown_not_wrong():
    facts = system.collect_python()
    assert facts.pip_matches is None and facts.pip_python is None


def test_pip_of_another_python_is_detected(bin_dir):
    write_program(bin_dir / "pip", """
        print("pip 24.0 from /opt/other/lib/python3.9/site-packages/pip (python 3.9)")
    """)
    facts = system.collect_python()
    assert facts.pip_matches is False
    assert facts.pip_python == "/opt/other/lib/python3.9/site-packages/pip (python 3.9)"


def test_pip_of_this_python_matches(bin_dir):
    location = list(importlib.util.find_spec("pip").submodule_search_locations)[0]
    write_program(bin_dir / "pip", f"""
        print("pip 26.0 from {location} (python 3.11)")
    """)
    assert system.collect_python().pip_matches is True


def test_a_pip_that_answers_nonsense_is_unknown(bin_dir):
    write_program(bin_dir / "pip", "print('hello')\n")
    assert system.collect_python().pip_matches is None


def test_os_names_for_each_platform():
    assert [system.os_name(p) for p in ("linux", "win32", "darwin")] == ["Linux", "Windows", "macOS"]
