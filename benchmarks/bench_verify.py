"""How long the whole `cnnsetup verify --device cpu` takes (machine checks, the operation-level
proof, training and validation of the reference CNN with torch.optim, checkpoint round trip), in
two ratios, each measured alternately in one run:

1. against the bare `python -c "import torch"`. Goal: <= 2.0 (aim 1.5): the whole proof costs no
   more than one more torch import (of which the first torch.optim use, importing
   torch._dynamo, is about one; verify overlaps it with the layer checks).
2. with two busy-loop processes holding the CPU against an idle machine. Goal: <= 3.0: the
   thread policy (one torch thread when more are not measurably faster) keeps a busy machine
   from slowing training thirtyfold.

    python benchmarks/bench_verify.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import PYTHON, cnnsetup_env, compare, report, time_once  # noqa: E402

BUSY_LOOP = "while True: pass"


def busy_against_idle(verify: list[str], env: dict, rounds: int) -> tuple[float, float]:
    """Median seconds of `verify` with two busy-loop processes running, and without, alternately."""
    busy, idle = [], []
    for _ in range(rounds):
        idle.append(time_once(verify, env))
        loops = [subprocess.Popen([PYTHON, "-c", BUSY_LOOP]) for _ in range(2)]
        try:
            busy.append(time_once(verify, env))
        finally:
            for loop in loops:
                loop.kill()
                loop.wait()
    return statistics.median(busy), statistics.median(idle)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    verify = [PYTHON, "-m", "cnnsetup", "verify", "--device", "cpu", "--json"]
    with tempfile.TemporaryDirectory() as home:
        env = cnnsetup_env(Path(home))
        subject, baseline = compare(verify, [PYTHON, "-c", "import torch"], env=env, runs=rounds,
                                    warmup=1)
        ok = report("cnnsetup verify --device cpu", subject, 'python -c "import torch"',
                    baseline, goal=2.0)
        print()
        busy, idle = busy_against_idle(verify, env, rounds)
        ok = report("verify, two busy loops holding the CPU", busy, "verify, idle", idle,
                    goal=3.0) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
