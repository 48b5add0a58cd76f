"""The fully connected layer and ReLU, by definition (the tests compare them with nn.Linear, nn.ReLU).

FC: every output is a weighted sum of every input plus a bias, y = Wx + b, with W of shape
(n_out, n_in): (n_in + 1) * n_out parameters. ReLU: f(x) = max(0, x), element by element; it has no
parameters and, like pooling, does not count as a layer of the network.
"""

from __future__ import annotations

import torch


def fully_connected(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
                    ) -> torch.Tensor:
    """y = Wx + b for each row x of `x` (N, n_in); weight (n_out, n_in), bias (n_out,)."""
    y = (x.unsqueeze(1) * weight).sum(dim=-1)  # y_i = sum_j W_ij x_j
    return y + bias if bias is not None else y


def relu(x: torch.Tensor) -> torch.Tensor:
    """max(0, x), element by element."""
    return torch.where(x > 0, x, torch.zeros_like(x))
