"""What the distributed-training check costs, printed as figures.

For N = 1 and N = 2 processes on the CPU (gloo), and as the baseline the same smoke training in one
plain process (`run_smoke`, no launcher, no DDP), measured alternately in one run:
  - wall seconds of the whole launch (interpreter start to exit: what `verify --ddp N` waits for);
  - seconds of training plus validation (the slowest rank), training samples per second;
  - the validation accuracy reached, and whether the replicas ended identical.

    PYTHONPATH=. python benchmarks/bench_ddp.py [--rounds 3] [--nprocs 1 2] [--nodes 2]

Then the all-reduce sweep each run made after training (bus bandwidth as nccl-tests defines it,
busbw = algbw * 2(n-1)/n, and the one-element latency), and with `--nodes 2` the same over two
"nodes" on this machine: two launches meeting on 127.0.0.1 with torch's static rendezvous.

No goal is enforced: most of the launch is three or more `import torch` (the launcher's and each
rank's) plus DDP's own first-use imports (its constructor imports torch._dynamo, as long again as
`import torch`; the optimizer then finds it done), which the "rest s" column makes visible.
"""

from __future__ import annotations

import argparse
import json
import threading
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cnnsetup.machine.ddp import (  # noqa: E402
    Cluster, free_port, process_env, run_ddp, threads_per_process)

PLAIN = ("import json, time; from reference_net.smoke import run_smoke; "
         "r = run_smoke('cpu', threads={threads}); "
         "print(json.dumps({{'seconds': r.seconds, 'samples_per_s': r.samples_per_s, "
         "'val_accuracy': r.val_accuracy}}))")


def plain_run(threads: int) -> dict:
    """The smoke run in one fresh process, with the launcher's environment."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", PLAIN.format(threads=threads)],
                          capture_output=True, text=True, timeout=300,
                          env=process_env(threads=threads))
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return dict(json.loads(done.stdout), wall_s=wall, ok=True, replicas_identical=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--nodes", type=int, default=0,
                        help="also run this many loopback nodes of one process each (0: none)")
    parser.add_argument("--bench-seconds", type=float, default=None,
                        help="the bandwidth sweep's time budget (default: the backend's)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} cores; smoke training: plain process vs torchrun + DDP over N processes "
          f"(gloo); {args.rounds} rounds, measured alternately")
    subjects = {"plain 1 process": lambda: plain_run(threads_per_process(1))}
    for n in args.nprocs:
        subjects[f"ddp N={n}"] = lambda n=n: run_ddp(
            n, timeout_s=300, bench_seconds=args.bench_seconds).to_dict()
    if args.nodes > 1:
        subjects[f"{args.nodes} nodes x 1"] = lambda: loopback_nodes(args.nodes,
                                                                     args.bench_seconds)
    figures: dict[str, list[dict]] = {name: [] for name in subjects}
    for _ in range(args.rounds):
        for name, run in subjects.items():
            result = run()
            if not result["ok"]:
                raise SystemExit(f"{name} failed: {result['error']}\n{result['stderr_tail']}")
            figures[name].append(result)

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in figures[name])

    baseline = median("plain 1 process", "wall_s")
    for runs in figures.values():
        for r in runs:  # what the launch spent outside training and the sweep
            r["start_s"] = r["wall_s"] - r["seconds"] - (r.get("bench_seconds") or 0.0)
            r["sweep_s"] = r.get("bench_seconds") or 0.0
    print(f"{'':18}{'wall s':>8}{'x plain':>9}{'train s':>9}{'sweep s':>9}{'rest s':>8}"
          f"{'samples/s':>11}{'accuracy':>10}{'identical':>11}")
    for name in subjects:
        identical = {r["replicas_identical"] for r in figures[name]}
        print(f"{name:18}{median(name, 'wall_s'):8.2f}{median(name, 'wall_s') / baseline:9.2f}"
              f"{median(name, 'seconds'):9.2f}{median(name, 'sweep_s'):9.2f}"
              f"{median(name, 'start_s'):8.2f}{median(name, 'samples_per_s'):11.0f}"
              f"{min(r['val_accuracy'] for r in figures[name]):10.3f}"
              f"{'-' if identical == {None} else str(all(identical)):>11}")
    print("(medians; accuracy is the lowest over the rounds. rest s: the wall time outside "
          "training and the sweep: interpreter starts, `import torch` in the launcher and in "
          "each rank, torch._dynamo imported by DistributedDataParallel's constructor, the "
          "rendezvous, the exit)")
    print("\nall-reduce after training, last round (gloo; GB/s = 1e9 bytes/s):")
    for name in subjects:
        last = figures[name][-1]
        if not last.get("bandwidth"):
            continue
        capped = " (cut by the time budget)" if last.get("bench_capped") else ""
        print(f"  {name}: latency {last['latency_us']:.0f} us{capped}")
        print(f"    {'size':>8}{'algbw GB/s':>12}{'busbw GB/s':>12}")
        for row in last["bandwidth"]:
            print(f"    {row['bytes'] >> 20:>4} MiB{row['algbw_gbps']:12.3f}"
                  f"{row['busbw_gbps']:12.3f}")


def loopback_nodes(nodes: int, bench_seconds) -> dict:
    """`nodes` launches of one process each on this machine, meeting at 127.0.0.1; node 0's
    result, with the slowest launch's wall time."""
    port = free_port()
    results: list = [None] * nodes

    def node(rank: int) -> None:
        cluster = Cluster(nnodes=nodes, node_rank=rank, master_addr="127.0.0.1",
                          master_port=port, rdzv_timeout=120)
        results[rank] = run_ddp(1, cluster=cluster, timeout_s=300,
                                bench_seconds=bench_seconds).to_dict()

    threads = [threading.Thread(target=node, args=(r,)) for r in range(nodes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [r for r in results if not r["ok"]]
    first = dict(failed[0] if failed else results[0])
    first["wall_s"] = max(r["wall_s"] for r in results)
    return first


if __name__ == "__main__":
    main()
