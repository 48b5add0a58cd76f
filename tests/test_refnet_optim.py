"""The written-out Adam does what torch.optim.Adam does, step for step."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: install the CPU build (see README.md)")

import torch

from reference_net.model import build_model
from reference_net.optim import Adam


def test_written_out_adam_matches_torch_adam_over_many_steps():
    ours_model = build_model(seed=3)
    torch_model = build_model(seed=3)
    ours = Adam(ours_model.parameters(), lr=1e-2)
    theirs = torch.optim.Adam(torch_model.parameters(), lr=1e-2, foreach=False)
    generator = torch.Generator().manual_seed(0)
    for step in range(25):
        x = torch.randn(8, 3, 16, 16, generator=generator)
        y = torch.randint(0, 4, (8,), generator=generator)
        for model, optimizer in ((ours_model, ours), (torch_model, theirs)):
            for group in optimizer.param_groups:
                group["lr"] = 1e-2 * (1 - step / 25)
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    for a, b in zip(ours_model.parameters(), torch_model.parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)


def test_zero_grad_without_set_to_none_zeroes_in_place():
    model = build_model(seed=0)
    optimizer = Adam(model.parameters())
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    optimizer.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
