"""Mirror probes against real HTTP servers on 127.0.0.1: fast, slow, refusing, missing, hanging,
closed. One small request each, fastest first, and the whole run bounded by its timeout."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cnnsetup.mirror import registry, speedtest


class _Handler(BaseHTTPRequestHandler):
    seen: list = []

    def log_message(self, *args):  # keep test output clean
        pass

    def _answer(self, body: bool) -> None:
        type(self).seen.append((self.command, self.path, self.headers.get("Range")))
        path = self.path
        if path.startswith("/slow"):
            time.sleep(0.3)
        if path.startswith("/forbidden"):
            self.send_response(403)
        elif path.startswith("/missing"):
            self.send_response(404)
        elif path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/fast/pkgs/main/noarch/repodata.json")
        elif path.startswith("/nohead") and self.command == "HEAD":
            self.send_response(405)
        else:
            self.send_response(206 if self.headers.get("Range") else 200)
            self.send_header("Content-Length", "1" if self.headers.get("Range") else "1000000")
            self.end_headers()
            if body:
                self.wfile.write(b"{")
            return
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        self._answer(body=False)

    def do_GET(self):
        self._answer(body=True)


@pytest.fixture
def server():
    _Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def hanging():
    """A port that accepts connections (the kernel does) but never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(50)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/pkgs/main/noarch/repodata.json"
    sock.close()


@pytest.fixture
def closed():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/pkgs/main/noarch/repodata.json"


REPODATA = "pkgs/main/noarch/repodata.json"


def test_probe_targets_come_from_the_registry():
    targets = speedtest.default_targets()
    assert set(targets) == set(registry.names())
    tuna = registry.get("tsinghua")
    assert targets["tsinghua"] == f"{tuna.defaults_base}/pkgs/main/noarch/repodata.json"
    assert targets["ustc"] == f"{registry.get('ustc').cloud_base}/conda-forge/noarch/repodata.json"
    assert all(url.startswith("https://") for url in targets.values())


def test_every_outcome_is_reported_and_fastest_comes_first(server, hanging, closed):
    targets = {
        "fast": f"{server}/fast/{REPODATA}",
        "slow": f"{server}/slow/{REPODATA}",
        "refusing": f"{server}/forbidden/{REPODATA}",
        "missing": f"{server}/missing/{REPODATA}",
        "hanging": hanging,
        "closed": closed,
    }
    results = speedtest.probe_all(targets, timeout=1.5)
    by_name = {r.mirror: r for r in results}
    assert [r.mirror for r in results[:2]] == ["fast", "slow"]
    assert by_name["slow"].latency_s >= 0.3 > by_name["fast"].latency_s
    assert (by_name["refusing"].status, by_name["refusing"].http_status) == ("http_error", 403)
    assert (by_name["missing"].status, by_name["missing"].http_status) == ("http_error", 404)
    assert by_name["hanging"].status == "timeout"
    assert by_name["closed"].status == "unreachable"
    assert "403" in by_name["refusing"].describe() and "404" in by_name["missing"].describe()
    assert speedtest.fastest(results).mirror == "fast"
    assert speedtest.fastest(results, exclude=["fast"]).mirror == "slow"
    # One HEAD each; nothing downloaded.
    assert all(method == "HEAD" for method, _path, _range in _Handler.seen)


def test_the_whole_run_returns_on_time_however_many_hang(hanging, server):
    targets = {f"hang{i}": hanging for i in range(12)}
    targets["fast"] = f"{server}/fast/{REPODATA}"
    start = time.monotonic()
    results = speedtest.probe_all(targets, timeout=0.5)
    assert time.monotonic() - start < 0.5 + 0.4
    assert sum(r.status == "timeout" for r in results) == 12
    assert results[0].mirror == "fast" and results[0].ok


def test_head_refused_falls_back_to_a_one_byte_get(server):
    [result] = speedtest.probe_all({"nohead": f"{server}/nohead/{REPODATA}"}, timeout=2)
    assert result.ok and result.http_status == 206
    assert [(m, r) for m, _p, r in _Handler.seen] == [("HEAD", None), ("GET", "bytes=0-0")]


def test_redirects_are_followed_with_head(server):
    [result] = speedtest.probe_all({"moved": f"{server}/redirect/{REPODATA}"}, timeout=2)
    assert result.ok
    assert [(m, p.split("/")[1]) for m, p, _r in _Handler.seen] == [("HEAD", "redirect"),
                                                                    ("HEAD", "fast")]


def test_nothing_answered_means_no_fastest(closed):
    results = speedtest.probe_all({"a": closed}, timeout=1)
    assert speedtest.fastest(results) is None
    assert speedtest.probe_all({}, timeout=1) == []


def test_json_shape():
    result = speedtest.ProbeResult("x", "http://127.0.0.1/", "ok", 200, 0.0123)
    assert result.to_dict() == {"mirror": "x", "url": "http://127.0.0.1/", "status": "ok",
                                "http_status": 200, "latency_ms": 12.3, "error": None}
