"""The operation-level proof: every operation the reference network trains with, forward and
backward, in float32 through the public APIs a student's code calls, against its definition.

Run inside the torch worker (`verify_tasks.ops`); imports torch only inside `run_proof`.

What is compared
----------------
For each operation, the same inputs (drawn in float32, so that they are exact in float64 too) go
through `torch.nn` modules *and* `torch.nn.functional` (a broken module, or a broken function under
a working module, both show), through `loss.backward()` (autograd) and through `torch.optim`, on
the device being proved. The reference is `reference_net.backward` / `reference_net.optim`,
computed in float64 on the CPU from the definitions, without autograd and without the kernels
being checked, so a broken kernel or a broken autograd cannot agree with itself.

- conv2d: nn.Conv2d and F.conv2d, 3 input channels, 4 filters of 3 x 3, padding 1, stride 1 and
  2, with bias: the output, and the gradients of the input, the weight and the bias.
- relu, max_pool2d, avg_pool2d (2 x 2 windows on 7 x 9 maps: floor mode), linear (20 -> 6,
  bias), cross_entropy (8 x 5 logits): output and input gradient (and weight, bias gradients).
- sgd (momentum 0.9, weight decay 0.01) and adam (defaults, lr 0.1): the parameters after each
  of three steps against the update rule written out.
- save_load: torch.save to a file, torch.load(weights_only=True), load_state_dict: every tensor
  bit for bit.

Error and tolerance
-------------------
error = max |float32 result - float64 reference| / max s, where s is, element by element, the
sum of the absolute values of the terms that make up the reference (the forward passes are
linear in each input, so s is the same reference computed on absolute values). For a sum of n
products, rounding in float32, in any order and with any blocking, is bounded by
gamma_n * s ~= n * u with u = 2**-24 (Higham, "Accuracy and Stability of Numerical Algorithms",
2nd ed., eq. 3.5 and Lemma 3.1). The tolerance of each comparison is SAFETY * n * u, with n the
number of rounded operations per result element stated at each comparison (SAFETY leaves room for
algorithms that transform the problem, such as Winograd convolution on a GPU). Selections (ReLU,
max pooling) are exact: tolerance one u. The checkpoint must be bit-identical: tolerance 0.

On a GPU or MPS (TF32 off) every comparison is also made against the CPU's float32 result, with
twice the tolerance (both are within one tolerance of the reference). Measured on a healthy
CPU build (torch 2.13): at most 4% of the tolerance (AvgPool2d 4.7e-8 of 1.2e-6, Linear 5.0e-8
of 1.4e-6, Conv2d 7.9e-8 of 6.7e-6, Adam 7.8e-8 of 5.7e-6; ReLU, MaxPool2d and the checkpoint
exact). The faults this guards against (a flipped kernel, a dropped channel or bias, a wrong
gradient scale, an optimizer that does not step) measure 10^4 to 10^7 times the tolerance.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from typing import Any, Callable, Optional

U = 2.0 ** -24  # unit roundoff of float32 (round to nearest): half the distance from 1 to the next
SAFETY = 4.0  # tolerance = SAFETY * n * U for n rounded operations per element

OPS = ("conv2d", "relu", "max_pool2d", "avg_pool2d", "linear", "cross_entropy", "sgd", "adam",
       "save_load")


def tolerance(n: float) -> float:
    """The tolerance for a result of n rounded float32 operations: SAFETY * n * u."""
    return SAFETY * n * U


class _Case:
    """One operation: inputs drawn once, its float32 run on a device, its float64 reference."""

    def __init__(self, torch: Any, generator: Any) -> None:
        self.torch = torch
        self.g = generator

    def randn(self, *shape: int, scale: float = 1.0):
        return self.torch.randn(*shape, generator=self.g, dtype=self.torch.float32) * scale

    def run(self, device: str) -> dict:  # part -> float32 tensor (or None: nothing came back)
        raise NotImplementedError

    def reference(self) -> dict:  # part -> (reference, scale, tolerance), float64 on the CPU
        raise NotImplementedError


def _leaf(t: Any, device: str):
    """A fresh leaf tensor on `device` that collects its gradient (never `t` itself: on the
    CPU `.to` returns the same tensor, and gradients would pile up across paths)."""
    return t.detach().to(device).clone().requires_grad_()


def _d(t: Any):
    return t.detach().double()


def _abs(*tensors: Any):
    return [t.abs() for t in tensors]


class Conv2dCase(_Case):
    N, C, H, W, K, F = 2, 3, 8, 7, 4, 3
    CONFIGS = ((1, 1), (2, 1))  # (stride, padding)

    def __init__(self, torch, g):
        super().__init__(torch, g)
        self.x = self.randn(self.N, self.C, self.H, self.W)
        self.w = self.randn(self.K, self.C, self.F, self.F)
        self.b = self.randn(self.K)
        self.grads = {}
        for stride, padding in self.CONFIGS:
            out_h = (self.H + 2 * padding - self.F) // stride + 1
            out_w = (self.W + 2 * padding - self.F) // stride + 1
            self.grads[stride] = self.randn(self.N, self.K, out_h, out_w)

    def run(self, device):
        torch, nn, F = self.torch, self.torch.nn, self.torch.nn.functional
        parts = {}
        for stride, padding in self.CONFIGS:
            for label in (f"nn.Conv2d, stride {stride}", f"F.conv2d, stride {stride}"):
                x = _leaf(self.x, device)
                if label.startswith("nn."):
                    layer = nn.Conv2d(self.C, self.K, self.F, stride=stride,
                                      padding=padding).to(device)
                    with torch.no_grad():
                        layer.weight.copy_(self.w)
                        layer.bias.copy_(self.b)
                    weight, bias = layer.weight, layer.bias
                    y = layer(x)
                else:
                    weight = _leaf(self.w, device)
                    bias = _leaf(self.b, device)
                    y = F.conv2d(x, weight, bias, stride=stride, padding=padding)
                (y * self.grads[stride].to(device)).sum().backward()
                parts[f"forward ({label})"] = y
                parts[f"input gradient ({label})"] = x.grad
                parts[f"weight gradient ({label})"] = weight.grad
                parts[f"bias gradient ({label})"] = bias.grad
        return parts

    def reference(self):
        from reference_net.backward import conv2d_backward, conv2d_forward

        x, w, b = _d(self.x), _d(self.w), _d(self.b)
        parts = {}
        for stride, padding in self.CONFIGS:
            g = _d(self.grads[stride])
            y = conv2d_forward(x, w, b, stride, padding)
            y_s = conv2d_forward(*_abs(x, w, b), stride, padding)
            grads = conv2d_backward(x, w, g, stride, padding)
            scales = conv2d_backward(*_abs(x, w, g), stride, padding)
            terms = self.N * g.shape[-2] * g.shape[-1]  # dW and db sum over the batch and positions
            for label in (f"nn.Conv2d, stride {stride}", f"F.conv2d, stride {stride}"):
                parts[f"forward ({label})"] = (y, y_s, tolerance(self.C * self.F * self.F + 1))
                parts[f"input gradient ({label})"] = (grads[0], scales[0],
                                                     tolerance(self.K * self.F * self.F))
                parts[f"weight gradient ({label})"] = (grads[1], scales[1], tolerance(terms))
                parts[f"bias gradient ({label})"] = (grads[2], scales[2], tolerance(terms))
        return parts


class _ElementwiseCase(_Case):
    """A layer without weights: output and input gradient, through a module and a function."""

    SHAPE = (2, 3, 7, 9)
    LABELS: tuple[str, str] = ("", "")

    def __init__(self, torch, g):
        super().__init__(torch, g)
        self.x = self.randn(*self.SHAPE)
        self.grad = self.randn(*self.out_shape())

    def out_shape(self):
        return self.SHAPE

    def apply(self, label, x):
        raise NotImplementedError

    def run(self, device):
        parts = {}
        for label in self.LABELS:
            x = _leaf(self.x, device)
            y = self.apply(label, x)
            (y * self.grad.to(device)).sum().backward()
            parts[f"forward ({label})"] = y
            parts[f"input gradient ({label})"] = x.grad
        return parts


class ReluCase(_ElementwiseCase):
    LABELS = ("nn.ReLU", "F.relu")

    def apply(self, label, x):
        return self.torch.nn.ReLU()(x) if label == "nn.ReLU" else self.torch.nn.functional.relu(x)

    def reference(self):
        from reference_net.backward import relu_backward, relu_forward

        x, g = _d(self.x), _d(self.grad)
        forward = (relu_forward(x), x.abs(), tolerance(1 / SAFETY))  # a selection: exact
        backward = (relu_backward(x, g), g.abs(), tolerance(1 / SAFETY))
        return {p: v for label in self.LABELS for p, v in
                ((f"forward ({label})", forward), (f"input gradient ({label})", backward))}


class _PoolCase(_ElementwiseCase):
    KERNEL = 2

    def out_shape(self):
        n, c, h, w = self.SHAPE
        return n, c, h // self.KERNEL, w // self.KERNEL


class MaxPoolCase(_PoolCase):
    LABELS = ("nn.MaxPool2d", "F.max_pool2d")

    def apply(self, label, x):
        if label == "nn.MaxPool2d":
            return self.torch.nn.MaxPool2d(self.KERNEL)(x)
        return self.torch.nn.functional.max_pool2d(x, self.KERNEL)

    def reference(self):
        from reference_net.backward import max_pool2d_backward, max_pool2d_forward

        x, g = _d(self.x), _d(self.grad)
        forward = (max_pool2d_forward(x, self.KERNEL), max_pool2d_forward(x.abs(), self.KERNEL),
                   tolerance(1 / SAFETY))  # a selection: exact
        backward = (max_pool2d_backward(x, g, self.KERNEL),
                    max_pool2d_backward(x, g.abs(), self.KERNEL), tolerance(1 / SAFETY))
        return {p: v for label in self.LABELS for p, v in
                ((f"forward ({label})", forward), (f"input gradient ({label})", backward))}


class AvgPoolCase(_PoolCase):
    LABELS = ("nn.AvgPool2d", "F.avg_pool2d")

    def apply(self, label, x):
        if label == "nn.AvgPool2d":
            return self.torch.nn.AvgPool2d(self.KERNEL)(x)
        return self.torch.nn.functional.avg_pool2d(x, self.KERNEL)

    def reference(self):
        from reference_net.backward import avg_pool2d_backward, avg_pool2d_forward

        x, g = _d(self.x), _d(self.grad)
        n = self.KERNEL * self.KERNEL + 1  # F*F additions and one division
        forward = (avg_pool2d_forward(x, self.KERNEL), avg_pool2d_forward(x.abs(), self.KERNEL),
                   tolerance(n))
        backward = (avg_pool2d_backward(x, g, self.KERNEL),
                    avg_pool2d_backward(x, g.abs(), self.KERNEL), tolerance(n))
        return {p: v for label in self.LABELS for p, v in
                ((f"forward ({label})", forward), (f"input gradient ({label})", backward))}


class LinearCase(_Case):
    N, IN, OUT = 5, 20, 6
    LABELS = ("nn.Linear", "F.linear")

    def __init__(self, torch, g):
        super().__init__(torch, g)
        self.x = self.randn(self.N, self.IN)
        self.w = self.randn(self.OUT, self.IN)
        self.b = self.randn(self.OUT)
        self.grad = self.randn(self.N, self.OUT)

    def run(self, device):
        torch = self.torch
        parts = {}
        for label in self.LABELS:
            x = _leaf(self.x, device)
            if label == "nn.Linear":
                layer = torch.nn.Linear(self.IN, self.OUT).to(device)
                with torch.no_grad():
                    layer.weight.copy_(self.w)
                    layer.bias.copy_(self.b)
                weight, bias = layer.weight, layer.bias
                y = layer(x)
            else:
                weight = _leaf(self.w, device)
                bias = _leaf(self.b, device)
                y = torch.nn.functional.linear(x, weight, bias)
            (y * self.grad.to(device)).sum().backward()
            parts[f"forward ({label})"] = y
            parts[f"input gradient ({label})"] = x.grad
            parts[f"weight gradient ({label})"] = weight.grad
            parts[f"bias gradient ({label})"] = bias.grad
        return parts

    def reference(self):
        from reference_net.backward import linear_backward, linear_forward

        x, w, b, g = _d(self.x), _d(self.w), _d(self.b), _d(self.grad)
        y, y_s = linear_forward(x, w, b), linear_forward(*_abs(x, w, b))
        grads = linear_backward(x, w, g)
        scales = linear_backward(*_abs(x, w, g))
        parts = {}
        for label in self.LABELS:
            parts[f"forward ({label})"] = (y, y_s, tolerance(self.IN + 1))
            parts[f"input gradient ({label})"] = (grads[0], scales[0], tolerance(self.OUT))
            parts[f"weight gradient ({label})"] = (grads[1], scales[1], tolerance(self.N))
            parts[f"bias gradient ({label})"] = (grads[2], scales[2], tolerance(self.N))
        return parts


class CrossEntropyCase(_Case):
    N, CLASSES = 8, 5
    LABELS = ("F.cross_entropy", "nn.CrossEntropyLoss")

    def __init__(self, torch, g):
        super().__init__(torch, g)
        self.z = self.randn(self.N, self.CLASSES, scale=3.0)
        self.y = torch.randint(self.CLASSES, (self.N,), generator=g)

    def run(self, device):
        torch = self.torch
        parts = {}
        for label in self.LABELS:
            z = _leaf(self.z, device)
            y = self.y.to(device)
            loss = (torch.nn.functional.cross_entropy(z, y) if label == "F.cross_entropy"
                    else torch.nn.CrossEntropyLoss()(z, y))
            loss.backward()
            parts[f"loss ({label})"] = loss
            parts[f"logits gradient ({label})"] = z.grad
        return parts

    def reference(self):
        from reference_net.backward import cross_entropy_backward, cross_entropy_forward

        z = _d(self.z)
        loss = cross_entropy_forward(z, self.y)
        # Magnitude of the terms: log-sum-exp and the target logit, each at most max|z| + log C.
        loss_scale = (z.abs().amax(dim=1) + math.log(self.CLASSES)).mean() * 2
        grad = cross_entropy_backward(z, self.y)
        grad_scale = torch_full_like(grad, 2.0 / self.N)  # (softmax + onehot) / N <= 2 / N
        parts = {}
        for label in self.LABELS:
            # exp per class, their sum, a log, a subtraction, then the mean over the batch
            parts[f"loss ({label})"] = (loss, loss_scale, tolerance(self.CLASSES + self.N + 4))
            # softmax: exp, sum over classes, division; minus onehot; divided by N
            parts[f"logits gradient ({label})"] = (grad, grad_scale, tolerance(self.CLASSES + 6))
        return parts


def torch_full_like(t: Any, value: float):
    return t.new_full(t.shape, value)


class _OptimizerCase(_Case):
    STEPS = 3
    SHAPES = ((4, 5), (5,))
    NAME = ""
    OPS_PER_STEP = 1  # rounded operations per element and step

    def __init__(self, torch, g):
        super().__init__(torch, g)
        self.params = [self.randn(*s) for s in self.SHAPES]
        self.grads = [[self.randn(*s) for s in self.SHAPES] for _ in range(self.STEPS)]

    def make(self, params):
        raise NotImplementedError

    def rule(self, params, grads):
        raise NotImplementedError

    def run(self, device):
        torch = self.torch
        params = [torch.nn.Parameter(p.to(device).clone()) for p in self.params]
        optimizer = self.make(params)
        parts = {}
        for t, step_grads in enumerate(self.grads, start=1):
            optimizer.zero_grad()
            for p, g in zip(params, step_grads):
                p.grad = g.to(device).clone()
            optimizer.step()
            parts[f"parameters after step {t} ({self.NAME})"] = torch.cat(
                [p.detach().reshape(-1) for p in params])
        return parts

    def reference(self):
        torch = self.torch
        start = [_d(p) for p in self.params]
        history = self.rule(start, [[_d(g) for g in gs] for gs in self.grads])
        flat = [torch.cat([p.reshape(-1) for p in step]) for step in history]
        previous = torch.cat([p.reshape(-1) for p in start])
        scale = previous.abs()
        parts = {}
        for t, after in enumerate(flat, start=1):
            scale = scale + (after - previous).abs()  # |p0| + the path travelled so far
            previous = after
            parts[f"parameters after step {t} ({self.NAME})"] = (
                after, scale.clone(), tolerance(self.OPS_PER_STEP * t))
        return parts


class SgdCase(_OptimizerCase):
    NAME = "torch.optim.SGD, momentum 0.9"
    SETTINGS = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}
    OPS_PER_STEP = 6  # weight decay (2), momentum buffer (2), the step (2)

    def make(self, params):
        return self.torch.optim.SGD(params, **self.SETTINGS)

    def rule(self, params, grads):
        from reference_net.optim import sgd_rule

        return sgd_rule(params, grads, **self.SETTINGS)


class AdamCase(_OptimizerCase):
    NAME = "torch.optim.Adam"
    SETTINGS = {"lr": 0.1}
    OPS_PER_STEP = 12  # two moments (5), bias corrections, sqrt, eps, division, the step

    def make(self, params):
        return self.torch.optim.Adam(params, **self.SETTINGS)

    def rule(self, params, grads):
        from reference_net.optim import adam_rule

        return adam_rule(params, grads, **self.SETTINGS)


class SaveLoadCase(_Case):
    """torch.save to a file, torch.load(weights_only=True), load_state_dict: bit for bit."""

    def __init__(self, torch, g):
        super().__init__(torch, g)
        self.state = {"conv.weight": self.randn(4, 3, 3, 3), "conv.bias": self.randn(4),
                      "fc.weight": self.randn(2, 16), "fc.bias": self.randn(2)}

    def _model(self, device):
        nn = self.torch.nn
        model = nn.Module()
        model.conv = nn.Conv2d(3, 4, 3)
        model.fc = nn.Linear(16, 2)
        return model.to(device)

    def run(self, device):
        torch = self.torch
        model = self._model(device)
        model.load_state_dict({k: v.to(device) for k, v in self.state.items()})
        with tempfile.TemporaryDirectory(prefix="cnnsetup-") as folder:
            path = os.path.join(folder, "checkpoint.pt")
            torch.save(model.state_dict(), path)
            loaded = torch.load(path, map_location=device, weights_only=True)
        fresh = self._model(device)
        fresh.load_state_dict(loaded)
        parts = {}
        for key in self.state:
            parts[f"{key} (torch.load)"] = loaded.get(key)
            parts[f"{key} (load_state_dict)"] = fresh.state_dict()[key]
        return parts

    def reference(self):
        parts = {}
        for key, value in self.state.items():
            for how in ("torch.load", "load_state_dict"):
                parts[f"{key} ({how})"] = (_d(value), _d(value).abs(), 0.0)
        return parts


CASES = {"conv2d": Conv2dCase, "relu": ReluCase, "max_pool2d": MaxPoolCase,
         "avg_pool2d": AvgPoolCase, "linear": LinearCase, "cross_entropy": CrossEntropyCase,
         "sgd": SgdCase, "adam": AdamCase, "save_load": SaveLoadCase}


def _compare(torch: Any, got: Any, ref: Any, scale: Any, tol: float) -> dict:
    """One comparison: {error, tolerance, ok} (+ problem: "missing" | "shape" | "not_finite")."""
    if got is None:
        # Nothing came back (no gradient reached this tensor): as if it were all zeros.
        got_64, problem = torch.zeros_like(ref), "missing"
    else:
        got_64, problem = got.detach().to("cpu", torch.float64), None
        if got_64.shape != ref.shape:
            return {"error": None, "tolerance": tol, "ok": False, "problem": "shape",
                    "shape": list(got_64.shape), "expected_shape": list(ref.shape)}
    denominator = scale.abs().max().item() if scale.numel() else 0.0
    error = (got_64 - ref).abs().max().item() / (denominator or 1.0) if ref.numel() else 0.0
    if not math.isfinite(error):
        return {"error": None, "tolerance": tol, "ok": False, "problem": "not_finite"}
    result = {"error": error, "tolerance": tol, "ok": error <= tol}
    if problem:
        result.update(problem=problem, ok=False)
    return result


def _ratio(part: dict) -> float:
    if part["error"] is None or part.get("problem"):
        return math.inf
    if part["tolerance"] == 0:
        return math.inf if part["error"] > 0 else 0.0
    return part["error"] / part["tolerance"]


def check_operation(torch: Any, name: str, device: str = "cpu", seed: int = 0) -> dict:
    """Prove one operation on `device`: {op, ok, worst {part, error, tolerance}, parts [...]}.

    Every part is {part, error, tolerance, ok} (error is None when the result was not finite or
    had the wrong shape; then `problem` says which); on a device other than the CPU, each part
    also has `cpu_error` and `cpu_tolerance`, its float32 result against the CPU's."""
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(seed * 1000 + OPS.index(name))
    case = CASES[name](torch, generator)
    from cnnsetup.machine.verify_tasks import full_float32  # no TF32: one rule for every check

    with full_float32(torch):
        got = case.run(device)
        on_cpu = case.run("cpu") if device != "cpu" else None
    reference = case.reference()
    parts = []
    for part, (ref, scale, tol) in reference.items():
        result = {"part": part, **_compare(torch, got.get(part), ref, scale, tol)}
        if on_cpu is not None and on_cpu.get(part) is not None:
            against_cpu = _compare(torch, got.get(part), on_cpu[part].detach().double().cpu(),
                                   scale, 2 * tol)
            result.update(cpu_error=against_cpu["error"], cpu_tolerance=2 * tol)
            if not against_cpu["ok"]:
                result["ok"] = False
                result.setdefault("problem", "cpu")
        parts.append(result)
    worst = max(parts, key=lambda p: max(_ratio(p), _cpu_ratio(p)))
    return {"op": name, "device": device, "ok": all(p["ok"] for p in parts),
            "worst": {k: worst.get(k) for k in ("part", "error", "tolerance", "problem",
                                                "cpu_error", "cpu_tolerance") if k in worst},
            "parts": parts, "seconds": round(time.perf_counter() - started, 4)}


def _cpu_ratio(part: dict) -> float:
    if "cpu_error" not in part:
        return 0.0
    if part["cpu_error"] is None:
        return math.inf
    return part["cpu_error"] / part["cpu_tolerance"] if part["cpu_tolerance"] else math.inf


def run_proof(device: str = "cpu", seed: int = 0,
              heartbeat: Optional[Callable[[str], None]] = None) -> list[dict]:
    """Every operation of `OPS` on `device`, in order; an operation that raises is a failed
    check with the exception's text (`error`), and the others still run."""
    import traceback

    import torch

    results = []
    for name in OPS:
        if heartbeat:
            heartbeat(name)
        try:
            results.append(check_operation(torch, name, device, seed))
        except Exception as exc:  # a broken build raises in odd places: that is the finding
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            results.append({"op": name, "device": device, "ok": False, "error": text,
                            "worst": None, "parts": []})
    return results
