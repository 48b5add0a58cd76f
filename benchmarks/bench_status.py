"""How long `cnnsetup mirror status` takes as a whole process (no conda on PATH), against the
floor of any cnnsetup command: `python -c "import click, ruamel.yaml"`. Runs alternate so that
machine load hits both alike. Goal: ratio of medians at most 2.0.

    python benchmarks/bench_status.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
GOAL = 2.0
CONDARC = """channels:
  - defaults
show_channel_urls: true
default_channels:
  - https://mirrors.tuna.tsinghua.edu.cn/anaconda/pkgs/main
  - https://mirrors.tuna.tsinghua.edu.cn/anaconda/pkgs/r
custom_channels:
  conda-forge: https://mirrors.tuna.tsinghua.edu.cn/anaconda/cloud
  pytorch: https://mirrors.tuna.tsinghua.edu.cn/anaconda/cloud
"""


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed: {done.stderr.decode(errors='replace')}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        (home / ".condarc").write_text(CONDARC, encoding="utf-8")
        empty_bin = Path(tmp) / "bin"
        empty_bin.mkdir()
        env = {
            "HOME": str(home), "USERPROFILE": str(home), "PATH": str(empty_bin),
            "PYTHONPATH": str(REPO_ROOT), "LANG": "C.UTF-8", "SYSTEMROOT": os.environ.get("SYSTEMROOT", ""),
        }
        status = [sys.executable, "-m", "cnnsetup", "mirror", "status"]
        floor = [sys.executable, "-c", "import click, ruamel.yaml"]
        _time(status, env), _time(floor, env)  # warm the file cache
        status_s, floor_s = [], []
        for _run in range(args.runs):
            status_s.append(_time(status, env))
            floor_s.append(_time(floor, env))
    status_median, floor_median = statistics.median(status_s), statistics.median(floor_s)
    ratio = status_median / floor_median
    print(f"cnnsetup mirror status (no conda): median {status_median * 1000:.0f} ms "
          f"(min {min(status_s) * 1000:.0f} ms, {args.runs} runs)")
    print(f"python -c 'import click, ruamel.yaml': median {floor_median * 1000:.0f} ms "
          f"(min {min(floor_s) * 1000:.0f} ms)")
    print(f"ratio {ratio:.2f} (goal <= {GOAL})")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
