"""A mirror on 127.0.0.1 for the live channel check: it answers 200 for the channels it is told
to serve (`<channel>/noarch/repodata.json`) and 404 for every other path, and records each request."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class MirrorServer:
    """`serve` holds path prefixes below the server root, e.g. "anaconda/pkgs/main"."""

    def __init__(self, serve: set[str]):
        self.serve = set(serve)
        self.seen: list[tuple[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_HEAD(self):
                owner.seen.append((self.command, self.path))
                channel = self.path.strip("/").removesuffix("/noarch/repodata.json")
                alive = self.path.endswith("/noarch/repodata.json") and channel in owner.serve
                self.send_response(200 if alive else 404)
                self.send_header("Content-Length", "1000000" if alive else "0")
                self.end_headers()

            do_GET = do_HEAD

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "MirrorServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url() -> str:
    """An address on 127.0.0.1 where nothing listens (an offline laptop, as far as probes go)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


ALL_CHANNELS = {"pkgs/main", "pkgs/r", "pkgs/msys2", "cloud/conda-forge", "cloud/pytorch",
                "cloud/bioconda"}


def tsinghua_like(prefix: str, channels=ALL_CHANNELS) -> set[str]:
    """The channel paths of a mirror laid out like Tsinghua's under `prefix`."""
    return {f"{prefix}/{c}".strip("/") for c in channels}
