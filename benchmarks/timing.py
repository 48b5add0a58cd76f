"""Whole-process timing for the benchmark scripts: commands measured alternately, in one run,
so that a busy machine slows both sides alike. Prints medians and their ratio."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent


def time_once(argv: Sequence[str], env: Mapping[str, str] | None = None) -> float:
    """Seconds one run of `argv` takes, start to exit; fails loudly if the command fails."""
    start = time.perf_counter()
    done = subprocess.run(list(argv), env=dict(env) if env else None, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
    return elapsed


def compare(subject: Sequence[str], baseline: Sequence[str], *, runs: int = 15,
            env: Mapping[str, str] | None = None, warmup: int = 2) -> tuple[float, float]:
    """Median seconds of `subject` and `baseline`, measured alternately."""
    for _ in range(warmup):
        time_once(subject, env)
        time_once(baseline, env)
    a, b = [], []
    for _ in range(runs):
        a.append(time_once(subject, env))
        b.append(time_once(baseline, env))
    return statistics.median(a), statistics.median(b)


def report(name: str, subject_s: float, baseline_name: str, baseline_s: float, goal: float) -> bool:
    """Print the figures and whether the ratio meets `goal`; return that verdict."""
    ratio = subject_s / baseline_s
    verdict = "OK" if ratio <= goal else "OVER GOAL"
    print(f"{name}: {subject_s * 1000:.0f} ms (median)")
    print(f"{baseline_name}: {baseline_s * 1000:.0f} ms (median)")
    print(f"ratio: {ratio:.2f} (goal <= {goal:.1f}) {verdict}")
    return ratio <= goal


def cnnsetup_env(home: Path) -> dict:
    """An environment where `python -m cnnsetup` imports this checkout and sees `home` as ~."""
    env = dict(os.environ)
    env.update(PYTHONPATH=str(REPO_ROOT), HOME=str(home), USERPROFILE=str(home))
    env.pop("CONDA_EXE", None)
    return env


PYTHON = sys.executable
