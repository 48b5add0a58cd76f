"""What the live channel check adds to a switch: `cnnsetup mirror tsinghua --dry-run --no-clean`
with the check against a mirror served on 127.0.0.1 (every channel answering), against the same
command with `--offline`. Goal: at most 0.3 s more.

The registry is moved onto the loopback server with CNNSETUP_MIRROR_ROOT, so the probes are the
same six HEAD requests a real switch makes (pkgs/main, pkgs/r, conda-forge, pytorch, bioconda,
and the user's own mirror channel menpo), only without the network's latency.

Run: python benchmarks/bench_mirror_live_check.py
"""

from __future__ import annotations

import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import PYTHON, cnnsetup_env, compare  # noqa: E402

GOAL_S = 0.3


class _Mirror(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def main() -> int:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Mirror)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with tempfile.TemporaryDirectory() as home:
            (Path(home) / ".condarc").write_text(
                "# a typical student file\nchannels:\n  - defaults\nshow_channel_urls: true\n"
                f"custom_channels:\n  menpo: {root}/mirrors.tuna.tsinghua.edu.cn/anaconda/cloud\n",
                encoding="utf-8",
            )
            env = cnnsetup_env(Path(home))
            env.pop("CNNSETUP_OFFLINE", None)
            env["CNNSETUP_MIRROR_ROOT"] = root
            command = [PYTHON, "-m", "cnnsetup", "mirror", "tsinghua", "--dry-run", "--no-clean"]
            live, offline = compare(command, command + ["--offline"], env=env)
    finally:
        httpd.shutdown()
        httpd.server_close()
    added = live - offline
    print(f"mirror tsinghua --dry-run, live check over loopback: {live * 1000:.0f} ms (median)")
    print(f"mirror tsinghua --dry-run --offline:                 {offline * 1000:.0f} ms (median)")
    verdict = "OK" if added <= GOAL_S else "OVER GOAL"
    print(f"added by the live check: {added * 1000:.0f} ms (goal <= {GOAL_S * 1000:.0f} ms) {verdict}")
    return 0 if added <= GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
