"""How long the whole `cnnsetup verify --device cpu` takes (machine checks, convolution check,
training and validation of the reference CNN, checkpoint round trip) next to the bare
`python -c "import torch"`, measured alternately in one run. Goal: ratio <= 2.0, i.e. all the
checks plus the training cost no more than one more torch import.

    python benchmarks/bench_verify.py [--rounds N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import PYTHON, cnnsetup_env, compare, report  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as home:
        subject, baseline = compare(
            [PYTHON, "-m", "cnnsetup", "verify", "--device", "cpu", "--json"],
            [PYTHON, "-c", "import torch"],
            env=cnnsetup_env(Path(home)), runs=rounds, warmup=1,
        )
    ok = report("cnnsetup verify --device cpu", subject, 'python -c "import torch"', baseline,
                goal=2.0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
