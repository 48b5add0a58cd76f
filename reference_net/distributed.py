"""Data-parallel training: the smoke run over N processes, then proof that every replica agrees.

Each process (a rank) builds the same network from the seed, wraps it in DistributedDataParallel
and trains on its own equal share of the training images; DDP averages the gradients across ranks
after every backward pass, so every replica takes the same optimiser steps and must end with
bit-identical weights. The check gathers every replica's weights and compares them exactly; it is
the test a shared multi-GPU server needs (a broken interconnect or NCCL shows up here first).

Started by torch's own launcher, one process per rank, on one machine or on several (nodes); the
first process of every node (LOCAL_RANK 0) writes the result as JSON: the whole job's verdict, the
figures of every rank, and its own node's part:

    python -m torch.distributed.run --standalone --nproc-per-node 2 \\
        -m reference_net.distributed --result ddp.json [--device cpu|cuda] [--epochs E]
    python -m torch.distributed.run --nnodes 2 --node-rank R --master-addr HOST --master-port P \\
        --nproc-per-node 1 -m reference_net.distributed --result ddp.json

After the training every rank takes part in a collective benchmark (`allreduce_bench`): the
all-reduce of float32 tensors of 1 MiB, 2 MiB, ... 256 MiB, within a time budget, and the latency
of a one-element all-reduce. Bandwidth is reported as nccl-tests defines it
(https://github.com/NVIDIA/nccl-tests/blob/master/doc/PERFORMANCE.md): algorithm bandwidth
algbw = bytes / time, bus bandwidth busbw = algbw * 2 (n - 1) / n for all-reduce over n ranks
(the traffic each link carries in a ring, so figures compare across job sizes), GB = 1e9 bytes.

Backend gloo on the CPU, nccl on CUDA with one GPU per rank (the rank's LOCAL_RANK). The exit
status is 0 when the check passed; rank 0 exits 1 when it wrote a failing result. A rank that
fails unexpectedly also writes its exception to RESULT.rank<N>.error, so the launcher can name
the first failure rather than the ranks that merely lost their peer.

`--inject-divergence`, `--inject-hang` and `--inject-crash` exist to test the checker itself:
the last rank nudges one of its weights after training (the check must then report replicas that
differ; needs 2 or more ranks), stops before training (a hang the launcher must time out), or
raises before training (a failure the launcher must name, rather than its peers' lost connection).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record
from torch.nn.parallel import DistributedDataParallel

from reference_net.data import ShapesData
from reference_net.model import build_model
from reference_net.smoke import SMOKE, SmokeConfig, smoke_data
from reference_net.train import train

# error_kind values in the result (the launcher adds its own for failures outside the ranks).
NOT_ENOUGH_GPUS = "not_enough_gpus"
BACKEND_UNAVAILABLE = "backend_unavailable"
DIVERGED = "diverged"
BELOW_TARGET = "below_target"

DIVERGENCE = 1e-3  # what --inject-divergence adds to one weight of the last rank

MIB = 1 << 20
BENCH_SIZES = tuple(MIB << k for k in range(9))  # 1 MiB .. 256 MiB, doubling
# Seconds the bandwidth sweep may take, by backend. gloo on CPU cores that also run the job is
# slow and its figures say little about a network card; the cap keeps `verify` quick there (on a
# busy 2-core machine the sweep then stops around 16 to 64 MiB). nccl on GPUs gets the whole sweep.
BENCH_SECONDS = {"gloo": 2.0, "nccl": 20.0}
BENCH_TARGET_S = 0.25  # time each size aims to spend in timed iterations
BENCH_MAX_ITERS = 20
LATENCY_ITERS = 50  # one-element all-reduces timed for the latency


def default_threads(world_size: int, cores: int | None = None,
                    config: SmokeConfig = SMOKE) -> int:
    """torch CPU threads per rank: the cores shared out between the ranks (at least one each), at
    most the smoke run's own cap; N = 2 on a 2-core machine gets one thread per rank."""
    if cores is None:
        cores = available_cores()
    return max(1, min(cores // max(1, world_size), config.max_threads))


def available_cores() -> int:
    """The cores this process may run on (the affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def shard(data: ShapesData, rank: int, world_size: int) -> ShapesData:
    """This rank's share of the training split: every `world_size`-th image starting at `rank`,
    the remainder dropped so that every rank holds as many images (and takes as many steps) as
    the others. The validation split is kept whole: every rank validates on all of it."""
    per_rank = len(data.train_x) // world_size
    take = slice(rank, rank + per_rank * world_size, world_size)
    return ShapesData(data.train_x[take], data.train_y[take], data.val_x, data.val_y, data.classes)


def rank_batch_size(world_size: int, config: SmokeConfig = SMOKE) -> int:
    """Images per rank in each step: the smoke batch divided between the ranks, so the global
    batch and the number of steps stay those of the single-process run."""
    return max(1, config.batch_size // world_size)


def flat_weights(model: torch.nn.Module) -> torch.Tensor:
    """Every parameter and buffer of `model` in one 1-D tensor, in a fixed order."""
    tensors = [t.detach().reshape(-1) for t in (*model.parameters(), *model.buffers())]
    return torch.cat(tensors)


def compare_replicas(replicas: list[torch.Tensor]) -> tuple[bool, float]:
    """(every replica equal to the first, bit for bit; largest absolute difference from it)."""
    first = replicas[0]
    identical = all(torch.equal(r, first) for r in replicas)
    diff = max(((r.double() - first.double()).abs().max().item() for r in replicas), default=0.0)
    return identical, diff


def _env_int(name: str) -> int:
    value = os.environ.get(name)
    if value is None:
        raise SystemExit(f"{name} is not set: start this module with torch's launcher, "
                         "python -m torch.distributed.run ... -m reference_net.distributed")
    return int(value)


def base_result(args: argparse.Namespace, world_size: int, backend: str,
                config: SmokeConfig = SMOKE) -> dict:
    """The result's fields before anything has run: a failure keeps the ones it did not reach."""
    return {
        "ok": False, "world_size": world_size, "backend": backend, "device": args.device,
        "val_accuracy": None, "target": config.target_accuracy, "replicas_identical": None,
        "max_weight_diff": None, "seconds": None, "samples_per_s": None,
        "epochs": config.epochs if args.epochs is None else args.epochs, "seed": args.seed,
        "steps": None, "batch_size": rank_batch_size(world_size, config), "threads": None,
        "error": None, "error_kind": None,
        "nnodes": int(os.environ.get("GROUP_WORLD_SIZE", "1")),
        "node_rank": int(os.environ.get("GROUP_RANK", "0")),
        "local_world_size": int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size))),
        "master": _master(), "ranks": None, "node": None,
        "bandwidth": None, "latency_us": None, "bench_capped": None, "bench_seconds": None,
    }


def _master() -> str | None:
    """The address every rank's process group met at, as torch's launcher told the ranks."""
    addr, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    return f"{addr}:{port}" if addr and port else None


def train_and_check(args: argparse.Namespace, config: SmokeConfig = SMOKE) -> dict:
    """Run this rank's part: set up the process group, train, compare the replicas. Every rank
    returns the same verdict; rank 0's is the one written."""
    rank, world_size, local_rank = (_env_int(n) for n in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    cuda = args.device == "cuda"
    backend = "nccl" if cuda else "gloo"
    result = base_result(args, world_size, backend, config)
    threads = args.threads or default_threads(int(os.environ.get("LOCAL_WORLD_SIZE",
                                                                 world_size)))
    torch.set_num_threads(threads)
    result["threads"] = threads

    # Checks every rank reaches alike, before any rank waits for another.
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    gpus = torch.cuda.device_count() if cuda and torch.cuda.is_available() else 0
    if cuda and gpus < local_world:
        return dict(result, error_kind=NOT_ENOUGH_GPUS,
                    error=f"{local_world} processes on this machine need {local_world} CUDA "
                          f"GPUs (one each); torch sees {gpus}")
    if not dist.is_available() or not getattr(dist, f"is_{backend}_available")():
        return dict(result, error_kind=BACKEND_UNAVAILABLE,
                    error=f"this torch build has no {backend} backend for torch.distributed")

    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=args.collective_timeout))
    try:
        return _train(args, result, rank, world_size, device, threads, config)
    finally:
        dist.destroy_process_group()


def _train(args: argparse.Namespace, result: dict, rank: int, world_size: int,
           device: torch.device, threads: int, config: SmokeConfig) -> dict:
    data = smoke_data(args.seed, config)
    # The same seed gives every rank the same initial weights; DDP also broadcasts rank 0's.
    model = build_model(config.net, seed=args.seed).to(device)
    if args.inject_hang and rank == world_size - 1:
        while True:  # the peers wait for this rank inside DDP's first broadcast
            time.sleep(3600)
    if args.inject_crash and rank == world_size - 1:
        raise RuntimeError(f"failure injected on rank {rank} (self-test of the launcher)")
    replica = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                      else None)
    trained = train(replica, shard(data, rank, world_size), device=device,
                    epochs=result["epochs"], batch_size=result["batch_size"], seed=args.seed,
                    lr=config.lr, threads=threads)
    if args.inject_divergence and rank == world_size - 1:
        with torch.no_grad():
            next(model.parameters()).view(-1)[0] += DIVERGENCE

    weights = flat_weights(model)
    replicas = [torch.empty_like(weights) for _ in range(world_size)]
    dist.all_gather(replicas, weights)  # across every node, through the process group
    every = gather_ranks(rank, world_size, result["node_rank"], trained, device)

    identical, diff = compare_replicas(replicas)
    val_accuracy = min(r["val_accuracy"] for r in every)  # the worst replica decides
    result.update(
        replicas_identical=identical, max_weight_diff=diff, val_accuracy=val_accuracy,
        seconds=max(r["seconds"] for r in every),
        samples_per_s=sum(r["samples_per_s"] for r in every),
        steps=max(r["steps"] for r in every), ranks=every,
        node=node_part(every, result["node_rank"]),
    )
    if not identical:
        result.update(error_kind=DIVERGED, error=(
            f"the {world_size} replicas ended with different weights (largest difference "
            f"{diff:.3g}): the processes did not train in step"))
    elif val_accuracy < config.target_accuracy:
        result.update(error_kind=BELOW_TARGET, error=(
            f"validation accuracy {val_accuracy:.1%} is below the target "
            f"{config.target_accuracy:.0%}"))
    else:
        result["ok"] = True
    budget = BENCH_SECONDS[result["backend"]] if args.bench_seconds is None else args.bench_seconds
    if budget > 0 and identical:  # replicas that differ: the figures would hide the failure
        started = time.monotonic()
        bench = allreduce_bench(device, world_size, budget)
        result.update(bandwidth=bench["bandwidth"], latency_us=bench["latency_us"],
                      bench_capped=bench["capped"],
                      bench_seconds=round(time.monotonic() - started, 3))
    return result


HOST_BYTES = 64  # a host name's share of the gathered tensor (longer names are cut)


def gather_ranks(rank: int, world_size: int, node_rank: int, trained, device: torch.device
                 ) -> list[dict]:
    """Every rank's figures and host, gathered through the process group as tensors (gloo and
    nccl alike; all_gather_object would need NumPy, which torch does not depend on)."""
    figures = torch.tensor([rank, node_rank, int(os.environ.get("LOCAL_RANK", "0")),
                            trained.val_accuracy, trained.seconds, trained.samples_per_s,
                            trained.steps], dtype=torch.float64, device=device)
    every = [torch.empty_like(figures) for _ in range(world_size)]
    dist.all_gather(every, figures)
    host = socket.gethostname().encode("utf-8")[:HOST_BYTES].ljust(HOST_BYTES, b"\0")
    name = torch.tensor(list(host), dtype=torch.uint8, device=device)
    names = [torch.empty_like(name) for _ in range(world_size)]
    dist.all_gather(names, name)
    rows = []
    for row, raw in zip(every, names):
        values = row.cpu().tolist()
        rows.append({"rank": int(values[0]), "node_rank": int(values[1]),
                     "local_rank": int(values[2]),
                     "host": bytes(raw.cpu().tolist()).rstrip(b"\0").decode("utf-8", "replace"),
                     "val_accuracy": values[3], "seconds": values[4], "samples_per_s": values[5],
                     "steps": int(values[6])})
    return rows


def node_part(every: list[dict], node_rank: int) -> dict:
    """One node's share of the job: its ranks and their figures (worst accuracy, slowest time,
    summed throughput)."""
    own = [r for r in every if r["node_rank"] == node_rank]
    return {"node_rank": node_rank, "host": own[0]["host"] if own else None,
            "ranks": [r["rank"] for r in own],
            "val_accuracy": min((r["val_accuracy"] for r in own), default=None),
            "seconds": max((r["seconds"] for r in own), default=None),
            "samples_per_s": sum(r["samples_per_s"] for r in own) if own else None}


def bus_bandwidth(algbw: float, world_size: int) -> float:
    """nccl-tests' bus bandwidth of an all-reduce over `world_size` ranks: algbw * 2(n-1)/n
    (doc/PERFORMANCE.md, "AllReduce"); 0 for one rank, where nothing crosses a link."""
    return algbw * 2 * (world_size - 1) / world_size


def allreduce_bench(device: torch.device, world_size: int, budget_s: float,
                    sizes: tuple[int, ...] = BENCH_SIZES) -> dict:
    """All-reduce (sum) of float32 tensors of each of `sizes` bytes between all ranks, then stop
    once `budget_s` seconds are spent or the next size would overrun them (always at least the
    first size). Every rank must call it; every rank returns the same figures:

        {"bandwidth": [{"bytes", "seconds", "algbw_gbps", "busbw_gbps"}], "latency_us": float,
         "capped": bool (sizes left out for the budget)}

    Time per size: one warm-up, then as many timed iterations as fit BENCH_TARGET_S (1 to
    BENCH_MAX_ITERS, the same on every rank), averaged; the slowest rank's time counts. The
    latency is the mean time of LATENCY_ITERS all-reduces of one float32 element, in us."""
    started = time.monotonic()

    def agreed_max(value: float) -> float:
        figure = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(figure, op=dist.ReduceOp.MAX)
        return figure.item()

    def timed(tensor: torch.Tensor, iterations: int) -> float:
        dist.barrier()
        _sync(device)
        begin = time.perf_counter()
        for _ in range(iterations):
            dist.all_reduce(tensor)
        _sync(device)
        return agreed_max((time.perf_counter() - begin) / iterations)

    small = torch.zeros(1, dtype=torch.float32, device=device)
    timed(small, 5)  # warm-up: the first collectives set up connections
    latency_us = timed(small, LATENCY_ITERS) * 1e6

    rows, capped = [], False
    for index, size in enumerate(sizes):
        tensor = torch.ones(size // 4, dtype=torch.float32, device=device)
        warm = timed(tensor, 1)
        iterations = max(1, min(BENCH_MAX_ITERS, int(BENCH_TARGET_S / max(warm, 1e-9))))
        seconds = timed(tensor, iterations)
        algbw = size / seconds / 1e9
        rows.append({"bytes": size, "seconds": seconds, "algbw_gbps": algbw,
                     "busbw_gbps": bus_bandwidth(algbw, world_size)})
        del tensor
        spent = agreed_max(time.monotonic() - started)
        # The next size moves twice the bytes: about twice the time per iteration.
        if index + 1 < len(sizes) and spent + 2 * seconds * (1 + iterations) > budget_s:
            capped = True
            break
    return {"bandwidth": rows, "latency_us": latency_us, "capped": capped}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def write_json(path: str | os.PathLike[str], data: dict) -> None:
    """Write `data` to `path` whole or not at all (a reader never sees half a file)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(partial, path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m torch.distributed.run --standalone --nproc-per-node N "
             "-m reference_net.distributed",
        description="Train the reference network with DistributedDataParallel and check that "
                    "every replica ends with the same weights.")
    parser.add_argument("--result", required=True, help="JSON file rank 0 writes")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--epochs", type=int, default=None, help="default: the smoke run's")
    parser.add_argument("--seed", type=int, default=SMOKE.seed)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads per rank (default: cores // ranks, at least 1)")
    parser.add_argument("--collective-timeout", type=float, default=300,
                        help="seconds a rank waits for its peers before giving up")
    parser.add_argument("--bench-seconds", type=float, default=None,
                        help="time budget of the all-reduce bandwidth sweep after training, 0 to "
                             "skip it (default: 2 s for gloo, 20 s for nccl)")
    parser.add_argument("--inject-divergence", action="store_true",
                        help="self-test of the checker: the last rank changes one weight after "
                             "training (needs 2 or more ranks)")
    parser.add_argument("--inject-hang", action="store_true",
                        help="self-test of the launcher: the last rank stops before training")
    parser.add_argument("--inject-crash", action="store_true",
                        help="self-test of the launcher: the last rank raises before training")
    return parser.parse_args(argv)


@record
def main(argv: list[str] | None = None) -> int:
    """One rank's whole run; 0 when the check passed (or when this rank is not the first on
    its node). The first process of each node writes the result for its node."""
    args = parse_args(argv)
    rank = os.environ.get("RANK", "0")
    try:
        result = train_and_check(args)
    except Exception as exc:
        # The launcher reads these to name the first failure, not its consequences on the peers.
        Path(f"{args.result}.rank{rank}.error").write_text(
            f"{type(exc).__name__}: {exc}".strip(), encoding="utf-8")
        raise
    if os.environ.get("LOCAL_RANK", "0") == "0":
        write_json(args.result, result)
        return 0 if result["ok"] else 1
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: the result is written, and gloo's worker threads can still hold
    # tensors that then need the GIL of an interpreter being torn down, which aborts the process
    # (SIGABRT) now and then, after a check that passed (pytorch/pytorch#179291).
    os._exit(status)
