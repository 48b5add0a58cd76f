"""`cnnsetup verify`: the CPU path for real, GPU and MPS paths by simulation (no such device here),
torch missing, a training run over its time limit, the JSON report and the exit codes."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: install the CPU build (see README.md)")

import json

import pytest

from cnnsetup.machine import verify as verify_module
from cnnsetup.machine.proof import OPS
from cnnsetup.machine.torch_probe import WorkerSession
from cnnsetup.machine.verify import VerifyOptions, plan_devices
from cnnsetup.report_schema import OPTIONAL_KEYS, SCHEMA_VERSION, TOP_LEVEL_KEYS
from cnnsetup.render import ProgressLine
from tests.conftest import REPO_ROOT, run_cnnsetup
from reference_net.smoke import SMOKE
from tests.machine_helpers import make_facts, write_fake_torch


SINGLE_PROCESS_STEPS = -(-SMOKE.n_train // SMOKE.batch_size) * SMOKE.epochs


def by_id(report: dict) -> dict:
    return {c["id"]: c for c in report["checks"]}


def test_a_device_asked_for_by_name_but_absent_fails_with_a_fix(tmp_path):
    report_file = tmp_path / "r.json"
    done = run_cnnsetup("verify", "--device", "cuda", "--json", "--report", str(report_file))
    assert done.returncode == 1
    report = json.loads(done.stdout)
    # The report file is the report on a failure too; stdout adds the command's error object.
    assert report.pop("error")["code"] == "command.failed"
    assert json.loads(report_file.read_text(encoding="utf-8")) == report
    checks = by_id(report)
    assert checks["verify.train.cuda:0"]["status"] == "fail"
    assert "CUDA" in checks["verify.train.cuda:0"]["summary"]
    # No NVIDIA card here: the fix is to prove the device there is, not to run the same again.
    assert checks["verify.train.cuda:0"]["fix"] == "cnnsetup verify --device cpu"


def test_a_training_run_still_progressing_at_its_limit_is_too_slow_not_hung():
    done = run_cnnsetup("verify", "--device", "cpu", "--epochs", "5000", "--timeout", "12",
                        "--json", timeout=300)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    checks = by_id(report)
    train = checks["verify.train.cpu"]
    assert train["status"] == "fail"
    assert "reached epoch" in train["summary"] and "of 5000" in train["summary"], train
    assert "busy or slow" in train["summary"] and "hung" not in train["summary"]
    assert train["fix"] == "cnnsetup verify --timeout 300"
    assert checks["verify.conv2d.cpu"]["status"] == "pass"
    assert report["training"][0]["ok"] is False
    assert "@cnnsetup-progress" not in done.stderr  # no progress bar under --json


def test_torch_missing_still_checks_the_machine_and_fails_with_the_install_command(tmp_path):
    fake = write_fake_torch(tmp_path / "fake",
                            body="raise ModuleNotFoundError(\"No module named 'torch'\")\n")
    done = run_cnnsetup("verify", "--json", env={"PYTHONPATH": f"{fake}:{REPO_ROOT}"})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    checks = by_id(report)
    torch_check = next(c for c in report["checks"] if c["id"].startswith("torch.")
                       and c["status"] == "fail")
    assert "pip install" in torch_check["fix"]
    assert checks["verify.train.cpu"]["status"] == "skip"
    assert checks["ram.ok"]["status"] in ("pass", "warn")
    assert report["training"] == []


def test_a_hung_task_is_stopped_and_the_tasks_after_it_run_in_a_new_worker():
    tasks = [({"task": "sleep", "id": "a", "args": {"seconds": 0}}, 30.0),
             ({"task": "sleep", "id": "b", "args": {"seconds": 60}}, 1.0),
             ({"task": "sleep", "id": "c", "args": {"seconds": 0}}, 30.0)]
    first = WorkerSession([t for t, _ in tasks], timeouts=[s for _, s in tasks],
                          env={"PYTHONPATH": str(REPO_ROOT)}).wait()
    replies = verify_module._all_replies(first, tasks, VerifyOptions(),
                                         {"PYTHONPATH": str(REPO_ROOT)}, None)
    assert replies["a"]["ok"] and replies["c"]["ok"]
    assert replies["b"]["ok"] is False and replies["b"]["timed_out"] is True


@pytest.mark.parametrize(
    "choice, gpus, platform, machine, expected",
    [
        ("auto", 0, "linux", "x86_64", ["cpu"]),
        ("auto", 2, "linux", "x86_64", ["cpu", "cuda:0", "cuda:1"]),
        ("auto", 0, "darwin", "arm64", ["cpu", "mps"]),
        ("auto", 0, "darwin", "x86_64", ["cpu"]),
        ("cpu", 4, "linux", "x86_64", ["cpu"]),
        ("cuda", 0, "win32", "AMD64", ["cuda:0"]),
        ("cuda", 2, "win32", "AMD64", ["cuda:0", "cuda:1"]),
        ("mps", 0, "darwin", "arm64", ["mps"]),
        ("all", 1, "darwin", "x86_64", ["cpu", "cuda:0", "mps"]),
    ],
)
def test_devices_planned_for_each_choice(choice, gpus, platform, machine, expected):
    assert plan_devices(choice, gpus, platform=platform, machine=machine) == expected


GPU_TRAIN = {
    "device": "cuda:0", "device_name": "NVIDIA GeForce RTX 4090", "skipped": False,
    "val_accuracy": 0.998, "target": 0.99, "epochs": 4, "seconds": 0.3, "data_seconds": 0.01,
    "samples_per_s": 60000.0, "ok": True,
    "checkpoint": {"ok": True, "bytes": 42000, "max_abs_diff": 0.0},
    "cpu_agreement": {"ok": True, "same_initial_weights": True, "max_abs_diff": 2e-6,
                      "tolerance": 1e-3},
}


def test_a_gpu_run_gives_training_checkpoint_and_cpu_agreement_checks():
    reply = {"ok": True, "result": GPU_TRAIN}
    checks = verify_module._train_checks("cuda:0", reply, False, True, "fix")
    run = verify_module._training_run("cuda:0", reply, make_facts())
    assert [(c.id, c.status) for c in checks] == [
        ("verify.train.cuda:0", "pass"), ("verify.checkpoint.cuda:0", "pass"),
        ("verify.gpu_cpu.cuda:0", "pass")]
    assert run["device_name"] == "NVIDIA GeForce RTX 4090" and run["val_accuracy"] == 0.998


def test_a_gpu_that_disagrees_with_the_cpu_fails_with_the_fix():
    result = dict(GPU_TRAIN, cpu_agreement={"ok": False, "same_initial_weights": True,
                                             "max_abs_diff": 0.5, "tolerance": 1e-3})
    checks = verify_module._train_checks("cuda:0", {"ok": True, "result": result}, False, True,
                                         "python -m pip install torch")
    agreement = checks[-1]
    assert agreement.status == "fail" and agreement.fix == "python -m pip install torch"


def test_a_cuda_error_on_the_gpu_is_a_failure_with_its_text():
    reply = {"ok": False, "error": "RuntimeError: CUDA error: no kernel image is available for "
                                   "execution on the device"}
    checks = verify_module._train_checks("cuda:0", reply, False, True, "fix")
    run = verify_module._training_run("cuda:0", reply, make_facts())
    assert checks[0].status == "fail" and "no kernel image" in checks[0].detail
    assert run["ok"] is False and "no kernel image" in run["error"]


def test_a_gpu_torch_does_not_see_is_skipped_under_auto():
    reply = {"ok": True, "result": {"device": "cuda:1", "skipped": True,
                                    "reason": "torch sees 1 CUDA device(s), not cuda:1"}}
    checks = verify_module._ops_checks("cuda:1", reply, False, True, "fix")
    assert checks[0].status == "skip" and checks[0].fix is None


def _op(op, error, tolerance, ok, **worst):
    return {"op": op, "ok": ok, "parts": [], "worst": {"part": "forward (nn.Conv2d, stride 1)",
                                                       "error": error, "tolerance": tolerance,
                                                       **worst}}


def test_operation_checks_carry_their_figures_and_a_gpu_that_disagrees_with_the_cpu_fails():
    reply = {"ok": True, "result": {"device": "cuda:0", "skipped": False, "checks": [
        _op("relu", 0.0, 6e-8, True, cpu_error=0.0, cpu_tolerance=1.2e-7),
        _op("conv2d", 1e-7, 6.7e-6, False, problem="cpu", cpu_error=3e-2, cpu_tolerance=1.3e-5),
    ]}}
    relu, conv = verify_module._ops_checks("cuda:0", reply, False, True, "pip install torch")
    assert (relu.id, relu.status) == ("verify.relu.cuda:0", "pass")
    assert relu.to_json()["tolerance"] == 6e-8 and relu.to_json()["cpu_error"] == 0.0
    assert (conv.id, conv.status, conv.fix) == ("verify.conv2d.cuda:0", "fail", "pip install torch")
    assert "CPU" in conv.summary and "3.0e-02" in conv.summary


def test_a_wrong_kernel_result_names_the_operation_the_part_and_the_figures():
    reply = {"ok": True, "result": {"device": "cpu", "skipped": False, "checks": [
        _op("conv2d", 3.1, 6.7e-6, False)]}}
    (check,) = verify_module._ops_checks("cpu", reply, True, True, "cnnsetup torch-command")
    assert check.status == "fail" and check.fix == "cnnsetup torch-command"
    assert check.summary.startswith("Conv2d float32 forward (nn.Conv2d, stride 1) on cpu differs "
                                    "from the definition by 3.1e+00 (tolerance 6.7e-06)")
    assert check.to_json()["worst_error"] == 3.1


def test_an_operation_that_raises_fails_with_its_text():
    reply = {"ok": True, "result": {"device": "cpu", "skipped": False, "checks": [
        {"op": "linear", "ok": False, "error": "RuntimeError: mat1 and mat2 shapes cannot be "
                                               "multiplied", "worst": None, "parts": []}]}}
    (check,) = verify_module._ops_checks("cpu", reply, True, True, "fix")
    assert check.status == "fail" and "mat1 and mat2" in check.detail


def test_progress_line_draws_a_bar(capsys):
    bar = ProgressLine(columns=10)
    bar.event("cpu 5 10")
    bar.event("not an event")
    bar.close()
    err = capsys.readouterr().err
    assert "[#####-----]  50%" in err and "cpu" in err


@pytest.mark.slow
def test_verify_on_the_cpu_trains_to_the_target_then_over_two_processes_and_reports_both(
        tmp_path):
    # One run of the command carries the single-device proof and the distributed one (the DDP
    # check runs after the first, so each part is what a user's own run would do), shown in
    # Chinese while the report file is in English.
    report_file = tmp_path / "reports" / "me.json"
    done = run_cnnsetup("--lang", "zh", "verify", "--device", "cpu", "--ddp", "2",
                        "--report", str(report_file), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    report = json.loads(report_file.read_text(encoding="utf-8"))
    assert "已在 cpu 上训练参考 CNN" in done.stdout
    assert "verify.conv2d.cpu" in done.stdout and "PASS" in done.stdout  # the final table
    assert "分布式训练（DDP）" in done.stdout  # the distributed part of the table too
    assert "每个节点上的每个副本最终的权重完全相同" in done.stdout
    assert "\r" not in done.stderr  # stderr is not a terminal here: no progress bar
    assert by_id(report)["verify.train.cpu"]["summary"].startswith("Trained the reference CNN")
    assert [key for key in report if key not in OPTIONAL_KEYS] == list(TOP_LEVEL_KEYS)
    assert report["student"] is None  # no --student given
    assert report["schema"] == SCHEMA_VERSION and report["kind"] == "verify"
    assert report["ok"] is True and report["host"] and report["created"]
    checks = by_id(report)
    for check_id in ("verify.train.cpu", "verify.checkpoint.cpu", "torch.import", "verify.ddp"):
        assert checks[check_id]["status"] == "pass", checks[check_id]
    for op in OPS:  # every operation, with its measured error and tolerance
        check = checks[f"verify.{op}.cpu"]
        assert check["status"] == "pass", check
        assert 0 <= check["worst_error"] <= check["tolerance"] / 5 or check["tolerance"] == 0
        assert check["worst_part"]
    run, ddp_run = report["training"]
    assert run["device"] == "cpu" and run["ok"] is True
    assert run["val_accuracy"] >= 0.99
    assert run["seconds"] > 0 and run["samples_per_s"] > 0
    assert run["epochs"] == 4 and run["optimizer"] == "torch.optim.Adam"
    assert run["last_epoch_loss"] < run["first_epoch_loss"]
    assert run["threads"] >= 1
    assert report["duration_s"] > 0

    # DistributedDataParallel over two processes on this machine: gloo, identical replicas.
    assert ddp_run["device"] == "ddp:gloo:2" and ddp_run["ok"] is True
    assert ddp_run["val_accuracy"] >= 0.99 and ddp_run["epochs"] == SMOKE.epochs
    job = report["ddp"]
    assert job["ok"] is True and job["error"] is None and job["error_kind"] is None
    assert (job["world_size"], job["local_world_size"], job["nnodes"]) == (2, 2, 1)
    assert (job["backend"], job["device"], job["rendezvous"]) == ("gloo", "cpu", "standalone")
    assert job["identical_weights"] is True
    assert job["val_accuracy"] >= job["target"] == SMOKE.target_accuracy
    assert sorted(r["rank"] for r in job["ranks"]) == [0, 1]
    for rank in job["ranks"]:
        # Half the batch on each of two ranks: as many steps as the single-process smoke run.
        assert rank["steps"] == SINGLE_PROCESS_STEPS, rank
        assert rank["val_accuracy"] >= SMOKE.target_accuracy
        assert rank["seconds"] > 0 and rank["samples_per_s"] > 0
    assert job["wall_s"] >= max(r["seconds"] for r in job["ranks"])
    assert job["bandwidth"] and job["latency_us"] > 0


def test_a_ddp_failure_says_why_and_keeps_the_launchers_text(monkeypatch):
    from cnnsetup.machine import ddp

    def diverged(nprocs, **kwargs):
        return ddp.DdpResult(ok=False, world_size=nprocs, backend="gloo", device="cpu",
                             error="replica 1 differs from replica 0 by 1e-3",
                             error_kind=ddp.DIVERGED)

    monkeypatch.setattr(ddp, "run_ddp", diverged)
    result = verify_module._run_ddp(VerifyOptions(ddp=2), ["cpu"], None)
    check = verify_module._ddp_finding(result, 2, ["cpu"])
    run = verify_module._ddp_run(result, 2)
    assert check.status == "fail" and "different weights" in check.summary
    assert "replica 1 differs" in check.detail
    assert run["ok"] is False and run["device"] == "ddp:gloo:2"


def test_when_torch_does_not_import_no_task_is_retried():
    tasks = [({"task": "sleep", "id": "a", "args": {"seconds": 60}}, 1.0),
             ({"task": "sleep", "id": "b", "args": {"seconds": 0}}, 30.0)]
    first = WorkerSession([t for t, _ in tasks], timeouts=[s for _, s in tasks],
                          env={"PYTHONPATH": str(REPO_ROOT)}).wait()
    replies = verify_module._all_replies(first, tasks, VerifyOptions(), None, None, retry=False)
    assert replies["a"]["timed_out"] is True
    assert replies["b"]["ok"] is False  # not run again in a new worker


def test_a_worker_started_from_a_checkout_can_import_cnnsetup():
    from cnnsetup.machine import torch_probe

    env = {"PYTHONPATH": "/somewhere/else"}
    torch_probe._add_checkout(env)
    assert env["PYTHONPATH"].split(":") == ["/somewhere/else", str(REPO_ROOT)]


def test_a_missing_device_is_worded_in_the_users_language():
    from cnnsetup.i18n import using_language

    reply = {"ok": True, "result": {"device": "cuda:0", "skipped": True, "reason_code": "no_cuda",
                                    "reason": "torch sees no CUDA device", "count": 0}}
    with using_language("zh"):
        (check,) = verify_module._ops_checks("cuda:0", reply, True, True, "cnnsetup verify")
    assert "CUDA" in check.summary and "torch sees" not in check.summary


@pytest.mark.parametrize("choice, planned, seen, expected", [
    ("auto", ["cpu"], [{"index": 0}], ["cuda:0"]),  # ROCm, or no nvidia-smi in a container
    ("auto", ["cpu", "cuda:0"], [{"index": 0}], []),
    ("all", ["cpu", "cuda:0"], [{"index": 0}, {"index": 1}], ["cuda:1"]),
    ("cpu", ["cpu"], [{"index": 0}], []),
])
def test_gpus_torch_sees_beyond_nvidia_smi_are_proven_too(choice, planned, seen, expected):
    assert verify_module.missed_gpus(choice, planned, seen) == expected
