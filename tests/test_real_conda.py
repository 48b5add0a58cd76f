"""The mirror flows against a genuine conda (26.7.1; see the `real_conda` fixture): switch,
status, official and restore, each checked with conda's own answer (`conda info --json`,
`conda config --show --json`), not with the stand-in. Skipped, with the reason, where no real
conda is available. Each conda call takes a second or more, so the flows share one run."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import find_real_conda

BLOG_CONDARC = """\
# from a blog post: Tsinghua for main and conda-forge, and upstream defaults after them
channels:
  - https://mirrors.tuna.tsinghua.edu.cn/anaconda/pkgs/main/
  - https://mirrors.tuna.tsinghua.edu.cn/anaconda/cloud/conda-forge/
  - defaults
show_channel_urls: true
ssl_verify: true
"""


def conda_json(conda: str, *args: str) -> dict:
    done = subprocess.run([conda, *args, "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def servers(urls) -> set[str]:
    return {url.split("/")[2] for url in urls}


def test_the_real_conda_fixture_says_why_it_skips():
    conda, why = find_real_conda(variable="", path="")
    assert conda is None and "CNNSETUP_TEST_CONDA" in why
    conda, why = find_real_conda(variable="/no/such/conda", path="")
    assert conda is None and "/no/such/conda" in why


def test_switch_status_official_and_restore_against_real_conda(real_conda, invoke,
                                                                isolated_home):
    condarc = isolated_home / ".condarc"
    condarc.write_text(BLOG_CONDARC, encoding="utf-8")
    before = conda_json(real_conda, "info")
    assert servers(before["channels"]) == {"mirrors.tuna.tsinghua.edu.cn", "repo.anaconda.com"}

    # Switch: cnnsetup reports the channel URLs conda now uses, and conda agrees.
    switched = invoke("mirror", "tsinghua", "--json")
    assert switched.exit_code == 0, switched.output
    confirm = json.loads(switched.stdout)["confirm"]
    assert confirm["status"] == "ok" and confirm["conda"] == real_conda
    info = conda_json(real_conda, "info")
    assert confirm["channel_urls"] == info["channels"]
    assert servers(info["channels"]) == {"mirrors.tuna.tsinghua.edu.cn"}
    shown = conda_json(real_conda, "config", "--show", "channels", "default_channels",
                       "custom_channels")
    assert shown["channels"] == ["defaults", "conda-forge"]  # mirror URLs become names
    # conda --json shows each channel as an object: where it points, and the channel's name.
    assert [f"{c['location']}/{c['name']}" for c in shown["default_channels"]] == [
        "mirrors.tuna.tsinghua.edu.cn/anaconda/pkgs/main",
        "mirrors.tuna.tsinghua.edu.cn/anaconda/pkgs/r"]
    forge = shown["custom_channels"]["conda-forge"]
    assert f"{forge['location']}/{forge['name']}" == (
        "mirrors.tuna.tsinghua.edu.cn/anaconda/cloud/conda-forge")
    assert "# from a blog post" in condarc.read_text(encoding="utf-8")

    # Status: what conda answers, and the file that makes it so.
    status = invoke("mirror", "status", "--json")
    assert status.exit_code == 0, status.output
    data = json.loads(status.stdout)
    assert data["source"] == "conda" and data["mirror"] == "tsinghua"
    assert data["effective_channels"] == info["channels"]

    # Official: upstream again, the other keys kept.
    official = invoke("mirror", "official", "--json")
    assert official.exit_code == 0, official.output
    urls = json.loads(official.stdout)["confirm"]["channel_urls"]
    assert servers(urls) == {"repo.anaconda.com", "conda.anaconda.org"}  # defaults, conda-forge
    assert conda_json(real_conda, "info")["channels"] == urls
    assert conda_json(real_conda, "config", "--show", "ssl_verify")["ssl_verify"] is True

    # Restore: the exact bytes, and conda reads them as it did at the start.
    restored = invoke("mirror", "restore", "--json")
    assert restored.exit_code == 0, restored.output
    assert condarc.read_text(encoding="utf-8") == BLOG_CONDARC
    assert conda_json(real_conda, "info")["channels"] == before["channels"]


def test_onboard_names_the_blogs_mixed_channels_when_no_mirror_answers(real_conda,
                                                                       isolated_home):
    from cnnsetup.classroom import onboard

    (isolated_home / ".condarc").write_text(BLOG_CONDARC, encoding="utf-8")
    sentence = onboard._mixed_channels()
    assert sentence is not None and "tsinghua" in sentence
    assert "cnnsetup mirror status" in sentence
    (isolated_home / ".condarc").write_text("channels:\n  - defaults\n", encoding="utf-8")
    assert onboard._mixed_channels() is None


def test_the_success_line_names_only_the_channels_conda_takes_from_the_mirror(real_conda, invoke,
                                                                              isolated_home):
    # USTC keeps no defaults copy: the line once said "ustc for defaults, conda-forge and
    # pytorch" just below the note saying defaults still come from upstream.
    (isolated_home / ".condarc").write_text("channels:\n  - defaults\n  - conda-forge\n",
                                            encoding="utf-8")
    ustc = invoke("mirror", "ustc", "--no-clean")
    assert ustc.exit_code == 0, ustc.output
    assert "conda now uses ustc for conda-forge, and upstream for defaults" in ustc.stdout
    tuna = invoke("mirror", "tsinghua", "--no-clean")
    assert "conda now uses tsinghua for defaults, conda-forge (checked" in tuna.stdout
