"""The torch worker and its parent: every way `import torch` can go wrong becomes text in the
result, and the parent never crashes or waits past its deadline."""

from __future__ import annotations

import importlib.util

import json
import subprocess
import sys
import time
from importlib import metadata

import pytest

from cnnsetup.machine import torch_probe, worker
from cnnsetup.machine.facts import torch_from_worker
from tests.machine_helpers import CPU_TORCH, bare_python, cuda_torch, write_fake_torch


@pytest.fixture
def fake_torch(tmp_path, monkeypatch):
    """Put a stand-in torch first on the worker's PYTHONPATH; returns a function that writes it."""
    root = tmp_path / "fake-site"

    def _write(facts=None, *, body=None):
        write_fake_torch(root, facts, body=body)
        monkeypatch.setenv("PYTHONPATH", str(root))
        return root

    return _write


def _probe(**kwargs):
    run = torch_probe.run_tasks(["packages", "probe"], **kwargs)
    return run, torch_from_worker(run)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_the_real_torch_of_this_environment_is_probed():
    run, torch = _probe()
    assert run.returncode == 0, run.stderr
    assert torch.importable and torch.installed
    assert torch.version == metadata.version("torch")
    assert torch.error is None
    expected_cuda = None if "+cpu" in torch.version else torch.cuda
    assert torch.cuda == expected_cuda
    if importlib.util.find_spec("numpy") is not None:
        assert torch.numpy_version == metadata.version("numpy")
        assert torch.numpy_ok is True
    else:  # pip's torch does not require NumPy; a fresh environment may lack it
        assert torch.numpy_version is None
    assert torch.probe_seconds > 0


def test_a_cuda_build_is_described_from_what_torch_answers(fake_torch):
    fake_torch(cuda_torch(version="2.8.0+cu128", cuda="12.8", arch_list=("sm_75", "sm_120"),
                          devices=[{"name": "NVIDIA GeForce RTX 5090", "capability": "12.0",
                                    "memory_bytes": 34190917632}]))
    run, torch = _probe()
    assert run.returncode == 0, run.stderr
    assert (torch.version, torch.cuda, torch.cudnn) == ("2.8.0+cu128", "12.8", 90100)
    assert torch.arch_list == ["sm_75", "sm_120"]
    assert torch.cuda_available
    assert torch.devices == [{"index": 0, "name": "NVIDIA GeForce RTX 5090", "capability": "12.0",
                              "memory_bytes": 34190917632}]


def test_import_error_text_is_kept_exactly(fake_torch):
    fake_torch(body="raise ImportError('libtorch_cpu.so: cannot open shared object file')")
    run, torch = _probe()
    assert run.returncode == 0
    assert not torch.importable
    assert torch.error == "ImportError: libtorch_cpu.so: cannot open shared object file"
    assert "Traceback" in torch.traceback


def test_windows_dll_oserror_is_kept_exactly(fake_torch):
    message = ('[WinError 126] The specified module could not be found. Error loading '
               '"C:\\\\env\\\\Lib\\\\site-packages\\\\torch\\\\lib\\\\fbgemm.dll" or one of its dependencies.')
    fake_torch(body=f"raise OSError({message!r})")
    _run, torch = _probe()
    assert torch.error.startswith("OSError: [WinError 126]")
    assert "fbgemm.dll" in torch.error


def test_warnings_and_messages_printed_during_import_are_captured(fake_torch):
    numpy_text = ("A module that was compiled using NumPy 1.x cannot be run in\n"
                  "NumPy 2.1.0 as it may crash.\n")
    fake_torch({**CPU_TORCH, "import_warnings": ["Failed to initialize NumPy: _ARRAY_API not found"],
                "import_stderr": numpy_text})
    run, torch = _probe()
    assert torch.importable
    assert "UserWarning: Failed to initialize NumPy: _ARRAY_API not found" in torch.import_warnings
    assert "A module that was compiled using NumPy 1.x cannot be run in" in torch.import_warnings
    assert "compiled using NumPy 1.x" in run.stderr  # the full text is kept for the report


def test_whatever_torch_prints_on_stdout_cannot_break_the_protocol(fake_torch):
    fake_torch(body="""
        import os, sys
        print('{"task": "probe", "ok": false, "error": "forged"}')
        os.write(1, b"written by C code\\n")
        __version__ = "2.0.0"
    """)
    run, torch = _probe()
    assert torch.importable and torch.version == "2.0.0"
    assert "written by C code" in run.stderr and "forged" in run.stderr


def test_a_segfault_in_import_becomes_a_crash_with_the_signal(fake_torch):
    fake_torch(body="""
        import os, signal, sys
        sys.stderr.write("about to crash\\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGSEGV)
    """)
    run, torch = _probe()
    assert run.crashed
    assert torch.probe_failure == "crashed"
    assert "SIGSEGV" in torch.error and "about to crash" in torch.error
    assert torch.installed  # the packages task answered before the crash


def test_a_hang_in_import_is_stopped_at_the_deadline(fake_torch):
    fake_torch(body="import time\ntime.sleep(60)\n")
    started = time.monotonic()
    run = torch_probe.run_tasks(["packages", "probe"], timeouts=[20, 1.0])
    assert time.monotonic() - started < 10
    assert run.timed_out and run.timed_out_task == "probe"
    torch = torch_from_worker(run)
    assert torch.probe_failure == "timed_out"
    assert "'probe'" in torch.error


def test_torch_missing_in_a_real_interpreter_without_it(tmp_path):
    run, torch = _probe(python=bare_python(tmp_path))
    assert run.returncode == 0, run.stderr
    assert not torch.installed and not torch.importable
    assert torch.error == "ModuleNotFoundError: No module named 'torch'"


def test_an_interpreter_that_does_not_exist_is_a_start_failure(tmp_path):
    run = torch_probe.run_tasks(["probe"], python=str(tmp_path / "no-python"))
    assert run.start_error and "no-python" in run.start_error
    assert torch_from_worker(run).probe_failure == "start_failed"


def test_tasks_answer_in_order_and_a_failing_task_does_not_stop_the_next(fake_torch):
    fake_torch(CPU_TORCH)
    run = torch_probe.run_tasks(
        [{"task": "sleep", "args": {"seconds": "not a number"}, "id": "bad"},
         {"task": "no-such-task", "id": "unknown"},
         {"task": "sleep", "args": {"seconds": 0}, "id": "good"}])
    assert [r["id"] for r in run.replies] == ["bad", "unknown", "good"]
    assert run.replies[0]["ok"] is False
    assert run.replies[0]["error"].startswith("ValueError: could not convert string to float")
    assert "unknown task 'no-such-task'" in run.replies[1]["error"]
    assert run.replies[2] == {**run.replies[2], "ok": True, "result": {"slept": 0}}


def test_each_task_gets_its_own_deadline_counted_from_the_previous_answer():
    run = torch_probe.run_tasks(
        [{"task": "sleep", "args": {"seconds": 0.6}, "id": "a"},
         {"task": "sleep", "args": {"seconds": 0.6}, "id": "b"},
         {"task": "sleep", "args": {"seconds": 30}, "id": "c"}],
        timeouts=[5, 1.0, 0.5])
    assert [r["id"] for r in run.replies] == ["a", "b"]
    assert run.timed_out_task == "c"


def test_worker_runs_as_a_module_with_the_documented_protocol():
    done = subprocess.run(
        [sys.executable, "-m", "cnnsetup.machine.worker"],
        input=json.dumps(["sleep", {"task": "sleep", "args": {"seconds": 0.01}, "id": "x"}]),
        capture_output=True, text=True, timeout=60)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0
    assert [(r["id"], r["task"], r["ok"]) for r in lines] == [("sleep", "sleep", True),
                                                              ("x", "sleep", True)]


def test_every_registered_task_is_a_documented_function():
    for name, fn in worker.TASKS.items():
        assert callable(fn) and fn.__doc__, name


def test_exit_descriptions():
    assert torch_probe.describe_exit(-11) == "signal 11 (SIGSEGV)"
    assert torch_probe.describe_exit(3221225477) == "exit status 0xC0000005"
    assert torch_probe.describe_exit(1) == "exit status 1"


def test_a_task_still_sending_heartbeats_at_its_limit_is_slow_not_hung():
    run = torch_probe.run_tasks([{"task": "tick", "args": {"seconds": 60, "every": 0.1},
                                  "id": "busy"}], timeouts=[2.0])
    assert run.timed_out and run.timed_out_task == "busy"
    assert run.timed_out_kind == "slow" and run.last_heartbeat["beat"] > 3
    assert "still making progress" in run.failure_text()


def test_a_task_that_never_answers_or_beats_is_hung():
    run = torch_probe.run_tasks([{"task": "sleep", "args": {"seconds": 60}, "id": "stuck"}],
                                timeouts=[2.0])
    assert run.timed_out and run.timed_out_kind == "hung" and run.last_heartbeat is None


def test_a_task_that_stops_beating_is_hung_before_its_limit(monkeypatch):
    monkeypatch.setattr(torch_probe, "STALL_MIN_S", 1.0)  # stall limit: max(1, 8 / 4) = 2 s
    started = time.monotonic()
    run = torch_probe.run_tasks([{"task": "tick", "args": {"seconds": 0.5, "every": 0.1,
                                                           "then_sleep": 60}, "id": "stops"}],
                                timeouts=[8.0])
    assert run.timed_out and run.timed_out_kind == "hung"
    assert time.monotonic() - started < 7  # found at the stall, not at the limit


def test_the_stall_limit_is_a_quarter_of_the_limit_within_bounds():
    assert torch_probe.stall_limit(120) == 30
    assert torch_probe.stall_limit(20) == torch_probe.STALL_MIN_S
    assert torch_probe.stall_limit(3) == 3
