"""How long `cnnsetup report` takes over a class of 1,000 machines: the whole process, as a
teaching assistant runs it, with the terminal table and with `--html` and `--csv` too.

Goal: under 1 s for 1,000 reports, start-up, reading, merging, states and the table of what
blocks most included. `python -c pass` and `cnnsetup --version` are timed in the same rounds,
alternately, so the figures can be read against the interpreter's own start-up. The merge alone
(read + group + states + blocking table, in this process) is timed too.

    python benchmarks/bench_report.py [--reports N] [--rounds N]
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import report_helpers as rh  # noqa: E402

GOAL_S = 1.0


def _time(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{command} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return seconds


def _merge_once(folder: Path) -> float:
    from cnnsetup.classroom.merge import merge

    start = time.perf_counter()
    merged = merge([folder])
    seconds = time.perf_counter() - start
    assert merged.blocking, "the class has failing machines"
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    with tempfile.TemporaryDirectory(prefix="cnnsetup-bench-report-") as scratch:
        folder = Path(scratch) / "class"
        for i, report in enumerate(rh.varied(args.reports, seed=1)):
            rh.write_report(folder, f"week{i % 4}/{report['host']}.json", report)
        # Some students sent info first, then verify: superseded and kept reports to sort out.
        for i, report in enumerate(rh.varied(args.reports // 10, seed=2)):
            rh.write_report(folder, f"early/{report['host']}.json",
                            rh.changed(report, created="2026-10-01T08:00:00+08:00"))
        # A few files a real folder holds too.
        (folder / "broken.json").write_text("{", encoding="utf-8")
        rh.write_report(folder, "package.json", {"name": "x"})
        size = sum(p.stat().st_size for p in folder.rglob("*.json"))

        cnnsetup = [sys.executable, "-m", "cnnsetup"]
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "cnnsetup --version": cnnsetup + ["--version"],
            "report DIR": cnnsetup + ["report", str(folder)],
            "report DIR --json": cnnsetup + ["report", str(folder), "--json"],
            "report DIR --html --csv": cnnsetup + [
                "report", str(folder), "--html", str(Path(scratch) / "class.html"),
                "--csv", str(Path(scratch) / "class.csv")],
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for name, command in cases.items():  # warm the file cache and .pyc files
            _time(command, env)
        for _ in range(args.rounds):
            for name, command in cases.items():
                times[name].append(_time(command, env))
        page = (Path(scratch) / "class.html").stat().st_size
        merge_times = []
        for _ in range(args.rounds):
            merge_times.append(_merge_once(folder))

    print(f"{args.reports} machines' reports + {args.reports // 10} older ones they supersede "
          f"({size / 1e6:.1f} MB) + 2 other files, "
          f"{args.rounds} rounds, median (min) seconds:")
    base = statistics.median(times["python -c pass"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:28s} {median:6.3f} ({min(values):.3f})  "
              f"{median / base:5.1f}x python start-up")
    worst = max(statistics.median(times[n]) for n in cases if n.startswith("report"))
    print(f"  {'merge + blocking, in-process':28s} {statistics.median(merge_times):6.3f} "
          f"({min(merge_times):.3f})")
    print(f"HTML page: {page / 1e6:.2f} MB")
    verdict = "OK" if worst < GOAL_S else "TOO SLOW"
    print(f"slowest report case {worst:.3f} s, goal < {GOAL_S} s: {verdict}")
    return 0 if worst < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
