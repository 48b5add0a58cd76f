"""The one process that imports torch. cnnsetup itself never does: a broken torch (a missing DLL,
a NumPy built for another ABI, a segfault, a hang in the driver) can only take this process down,
and the parent (`cnnsetup.machine.torch_probe`) turns that into a finding with the exact text.

Protocol
--------
Run as ``python -m cnnsetup.machine.worker`` or ``python path/to/worker.py`` (this file imports
only the standard library, so any Python 3.8+ interpreter can run it, with or without cnnsetup).

* stdin: one JSON list of tasks, then end of file. A task is ``{"task": NAME, "args": {...},
  "id": ID}`` (``args`` and ``id`` optional; ``id`` defaults to NAME), or just ``"NAME"``.
* stdout: one JSON object per task, in order, one line each, written as soon as the task ends::

      {"id": "probe", "task": "probe", "ok": true, "result": {...}, "seconds": 1.52}
      {"id": "conv", "task": "conv", "ok": false, "error": "RuntimeError: ...", "traceback": "..."}

  ``ok`` is false when the task raised; ``error`` is the exception exactly as Python prints its
  last line. An unknown task name gives ``ok: false`` too. Nothing else is ever written to the
  protocol stream: whatever torch or a task prints (even from C) goes to stderr, which the parent
  keeps for the report.
* Exit status 0 after the last task. A crash shows as a missing line, a hang as no line in time:
  the parent kills the worker and reports which task was running.

Adding a task is one function ``def name(**args) -> dict`` (JSON-serialisable) registered in
``TASKS``; tasks share this process, so torch is imported once (``_import_torch``) for all of them.
"""

from __future__ import annotations

import glob
import io
import json
import os
import sys
import time
import traceback
import warnings

_HERE = os.path.dirname(os.path.abspath(__file__))
# Run by path, this folder would come first on sys.path and could shadow what torch imports.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

_torch_state: dict = {}


def _import_torch():
    """Import torch once; keep the warnings and Python-level stderr printed while it loads.

    Returns the module, or raises the import's own exception (again on every later call)."""
    if "module" in _torch_state:
        return _torch_state["module"]
    if "exception" in _torch_state:
        raise _torch_state["exception"]
    saved_stderr = sys.stderr
    captured = _Tee(saved_stderr)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sys.stderr = captured
        try:
            import torch  # noqa: PLC0415  (the one place in cnnsetup)
        except BaseException as exc:  # ImportError, OSError (DLL), anything torch raises
            _torch_state["exception"] = exc
            _torch_state["traceback"] = traceback.format_exc()
        else:
            _torch_state["module"] = torch
        finally:
            sys.stderr = saved_stderr
    _torch_state["import_seconds"] = round(time.perf_counter() - started, 3)
    printed = captured.getvalue()
    _torch_state["warnings"] = [_warning_text(w) for w in caught] + _stderr_messages(printed)
    if "exception" in _torch_state:
        raise _torch_state["exception"]
    return _torch_state["module"]


class _Tee:
    """stderr that also keeps a copy: what is printed still reaches the parent at once (so a
    crash right after a message keeps the message), and the probe can read it back."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._copy = io.StringIO()

    def write(self, text: str) -> int:
        self._copy.write(text)
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def getvalue(self) -> str:
        return self._copy.getvalue()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _warning_text(w: warnings.WarningMessage) -> str:
    return f"{w.category.__name__}: {w.message}"


def _stderr_messages(printed: str) -> list[str]:
    """The meaningful lines of what was printed: not traceback frames, not blank lines."""
    lines = []
    for line in printed.splitlines():
        text = line.strip()
        if not text or line.startswith("  ") or text.startswith(("Traceback", "File ")):
            continue
        lines.append(text)
    return lines


def _error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _try(fn, default=None, errors=None, label=""):
    """fn() or `default`; a failure is noted in `errors` instead of ending the probe."""
    try:
        return fn()
    except Exception as exc:  # a half-broken torch answers some questions and not others
        if errors is not None:
            errors.append(f"{label}: {_error_text(exc)}")
        return default


# ---------------------------------------------------------------- tasks


def packages() -> dict:
    """What this interpreter has installed, read from metadata only (torch is not imported)."""
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8
        metadata = None
    result = {
        "python": sys.executable,
        "prefix": sys.prefix,
        "version": ".".join(str(p) for p in sys.version_info[:3]),
        "torch_dists": [],
        "numpy_version": None,
        "conda_pytorch": sorted(
            os.path.basename(p)[: -len(".json")]
            for pattern in ("pytorch-[0-9]*.json", "pytorch-cpu-[0-9]*.json", "pytorch-gpu-[0-9]*.json")
            for p in glob.glob(os.path.join(sys.prefix, "conda-meta", pattern))
        ),
    }
    if metadata is None:
        return result
    seen = set()
    for dist in metadata.distributions(name="torch"):  # by name: no scan of every package
        location = str(getattr(dist, "_path", ""))
        if location in seen:
            continue
        seen.add(location)
        installer = (dist.read_text("INSTALLER") or "").strip() or None
        result["torch_dists"].append(
            {"version": dist.version, "installer": installer, "location": location})
    numpy = next(iter(metadata.distributions(name="numpy")), None)
    result["numpy_version"] = numpy.version if numpy is not None else None
    return result


def probe() -> dict:
    """Import torch and describe it: build, CUDA, cuDNN, architectures, devices, MPS, NumPy."""
    result: dict = {
        "importable": False,
        "error": None,
        "traceback": None,
        "import_warnings": [],
        "cuda_warnings": [],
        "probe_errors": [],
    }
    try:
        torch = _import_torch()
    except BaseException as exc:
        result["error"] = _error_text(exc)
        result["traceback"] = _torch_state.get("traceback")
        result["import_warnings"] = _torch_state.get("warnings", [])
        result["import_seconds"] = _torch_state.get("import_seconds")
        return result
    result["importable"] = True
    result["import_warnings"] = _torch_state.get("warnings", [])
    result["import_seconds"] = _torch_state.get("import_seconds")
    errors = result["probe_errors"]
    result["version"] = str(getattr(torch, "__version__", "")) or None
    result["path"] = os.path.dirname(getattr(torch, "__file__", "") or "") or None
    version = getattr(torch, "version", None)
    result["cuda"] = getattr(version, "cuda", None)
    result["hip"] = getattr(version, "hip", None)
    result["cudnn"] = _try(lambda: torch.backends.cudnn.version(), None, errors, "cudnn")
    result["arch_list"] = _try(lambda: list(torch.cuda.get_arch_list()), [], errors, "arch_list")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = _try(lambda: torch.cuda.is_available(), False, errors, "cuda")
        result["cuda_available"] = bool(available)
        devices = []
        count = (_try(lambda: torch.cuda.device_count(), 0, errors, "device_count")
                 if result["cuda_available"] else 0)
        for i in range(count or 0):
            props = _try(lambda i=i: torch.cuda.get_device_properties(i), None, errors, f"device {i}")
            capability = _try(lambda i=i: torch.cuda.get_device_capability(i), None, errors,
                              f"device {i}")
            devices.append({
                "index": i,
                "name": getattr(props, "name", None),
                "capability": f"{capability[0]}.{capability[1]}" if capability else None,
                "memory_bytes": getattr(props, "total_memory", None),
            })
        result["devices"] = devices
    result["cuda_warnings"] = [_warning_text(w) for w in caught]
    result["mps_built"] = bool(_try(lambda: torch.backends.mps.is_built(), False, errors, "mps"))
    result["mps_available"] = bool(_try(lambda: torch.backends.mps.is_available(), False, errors,
                                        "mps"))
    result.update(_numpy_check(torch))
    return result


def _numpy_check(torch) -> dict:
    """NumPy's version and whether torch can share memory with it (fails on an ABI mismatch)."""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        try:
            import numpy  # noqa: PLC0415
        except ImportError:
            return {"numpy_version": None, "numpy_ok": None, "numpy_error": None}
        except Exception as exc:
            return {"numpy_version": None, "numpy_ok": False, "numpy_error": _error_text(exc)}
    version = getattr(numpy, "__version__", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            torch.from_numpy(numpy.zeros(2, dtype="float32"))
        except Exception as exc:
            return {"numpy_version": version, "numpy_ok": False, "numpy_error": _error_text(exc)}
    text = "; ".join(_warning_text(w) for w in caught) or None
    return {"numpy_version": version, "numpy_ok": text is None, "numpy_error": text}


def sleep(seconds: float = 0.0) -> dict:
    """Wait: lets tests and callers check the parent's timeout handling."""
    time.sleep(float(seconds))
    return {"slept": seconds}


HEARTBEAT_PREFIX = "@cnnsetup-heartbeat"  # must equal torch_probe.HEARTBEAT_PREFIX


def tick(seconds: float = 0.0, every: float = 0.1, then_sleep: float = 0.0) -> dict:
    """Work that stays alive: a heartbeat every `every` seconds for `seconds`, then silence for
    `then_sleep` (lets tests check that a slow task and a hung one get different verdicts)."""
    started = time.monotonic()
    beats = 0
    while time.monotonic() - started < float(seconds):
        beats += 1
        sys.stderr.write(f"{HEARTBEAT_PREFIX} {json.dumps({'beat': beats})}\n")
        sys.stderr.flush()
        time.sleep(float(every))
    time.sleep(float(then_sleep))
    return {"beats": beats}


def _proof_task(name: str):
    """A `cnnsetup verify` task (cnnsetup.machine.verify_tasks), imported when first used: it
    needs cnnsetup and reference_net importable in this interpreter, the probe does not."""

    def run(**args):
        from cnnsetup.machine import verify_tasks

        _import_torch()  # the same import (and its recorded warnings) as the probe's
        return verify_tasks.TASKS[name](**args)

    run.__name__ = name
    run.__doc__ = f"cnnsetup verify's {name!r} task: cnnsetup.machine.verify_tasks.{name}."
    return run


# name -> function(**args) -> JSON-serialisable dict
TASKS = {
    "packages": packages,
    "probe": probe,
    "sleep": sleep,
    "tick": tick,
    "ops": _proof_task("ops"),
    "train": _proof_task("train"),
}


# ---------------------------------------------------------------- the loop


def _protocol_stream():
    """A private copy of stdout for the protocol; fd 1 then points at stderr, so that whatever
    torch or a task prints (from Python or C) cannot corrupt the JSON lines."""
    sys.stdout.flush()
    private = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return io.open(private, "w", encoding="utf-8", buffering=1, newline="\n")


def _normalise(task) -> dict:
    if isinstance(task, str):
        return {"task": task, "args": {}, "id": task}
    if not isinstance(task, dict) or not isinstance(task.get("task"), str):
        raise ValueError(f"not a task: {task!r}")
    return {"task": task["task"], "args": dict(task.get("args") or {}), "id": task.get("id", task["task"])}


def run_task(task: dict) -> dict:
    """Run one normalised task; its failure becomes `ok: false` with the exact error."""
    started = time.perf_counter()
    reply = {"id": task["id"], "task": task["task"]}
    fn = TASKS.get(task["task"])
    if fn is None:
        reply.update(ok=False, error=f"unknown task {task['task']!r}; known: {sorted(TASKS)}")
        return reply
    try:
        reply.update(ok=True, result=fn(**task["args"]))
    except BaseException as exc:  # noqa: BLE001  (the whole point: report, don't die)
        if isinstance(exc, KeyboardInterrupt):
            raise
        reply.update(ok=False, error=_error_text(exc), traceback=traceback.format_exc())
    reply["seconds"] = round(time.perf_counter() - started, 3)
    return reply


def main() -> int:
    """Read the task list from stdin, answer one JSON line per task on the protocol stream."""
    out = _protocol_stream()
    try:
        tasks = [_normalise(t) for t in json.loads(sys.stdin.read() or "[]")]
    except (ValueError, TypeError) as exc:
        out.write(json.dumps({"id": None, "task": None, "ok": False, "error": _error_text(exc)}) + "\n")
        return 2
    for task in tasks:
        out.write(json.dumps(run_task(task), default=str) + "\n")
        out.flush()
    out.close()
    return 0


if __name__ == "__main__":
    status = main()
    sys.stderr.flush()
    # Skip interpreter teardown: unloading torch takes a noticeable part of a second and every
    # answer is already written.
    os._exit(status)
