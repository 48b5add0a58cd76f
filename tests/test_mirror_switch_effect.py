"""What conda would really use after `cnnsetup mirror NAME`: for every recorded conda-golden case
whose ~/.condarc conda accepts, switch it, then merge the config files the way conda does
(cnnsetup's merge, itself checked against real conda in test_merge_golden.py). Every defaults,
conda-forge and pytorch URL is on the chosen mirror, unless another file (or variable) puts it
there: the edited ~/.condarc never does, and the other file is the one named."""

from __future__ import annotations

import json
import shutil

import pytest

from cnnsetup.mirror import registry
from cnnsetup.mirror.confirm import core_channel_urls, expected_base, on_expected
from cnnsetup.mirror.merge import compute
from cnnsetup.mirror.switch import switch
from tests.conftest import CONDA_GOLDEN

def _conda_reads_it_cleanly(case) -> bool:
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    return expected["exit_code"] == 0 and expected["stderr_warning"] is None


# Files conda rejects or skips are refused by cnnsetup (tests in test_mirror_switch.py).
CASES = sorted(p for p in CONDA_GOLDEN.iterdir()
               if (p / "case.json").is_file() and _conda_reads_it_cleanly(p))


def _effective_urls(case, home, windows: bool = False):
    spec = json.loads((case / "case.json").read_text(encoding="utf-8"))
    env = {"HOME": str(home)}
    env.update({k: v.replace("$HOME", str(home)) for k, v in spec["env"].items()})
    return compute(env=env, home=str(home), platform="win" if windows else "linux", system_dirs=(),
                   subdir="win-64" if windows else "linux-64", encoding="utf-8")


@pytest.mark.parametrize("mirror_name", ["tsinghua", "sjtu", "official"])
@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_after_a_switch_conda_uses_only_the_mirror_for_core_channels(case, mirror_name, tmp_path):
    home = tmp_path / "golden-home"
    home.mkdir()
    if (case / "files").is_dir():
        shutil.copytree(case / "files", home, dirs_exist_ok=True)
    mirror = registry.get(mirror_name)
    switch(mirror, home / ".condarc", platform="linux")
    effective = _effective_urls(case, home)
    assert effective.error is None
    urls = effective.channel_urls
    assert any(family == "defaults" for _url, family, _base in core_channel_urls(urls))
    user_file = str(home / ".condarc")
    for url, family, _base in core_channel_urls(urls):
        if not on_expected(url, expected_base(mirror, family)):
            culprit = effective.responsible_for(url)
            assert culprit not in (None, user_file), (family, url, culprit)


def test_a_case_whose_other_file_keeps_a_channel_off_the_mirror_is_caught(tmp_path):
    """user-plus-dotconfig: ~/.config/conda/.condarc lists its own channel URLs; after the switch
    of ~/.condarc they are still searched, and the other file is what the merge blames."""
    case = CONDA_GOLDEN / "user-plus-dotconfig"
    home = tmp_path / "golden-home"
    shutil.copytree(case / "files", home)
    mirror = registry.get("sjtu")
    switch(mirror, home / ".condarc", platform="linux")
    effective = _effective_urls(case, home)
    off = [url for url, family, _ in core_channel_urls(effective.channel_urls)
           if not on_expected(url, expected_base(mirror, family))]
    assert off
    assert {effective.responsible_for(url) for url in off} == {str(home / ".config/conda/.condarc")}
