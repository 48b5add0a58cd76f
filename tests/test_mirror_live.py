"""The live channel check before a switch, `mirror --url BASE`, and `mirror test` over every channel,
against mirrors served on 127.0.0.1 that carry some channels and answer 404 for others."""

from __future__ import annotations

import json
import time

import pytest

from cnnsetup.mirror import channel_probe, registry, yaml_io
from tests.conftest import run_cnnsetup
from tests.mirror_server import ALL_CHANNELS, MirrorServer, closed_port_url, tsinghua_like

STUDENT = "# my settings\nchannels:\n    - defaults\nenvs_dirs:\n    - ~/envs   # keep\n"


@pytest.fixture(autouse=True)
def live(monkeypatch):
    """These tests serve the mirror themselves, so the live check is on."""
    monkeypatch.delenv("CNNSETUP_OFFLINE", raising=False)


def data(path) -> dict:
    return yaml_io.plain(yaml_io.load(path.read_text(encoding="utf-8"), source=str(path)))


def switch_url(invoke, base, condarc, *extra):
    return invoke("mirror", "--url", base, "--condarc", str(condarc), "--no-clean", "--json", *extra)


def test_a_dead_r_channel_is_left_out_with_a_note(invoke, tmp_path):
    condarc = tmp_path / ".condarc"
    condarc.write_text(STUDENT, encoding="utf-8")
    with MirrorServer(tsinghua_like("anaconda", ALL_CHANNELS - {"pkgs/r"})) as server:
        base = f"{server.url}/anaconda"
        result = switch_url(invoke, base, condarc)
        assert all(method == "HEAD" for method, _path in server.seen)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert data(condarc)["default_channels"] == [f"{base}/pkgs/main"]
    assert data(condarc)["custom_channels"] == {c: f"{base}/cloud"
                                                for c in ("conda-forge", "pytorch", "bioconda")}
    assert any("pkgs/r" in note and "404" in note for note in payload["notes"])
    states = {c["channel"]: c["alive"] for c in payload["live_check"]["channels"]}
    assert states == {"pkgs/main": True, "pkgs/r": False, "conda-forge": True, "pytorch": True,
                      "bioconda": True}
    # The untouched key keeps its own 4-space list, and new lists follow it.
    text = condarc.read_text(encoding="utf-8")
    assert "envs_dirs:\n    - ~/envs   # keep\n" in text
    assert f"default_channels:\n    - {base}/pkgs/main\n" in text


def test_a_dead_cloud_channel_is_left_out_so_conda_uses_upstream(invoke, tmp_path):
    condarc = tmp_path / ".condarc"
    with MirrorServer(tsinghua_like("a", ALL_CHANNELS - {"cloud/pytorch"})) as server:
        result = switch_url(invoke, f"{server.url}/a", condarc)
    assert result.exit_code == 0, result.output
    assert "pytorch" not in data(condarc)["custom_channels"]
    assert any("pytorch" in note for note in json.loads(result.stdout)["notes"])


def test_a_dead_main_channel_refuses_the_switch_and_touches_nothing(invoke, tmp_path):
    condarc = tmp_path / ".condarc"
    condarc.write_bytes(STUDENT.encode())
    with MirrorServer(tsinghua_like("a", ALL_CHANNELS - {"pkgs/main"})) as server:
        result = invoke("mirror", "--url", f"{server.url}/a", "--condarc", str(condarc), "--no-clean")
    assert result.exit_code == 1
    assert "pkgs/main" in result.stderr and "404" in result.stderr
    assert condarc.read_bytes() == STUDENT.encode()
    assert not any(p.name.startswith(".condarc.") for p in tmp_path.iterdir())  # no backup


def test_a_mirror_that_does_not_answer_at_all_is_written_with_a_warning(invoke, tmp_path):
    condarc = tmp_path / ".condarc"
    base = closed_port_url() + "/anaconda"
    result = invoke("mirror", "--url", base, "--condarc", str(condarc), "--no-clean")
    assert result.exit_code == 0, result.output
    assert "offline" in result.stderr
    assert data(condarc)["default_channels"] == [f"{base}/pkgs/main", f"{base}/pkgs/r"]


def test_offline_skips_the_probe(invoke, tmp_path):
    condarc = tmp_path / ".condarc"
    with MirrorServer(set()) as server:  # every channel would be 404
        result = switch_url(invoke, f"{server.url}/a", condarc, "--offline")
        assert server.seen == []
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["live_check"] is None
    assert len(data(condarc)["default_channels"]) == 2


def test_url_switch_dry_run_then_restore_gives_back_the_bytes(invoke, tmp_path):
    condarc = tmp_path / ".condarc"
    condarc.write_bytes(STUDENT.encode())
    with MirrorServer(tsinghua_like("a")) as server:
        dry = invoke("mirror", "--url", f"{server.url}/a", "--condarc", str(condarc), "--dry-run")
        assert dry.exit_code == 0 and condarc.read_bytes() == STUDENT.encode()
        assert f"{server.url}/a/pkgs/main" in dry.stdout
        assert switch_url(invoke, f"{server.url}/a", condarc).exit_code == 0
    assert invoke("mirror", "restore", "--condarc", str(condarc)).exit_code == 0
    assert condarc.read_bytes() == STUDENT.encode()


def test_a_url_that_is_not_an_address_is_a_usage_error(invoke, tmp_path):
    result = invoke("mirror", "--url", "tuna", "--condarc", str(tmp_path / ".condarc"))
    assert result.exit_code == 2
    assert not (tmp_path / ".condarc").exists()


def test_mirror_test_url_reports_every_channel(invoke):
    with MirrorServer(tsinghua_like("a", ALL_CHANNELS - {"pkgs/r", "pkgs/msys2"})) as server:
        result = invoke("mirror", "test", "--url", f"{server.url}/a", "--timeout", "3", "--json")
        human = invoke("mirror", "test", "--url", f"{server.url}/a", "--timeout", "3")
    assert result.exit_code == 0, result.output
    [channels] = json.loads(result.stdout)["channels"].values()
    assert {c["channel"]: c["http_status"] for c in channels} == {
        "pkgs/main": 200, "pkgs/r": 404, "pkgs/msys2": 404, "conda-forge": 200, "pytorch": 200,
        "bioconda": 200}
    assert "pkgs/msys2" in human.stdout and "404" in human.stdout
    assert f"cnnsetup mirror --url {server.url}/a" in human.stdout


def test_every_probe_of_a_switch_runs_at_once(tmp_path):
    """Six channels that each take 0.4 s answer in about 0.4 s, not 2.4 s."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Slow(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_HEAD(self):
            time.sleep(0.4)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        mirror = registry.from_url(f"http://127.0.0.1:{httpd.server_address[1]}/a")
        check = channel_probe.check(mirror, windows=True, timeout=5)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert len(check.channels) == 6 and all(c.alive for c in check.channels)
    assert check.elapsed_s < 6 * 0.4  # generous: a busy machine, but never one after another


def tuna_template(root: str) -> str:
    tuna = f"{root}/mirrors.tuna.tsinghua.edu.cn/anaconda"
    return (
        "channels:\n  - defaults\nshow_channel_urls: true\ndefault_channels:\n"
        f"  - {tuna}/pkgs/main\n  - {tuna}/pkgs/r\n  - {tuna}/pkgs/msys2\n"
        "custom_channels:\n"
        + "".join(f"  {name}: {tuna}/cloud\n" for name in
                  ("conda-forge", "msys2", "bioconda", "menpo", "pytorch", "pytorch-lts", "simpleitk"))
    )


def test_the_users_own_channels_move_when_the_new_mirror_carries_them(isolated_home):
    """The TUNA template's menpo, simpleitk, pytorch-lts, msys2: with the registry moved onto a
    loopback server (CNNSETUP_MIRROR_ROOT), BFSU carries menpo and simpleitk but not the others."""
    bfsu = "mirrors.bfsu.edu.cn/anaconda"
    with MirrorServer(tsinghua_like(bfsu) | {f"{bfsu}/cloud/menpo", f"{bfsu}/cloud/simpleitk"}) as server:
        condarc = isolated_home / ".condarc"
        condarc.write_text(tuna_template(server.url), encoding="utf-8")
        done = run_cnnsetup("mirror", "bfsu", "--no-clean", "--json",
                            env={"CNNSETUP_MIRROR_ROOT": server.url})
    assert done.returncode == 0, done.stderr
    custom = data(condarc)["custom_channels"]
    tuna_cloud = f"{server.url}/mirrors.tuna.tsinghua.edu.cn/anaconda/cloud"
    assert custom["menpo"] == custom["simpleitk"] == custom["conda-forge"] == f"{server.url}/{bfsu}/cloud"
    assert custom["pytorch-lts"] == custom["msys2"] == tuna_cloud
    assert list(custom) == ["conda-forge", "msys2", "bioconda", "menpo", "pytorch", "pytorch-lts",
                            "simpleitk"]  # nothing moved place
    notes = " ".join(json.loads(done.stdout)["notes"])
    assert "pytorch-lts" in notes and "msys2" in notes and "menpo" not in notes
