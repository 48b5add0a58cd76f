"""Several nodes without training: Slurm's host lists and variables, the options that describe a
job, torchrun's rendezvous arguments, and the failures named before or after the launch (from
torch's own messages, captured from real runs of torch 2.13's launcher on loopback)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from cnnsetup.machine import ddp, slurm
from cnnsetup.machine.ddp import Cluster, ClusterUsageError, resolve_cluster
from tests.conftest import write_program


# --- Slurm -----------------------------------------------------------------------------------

@pytest.mark.parametrize("nodelist, hosts", [
    ("node[01-03,07]", ["node01", "node02", "node03", "node07"]),
    ("a[1-2],b3", ["a1", "a2", "b3"]),
    ("node[08-10]", ["node08", "node09", "node10"]),  # the low end's padding, kept
    ("node[8-10]", ["node8", "node9", "node10"]),
    ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
    ("gpu-a100-[001-002],cpu7", ["gpu-a100-001", "gpu-a100-002", "cpu7"]),
    ("localhost", ["localhost"]),
])
def test_slurm_host_lists_expand_as_slurm_does(nodelist, hosts):
    assert slurm.expand_hostlist(nodelist) == hosts


@pytest.mark.parametrize("nodelist", ["node[1-", "node1]", "node[3-1]", "node[a]", "", "x[]"])
def test_a_malformed_host_list_is_an_error_not_a_guess(nodelist):
    with pytest.raises(slurm.SlurmError):
        slurm.expand_hostlist(nodelist)


def slurm_env(node_id: int = 1, **more: str) -> dict:
    env = {"SLURM_JOB_ID": "4711", "SLURM_NNODES": "3", "SLURM_NODEID": str(node_id),
           "SLURM_JOB_NODELIST": "node[07-09]", "SLURM_NTASKS_PER_NODE": "1",
           "PATH": "/nonexistent"}
    env.update(more)
    return env


def test_a_slurm_job_gives_every_node_the_same_master_and_port_and_its_own_rank():
    jobs = [slurm.job_from_env(slurm_env(n)) for n in range(3)]
    assert {(j.master_host, j.master_port) for j in jobs} == {("node07", 20000 + 4711)}
    assert [j.node_id for j in jobs] == [0, 1, 2]
    assert jobs[1].values["SLURM_JOB_NODELIST"] == "node[07-09]"
    assert slurm.job_from_env({"SLURM_JOB_ID": "1"}) is None  # not a whole job step: no Slurm


def test_scontrol_is_asked_when_it_is_on_path_and_its_answer_wins(bin_dir, tmp_path):
    calls = tmp_path / "calls"
    write_program(bin_dir / "scontrol", f"""
        import sys
        open({str(calls)!r}, "a").write(" ".join(sys.argv[1:]) + "\\n")
        print("n-a\\nn-b\\nn-c")
    """)
    job = slurm.job_from_env(slurm_env(PATH=str(bin_dir)))
    assert calls.read_text() == "show hostnames node[07-09]\n"
    assert job.hosts == ["n-a", "n-b", "n-c"] and job.master_host == "n-a"


def test_a_failing_scontrol_leaves_the_expansion_to_cnnsetup(bin_dir):
    write_program(bin_dir / "scontrol", "import sys; sys.exit('slurm_load_jobs error')\n")
    assert slurm.job_from_env(slurm_env(PATH=str(bin_dir))).hosts == ["node07", "node08",
                                                                      "node09"]


def test_slurm_values_that_disagree_are_refused():
    with pytest.raises(slurm.SlurmError):
        slurm.job_from_env(slurm_env(SLURM_NNODES="2"))  # three hosts in the list
    with pytest.raises(slurm.SlurmError):
        slurm.job_from_env(slurm_env(node_id=3))


# --- the options that describe a job ---------------------------------------------------------

def test_without_options_the_cluster_comes_from_slurm():
    cluster = resolve_cluster(ddp=1, env=slurm_env(2))
    assert (cluster.nnodes, cluster.node_rank, cluster.master) == (3, 2, "node07:24711")
    assert cluster.rendezvous == "static" and cluster.slurm["SLURM_NODEID"] == "2"
    # An option given wins over Slurm's value; the master stays the first host.
    assert resolve_cluster(ddp=1, master_port=31000, env=slurm_env(2)).master == "node07:31000"


def test_outside_slurm_one_machine_is_standalone():
    cluster = resolve_cluster(ddp=2, env={})
    assert cluster.rendezvous == "standalone" and cluster.master is None
    assert cluster.slurm is None and resolve_cluster(ddp=None, env={}) is None


@pytest.mark.parametrize("given, key", [
    ({"ddp": None, "nnodes": 2}, "needs_ddp"),
    ({"ddp": 1, "nnodes": 2}, "needs_master"),
    ({"ddp": 1, "nnodes": 2, "master_addr": "h"}, "needs_node_rank"),
    ({"ddp": 1, "nnodes": 2, "master_addr": "h", "node_rank": 2}, "node_rank_range"),
    ({"ddp": 1, "nnodes": 2, "master_addr": "h", "rdzv_endpoint": "h:1"}, "both_rendezvous"),
    ({"ddp": 1, "nnodes": 2, "rdzv_endpoint": "h"}, "bad_endpoint"),
    ({"ddp": 1, "nnodes": 2, "rdzv_endpoint": "h:99999"}, "bad_endpoint"),
])
def test_options_that_can_never_work_are_named(given, key):
    with pytest.raises(ClusterUsageError) as caught:
        resolve_cluster(env={}, **given)
    assert caught.value.key == key


def test_several_slurm_tasks_on_one_node_are_refused():
    with pytest.raises(ClusterUsageError) as caught:
        resolve_cluster(ddp=1, env=slurm_env(SLURM_NTASKS_PER_NODE="4(x3)", SLURM_LOCALID="1"))
    assert caught.value.key == "slurm_tasks"


def test_the_cli_refuses_them_with_a_usage_error(invoke):
    done = invoke("verify", "--nnodes", "2")
    assert done.exit_code == 2 and "--nnodes needs --ddp N" in done.output
    done = invoke("verify", "--ddp", "1", "--nnodes", "2", "--master-addr", "10.0.0.1")
    assert done.exit_code == 2 and "--node-rank" in done.output


def test_static_and_c10d_rendezvous_use_torchruns_own_options(tmp_path):
    static = Cluster(nnodes=2, node_rank=1, master_addr="10.1.2.3", master_port=29400,
                     rdzv_timeout=30)
    argv = ddp.command(4, tmp_path / "r.json", cluster=static)
    assert "--standalone" not in argv
    joined = " ".join(argv)
    assert ("--nnodes 2 --node-rank 1 --master-addr 10.1.2.3 --master-port 29400 "
            "--rdzv-conf timeout=30 --nproc-per-node 4") in joined
    c10d = Cluster(nnodes=3, rdzv_endpoint="head:29400", rdzv_timeout=9)
    joined = " ".join(ddp.command(1, tmp_path / "r.json", cluster=c10d))
    assert ("--nnodes 3 --rdzv-backend c10d --rdzv-endpoint head:29400 --rdzv-id cnnsetup-verify "
            "--rdzv-conf join_timeout=9,read_timeout=9") in joined


def test_host_and_port_are_split_with_ipv6_in_brackets():
    assert ddp.split_host_port("[::1]:29500") == ("::1", 29500)
    assert ddp.split_host_port("node07:1") == ("node07", 1)
    assert ddp.join_host_port("::1", 29500) == "[::1]:29500"
    with pytest.raises(ValueError):
        ddp.split_host_port("h:0")


# --- failures named before anything starts ---------------------------------------------------

def test_a_port_in_use_on_the_master_is_named_before_anything_starts():
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cluster = Cluster(nnodes=2, node_rank=0, master_addr="127.0.0.1", master_port=port)
        out = ddp.run_ddp(1, cluster=cluster, timeout_s=30)
    assert not out.ok and out.error_kind == ddp.PORT_IN_USE, out.error
    assert f"port {port} is already in use" in out.error and out.command == []
    assert "--master-port" in out.fix and f"--master-port {port}" not in out.fix
    assert out.master == f"127.0.0.1:{port}" and out.node_rank == 0 and out.world_size == 2


def test_the_etc_hosts_trap_is_named_for_the_master_address_and_for_gloos_host_name(
        monkeypatch):
    monkeypatch.delenv("GLOO_SOCKET_IFNAME", raising=False)
    table = {"head": ["127.0.1.1"], "vm": ["127.0.1.1"], "good": ["10.0.0.5"]}
    resolve = lambda host: table.get(host, [])  # noqa: E731
    far = Cluster(nnodes=2, node_rank=1, master_addr="head", master_port=29500)
    assert "master address head resolves to 127.0.1.1" in ddp.address_trap(
        far, "gloo", hostname="good", resolve=resolve)
    good = Cluster(nnodes=2, node_rank=1, master_addr="good", master_port=29500)
    assert "host name vm resolves to 127.0.1.1" in ddp.address_trap(
        good, "gloo", hostname="vm", resolve=resolve)
    assert ddp.address_trap(good, "nccl", hostname="vm", resolve=resolve) is None
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "eth0")
    assert ddp.address_trap(good, "gloo", hostname="vm", resolve=resolve) is None
    # Every node on this machine: a loopback master is what the user meant.
    here = Cluster(nnodes=2, node_rank=1, master_addr="127.0.0.1", master_port=29500)
    assert ddp.address_trap(here, "gloo", hostname="vm", resolve=resolve) is None


def test_the_fix_for_the_trap_names_an_interface_or_an_address():
    out = ddp.DdpResult(ok=False, world_size=2, backend="gloo", device="cpu", local_world_size=1,
                        error_kind=ddp.ADDRESS_LOOPBACK,
                        error="this machine's host name vm resolves to 127.0.1.1: ...")
    fix = ddp.failure_fix(out, Cluster(nnodes=2, node_rank=1, master_addr="good"))
    assert fix.startswith("GLOO_SOCKET_IFNAME=") and "cnnsetup verify --ddp 1" in fix


# --- failures named from torch's messages ----------------------------------------------------

MASTER_ALONE = ("torch.distributed.DistStoreError: Timed out after 7 seconds waiting for "
                "clients. 1/2 clients joined.")
NO_MASTER = ("torch.distributed.DistNetworkError: The client socket has timed out after 6000ms "
             "while trying to connect to (127.0.0.1, {port}).")
PORT_TAKEN = ("torch.distributed.DistNetworkError: The server socket has failed to listen on any "
              "local network address. port: 29623, useIpv6: false, code: -98, name: EADDRINUSE, "
              "message: address already in use")


def test_the_master_alone_says_which_nodes_arrived():
    cluster = Cluster(nnodes=2, node_rank=0, master_addr="127.0.0.1", master_port=1234,
                      rdzv_timeout=6)
    kind, text, arrived, _ = ddp.between_nodes_failure(MASTER_ALONE, cluster)
    assert kind == ddp.NODE_MISSING and arrived == 1
    assert "only this node (node rank 0) arrived; missing: node rank 1" in text
    kind, text, arrived, _ = ddp.between_nodes_failure(
        MASTER_ALONE.replace("1/2", "3/4"), Cluster(nnodes=4, node_rank=0, master_addr="h"))
    assert arrived == 3 and "3 of 4 nodes arrived" in text


def test_a_node_without_its_master_probes_the_port_to_say_refused(tmp_path):
    port = ddp.free_port()  # nothing listens there
    cluster = Cluster(nnodes=2, node_rank=1, master_addr="127.0.0.1", master_port=port,
                      rdzv_timeout=6)
    kind, text, arrived, probe = ddp.between_nodes_failure(NO_MASTER.format(port=port), cluster)
    assert (kind, arrived, probe) == (ddp.MASTER_UNREACHABLE, 0, "refused")
    assert f"node rank 1 could not connect to the master at 127.0.0.1:{port}" in text
    assert "refused" in text


def test_a_port_taken_between_the_check_and_the_launch_is_named_too():
    kind, *_ = ddp.between_nodes_failure(PORT_TAKEN, Cluster(nnodes=2, node_rank=0,
                                                             master_addr="h"))
    assert kind == ddp.PORT_IN_USE
    assert ddp.between_nodes_failure("RuntimeError: boom", Cluster(nnodes=2)) is None


def test_a_c10d_rendezvous_timeout_is_a_missing_node():
    kind, text, *_ = ddp.between_nodes_failure(
        "torch.distributed.elastic.rendezvous.api.RendezvousTimeoutError",
        Cluster(nnodes=3, rdzv_endpoint="head:29400", rdzv_timeout=5))
    assert kind == ddp.NODE_MISSING and "did not gather 3 nodes within 5 s" in text


# --- the report ------------------------------------------------------------------------------

def test_the_report_object_has_the_documented_shape():
    out = ddp.DdpResult(ok=True, world_size=4, backend="gloo", device="cpu",
                        replicas_identical=True, nnodes=2, node_rank=1, local_world_size=2,
                        master="10.0.0.1:29500", rendezvous="static",
                        bandwidth=[{"bytes": 1 << 20, "seconds": 0.01, "algbw_gbps": 0.104858,
                                    "busbw_gbps": 0.157286}],
                        latency_us=123.456, slurm={"SLURM_JOB_ID": "1"})
    report = json.loads(json.dumps(ddp.ddp_json(out)))
    for key in ("ok", "identical_weights", "nnodes", "node_rank", "world_size", "master",
                "backend", "bandwidth", "latency_us", "slurm"):
        assert key in report
    assert report["bandwidth"][0] == {"bytes": 1 << 20, "algbw_gbps": 0.1049,
                                      "busbw_gbps": 0.1573, "seconds": 0.01}
    assert report["latency_us"] == 123.5 and report["identical_weights"] is True
    assert ddp.ddp_json(None) is None
    text = ddp.render_ddp(out)
    assert "1 MiB" in text and "0.157" in text and "SLURM_JOB_ID=1" in text


def test_a_wait_bounded_by_the_rendezvous_timeout_is_added_to_the_time_limit(monkeypatch):
    seen = {}

    def fake_tree(argv, *, timeout, **kwargs):
        from cnnsetup.run import RunResult

        seen["timeout"] = timeout
        return RunResult(list(argv), 1, "", MASTER_ALONE)

    monkeypatch.setattr(ddp, "run_process_tree", fake_tree)
    cluster = Cluster(nnodes=2, node_rank=0, master_addr="127.0.0.1",
                      master_port=ddp.free_port(), rdzv_timeout=10)
    started = time.monotonic()
    out = ddp.run_ddp(1, cluster=cluster, timeout_s=100)
    assert seen["timeout"] == 120 and time.monotonic() - started < 30
    assert out.error_kind == ddp.NODE_MISSING and out.arrived == 1
    assert out.fix.startswith("cnnsetup verify --ddp 1 --nnodes 2 --node-rank 1 "
                              "--master-addr 127.0.0.1")


def test_under_slurm_an_explicit_master_still_takes_the_node_count_and_rank_from_slurm():
    cluster = resolve_cluster(ddp=2, master_addr="10.0.0.9", env=slurm_env(2))
    assert (cluster.nnodes, cluster.node_rank, cluster.master) == (3, 2, "10.0.0.9:29500")
    c10d = resolve_cluster(ddp=2, rdzv_endpoint="head:29400", env=slurm_env(2))
    assert (c10d.nnodes, c10d.node_rank, c10d.rendezvous) == (3, None, "c10d")
    assert c10d.rdzv_id == "slurm-4711" and c10d.slurm["SLURM_NNODES"] == "3"
    # Unreadable Slurm values do not matter when the options say everything.
    broken = slurm_env(2, SLURM_NNODES="many")
    with pytest.raises(ClusterUsageError):
        resolve_cluster(ddp=1, env=broken)
    assert resolve_cluster(ddp=1, nnodes=2, node_rank=0, master_addr="h", env=broken).slurm is None
