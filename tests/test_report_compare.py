"""`cnnsetup report OLD NEW --compare`: progress between two report sets, machine by machine."""

from __future__ import annotations

import json
import re

import pytest

from cnnsetup.classroom.merge import compare, merge
from tests import report_helpers as rh


def _week(folder, machines):
    """machines: name -> (maker, student or None)."""
    for name, (make, student) in machines.items():
        report = make(host=f"pc-{name}", user="u")
        rh.write_report(folder, f"{name}.json", rh.with_student(report, student)
                        if student else report)
    return folder


@pytest.fixture
def weeks(tmp_path):
    old = _week(tmp_path / "week1", {
        "fixed": (rh.torch_missing, "Fixed Student"),
        "stuck": (rh.failing_windows_cpu_torch_on_nvidia, None),
        "broke": (rh.passing_cpu_laptop, None),
        "fine": (rh.passing_cpu_laptop, None),
        "quiet": (rh.torch_missing, None),  # sends nothing in week 2
        "info": (rh.torch_missing, None),
        "named": (rh.torch_missing, None),  # gives a name in week 2
    })
    new = _week(tmp_path / "week2", {
        "fixed": (rh.passing_cpu_laptop, "Fixed Student"),
        "stuck": (rh.failing_windows_cpu_torch_on_nvidia, None),
        "broke": (rh.torch_missing, None),
        "fine": (rh.passing_cpu_laptop, None),
        "info": (rh.info_only, None),
        "late": (rh.torch_missing, None),
        "first": (rh.passing_cpu_laptop, None),
        "named": (rh.passing_cpu_laptop, "Named Later"),
    })
    return old, new


def test_each_machine_is_put_where_its_state_went(weeks):
    old, new = weeks
    comparison = compare(merge([old]), merge([new]))
    got = {(c.machine.student or c.machine.host): (c.before, c.after, c.change)
           for c in comparison.changes}
    assert got == {
        "Fixed Student": ("fail", "pass", "fixed"),
        "Named Later": ("fail", "pass", "fixed"),  # matched by host + user
        "pc-stuck": ("fail", "fail", "still-failing"),
        "pc-broke": ("pass", "fail", "regressed"),
        "pc-late": (None, "fail", "new-failure"),
        "pc-info": ("fail", "untested", "untested"),
        "pc-first": (None, "pass", "now-passing"),
        "pc-fine": ("pass", "pass", "still-passing"),
        "pc-quiet": ("fail", None, "not-reported"),
    }
    assert [c.change for c in comparison.changes] == [
        "fixed", "fixed", "still-failing", "regressed", "new-failure", "untested",
        "now-passing", "still-passing", "not-reported"]


def test_a_host_shared_by_two_named_students_is_not_guessed(tmp_path):
    rh.write_report(tmp_path / "old", "lab.json", rh.torch_missing(host="lab-pc", user="s"))
    for name in ("A", "B"):
        rh.write_report(tmp_path / "new", f"{name}.json", rh.with_student(
            rh.passing_cpu_laptop(host="lab-pc", user="s"), name))
    comparison = compare(merge([tmp_path / "old"]), merge([tmp_path / "new"]))
    assert sorted(c.change for c in comparison.changes) == [
        "not-reported", "now-passing", "now-passing"]


def test_the_text_says_who_was_fixed_and_who_still_fails(invoke, weeks):
    old, new = weeks
    result = invoke("report", str(old), str(new), "--compare")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.startswith("Before: 7 machines: 2 pass, 5 fail, 0 untested")
    assert "Now:    8 machines: 4 pass, 3 fail, 1 untested" in out

    def section(title):
        block = out[out.index(title):].split("\n\n")[0].splitlines()
        return [re.split(r"\s{2,}", line.strip()) for line in block[1:]]

    assert section("Fixed (FAIL -> PASS): 2") == [
        ["Fixed Student (pc-fixed/u)", "FAIL -> PASS"], ["Named Later (pc-named/u)",
                                                         "FAIL -> PASS"]]
    assert section("Still failing: 1") == [["pc-stuck/u", "FAIL -> FAIL", "torch-cuda-build"]]
    assert section("New failures: 2") == [["pc-broke/u", "PASS -> FAIL", "torch-import"],
                                          ["pc-late/u", "no report -> FAIL", "torch-import"]]
    assert section("Untested (nothing trained yet): 1") == [["pc-info/u", "FAIL -> UNTESTED"]]
    assert section("No new report: 1") == [["pc-quiet/u", "FAIL -> no report", "torch-import"]]
    assert "1 machine still passes." in out
    assert "What blocks the most machines:" in out


def test_the_json_lists_every_machine_with_before_and_after(invoke, weeks):
    old, new = weeks
    result = invoke("report", str(old), str(new), "--compare", "--json")
    data = json.loads(result.stdout)
    assert set(data) == {"ok", "old", "new", "changes", "machines", "blocking"}
    assert data["changes"] == {"fixed": 2, "still-failing": 1, "regressed": 1,
                               "new-failure": 1, "untested": 1, "now-passing": 1,
                               "still-passing": 1, "not-reported": 1}
    assert data["old"]["totals"]["fail"] == 5 and data["new"]["totals"]["pass"] == 4
    first = data["machines"][0]
    assert first == {"student": "Fixed Student", "host": "pc-fixed", "user": "u",
                     "before": "fail", "after": "pass", "change": "fixed", "failing": []}
    assert [(b["id"], b["count"]) for b in data["blocking"]] == [("torch-import", 2),
                                                                 ("torch-cuda-build", 1)]


@pytest.mark.parametrize("extra", [[], ["third"]])
def test_compare_needs_exactly_two_paths(invoke, weeks, extra):
    old, new = weeks
    paths = [str(old)] + ([str(new)] + extra if extra else [])
    result = invoke("report", *paths, "--compare")
    assert result.exit_code == 2
    assert "exactly two paths" in result.stderr


def test_compare_writes_no_page(invoke, weeks, tmp_path):
    old, new = weeks
    result = invoke("report", str(old), str(new), "--compare", "--html", str(tmp_path / "p.html"))
    assert result.exit_code == 2
    assert not (tmp_path / "p.html").exists()


def test_a_set_without_reports_is_an_error(invoke, weeks, tmp_path):
    old, _new = weeks
    (tmp_path / "empty").mkdir()
    result = invoke("report", str(old), str(tmp_path / "empty"), "--compare")
    assert result.exit_code == 1
    assert "No cnnsetup report found in" in result.stderr
