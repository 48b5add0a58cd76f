"""Adam, written out: the update rule of Kingma & Ba (2015), as torch.optim.Adam computes it.

Why not torch.optim.Adam itself: the first optimizer a process creates imports torch._dynamo
(torch.compile's machinery), about a second and a half on a 2-core laptop, longer than the whole
smoke training. The smoke test trains once per process, so it pays that every time; these dozen
lines do the same arithmetic (checked against torch.optim.Adam in the tests) without it.
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
