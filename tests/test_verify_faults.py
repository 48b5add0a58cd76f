"""`verify` must fail on a broken torch. Each fault below is injected the way a broken build or a
bad kernel would behave: a `sitecustomize.py` on PYTHONPATH that patches torch as soon as it is
imported (in whichever process imports it, and only there). The proof must then fail on exactly
the operations the fault touches, and pass with no fault.

The faults run in forked copies of one process that has imported torch (the proof alone, one copy
per fault) to keep the suite fast; one goes through a real worker with the injector, and three
together through the whole `cnnsetup verify` command as a user would run it.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: install the CPU build (see README.md)")

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cnnsetup.machine import torch_probe
from cnnsetup.machine.proof import OPS
from tests.conftest import REPO_ROOT, run_cnnsetup

LAYERS = {"conv2d", "relu", "max_pool2d", "avg_pool2d", "linear", "cross_entropy"}

# What every fault does to torch (the body of `_break(torch)`), and the checks it must fail.
FAULTS = {
    "conv_flipped_kernel": ("""
        F = torch.nn.functional
        real = F.conv2d
        def conv2d(input, weight, bias=None, *args, **kwargs):
            if input.dtype == torch.float32:  # float64 stays right, as in the reported build
                weight = weight.flip(-1, -2)  # a true convolution instead of cross-correlation
            return real(input, weight, bias, *args, **kwargs)
        F.conv2d = conv2d
    """, {"conv2d"}),
    "conv_last_channel_ignored": ("""
        real = torch.nn.Conv2d.forward
        def forward(self, input):  # the module only: F.conv2d itself stays right
            if input.dtype == torch.float32 and input.shape[1] > 1:
                input = torch.cat([input[:, :-1], torch.zeros_like(input[:, -1:])], dim=1)
            return real(self, input)
        torch.nn.Conv2d.forward = forward
    """, {"conv2d"}),
    "conv_bias_ignored": ("""
        F = torch.nn.functional
        real = F.conv2d
        def conv2d(input, weight, bias=None, *args, **kwargs):
            if input.dtype == torch.float32:
                bias = None
            return real(input, weight, bias, *args, **kwargs)
        F.conv2d = conv2d
    """, {"conv2d"}),
    "conv_output_shifted": ("""
        F = torch.nn.functional
        real = F.conv2d
        def conv2d(*args, **kwargs):
            out = real(*args, **kwargs)
            return torch.roll(out, 1, dims=-1) if out.dtype == torch.float32 else out
        F.conv2d = conv2d
    """, {"conv2d"}),
    "conv_weight_grad_x1000": ("""
        F = torch.nn.functional
        real = F.conv2d
        class Scale(torch.autograd.Function):
            @staticmethod
            def forward(ctx, w):
                return w.view_as(w)
            @staticmethod
            def backward(ctx, grad):
                return grad * 1000
        def conv2d(input, weight, *args, **kwargs):
            return real(input, Scale.apply(weight), *args, **kwargs)
        F.conv2d = conv2d
    """, {"conv2d"}),
    "conv_weight_grad_noise": ("""
        F = torch.nn.functional
        real = F.conv2d
        class Noise(torch.autograd.Function):
            @staticmethod
            def forward(ctx, w):
                return w.view_as(w)
            @staticmethod
            def backward(ctx, grad):  # plus noise as large as the gradient itself
                return grad + torch.randn_like(grad) * grad.pow(2).mean().sqrt()
        def conv2d(input, weight, *args, **kwargs):
            return real(input, Noise.apply(weight), *args, **kwargs)
        F.conv2d = conv2d
    """, {"conv2d"}),
    "conv_no_input_grad": ("""
        F = torch.nn.functional
        real = F.conv2d
        def conv2d(input, *args, **kwargs):
            return real(input.detach(), *args, **kwargs)
        F.conv2d = conv2d
    """, {"conv2d"}),
    "conv_weight_grad_sign_flipped": ("""
        F = torch.nn.functional
        real = F.conv2d
        def conv2d(input, weight, *args, **kwargs):
            if weight.requires_grad:
                weight = weight.view_as(weight)
                weight.register_hook(lambda grad: -grad)
            return real(input, weight, *args, **kwargs)
        F.conv2d = conv2d
    """, {"conv2d"}),
    "relu_identity": ("""
        torch.nn.functional.relu = lambda input, inplace=False: input
    """, {"relu"}),
    "maxpool_top_left": ("""
        F = torch.nn.functional
        real = F.max_pool2d
        def max_pool2d(input, kernel_size, stride=None, *args, **kwargs):
            out = real(input, kernel_size, stride, *args, **kwargs)
            k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
            corner = input[..., ::k, ::k][..., :out.shape[-2], :out.shape[-1]]
            return corner
        F.max_pool2d = max_pool2d
    """, {"max_pool2d"}),
    "adam_never_steps": ("""
        torch.optim.Adam.step = lambda self, closure=None: None
    """, {"adam"}),
    "sgd_never_steps": ("""
        torch.optim.SGD.step = lambda self, closure=None: None
    """, {"sgd"}),
    "backward_does_nothing": ("""
        torch.Tensor.backward = lambda self, *args, **kwargs: None
    """, LAYERS),
    "grads_zeros": ("""
        real = torch.Tensor.backward
        def backward(self, gradient=None, *args, **kwargs):
            return real(self, torch.zeros_like(self), *args, **kwargs)
        torch.Tensor.backward = backward
    """, LAYERS),
    "linear_returns_zeros": ("""
        F = torch.nn.functional
        real = F.linear
        F.linear = lambda input, weight, bias=None: real(input, weight, bias) * 0
    """, {"linear"}),
    "load_alters_weights": ("""
        real = torch.load
        def load(*args, **kwargs):
            loaded = real(*args, **kwargs)
            for value in (loaded.values() if isinstance(loaded, dict) else ()):
                if isinstance(value, torch.Tensor) and value.is_floating_point():
                    value.mul_(1 + 1e-3)
            return loaded
        torch.load = load
    """, {"save_load"}),
}

INJECTOR = '''
"""Test fault injector: breaks torch ({names}) as soon as it is imported."""
import importlib.abc
import importlib.machinery
import sys

{functions}

def _break(torch):
    for fault in ({calls}):
        fault(torch)


class _AfterTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        real_exec = spec.loader.exec_module

        def exec_module(module):
            real_exec(module)
            import torch.optim  # noqa: F401
            _break(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _AfterTorch())
'''


def write_injector(folder: Path, *faults: str) -> Path:
    """A sitecustomize.py in `folder` that breaks torch as each of FAULTS[fault] says (each in a
    function of its own, so that one fault's names never rebind another's); returns folder."""
    folder.mkdir(parents=True, exist_ok=True)
    functions = "\n\n".join(
        f"def _{fault}(torch):\n" + textwrap.indent(textwrap.dedent(FAULTS[fault][0]).strip(),
                                                   "    ") + "\n"
        for fault in faults)
    calls = "".join(f"_{fault}, " for fault in faults)
    (folder / "sitecustomize.py").write_text(
        INJECTOR.format(names=", ".join(faults), functions=functions, calls=calls),
        encoding="utf-8")
    return folder


def _env(folder: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{folder}{os.pathsep}{REPO_ROOT}"
    return env


def _proof(folder: Path) -> dict:
    """The proof task alone, in a worker that has the injector on its PYTHONPATH."""
    run = torch_probe.run_tasks([{"task": "ops", "id": "ops", "args": {"device": "cpu"}}],
                                timeouts=[240], env=_env(folder))
    reply = run.reply("ops")
    assert reply is not None and reply["ok"], run.failure_text() or reply
    return {check["op"]: check for check in reply["result"]["checks"]}


# Every fault in a fresh process would import torch (and torch._dynamo, for torch.optim) once
# per fault: about 3 s each. Instead one process imports them once and forks a copy per fault,
# two at a time (one torch thread each); the copy applies the same patch the injector would,
# runs the proof, and reports.
FORKING_RUNNER = r"""
import collections, json, os, sys, textwrap, traceback
import torch
from cnnsetup.machine.proof import run_proof
from cnnsetup.machine.verify_tasks import warm_optimizers, _warming
warm_optimizers(torch)
_warming[0].join()
faults = json.loads(sys.stdin.read())
results, running = {}, collections.deque()


def start(name, body):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            torch.set_num_threads(1)
            namespace = {}
            exec("def _break(torch):\n" + textwrap.indent(textwrap.dedent(body), "    "),
                 namespace)
            namespace["_break"](torch)
            checks = run_proof("cpu")
            with os.fdopen(write_end, "w") as out:
                out.write(json.dumps(checks))
        except BaseException:  # no answer for this fault; the reason on stderr
            traceback.print_exc()
        finally:
            os._exit(0)
    os.close(write_end)
    running.append((name, pid, read_end))


def finish():
    name, pid, read_end = running.popleft()
    with os.fdopen(read_end) as answer:
        text = answer.read()
    os.waitpid(pid, 0)
    results[name] = json.loads(text) if text else None


for name, body in faults.items():
    if len(running) == 2:
        finish()
    start(name, body)
while running:
    finish()
print(json.dumps(results))
"""


# One fault through the injector in a real worker (the exact set of layers it breaks); three
# more through the whole `cnnsetup verify` at once (the exact set of checks that then fail).
THROUGH_INJECTOR = ("grads_zeros",)
CAN_FORK = sys.platform.startswith("linux")  # macOS forbids much after fork; Windows has none
HEALTHY = "healthy"  # the forked copy that patches nothing: the runner's own baseline


@pytest.fixture(scope="module")
def proofs(tmp_path_factory) -> dict:
    """{"injected": {fault: checks}, "forked": {fault or HEALTHY: checks}}: a fault in a real
    worker with the injector on PYTHONPATH, beside every fault (and no fault) in forked copies
    of one process on Linux, elsewhere each in a worker with the injector."""
    root = tmp_path_factory.mktemp("faults")
    folders = {f: write_injector(root / f, f) for f in THROUGH_INJECTOR}
    with ThreadPoolExecutor(max_workers=2) as pool:
        workers = pool.map(_proof, folders.values())
        forked = {}
        if CAN_FORK:
            bodies = {HEALTHY: "pass", **{f: body for f, (body, _) in FAULTS.items()}}
            done = subprocess.run([sys.executable, "-c", FORKING_RUNNER], capture_output=True,
                                  text=True, input=json.dumps(bodies), env=_env(root),
                                  timeout=600)
            assert done.returncode == 0, done.stderr[-3000:]
            answers = json.loads(done.stdout.splitlines()[-1])
            assert None not in answers.values(), (answers, done.stderr[-3000:])
            forked = {f: {c["op"]: c for c in checks} for f, checks in answers.items()}
        injected = dict(zip(folders, workers))
    if HEALTHY not in forked:
        healthy = root / HEALTHY
        healthy.mkdir()
        forked[HEALTHY] = _proof(healthy)
    for fault in FAULTS:
        if fault not in forked:  # no fork on this platform: one worker per fault
            forked[fault] = _proof(write_injector(root / fault, fault))
    return {"injected": injected, "forked": forked}


def _assert_fails_exactly(checks: dict, fault: str) -> None:
    failed = {op for op, check in checks.items() if not check["ok"]}
    assert failed == FAULTS[fault][1], {op: checks[op]["worst"] for op in failed | FAULTS[fault][1]}
    for op in failed:  # by orders of magnitude, not by a hair
        worst = checks[op]["worst"]
        if worst.get("error") is not None and not worst.get("problem"):
            assert worst["error"] > 100 * worst["tolerance"], (op, worst)


def test_a_healthy_torch_passes_every_check_with_a_wide_margin(proofs):
    # The same runner with no patch: every failure the faults below cause is theirs. (A real
    # worker's healthy proof, with the same margin, is in test_verify's run of the command.)
    checks = proofs["forked"][HEALTHY]
    assert list(checks) == list(OPS)
    for op, check in checks.items():
        assert check["ok"], check
        worst = check["worst"]
        # Measured margin: a healthy build stays far below its float32 rounding tolerance.
        assert worst["error"] <= worst["tolerance"] / 5, (op, worst)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_fails_exactly_the_checks_it_breaks(proofs, fault):
    _assert_fails_exactly(proofs["forked"][fault], fault)


@pytest.mark.parametrize("fault", THROUGH_INJECTOR)
def test_the_injector_on_pythonpath_breaks_torch_in_the_worker(proofs, fault):
    _assert_fails_exactly(proofs["injected"][fault], fault)


# Faults of three kinds (a layer, an optimizer, the checkpoint) injected together into one run
# of the command: each check is its own, so each must fail on its own fault, the others pass.
THROUGH_VERIFY = {
    "conv_flipped_kernel": "verify.conv2d.cpu",
    "adam_never_steps": "verify.adam.cpu",
    "load_alters_weights": "verify.save_load.cpu",
}


@pytest.mark.slow
def test_verify_exits_1_naming_each_broken_operation_with_the_reinstall_fix(tmp_path):
    folder = write_injector(tmp_path / "inject", *THROUGH_VERIFY)
    done = run_cnnsetup("verify", "--device", "cpu", "--json",
                        env={"PYTHONPATH": f"{folder}:{REPO_ROOT}"}, timeout=300)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    checks = {c["id"]: c for c in report["checks"]}
    for fault, check_id in THROUGH_VERIFY.items():
        check = checks[check_id]
        assert check["status"] == "fail", (fault, check)
        assert "differs from the definition" in check["summary"], (fault, check)
        assert check["worst_error"] > 100 * check["tolerance"], (fault, check)
        assert "torch-command" in check["fix"] or "pip install" in check["fix"], check["fix"]
    failed = {f"verify.{op}.cpu" for op in OPS if checks[f"verify.{op}.cpu"]["status"] == "fail"}
    assert failed == set(THROUGH_VERIFY.values())  # the other operations still run and pass
