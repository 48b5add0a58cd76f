"""Each conda call ends in one plain outcome: ok, not found, timed out, failed (with conda's own
error text) or not JSON; `conda clean -i` really drops the index cache."""

from __future__ import annotations

import time

from cnnsetup.mirror import conda
from tests.conda_helpers import calls, make_install, write_conda


def test_clean_removes_the_index_cache_of_writable_package_caches(tmp_path):
    exe = make_install(tmp_path / "base")
    result = conda.clean_index_cache(str(exe))
    assert result.ok and result.state == "ok"
    assert result.data["index_cache"]["files"] == [str(tmp_path / "base" / "pkgs" / "cache")]
    assert not (tmp_path / "base" / "pkgs" / "cache").exists()
    assert result.args == [str(exe), "clean", "-i", "-y", "--json"]


def test_info_reports_channels_and_config_files(tmp_path, isolated_home):
    (isolated_home / ".condarc").write_text("channels:\n  - conda-forge\n", encoding="utf-8")
    exe = make_install(tmp_path / "base")
    result = conda.info(str(exe))
    assert result.ok
    facts = conda.parse_info(result.data)
    assert facts.channels == ["https://conda.anaconda.org/conda-forge/linux-64",
                              "https://conda.anaconda.org/conda-forge/noarch"]
    assert facts.config_files == [str(isolated_home / ".condarc")]
    assert facts.root_prefix == str(tmp_path / "base")


def test_missing_program_is_not_found(tmp_path):
    result = conda.info(str(tmp_path / "no" / "conda"))
    assert result.not_found and not result.ok and result.state == "not_found"
    assert "not found" in result.describe()


def test_a_hanging_conda_times_out_on_time(tmp_path):
    exe = write_conda(tmp_path / "conda", modes={"*": "hang"})
    start = time.monotonic()
    result = conda.info(str(exe), timeout=1.0)
    assert time.monotonic() - start < 5
    assert result.timed_out and result.state == "timed_out"
    assert "1 seconds" in result.describe()


def test_a_fatal_error_keeps_condas_message_and_exception_name(tmp_path):
    exe = write_conda(tmp_path / "conda", modes={"info": "fail"},
                      error="Terms of service have not been accepted",
                      exception_name="CondaToSNonInteractiveError")
    result = conda.info(str(exe))
    assert result.failed and result.returncode == 1
    assert result.error == "Terms of service have not been accepted"
    assert result.exception_name == "CondaToSNonInteractiveError"
    assert "CondaToSNonInteractiveError" in result.describe()


def test_a_plain_text_failure_keeps_stderr(tmp_path):
    exe = write_conda(tmp_path / "conda", modes={"*": "fail_text"})
    result = conda.clean_index_cache(str(exe))
    assert result.failed
    assert "CondaError: something went wrong" in result.error


def test_garbage_on_stdout_is_not_json(tmp_path):
    exe = write_conda(tmp_path / "conda", modes={"*": "garbage"})
    result = conda.info(str(exe))
    assert result.not_json and not result.failed and result.state == "not_json"
    assert "this is not JSON" in result.output


def test_outcomes_are_exclusive_and_described_differently(tmp_path):
    outcomes = [
        conda.info(str(tmp_path / "nothing")),
        conda.info(str(write_conda(tmp_path / "a", modes={"*": "hang"})), timeout=0.5),
        conda.info(str(write_conda(tmp_path / "b", modes={"*": "fail"}))),
        conda.info(str(write_conda(tmp_path / "c", modes={"*": "garbage"}))),
        conda.info(str(make_install(tmp_path / "d"))),
    ]
    flags = [[o.ok, o.not_found, o.timed_out, o.failed, o.not_json] for o in outcomes]
    assert all(sum(f) == 1 for f in flags)
    assert len({o.state for o in outcomes}) == 5
    assert len({o.describe() for o in outcomes}) == 5


def test_the_stand_in_logs_its_calls(tmp_path):
    log = tmp_path / "log"
    exe = make_install(tmp_path / "base", log=log)
    conda.clean_index_cache(str(exe))
    conda.info(str(exe))
    assert [c[0] for c in calls(log)] == ["clean", "info"]
