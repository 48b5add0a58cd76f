"""How long `cnnsetup info` takes next to `python -m torch.utils.collect_env` (whole processes,
run alternately so that both see the same machine load). Goal: ratio at most 1.0.

    python benchmarks/bench_info.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
GOAL = 1.0

COMMANDS = {
    "cnnsetup info": [sys.executable, "-m", "cnnsetup", "info", "--json"],
    "collect_env": [sys.executable, "-m", "torch.utils.collect_env"],
}


def timed(args: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                   timeout=600, check=False)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    for args in COMMANDS.values():  # warm the file cache for both
        timed(args, env)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(options.rounds):
        for name, args in COMMANDS.items():
            times[name].append(timed(args, env))
    for name, values in times.items():
        print(f"{name:14s} median {statistics.median(values):6.3f} s   "
              f"min {min(values):6.3f} s   max {max(values):6.3f} s   ({len(values)} runs)")
    ratio = statistics.median(times["cnnsetup info"]) / statistics.median(times["collect_env"])
    best = min(times["cnnsetup info"]) / min(times["collect_env"])
    verdict = "ok" if ratio <= GOAL else "over the goal"
    print(f"ratio (median) {ratio:.2f}   ratio (best) {best:.2f}   goal <= {GOAL:.1f}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
