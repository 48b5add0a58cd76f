"""The optimisers' update rules, written out: what torch.optim.SGD and torch.optim.Adam compute.

`sgd_rule` and `adam_rule` are the reference `cnnsetup verify` compares torch.optim with (in
float64, step by step). `Adam` is the same arithmetic as an optimiser object, for code that wants
Adam without torch.optim's one-off start-up cost (its first use imports torch._dynamo).
"""

from __future__ import annotations

import math
from typing import Iterable

import torch


class Adam:
    """Adam with bias correction, no weight decay; `param_groups[0]["lr"]` may change per step."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.param_groups = [{"lr": lr, "betas": betas, "eps": eps}]
        self.steps = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]  # first moment, m
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]  # second moment, v

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        self.steps += 1
        correction1 = 1 - beta1 ** self.steps
        correction2_sqrt = math.sqrt(1 - beta2 ** self.steps)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            g = p.grad
            m.lerp_(g, 1 - beta1)  # m = beta1 * m + (1 - beta1) * g
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # v = beta2 * v + (1 - beta2) * g^2
            denom = (v.sqrt() / correction2_sqrt).add_(eps)
            p.addcdiv_(m, denom, value=-lr / correction1)  # p -= lr * m_hat / (sqrt(v_hat) + eps)


def sgd_rule(params: list[torch.Tensor], grads: list[list[torch.Tensor]], *, lr: float,
             momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
             nesterov: bool = False) -> list[list[torch.Tensor]]:
    """Stochastic gradient descent with momentum, step by step, as torch.optim.SGD documents it.

    `params`: the starting tensors; `grads[t][i]`: the gradient of parameter i at step t.
    Returns the parameters after each step (`[t][i]`), new tensors; the inputs are not changed.
    The rule (Sutskever et al. 2013, in PyTorch's form): g <- g + weight_decay * p; the buffer
    b <- g at the first step, else b <- momentum * b + (1 - dampening) * g; with nesterov the
    direction is g + momentum * b, else b; p <- p - lr * direction."""
    current = [p.clone() for p in params]
    buffers: list[torch.Tensor | None] = [None] * len(params)
    history = []
    for step_grads in grads:
        for i, g in enumerate(step_grads):
            g = g + weight_decay * current[i]
            if momentum:
                buffers[i] = g.clone() if buffers[i] is None else \
                    momentum * buffers[i] + (1 - dampening) * g
                g = g + momentum * buffers[i] if nesterov else buffers[i]
            current[i] = current[i] - lr * g
        history.append([p.clone() for p in current])
    return history


def adam_rule(params: list[torch.Tensor], grads: list[list[torch.Tensor]], *, lr: float,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
              weight_decay: float = 0.0) -> list[list[torch.Tensor]]:
    """Adam (Kingma & Ba 2015, Algorithm 1), step by step, with PyTorch's L2 weight decay.

    Same arguments and result as `sgd_rule`. At step t = 1, 2, ...: g <- g + weight_decay * p;
    m <- beta1 * m + (1 - beta1) * g; v <- beta2 * v + (1 - beta2) * g^2 (m, v start at 0);
    m_hat = m / (1 - beta1^t); v_hat = v / (1 - beta2^t);
    p <- p - lr * m_hat / (sqrt(v_hat) + eps)."""
    beta1, beta2 = betas
    current = [p.clone() for p in params]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    history = []
    for t, step_grads in enumerate(grads, start=1):
        for i, g in enumerate(step_grads):
            g = g + weight_decay * current[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat = m[i] / (1 - beta1 ** t)
            v_hat = v[i] / (1 - beta2 ** t)
            current[i] = current[i] - lr * m_hat / (v_hat.sqrt() + eps)
        history.append([p.clone() for p in current])
    return history
