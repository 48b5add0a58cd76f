"""The merge beyond the recorded cases: system files, CONDA_* variables, Windows defaults,
custom_multichannels, type errors, and which file or variable put each URL there."""

from __future__ import annotations

from pathlib import Path

from cnnsetup.mirror.merge import BUILTIN, compute, strip_subdir
from tests.conda_helpers import TUNA, TUNA_CONDARC

UPSTREAM = "https://repo.anaconda.com/pkgs"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _compute(home: Path, env=None, system=None, platform="linux", subdir="linux-64"):
    return compute(env=dict(env or {}, HOME=str(home)), home=str(home), platform=platform,
                   system_dirs=[str(system)] if system else [], subdir=subdir, encoding="utf-8")


def test_a_system_file_adds_upstream_urls_after_the_users_mirror(tmp_path):
    home, system = tmp_path / "h", tmp_path / "etc"
    user = _write(home / ".condarc", TUNA_CONDARC)
    etc = _write(system / ".condarc", f"default_channels:\n  - {UPSTREAM}/main\n")
    effective = _compute(home, system=system)
    assert [strip_subdir(u) for u in effective.channel_urls[::2]] == [
        f"{TUNA}/pkgs/main", f"{TUNA}/pkgs/r", f"{UPSTREAM}/main"]
    source = effective.source_of(f"{UPSTREAM}/main/linux-64")
    assert (source.channel, source.channel_source) == ("defaults", str(user))
    assert (source.key, source.key_source) == ("default_channels", str(etc))
    assert effective.source_of(f"{TUNA}/pkgs/r").key_source == str(user)
    assert effective.responsible_for(f"{UPSTREAM}/main/noarch") == str(etc)
    assert effective.responsible_for("https://elsewhere.example/x") is None


def test_a_url_pasted_into_channels_is_attributed_to_its_file(tmp_path):
    home = tmp_path / "h"
    _write(home / ".condarc", TUNA_CONDARC)
    other = _write(home / ".config" / "conda" / ".condarc",
                   "channels:\n  - https://repo.anaconda.com/pkgs/main/\n")
    effective = _compute(home)
    source = effective.source_of("https://repo.anaconda.com/pkgs/main")
    assert (source.key, source.channel_source) == ("channels", str(other))
    assert effective.responsible_for("https://repo.anaconda.com/pkgs/main/noarch") == str(other)
    assert source.channel == "https://repo.anaconda.com/pkgs/main/"


def test_conda_variables_come_after_every_file(tmp_path):
    home = tmp_path / "h"
    _write(home / ".condarc", TUNA_CONDARC)
    effective = _compute(home, env={"CONDA_CHANNELS": "conda-forge, defaults",
                                    "CONDA_CHANNEL_ALIAS": "https://alias.example/"})
    assert [c.value for c in effective.channels] == ["conda-forge", "defaults"]
    assert effective.channels[0].source == "CONDA_CHANNELS"
    assert effective.channel_alias.value == "https://alias.example"
    # conda-forge is still mapped by the user's custom_channels, not by the alias.
    assert effective.channel_urls[0] == f"{TUNA}/cloud/conda-forge/linux-64"
    pytorch_free = _compute(home, env={"CONDA_CHANNELS": "nvidia",
                                       "CONDA_CHANNEL_ALIAS": "https://alias.example"})
    source = pytorch_free.source_of("https://alias.example/nvidia")
    assert (source.key, source.key_source) == ("channel_alias", "CONDA_CHANNEL_ALIAS")


def test_conda_default_channels_variable(tmp_path):
    home = tmp_path / "h"
    _write(home / ".condarc", "channels: [defaults]\n")
    effective = _compute(home, env={"CONDA_DEFAULT_CHANNELS": f"{UPSTREAM}/main"})
    assert effective.channel_urls == [f"{UPSTREAM}/main/linux-64", f"{UPSTREAM}/main/noarch"]
    assert effective.urls[0].key_source == "CONDA_DEFAULT_CHANNELS"


def test_builtin_defaults_include_msys2_on_windows_only(tmp_path):
    home = tmp_path / "h"
    _write(home / ".condarc", "channels: [defaults]\n")
    linux = _compute(home)
    windows = _compute(home, platform="win32", subdir="win-64")
    assert [u for u in linux.channel_urls if "msys2" in u] == []
    assert f"{UPSTREAM}/msys2/win-64" in windows.channel_urls
    assert windows.urls[0].key_source == BUILTIN


def test_defaults_is_reserved_over_custom_multichannels(tmp_path):
    home = tmp_path / "h"
    _write(home / ".condarc", f"""channels: [defaults, mine]
custom_multichannels:
  defaults: [https://ignored.example/pkgs/main]
  mine: [{TUNA}/cloud/conda-forge, bioconda]
""")
    effective = _compute(home)
    assert [strip_subdir(u) for u in effective.channel_urls[::2]] == [
        f"{UPSTREAM}/main", f"{UPSTREAM}/r", f"{TUNA}/cloud/conda-forge",
        "https://conda.anaconda.org/bioconda"]
    assert effective.source_of(f"{TUNA}/cloud/conda-forge").key == "custom_multichannels"


def test_names_with_labels_and_platforms_resolve_through_custom_channels(tmp_path):
    home = tmp_path / "h"
    _write(home / ".condarc", TUNA_CONDARC.replace("  - defaults", "  - conda-forge/label/dev\n"
                                                   "  - pytorch/linux-64"))
    effective = _compute(home)
    assert effective.channel_urls == [
        f"{TUNA}/cloud/conda-forge/label/dev/linux-64", f"{TUNA}/cloud/conda-forge/label/dev/noarch",
        f"{TUNA}/cloud/pytorch/linux-64", f"{TUNA}/cloud/pytorch/noarch"]


def test_variables_in_values_are_expanded(tmp_path):
    home = tmp_path / "h"
    _write(home / ".condarc", "channels:\n  - ${MIRROR}/pkgs/main\n")
    effective = _compute(home, env={"MIRROR": TUNA})
    assert effective.channel_urls[0] == f"{TUNA}/pkgs/main/linux-64"


def test_a_scalar_channels_value_stops_conda_with_invalid_type(tmp_path):
    home = tmp_path / "h"
    _write(home / ".condarc", "channels: defaults\n")
    effective = _compute(home)
    assert effective.exit_code == 1
    assert effective.error.name == "InvalidTypeError"
    assert effective.channel_urls == []


def test_gbk_bytes_stop_a_utf8_reader_like_conda(tmp_path):
    home = tmp_path / "h"
    (home).mkdir()
    (home / ".condarc").write_bytes("# 清华镜像\nchannels: [defaults]\n".encode("gbk"))
    assert _compute(home).error.name == "UnicodeDecodeError"
    gbk = compute(env={"HOME": str(home)}, home=str(home), platform="linux", system_dirs=[],
                  subdir="linux-64", encoding="gbk")
    assert gbk.error is None and gbk.channel_urls


def test_errors_carry_line_and_column(tmp_path):
    home = tmp_path / "h"
    _write(home / ".condarc", "channels:\n  - defaults\nchannels:\n  - conda-forge\n")
    problem = _compute(home).error
    assert (problem.name, problem.line) == ("DuplicateKeyError", 3)
    assert "line 3" in problem.describe()


def test_file_keys_list_only_channel_keys_in_file_order(tmp_path):
    home = tmp_path / "h"
    _write(home / ".condarc", "ssl_verify: true\ncustom_channels: {a: https://x.example}\n"
                              "channels: [a]\n")
    effective = _compute(home)
    user = [r for r in effective.files if r.loaded][0]
    assert user.keys == ["custom_channels", "channels"]
