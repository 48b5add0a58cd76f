"""The proof tasks `cnnsetup verify` hands the torch worker, one device per task.

They run inside the worker process (`cnnsetup.machine.worker`), which has already imported torch
for the probe, so the whole of `verify` pays for one torch import. Each returns plain JSON data;
the parent (`cnnsetup.machine.verify`) turns it into checks. Progress goes to stderr as lines
`PROGRESS_PREFIX <device> <done> <total>`, which the parent draws as a bar, and heartbeats
`HEARTBEAT_PREFIX {json}` (the operation being checked, the epoch being trained), by which the
parent tells a slow task from a hung one.

Imports here are the standard library only; torch and reference_net are imported inside the
tasks, because the worker must start (and report) even where they are broken.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import threading
import time
from typing import Any

PROGRESS_PREFIX = "@cnnsetup-progress"  # must equal torch_probe.EVENT_PREFIX (this file imports only the stdlib)
HEARTBEAT_PREFIX = "@cnnsetup-heartbeat"  # must equal torch_probe.HEARTBEAT_PREFIX

# Tolerances, stated so the report can quote them (the operation checks state theirs in proof.py).
GPU_CPU_TOLERANCE = 1e-3  # same weights, same input: outputs on the GPU vs the CPU (float32,
# TF32 switched off for the comparison; cuDNN may still pick other algorithms)


def _unavailable(torch: Any, device: str) -> dict | None:
    """Why `device` cannot be used, as a skipped result (a code the parent words in the user's
    language, and English text), or None when it can."""
    kind, _, index = device.partition(":")
    if kind == "cpu":
        return None
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            return _skipped(device, "no_cuda", "torch sees no CUDA device", count)
        if index and int(index) >= count:
            return _skipped(device, "cuda_index",
                            f"torch sees {count} CUDA device(s), not {device}", count)
        return None
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            return _skipped(device, "no_mps", "MPS is not available", 0)
        return None
    return _skipped(device, "unknown_device", f"unknown device {device!r}", 0)


def _skipped(device: str, code: str, reason: str, count: int) -> dict:
    return {"device": device, "skipped": True, "reason_code": code, "reason": reason,
            "count": count}


def _device_name(torch: Any, device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    if device == "mps":
        return "Apple GPU (MPS)"
    import platform

    return platform.processor() or platform.machine() or "CPU"


def ops(device: str = "cpu", seed: int = 0) -> dict:
    """The operation-level proof (`cnnsetup.machine.proof`) on `device`: every operation the
    network trains with, forward and backward, in float32, against its definition in float64."""
    import torch

    unavailable = _unavailable(torch, device)
    if unavailable:
        return unavailable
    from cnnsetup.machine.proof import run_proof

    warm_optimizers(torch)
    started = time.perf_counter()

    def before(op: str) -> None:
        if op == "sgd":  # the first optimizer: let the import started above finish, beating
            _wait_for_warm_up()
        heartbeat({"op": op})

    checks = run_proof(device, seed, heartbeat=before)
    return {"device": device, "skipped": False, "checks": checks,
            "seconds": round(time.perf_counter() - started, 4)}


_warming: list = []


def warm_optimizers(torch: Any) -> None:
    """Start, in a thread, what a process's first torch.optim optimizer does once: import
    torch._dynamo (about as long as `import torch`). The checks of the layers run meanwhile;
    the first optimizer then finds it done, or waits for the rest of the same import."""
    if _warming:
        return

    def warm() -> None:
        try:
            parameter = torch.nn.Parameter(torch.zeros(1))
            torch.optim.SGD([parameter], lr=0.0).zero_grad()
        except Exception:  # the optimizer checks themselves will report it
            pass
        finally:
            sys.setswitchinterval(saved_interval)

    # The import holds the GIL for long stretches; the checks release it at every torch call
    # and would wait up to the switch interval (5 ms) to get it back each time.
    saved_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(saved_interval, 0.0005))

    thread = threading.Thread(target=warm, name="cnnsetup-warm-optim", daemon=True)
    _warming.append(thread)
    thread.start()


WARM_UP_BEATS_S = 60.0  # an import still running after this stops counting as progress


def _wait_for_warm_up() -> None:
    """Wait for `warm_optimizers`'s import, with a heartbeat each second while it runs (an
    import is progress; one that has not finished after WARM_UP_BEATS_S is not)."""
    started = time.monotonic()
    for thread in _warming:
        while thread.is_alive() and time.monotonic() - started < WARM_UP_BEATS_S:
            heartbeat({"op": "import torch._dynamo (first torch.optim use)"})
            thread.join(timeout=1.0)


def heartbeat(payload: dict) -> None:
    """Tell the parent this task is alive and where it is (`torch_probe.HEARTBEAT_PREFIX`)."""
    sys.stderr.write(f"{HEARTBEAT_PREFIX} {json.dumps(payload)}\n")
    sys.stderr.flush()


def train(device: str = "cpu", epochs: int | None = None, seed: int = 0,
          progress: bool = False) -> dict:
    """Train and validate the smoke network on `device` with torch.optim.Adam; then the
    checkpoint round trip and, on a GPU, the agreement of its outputs with the CPU's for the same
    seed and initial weights. Sends a heartbeat per epoch and progress events (for the bar, and
    so that the parent can tell a slow run from a hung one) whether or not `progress` is set.
    On the CPU the thread count is the one measured fastest right now (`fastest_threads`)."""
    import torch

    unavailable = _unavailable(torch, device)
    if unavailable:
        return unavailable
    from reference_net.model import build_model
    from reference_net.smoke import SMOKE, fastest_threads, run_smoke

    warm_optimizers(torch)
    epochs = SMOKE.epochs if epochs is None else epochs
    threads, timings = fastest_threads(SMOKE, device)
    report = _progress_reporter(device, epochs)
    result = run_smoke(device, epochs=epochs, seed=seed, progress=report,
                       threads=threads if device == "cpu" else None)
    model = result.model
    out = {
        "device": device,
        "device_name": _device_name(torch, device),
        "skipped": False,
        "val_accuracy": result.val_accuracy,
        "target": SMOKE.target_accuracy,
        "epochs": result.epochs,
        "seconds": round(result.seconds, 4),
        "data_seconds": round(result.data_seconds or 0.0, 4),
        "samples_per_s": round(result.samples_per_s, 1),
        "train_loss": [round(x, 6) for x in result.train_loss],
        "optimizer": "torch.optim.Adam",
        "threads": threads if device == "cpu" else None,
        "thread_timings": timings,
    }
    out["ok"] = result.val_accuracy >= SMOKE.target_accuracy
    out["checkpoint"] = _checkpoint_round_trip(torch, model, device, seed)
    if device != "cpu":
        out["cpu_agreement"] = _agrees_with_cpu(torch, build_model, SMOKE.net, device, seed)
    return out


def _progress_reporter(device: str, epochs: int):
    """progress(done, total) for `train`: a bar event at most every 0.1 s, a heartbeat with the
    epoch whenever a new one starts."""
    last = [0.0, 0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        epoch = min(epochs, done * epochs // max(1, total) + 1)
        if epoch != last[1]:
            last[1] = epoch
            heartbeat({"device": device, "epoch": epoch, "epochs": epochs, "step": done,
                       "steps": total})
        if done in (0, total) or now - last[0] >= 0.1:
            last[0] = now
            sys.stderr.write(f"{PROGRESS_PREFIX} {device} {done} {total}\n")
            sys.stderr.flush()

    return report


def _fixed_batch(torch: Any, seed: int):
    from reference_net.smoke import SMOKE

    net = SMOKE.net
    generator = torch.Generator().manual_seed(seed + 1)
    return torch.randn(64, net.in_channels, net.input_size, net.input_size, generator=generator)


def _checkpoint_round_trip(torch: Any, model: Any, device: str, seed: int) -> dict:
    """Save the trained weights, load them with weights_only=True into a fresh network, and
    compare predictions on the same batch: they must be identical."""
    from reference_net.model import build_model
    from reference_net.smoke import SMOKE

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, map_location=device, weights_only=True)
    fresh = build_model(SMOKE.net, seed=seed + 12345).to(device)
    fresh.load_state_dict(state)
    model.eval()
    fresh.eval()
    batch = _fixed_batch(torch, seed).to(device)
    with torch.no_grad():
        before = model(batch)
        after = fresh(batch)
    identical = bool(torch.equal(before, after))
    return {"ok": identical, "bytes": len(buffer.getvalue()),
            "max_abs_diff": (before - after).abs().max().item()}


def _agrees_with_cpu(torch: Any, build_model: Any, net: Any, device: str, seed: int) -> dict:
    """The same seed gives the same initial weights on both devices, and outputs that agree."""
    cpu_model = build_model(net, seed=seed).eval()
    dev_model = build_model(net, seed=seed).to(device).eval()
    same_init = all(
        torch.equal(a, b.cpu()) for a, b in zip(cpu_model.state_dict().values(),
                                                  dev_model.state_dict().values())
    )
    batch = _fixed_batch(torch, seed)
    with torch.no_grad(), full_float32(torch):
        diff = (cpu_model(batch) - dev_model(batch.to(device)).cpu()).abs().max().item()
    return {"ok": same_init and diff <= GPU_CPU_TOLERANCE, "same_initial_weights": same_init,
            "max_abs_diff": diff, "tolerance": GPU_CPU_TOLERANCE}


@contextlib.contextmanager
def full_float32(torch: Any):
    """No TF32 inside the block: Ampere and newer GPUs otherwise round convolution and matmul
    inputs to 10 bits, about 1e-2 off the CPU's float32, which is speed, not a fault."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.allow_tf32, matmul.allow_tf32)
    cudnn.allow_tf32 = matmul.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = saved


TASKS = {
    "ops": ops,
    "train": train,
}
