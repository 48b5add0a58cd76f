"""cnnsetup's merge agrees with real conda on every recorded case in shared/conda-golden/:
effective config, channel URLs, loaded files, and the exit status / warning."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cnnsetup.mirror.merge import compute
from tests.conftest import CONDA_GOLDEN

CASES = sorted(p for p in CONDA_GOLDEN.iterdir() if (p / "expected.json").is_file())


def test_there_are_golden_cases():
    assert len(CASES) >= 16


def _run_case(case: Path, home: Path):
    if (case / "files").is_dir():
        shutil.copytree(case / "files", home, dirs_exist_ok=True)
    spec = json.loads((case / "case.json").read_text(encoding="utf-8"))
    env = {"HOME": str(home)}
    env.update({k: v.replace("$HOME", str(home)) for k, v in spec["env"].items()})
    platform, _sep, _arch = spec["platform"].partition("-")
    return compute(env=env, home=str(home), platform=platform, system_dirs=(),
                   subdir=spec["platform"], encoding="utf-8")


def _home_relative(value, home: Path):
    return json.loads(json.dumps(value).replace(str(home), "$HOME"))


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_merge_matches_conda(case, tmp_path):
    home = tmp_path / "golden-home"
    home.mkdir()
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    effective = _run_case(case, home)

    assert effective.exit_code == expected["exit_code"]
    if expected["exit_code"] != 0:
        assert effective.error is not None
        assert effective.error.name == expected["stderr_warning"]
        assert effective.error.line is not None  # a place to show the user
        return
    config = effective.config()
    for key, value in expected["config"].items():
        assert config[key] == value, key
    assert effective.channel_urls == expected["channel_urls"]
    assert _home_relative(effective.config_files, home) == expected["config_files"]
    warning = effective.warnings[0].splitlines()[0] if effective.warnings else None
    assert _home_relative(warning, home) == expected["stderr_warning"]
