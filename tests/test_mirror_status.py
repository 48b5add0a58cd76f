"""`cnnsetup mirror status` and `cnnsetup mirror test` from the command line."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cnnsetup.mirror import registry
from tests.conda_helpers import TUNA, TUNA_CONDARC, make_install
from tests.conftest import run_cnnsetup

UPSTREAM = "https://repo.anaconda.com/pkgs"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _status_json(invoke, *args):
    result = invoke("mirror", "status", "--json", *args)
    return result, json.loads(result.stdout)


def test_status_without_conda_computes_from_the_files(invoke, isolated_home):
    condarc = _write(isolated_home / ".condarc", TUNA_CONDARC)
    result, data = _status_json(invoke)
    assert result.exit_code == 0
    assert data["source"] == "computed" and data["mirror"] == "tsinghua"
    assert data["conda"]["path"] is None
    assert data["effective_channels"][0].startswith(f"{TUNA}/pkgs/main/")
    [user] = [f for f in data["files"] if f["exists"]]
    assert user["path"] == str(condarc)
    assert user["keys"] == ["channels", "default_channels", "custom_channels"]
    assert user["mirrors"] == ["tsinghua"]
    assert any(not f["exists"] for f in data["files"])
    assert data["backup"] == {"exists": False, "path": None}
    assert data["channels"]["defaults"]["source"]["key_source"] == str(condarc)


def test_status_asks_conda_when_it_is_found(invoke, isolated_home, tmp_path):
    _write(isolated_home / ".condarc", TUNA_CONDARC)
    exe = make_install(tmp_path / "base")
    result, data = _status_json(invoke, "--conda", str(exe))
    assert result.exit_code == 0
    assert data["source"] == "conda" and data["conda"]["version"] == "26.7.1"
    assert data["conda"]["found_by"] == "explicit"
    assert data["mirror"] == "tsinghua"


def test_status_finds_conda_on_path(invoke, isolated_home, bin_dir, tmp_path):
    _write(isolated_home / ".condarc", "channels: [defaults]\n")
    exe = make_install(tmp_path / "base")
    (bin_dir / "conda").symlink_to(exe)
    result, data = _status_json(invoke)
    assert (data["source"], data["conda"]["found_by"], data["mirror"]) == ("conda", "PATH", "official")


def test_status_names_the_file_that_mixes_in_upstream(invoke, isolated_home, tmp_path):
    _write(isolated_home / ".condarc", TUNA_CONDARC)
    other = _write(isolated_home / ".conda" / "condarc.d" / "old.yml",
                   f"default_channels:\n  - {UPSTREAM}/main\n")
    exe = make_install(tmp_path / "base")
    result = invoke("mirror", "status", "--conda", str(exe))
    assert result.exit_code == 0
    assert "no single mirror" in result.stdout
    assert str(other) in result.stdout
    assert f"{UPSTREAM}/main" in result.stdout
    assert f"--file {other} --remove-key default_channels" in result.stdout
    assert len(result.stdout.splitlines()) <= 40  # one screen
    _result, data = _status_json(invoke, "--conda", str(exe))
    assert data["mirror"] is None and data["intended"] == "tsinghua"
    assert [o["responsible"] for o in data["offenders"]] == [str(other)]


def test_status_reports_a_backup_beside_the_condarc(invoke, isolated_home, tmp_path):
    custom = _write(tmp_path / "c" / ".condarc", TUNA_CONDARC)
    _write(Path(str(custom) + ".cnnsetup-backup.json"), "{}")
    _result, data = _status_json(invoke, "--condarc", str(custom))
    assert data["backup"]["exists"] is True
    assert data["condarc"] == str(custom)
    _write(isolated_home / ".condarc.cnnsetup-backup", "")
    _result, data = _status_json(invoke)
    assert data["backup"] == {"exists": True, "path": str(isolated_home / ".condarc.cnnsetup-backup")}


def test_status_of_a_broken_file_without_conda_fails_with_the_place(invoke, isolated_home):
    _write(isolated_home / ".condarc", "channels: [defaults\nshow_channel_urls: true\n")
    result, data = _status_json(invoke)
    assert result.exit_code == 1
    assert data["config_error"]["name"] == "ParserError" and data["config_error"]["line"] == 2
    human = invoke("mirror", "status")
    assert human.exit_code == 1 and "line 2" in human.stderr


def test_status_when_conda_itself_fails(invoke, isolated_home, tmp_path):
    from tests.conda_helpers import write_conda

    _write(isolated_home / ".condarc", TUNA_CONDARC)
    exe = write_conda(tmp_path / "base" / "bin" / "conda", modes={"*": "garbage"})
    result, data = _status_json(invoke, "--conda", str(exe))
    assert result.exit_code == 0
    assert data["source"] == "computed" and "not JSON" in data["conda"]["error"]
    assert data["mirror"] == "tsinghua"


def test_human_status_without_any_file(invoke):
    result = invoke("mirror", "status")
    assert result.exit_code == 0
    assert "no channels" in result.stdout and "conda was not found" in result.stdout


class _Quick(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_HEAD(self):
        if "/bfsu/" in self.path:
            self.send_response(403)
        elif "/slow/" in self.path:
            time.sleep(0.2)
            self.send_response(200)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def loopback_registry(monkeypatch):
    """The registry pointed at a loopback server: tsinghua answers, nju is slow, bfsu refuses,
    every other mirror goes to a port that never answers."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Quick)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(20)
    dead = f"http://127.0.0.1:{silent.getsockname()[1]}"
    routes = {"tsinghua": f"{base}/tuna", "bfsu": f"{base}/bfsu", "nju": f"{base}/slow"}
    mirrors = tuple(
        dataclasses.replace(m, defaults_base=routes.get(m.name, dead) if m.defaults_base else None,
                            cloud_base=routes.get(m.name, dead) if m.cloud_base else None)
        for m in registry.MIRRORS
    )
    monkeypatch.setattr(registry, "MIRRORS", mirrors)
    yield
    httpd.shutdown()
    httpd.server_close()
    silent.close()


def test_mirror_test_ranks_mirrors_and_keeps_to_the_timeout(invoke, loopback_registry):
    # 3 s: nju's 0.2 s answer must come in even on a busy machine; ustc never answers.
    start = time.monotonic()
    result = invoke("mirror", "test", "--timeout", "3", "--json")
    assert time.monotonic() - start < 4.5
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["fastest"] == "tsinghua"
    statuses = {r["mirror"]: (r["status"], r["http_status"]) for r in data["results"]}
    assert statuses["bfsu"] == ("http_error", 403)
    assert statuses["nju"] == ("ok", 200)
    assert statuses["ustc"] == ("timeout", None)
    assert [r["mirror"] for r in data["results"][:2]] == ["tsinghua", "nju"]


def test_mirror_test_human_output(invoke, loopback_registry):
    result = invoke("mirror", "test", "--timeout", "1")
    assert result.exit_code == 0
    assert "cnnsetup mirror tsinghua" in result.stdout
    assert "403" in result.stdout


def test_status_runs_as_a_real_process_with_json_only_on_stdout(isolated_home):
    _write(isolated_home / ".condarc", TUNA_CONDARC)
    done = run_cnnsetup("mirror", "status", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["mirror"] == "tsinghua"


def test_status_does_not_import_network_modules(isolated_home):
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    code = ("import sys; from cnnsetup.cli import main; main(['mirror', 'status', '--json']); "
            "bad = [m for m in ('urllib.request', 'http.client', 'concurrent.futures', 'torch') "
            "if m in sys.modules]; sys.stderr.write(repr(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO_ROOT), "HOME": str(isolated_home),
                              "PATH": ""}, timeout=60)
    assert out.stderr.strip().endswith("[]"), out.stderr


def test_a_file_conda_cannot_scan_is_shown_as_skipped(invoke, isolated_home):
    broken = _write(isolated_home / ".conda" / "condarc", "channels:\n\t- defaults\n")
    _write(isolated_home / ".condarc", TUNA_CONDARC)
    result, data = _status_json(invoke)
    assert result.exit_code == 0 and data["mirror"] == "tsinghua"
    [entry] = [f for f in data["files"] if f["path"] == str(broken)]
    assert entry["skipped"]["name"] == "ScannerError" and entry["loaded"] is False
    assert data["warnings"][0].startswith(f"Ignoring configuration file ({broken}) due to error:")
    human = invoke("mirror", "status")
    assert f"conda skips {broken}" in human.stdout


BLOG_CONDARC = """\
channels:
  - https://mirrors.tuna.tsinghua.edu.cn/anaconda/pkgs/free/
  - defaults
show_channel_urls: true
"""


def test_list_and_status_give_one_verdict_and_name_pkgs_free(invoke, isolated_home):
    """The blog recipe: an old pkgs/free URL in channels and upstream defaults is a mix for both
    commands (not "points at tsinghua" in one of them), and pkgs/free is named with its fix."""
    _write(isolated_home / ".condarc", BLOG_CONDARC)
    listed = json.loads(invoke("mirror", "list", "--json").stdout)
    result, data = _status_json(invoke)
    assert listed["current"] is None and data["mirror"] is None
    assert [o["url"] for o in listed["obsolete"]] == [o["url"] for o in data["obsolete"]]
    [item] = data["obsolete"]
    assert item["url"].endswith("/pkgs/free") and "cnnsetup mirror tsinghua" in item["fix"]
    human = invoke("mirror", "list").stdout
    assert "pkgs/free" in human and "conda 4.7" in human


def test_status_without_conda_says_so_once(invoke, isolated_home):
    _write(isolated_home / ".condarc", TUNA_CONDARC)
    out = invoke("mirror", "status").stdout
    assert out.count("conda was not found") == 1
    assert "not checked with conda" not in out


def test_the_fix_for_a_blog_file_is_the_switch_not_the_search_path(invoke, isolated_home):
    _write(isolated_home / ".condarc", BLOG_CONDARC)
    result, data = _status_json(invoke)
    assert data["intended"] == "tsinghua"
    for offender in data["offenders"]:
        assert offender["fix_command"] == ["cnnsetup", "mirror", "tsinghua"]
        assert "Check that conda reads" not in offender["fix"]
