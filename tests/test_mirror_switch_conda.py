"""After `cnnsetup mirror NAME` writes the file: conda cleans its index and says what it now
uses; pip follows with --pip and comes back with restore --pip; `mirror auto` picks the fastest."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cnnsetup.mirror import speedtest
from tests.conda_helpers import calls, make_install

TUNA = "https://mirrors.tuna.tsinghua.edu.cn/anaconda"


@pytest.fixture
def conda_install(tmp_path):
    log = tmp_path / "conda-calls.jsonl"
    exe = make_install(tmp_path / "miniconda3", log=log)
    return exe, log


def test_switch_cleans_the_index_and_confirms_with_conda_info(invoke, conda_install, isolated_home):
    exe, log = conda_install
    result = invoke("mirror", "tsinghua", "--conda", str(exe))
    assert result.exit_code == 0, result.output
    assert calls(log) == [["clean", "-i", "-y", "--json"], ["info", "--json"]]
    assert not (exe.parent.parent / "pkgs" / "cache").exists()
    assert "conda now uses tsinghua" in result.stdout


def test_no_clean_still_asks_conda_what_it_uses(invoke, conda_install):
    exe, log = conda_install
    result = invoke("mirror", "tsinghua", "--conda", str(exe), "--no-clean")
    assert result.exit_code == 0
    assert calls(log) == [["info", "--json"]]


def test_a_file_that_keeps_conda_on_upstream_is_named_with_a_fix(invoke, conda_install, isolated_home):
    exe, _ = conda_install
    other = isolated_home / ".config" / "conda" / ".condarc"
    other.parent.mkdir(parents=True)
    other.write_text("channels:\n  - https://conda.anaconda.org/conda-forge\n", encoding="utf-8")
    result = invoke("mirror", "tsinghua", "--conda", str(exe), "--json")
    assert result.exit_code == 0  # the change stands; the warning says what is left
    payload = json.loads(result.stdout)
    assert payload["changed"] is True
    assert payload["confirm"]["status"] == "warn"
    offender = payload["confirm"]["offenders"][0]
    assert offender["channel"] == "conda-forge"
    assert str(other) in json.dumps(offender)


def test_conda_absent_says_what_to_run_by_hand(invoke):
    result = invoke("mirror", "tsinghua")
    assert result.exit_code == 0
    assert "conda clean -i" in result.output and "conda info" in result.output


@pytest.fixture
def no_global_pip_config(tmp_path, monkeypatch):
    xdg_dirs = tmp_path / "xdg-dirs"
    xdg_dirs.mkdir()
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(xdg_dirs))


def _pip_user_file(home):
    return home / ".config" / "pip" / "pip.conf"


def test_pip_follows_the_mirror_and_restore_pip_brings_back_the_exact_value(
        invoke, isolated_home, no_global_pip_config):
    from cnnsetup.mirror import pip

    pip.set_index_url("https://pypi.example.edu/simple")
    assert invoke("mirror", "tsinghua", "--no-clean", "--pip").exit_code == 0
    assert pip.get_index_url() == "https://pypi.tuna.tsinghua.edu.cn/simple"
    assert invoke("mirror", "bfsu", "--no-clean", "--pip").exit_code == 0
    assert pip.get_index_url() == "https://mirrors.bfsu.edu.cn/pypi/web/simple"
    result = invoke("mirror", "restore", "--pip")
    assert result.exit_code == 0, result.output
    assert pip.get_index_url() == "https://pypi.example.edu/simple"
    assert not pip.record_path(isolated_home / ".condarc").exists()


def test_restore_without_pip_leaves_pip_and_says_how_to_undo_it(invoke, isolated_home,
                                                                no_global_pip_config):
    from cnnsetup.mirror import pip

    invoke("mirror", "nju", "--no-clean", "--pip")
    result = invoke("mirror", "restore")
    assert result.exit_code == 0
    assert "cnnsetup mirror restore --pip" in result.stdout
    assert pip.get_index_url() == "https://mirror.nju.edu.cn/pypi/web/simple"
    assert invoke("mirror", "restore", "--pip").exit_code == 0
    assert pip.get_index_url() is None


def test_official_with_pip_unsets_the_index(invoke, isolated_home, no_global_pip_config):
    from cnnsetup.mirror import pip

    invoke("mirror", "tsinghua", "--no-clean", "--pip")
    assert invoke("mirror", "official", "--no-clean", "--pip").exit_code == 0
    assert pip.get_index_url() is None


class _Answer(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_HEAD(self):
        status = 200 if self.path.startswith("/good") else 404
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD


@pytest.fixture
def loopback_mirrors(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    targets = {name: f"{base}/missing/{name}" for name in ("tsinghua", "sjtu", "nju", "aliyun")}
    targets["bfsu"] = f"{base}/good/bfsu"
    targets["ustc"] = f"{base}/good/ustc"  # answers, but has no defaults copy: never chosen
    monkeypatch.setattr(speedtest, "default_targets", lambda mirrors=None: dict(targets))
    yield
    server.shutdown()


def test_auto_switches_to_the_fastest_mirror_that_answers(invoke, isolated_home, loopback_mirrors):
    result = invoke("mirror", "auto", "--no-clean", "--timeout", "2", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["mirror"] == "bfsu"
    assert "mirrors.bfsu.edu.cn" in (isolated_home / ".condarc").read_text(encoding="utf-8")


def test_auto_with_no_mirror_answering_fails_clearly(invoke, isolated_home, monkeypatch):
    monkeypatch.setattr(speedtest, "default_targets", lambda mirrors=None: {})
    result = invoke("mirror", "auto", "--timeout", "0.5")
    assert result.exit_code == 1
    assert "cnnsetup mirror tsinghua" in result.stderr
    assert not (isolated_home / ".condarc").exists()
