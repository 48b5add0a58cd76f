"""The pooling family, each written from its definition as an `nn.Module`.

A pooling layer slides a window over each feature map on its own (channels never mix) and
replaces every window by one number: its maximum, its average or its sum. It has no parameters.
Global pooling takes the whole map as one window; adaptive pooling chooses the windows so that the
output has a fixed size; spatial pyramid pooling (He et al. 2014) joins several adaptive poolings
into one vector whose length does not depend on the input size.

The tests compare each against PyTorch where PyTorch has the same thing.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_REDUCE = {
    "max": lambda t, dims: t.amax(dim=dims),
    "avg": lambda t, dims: t.mean(dim=dims),
    "sum": lambda t, dims: t.sum(dim=dims),
}


def windows(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H_out, W_out, F, F): every F x F window, S apart (no copy)."""
    return x.unfold(2, kernel, stride).unfold(3, kernel, stride)


class Pool2d(nn.Module):
    """F x F windows, S apart, each reduced to its max / average / sum; no padding."""

    def __init__(self, kind: str, kernel_size: int, stride: int | None = None) -> None:
        super().__init__()
        if kind not in _REDUCE:
            raise ValueError(f"kind must be one of {tuple(_REDUCE)}, not {kind!r}")
        self.kind, self.kernel_size = kind, kernel_size
        self.stride = kernel_size if stride is None else stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _REDUCE[self.kind](windows(x, self.kernel_size, self.stride), (-2, -1))

    def extra_repr(self) -> str:
        return f"{self.kind}, kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPool2d(Pool2d):
    """The most common pooling: keeps the strongest response in each window."""

    def __init__(self, kernel_size: int, stride: int | None = None) -> None:
        super().__init__("max", kernel_size, stride)


class AvgPool2d(Pool2d):
    """Average pooling: smooths the map, damping noise."""

    def __init__(self, kernel_size: int, stride: int | None = None) -> None:
        super().__init__("avg", kernel_size, stride)


class SumPool2d(Pool2d):
    """Sum pooling: the window's total (= average x F*F); PyTorch has it only as lp_pool2d, p=1."""

    def __init__(self, kernel_size: int, stride: int | None = None) -> None:
        super().__init__("sum", kernel_size, stride)


class GlobalPool2d(nn.Module):
    """The whole feature map as one window: (N, C, H, W) -> (N, C, 1, 1)."""

    def __init__(self, kind: str = "avg") -> None:
        super().__init__()
        if kind not in ("max", "avg"):
            raise ValueError(f"kind must be 'max' or 'avg', not {kind!r}")
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _REDUCE[self.kind](x, (-2, -1)).unsqueeze(-1).unsqueeze(-1)


def adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """Windows [start, end) that cover `size` in `out` parts: start = floor(i*size/out),
    end = ceil((i+1)*size/out) (PyTorch's rule; windows overlap when size is not a multiple)."""
    return [(i * size // out, math.ceil((i + 1) * size / out)) for i in range(out)]


class AdaptivePool2d(nn.Module):
    """Pooling to a fixed output size: the windows are chosen from the input size."""

    def __init__(self, kind: str, output_size: int | tuple[int, int]) -> None:
        super().__init__()
        if kind not in _REDUCE:
            raise ValueError(f"kind must be one of {tuple(_REDUCE)}, not {kind!r}")
        self.kind = kind
        self.output_size = (output_size, output_size) if isinstance(output_size, int) else output_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduce = _REDUCE[self.kind]
        rows = adaptive_bins(x.shape[-2], self.output_size[0])
        cols = adaptive_bins(x.shape[-1], self.output_size[1])
        out = [torch.stack([reduce(x[..., r0:r1, c0:c1], (-2, -1)) for c0, c1 in cols], dim=-1)
               for r0, r1 in rows]
        return torch.stack(out, dim=-2)

    def extra_repr(self) -> str:
        return f"{self.kind}, output_size={self.output_size}"


class SpatialPyramidPool(nn.Module):
    """Adaptive pooling at several grid sizes, flattened and joined: (N, C, H, W) -> (N, C*sum(n*n)).

    With levels (4, 2, 1) and 256 channels every input size gives 21 x 256 = 5376 numbers, so an FC
    layer can follow convolutions on images of any size."""

    def __init__(self, levels: tuple[int, ...] = (4, 2, 1), kind: str = "max") -> None:
        super().__init__()
        self.levels = tuple(levels)
        self.pools = nn.ModuleList(AdaptivePool2d(kind, n) for n in self.levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([pool(x).flatten(1) for pool in self.pools], dim=1)

    def extra_repr(self) -> str:
        return f"levels={self.levels}"
