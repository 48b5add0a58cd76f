"""Two nodes on one machine: a real `cnnsetup verify` under Slurm's variables and a launch with
every setting given, that meet on loopback through torch's launcher, gloo on the CPU; then a node
that never comes.

A loopback master is how several nodes share one machine; the ports are picked free at test
time. nccl cannot run here (no GPU): its paths are covered by the launcher's arguments only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

pytest.importorskip("torch", reason="needs torch: install the CPU build (see README.md)")

from cnnsetup.i18n import using_language
from cnnsetup.machine import ddp
from cnnsetup.machine.ddp import Cluster, run_ddp
from reference_net.smoke import SMOKE
from tests.conftest import REPO_ROOT
from tests.machine_helpers import run_rank_in_process

pytestmark = pytest.mark.slow

LIMIT_S = 600  # generous: the machine running the tests may be busy


def in_parallel(*calls):
    """Run the calls at once (each a node), return their results in order."""
    results = [None] * len(calls)

    def one(index, call):
        results[index] = call()

    threads = [threading.Thread(target=one, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# A Slurm job of two nodes on this machine: node 0 is localhost, node 1 is 127.0.0.1.
SLURM_JOB = {"SLURM_JOB_ID": "77", "SLURM_NNODES": "2", "SLURM_JOB_NODELIST": "localhost,127.0.0.1",
             "SLURM_NTASKS_PER_NODE": "1"}


def test_two_nodes_of_a_slurm_job_on_loopback_train_in_step_and_measure_the_link():
    # Node rank 1 is `cnnsetup verify` as a user runs it under Slurm: the node count, its rank
    # and the master come from Slurm's variables (the port only because the test picks a free
    # one). The master is the same launch through the library with every setting given, its
    # table as verify prints it: one node, not two, spends the time of the single-device proof
    # before the job meets.
    port = ddp.free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), SLURM_NODEID="1", **SLURM_JOB)
    env.pop("LANGUAGE", None)
    other = subprocess.Popen(
        [sys.executable, "-m", "cnnsetup", "verify", "--device", "cpu", "--ddp", "1",
         "--master-port", str(port), "--rdzv-timeout", "240", "--timeout", "600", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", env=env)
    master = Cluster(nnodes=2, node_rank=0, master_addr="localhost", master_port=port,
                     rdzv_timeout=240)
    out = run_ddp(1, cluster=master, timeout_s=LIMIT_S)  # while the other node runs
    report_text, other_err = other.communicate(timeout=LIMIT_S)
    assert out.ok, (out.error, out.stderr_tail)
    assert other.returncode == 0, report_text + other_err
    report = json.loads(report_text)
    job = report["ddp"]
    assert report["ok"] is True and job["ok"] is True
    assert (job["nnodes"], job["node_rank"], job["world_size"]) == (2, 1, 2)
    assert job["identical_weights"] is True and job["master"] == f"localhost:{port}"
    assert job["backend"] == "gloo" and job["rendezvous"] == "static"
    assert job["slurm"]["SLURM_NODEID"] == "1"
    assert job["slurm"]["SLURM_JOB_NODELIST"] == "localhost,127.0.0.1"
    # The whole job, and this node's own part of it.
    assert sorted(r["node_rank"] for r in job["ranks"]) == [0, 1]
    assert job["node"]["node_rank"] == 1 and job["node"]["ranks"] == [1]
    assert job["val_accuracy"] >= SMOKE.target_accuracy
    rows = job["bandwidth"]
    assert rows and rows[0]["bytes"] == 1 << 20
    assert all(r["busbw_gbps"] == pytest.approx(r["algbw_gbps"], rel=1e-3) for r in rows)  # n=2
    assert job["latency_us"] > 0
    ddp_run = next(r for r in report["training"] if r["device"].startswith("ddp:"))
    assert ddp_run["ok"] is True
    # Both nodes measured the same sweep together; the master's table shows the job, its own
    # node and the bandwidth.
    assert (out.nnodes, out.node_rank, out.world_size, out.slurm) == (2, 0, 2, None)
    assert out.master == f"localhost:{port}" and out.node["ranks"] == [0]
    assert out.replicas_identical is True and out.val_accuracy == job["val_accuracy"]
    assert [r["bytes"] for r in out.bandwidth] == [r["bytes"] for r in rows]
    with using_language("en"):
        text = ddp.render_ddp(out)
    assert "2 node(s), 2 process(es) in all" in text and f"localhost:{port}" in text
    assert "node rank 0" in text and "busbw GB/s" in text and "1 MiB" in text
    assert "identical weights" in text


def test_a_node_that_never_comes_is_named_on_the_one_that_waited():
    alone, orphan = ddp.free_port(), ddp.free_port()
    master = Cluster(nnodes=2, node_rank=0, master_addr="127.0.0.1", master_port=alone,
                     rdzv_timeout=3)
    worker = Cluster(nnodes=2, node_rank=1, master_addr="127.0.0.1", master_port=orphan,
                     rdzv_timeout=3)
    c10d = Cluster(nnodes=2, rdzv_endpoint=f"127.0.0.1:{ddp.free_port()}", rdzv_timeout=3)
    waited, stranded, joined_alone = in_parallel(
        lambda: run_ddp(1, cluster=master, timeout_s=60),
        lambda: run_ddp(1, cluster=worker, timeout_s=60),
        lambda: run_ddp(1, cluster=c10d, timeout_s=60))
    assert not waited.ok and not waited.timed_out, waited.stderr_tail
    assert waited.error_kind == ddp.NODE_MISSING and waited.arrived == 1, waited.error
    assert "missing: node rank 1" in waited.error
    assert waited.fix.startswith("cnnsetup verify --ddp 1 --nnodes 2 --node-rank 1")
    assert not stranded.ok and not stranded.timed_out, stranded.stderr_tail
    assert stranded.error_kind == ddp.MASTER_UNREACHABLE and stranded.probe == "refused"
    assert f"127.0.0.1:{orphan}" in stranded.error and stranded.fix.startswith("nc -vz")
    # torch's c10d rendezvous: the same wait, bounded by join_timeout.
    assert not joined_alone.ok and not joined_alone.timed_out, joined_alone.stderr_tail
    assert joined_alone.error_kind == ddp.NODE_MISSING, joined_alone.error
    assert "did not gather 2 nodes within 3 s" in joined_alone.error


def test_bus_bandwidth_is_nccl_tests_all_reduce_factor():
    from reference_net.distributed import bus_bandwidth

    assert bus_bandwidth(10.0, 2) == 10.0
    assert bus_bandwidth(10.0, 4) == 15.0
    assert bus_bandwidth(10.0, 8) == 17.5
    assert bus_bandwidth(10.0, 1) == 0.0


def test_a_torch_without_nccl_is_a_named_failure_with_a_fix(monkeypatch, tmp_path):
    """Simulated (no GPU here): torch sees one CUDA device, and its build has no nccl."""
    import torch

    from cnnsetup.machine.ddp import interpret
    from cnnsetup.run import RunResult
    from reference_net import distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(distributed.dist, "is_nccl_available", lambda: False)
    env = {name: "1" if "SIZE" in name else "0"
           for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    written = run_rank_in_process(monkeypatch, tmp_path, env, "--device", "cuda")
    assert written["error_kind"] == ddp.BACKEND_UNAVAILABLE and "nccl" in written["error"]
    out = interpret(RunResult(["torchrun"], 1, "", ""), written, [], world_size=1,
                    backend="nccl", device="cuda")
    assert ddp.failure_fix(out, Cluster()) == "cnnsetup torch-command"
    assert "nccl needs the CUDA build" in ddp.render_ddp(out)
