"""conda facts through the conda module, with stand-in conda executables; the report's shape."""

from __future__ import annotations

import json

from cnnsetup.machine.facts import collect_conda, facts_to_json
from cnnsetup.machine.findings import Finding, evaluate
from cnnsetup.report_schema import TOP_LEVEL_KEYS
from tests.conftest import write_program
from tests.machine_helpers import make_facts


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
