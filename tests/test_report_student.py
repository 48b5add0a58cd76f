"""Who a machine belongs to: `verify --student` stores `student` in the report, right after
`user`, and `report` shows it first and groups by it."""

from __future__ import annotations

import json

import pytest

from cnnsetup.report_schema import (
    OPTIONAL_KEYS, STUDENT_MAX_CHARS, TOP_LEVEL_KEYS, clean_student, with_student)
from tests import report_helpers as rh
from tests.conftest import run_cnnsetup


@pytest.mark.parametrize("typed, stored", [
    ("Chen Qi", "Chen Qi"), ("  陈七  2023011234 ", "陈七 2023011234"), ("a\u3000b", "a b"),
    ("", None), ("   ", None), (None, None), ("x" * STUDENT_MAX_CHARS, "x" * STUDENT_MAX_CHARS),
])
def test_what_was_typed_is_stored_cleaned(typed, stored):
    assert clean_student(typed) == stored


@pytest.mark.parametrize("typed", ["a\x1b[31mb", "a\x00", "x" * (STUDENT_MAX_CHARS + 1), 7])
def test_text_that_cannot_be_a_name_is_refused(typed):
    with pytest.raises(ValueError):
        clean_student(typed)


def test_the_field_goes_right_after_user_and_replaces_an_earlier_one():
    report = {key: None for key in TOP_LEVEL_KEYS}
    named = with_student(report, " Chen  Qi ")
    keys = list(named)
    assert keys[keys.index("user") + 1] == "student" and named["student"] == "Chen Qi"
    assert [k for k in keys if k not in OPTIONAL_KEYS] == list(TOP_LEVEL_KEYS)
    renamed = with_student(named, None)
    assert list(renamed) == keys and renamed["student"] is None
    assert report == {key: None for key in TOP_LEVEL_KEYS}  # the original is left alone


def test_a_bad_student_is_a_usage_error_before_anything_runs(tmp_path):
    done = run_cnnsetup("verify", "--student", "x" * 200, "--report", str(tmp_path / "r.json"))
    assert done.returncode == 2
    assert "--student" in done.stderr and "at most 100 characters" in done.stderr
    assert not (tmp_path / "r.json").exists()


def test_verify_student_reaches_the_class_report(tmp_path):
    """A real `verify --student`, asked for CUDA: without an NVIDIA GPU (here) it fails after
    torch's import, without training, and the student of a machine that fails is the one a
    teaching assistant must find; with one, it trains there. A trained CPU report with its
    student in the class table: tests/test_onboard.py."""
    pytest.importorskip("torch", reason="needs torch: install the CPU build (see README.md)")
    folder = tmp_path / "class"
    done = run_cnnsetup("verify", "--device", "cuda", "--student", "  陈七 2023011234 ",
                        "--report", str(folder / "me.json"), timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    written = json.loads((folder / "me.json").read_text(encoding="utf-8"))
    state = "pass" if written["ok"] else "fail"
    assert done.returncode == (0 if written["ok"] else 1), done.stdout + done.stderr
    keys = list(written)
    assert written["student"] == "陈七 2023011234" and keys[keys.index("user") + 1] == "student"
    # Someone else on the same lab account, without a name: a machine of its own.
    rh.write_report(folder, "other.json", rh.info_only(host=written["host"],
                                                       user=written["user"]))
    done = run_cnnsetup("report", str(folder), "--json")
    assert done.returncode == 0, done.stderr
    machines = json.loads(done.stdout)["machines"]
    assert sorted((m["student"] or "", m["state"]) for m in machines) == [
        ("", "untested"), ("陈七 2023011234", state)]
    text = run_cnnsetup("report", str(folder), env={"NO_COLOR": "1"}).stdout
    assert f"{int(state == 'pass')} pass, {int(state == 'fail')} fail, 1 untested" in text
    assert any(line.startswith("陈七 2023011234  ") for line in text.splitlines())
