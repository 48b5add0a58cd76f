"""The distributed-training launcher without training: its arguments, its environment, how it reads
what the processes left behind, and how it stops a process tree that hangs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil
import pytest

from cnnsetup.machine import ddp
from cnnsetup.machine.ddp import DdpResult, interpret, rank_errors, run_ddp
from cnnsetup.run import RunResult
from reference_net.smoke import SMOKE
from tests.conftest import REPO_ROOT, write_program


@pytest.mark.parametrize("nprocs", [0, -1, 1.5, "2", True])
def test_a_process_count_below_one_or_not_a_whole_number_is_refused(nprocs):
    with pytest.raises(ValueError):
        run_ddp(nprocs)


def test_an_unknown_device_or_injection_is_refused():
    with pytest.raises(ValueError):
        run_ddp(2, device="mps")
    with pytest.raises(ValueError):
        run_ddp(2, inject="everything")


def test_the_launcher_is_torchs_own_run_module_of_the_given_interpreter(tmp_path):
    argv = ddp.command(3, tmp_path / "r.json", device="cuda", epochs=2, seed=7, threads=1,
                       python="/opt/py/bin/python", inject="hang")
    assert argv[0] == "/opt/py/bin/python"
    assert argv[argv.index("-m") + 1] == "torch.distributed.run"
    assert "--standalone" in argv
    assert argv[argv.index("--nproc-per-node") + 1] == "3"
    worker = argv.index(ddp.WORKER_MODULE)
    assert argv[worker - 1] == "-m"
    tail = argv[worker + 1:]
    assert tail[tail.index("--result") + 1] == str(tmp_path / "r.json")
    assert tail[tail.index("--device") + 1] == "cuda"
    assert tail[tail.index("--epochs") + 1] == "2"
    assert tail[tail.index("--seed") + 1] == "7"
    assert "--inject-hang" in tail


@pytest.mark.parametrize("nprocs, cores, expected", [
    (1, 2, 2), (2, 2, 1), (3, 2, 1), (4, 16, 4), (1, 64, SMOKE.max_threads),
])
def test_the_cores_are_shared_out_between_the_processes_one_thread_at_least(nprocs, cores,
                                                                             expected):
    assert ddp.threads_per_process(nprocs, cores=cores) == expected


def test_the_environment_makes_reference_net_importable_and_drops_torchrun_defaults():
    env = ddp.process_env({"PYTHONPATH": os.pathsep.join(["/elsewhere", str(REPO_ROOT)]),
                           "PET_NNODES": "4", "TORCHELASTIC_RUN_ID": "x", "KEEP": "1"},
                          threads=3, platform="linux")
    assert env["PYTHONPATH"].split(os.pathsep) == [str(REPO_ROOT), "/elsewhere"]
    assert "PET_NNODES" not in env and "TORCHELASTIC_RUN_ID" not in env
    assert env["KEEP"] == "1" and env["OMP_NUM_THREADS"] == "3"
    assert "USE_LIBUV" not in env
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert ddp.process_env({"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"


def test_on_windows_the_rendezvous_does_without_libuv():
    # torch's Windows wheels lack libuv, yet its TCPStore asks for it unless told otherwise.
    assert ddp.process_env({}, platform="win32")["USE_LIBUV"] == "0"


def test_importing_the_launcher_does_not_import_torch():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, cnnsetup.machine.ddp; print('torch' in sys.modules)"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.stdout.strip() == "False", done.stderr


def _interpret(ran: RunResult, result=None, errors=(), **kw) -> DdpResult:
    return interpret(ran, result, list(errors), world_size=2, backend="gloo", device="cpu",
                     python="/py/bin/python", **kw)


PASSED = {"ok": True, "val_accuracy": 0.995, "target": 0.99, "replicas_identical": True,
          "max_weight_diff": 0.0, "seconds": 1.2, "samples_per_s": 9000.0, "epochs": 4,
          "error": None, "error_kind": None, "steps": 188}


def test_a_passing_result_with_a_clean_exit_is_ok_and_keeps_the_figures():
    out = _interpret(RunResult(["x"], 0), dict(PASSED))
    assert out.ok and out.error is None and out.error_kind is None
    assert out.val_accuracy == 0.995 and out.steps == 188 and out.replicas_identical is True


def test_a_passing_result_followed_by_a_failing_exit_is_a_crash():
    out = _interpret(RunResult(["x"], 1, "", "ValueError: teardown went wrong\n"), dict(PASSED))
    assert not out.ok and out.error_kind == ddp.CRASHED
    assert "teardown went wrong" in out.error
    assert out.val_accuracy == 0.995  # the figures it reached are kept


def test_a_failing_result_keeps_the_reason_the_processes_gave():
    result = dict(PASSED, ok=False, replicas_identical=False, error_kind=ddp.DIVERGED,
                  error="the 2 replicas ended with different weights")
    out = _interpret(RunResult(["x"], 1), result)
    assert not out.ok and out.error_kind == ddp.DIVERGED
    assert out.error == "the 2 replicas ended with different weights"


def test_a_crash_is_named_by_the_first_rank_that_failed_not_by_its_peers():
    out = _interpret(RunResult(["x"], 1, "", "lots of launcher output\n"), None,
                     ["RuntimeError: CUDA error: an illegal memory access",
                      "RuntimeError: Connection closed by peer"])
    assert out.error_kind == ddp.CRASHED
    assert "illegal memory access" in out.error and "Connection closed" not in out.error
    assert "exit status 1" in out.error


def test_without_error_files_the_last_exception_before_the_launchers_summary_is_quoted():
    stderr = ("Traceback (most recent call last):\n  File \"x.py\", line 1\n"
              "ValueError: the data is wrong\n"
              "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n"
              "==========\nreference_net.distributed FAILED\n")
    out = _interpret(RunResult(["x"], 1, "", stderr))
    assert out.error_kind == ddp.CRASHED and "ValueError: the data is wrong" in out.error
    assert out.stderr_tail.endswith("reference_net.distributed FAILED")


def test_a_process_killed_by_a_signal_says_which_signal():
    out = _interpret(RunResult(["x"], -11, "", "Segmentation fault\n"))
    assert out.error_kind == ddp.CRASHED and "SIGSEGV" in out.error


@pytest.mark.parametrize("stderr, kind", [
    ("/py/bin/python: Error while finding module specification for 'torch.distributed.run' "
     "(ModuleNotFoundError: No module named 'torch')", ddp.TORCH_MISSING),
    ("/py/bin/python: Error while finding module specification for 'torch.distributed.run' "
     "(ModuleNotFoundError: No module named 'torch.distributed')", ddp.DISTRIBUTED_MISSING),
    ("ModuleNotFoundError: No module named 'torchvision'", ddp.CRASHED),
])
def test_a_missing_torch_is_told_apart_from_other_missing_modules(stderr, kind):
    out = _interpret(RunResult(["x"], 1, "", stderr))
    assert out.error_kind == kind and not out.ok
    if kind == ddp.TORCH_MISSING:
        assert out.error == "torch is not installed for /py/bin/python"


def test_a_timeout_and_an_interpreter_that_cannot_start_are_failures_of_their_own():
    timed = _interpret(RunResult(["x"], None, timed_out=True), timeout_s=30)
    assert timed.error_kind == ddp.TIMEOUT and timed.timed_out and "30 s" in timed.error
    missing = _interpret(RunResult(["x"], not_found=True, error="No such file"))
    assert missing.error_kind == ddp.LAUNCH_FAILED and "/py/bin/python" in missing.error


def test_a_clean_exit_without_a_result_is_not_a_pass():
    out = _interpret(RunResult(["x"], 0))
    assert not out.ok and out.error_kind == ddp.NO_RESULT


def test_rank_error_files_are_read_earliest_first(tmp_path):
    result = tmp_path / "result.json"
    late, early = tmp_path / "result.json.rank0.error", tmp_path / "result.json.rank1.error"
    late.write_text("RuntimeError: lost my peer\n", encoding="utf-8")
    early.write_text("RuntimeError: the real cause\n", encoding="utf-8")
    os.utime(early, ns=(1_000_000_000, 1_000_000_000))
    os.utime(late, ns=(2_000_000_000, 2_000_000_000))
    assert rank_errors(result) == ["RuntimeError: the real cause", "RuntimeError: lost my peer"]


def test_an_interpreter_that_does_not_exist_is_a_result_not_an_exception(tmp_path):
    out = run_ddp(2, python=str(tmp_path / "no-such-python"))
    assert not out.ok and out.error_kind == ddp.LAUNCH_FAILED
    assert out.command[0] == str(tmp_path / "no-such-python")


def test_torch_that_cannot_be_imported_is_a_clear_error_result(tmp_path):
    # A torch package that fails to import, ahead of the real one on the path: what a python
    # without torch says, for the interpreter the tests run on.
    shadow = tmp_path / "shadow" / "torch"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n", encoding="utf-8")
    out = run_ddp(2, env={**os.environ, "PYTHONPATH": str(shadow.parent)}, timeout_s=60)
    assert not out.ok and out.error_kind == ddp.TORCH_MISSING, out.stderr_tail
    assert out.error == f"torch is not installed for {sys.executable}"
    assert out.val_accuracy is None and not out.timed_out
    assert out.target == SMOKE.target_accuracy and out.epochs == SMOKE.epochs and out.seed == 0


def _base_python_without_torch() -> str | None:
    """The interpreter this virtual environment was made from, where it lacks torch."""
    base = getattr(sys, "_base_executable", None)
    if sys.prefix == sys.base_prefix or not base or not os.path.exists(base):
        return None
    done = subprocess.run([base, "-c", "import torch"], capture_output=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    return base if done.returncode != 0 else None


def test_a_real_interpreter_without_torch_is_a_clear_error_result():
    base = _base_python_without_torch()
    if base is None:
        pytest.skip("no interpreter without torch beside this virtual environment")
    out = run_ddp(2, python=base, timeout_s=60)
    assert out.error_kind == ddp.TORCH_MISSING, out.stderr_tail
    assert base in out.error


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
def test_a_hanging_launch_is_stopped_at_the_time_limit_with_every_process_it_started(
        tmp_path, bin_dir):
    # A stand-in launcher that starts two "ranks" in sessions of their own, as torchrun does, and
    # then waits forever with them: killing only the direct child would leave them running.
    pids = tmp_path / "pids.json"
    python = write_program(bin_dir / "python", f"""
        import json, subprocess, sys, time
        sleeper = [{sys.executable!r}, "-c", "import time; time.sleep(600)"]
        ranks = [subprocess.Popen(sleeper, start_new_session=True) for _ in range(2)]
        with open({str(pids)!r} + ".partial", "w") as f:
            json.dump({{"argv": sys.argv[1:], "pids": [p.pid for p in ranks]}}, f)
        import os; os.replace({str(pids)!r} + ".partial", {str(pids)!r})
        time.sleep(600)
    """)
    started = time.monotonic()
    out = run_ddp(2, python=str(python), timeout_s=3)
    elapsed = time.monotonic() - started
    assert out.timed_out and out.error_kind == ddp.TIMEOUT and not out.ok
    assert out.returncode is None
    assert elapsed < 3 + 5
    recorded = json.loads(pids.read_text())
    assert "torch.distributed.run" in recorded["argv"] and "--nproc-per-node" in recorded["argv"]
    assert len(recorded["pids"]) == 2
    assert all(_gone(pid) for pid in recorded["pids"])


@pytest.mark.slow
def test_interrupting_the_wait_stops_the_whole_tree(tmp_path, bin_dir, monkeypatch):
    pids = tmp_path / "pids.txt"
    python = write_program(bin_dir / "python", f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([{sys.executable!r}, "-c", "import time; time.sleep(600)"],
                                 start_new_session=True)
        with open({str(pids)!r} + ".partial", "w") as f:
            f.write(f"{{os.getpid()}} {{child.pid}}")
        os.replace({str(pids)!r} + ".partial", {str(pids)!r})
        time.sleep(600)
    """)
    real_popen = subprocess.Popen

    class InterruptedPopen(real_popen):  # Ctrl-C arrives while we wait for the launcher
        def wait(self, timeout=None):
            if timeout is not None and timeout > 10:
                deadline = time.monotonic() + 20
                while not pids.exists() and time.monotonic() < deadline:
                    time.sleep(0.02)
                raise KeyboardInterrupt
            return super().wait(timeout)

    monkeypatch.setattr(ddp.subprocess, "Popen", InterruptedPopen)
    with pytest.raises(KeyboardInterrupt):
        run_ddp(1, python=str(python), timeout_s=60)
    assert all(_gone(int(pid)) for pid in pids.read_text().split())
