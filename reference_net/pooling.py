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

from reference_net.shapes import check_pool_padding, output_size, pair

_REDUCE = {
    "max": lambda t, dims: t.amax(dim=dims),
    "avg": lambda t, dims: t.mean(dim=dims),
    "sum": lambda t, dims: t.sum(dim=dims),
}


def windows(x: torch.Tensor, kernel: int | tuple[int, int], stride: int | tuple[int, int]
            ) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H_out, W_out, Kh, Kw): every Kh x Kw window, S apart (no copy)."""
    (kh, kw), (sh, sw) = pair(kernel), pair(stride)
    return x.unfold(2, kh, sh).unfold(3, kw, sw)


def _padded(x: torch.Tensor, padding: int, extra: tuple[int, int], value: float) -> torch.Tensor:
    """x with `padding` on every side, plus `extra` (rows, columns) more at the bottom and right
    for the partial windows of ceil mode; every added cell holds `value`."""
    if not padding and not any(extra):
        return x
    h, w = x.shape[-2:]
    out = x.new_full((*x.shape[:-2], h + 2 * padding + extra[0], w + 2 * padding + extra[1]),
                     value)
    out[..., padding:padding + h, padding:padding + w] = x
    return out


class Pool2d(nn.Module):
    """Kh x Kw windows, S apart, each reduced to its max / average / sum.

    `padding` (at most half the window, as PyTorch requires) adds cells that never win a max and
    add nothing to a sum; with `ceil_mode` the output size is rounded up, so a last, partial window
    is pooled too, provided it starts inside the input or the left padding (PyTorch's rule). An
    average divides by the cells of the window inside the padded input (`count_include_pad`, as in
    nn.AvgPool2d) or, with count_include_pad=False, inside the input only."""

    def __init__(self, kind: str, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None, padding: int = 0,
                 ceil_mode: bool = False, *, count_include_pad: bool = True) -> None:
        super().__init__()
        if kind not in _REDUCE:
            raise ValueError(f"kind must be one of {tuple(_REDUCE)}, not {kind!r}")
        self.kind, self.kernel_size = kind, kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad = count_include_pad
        check_pool_padding(min(pair(kernel_size)), padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw), p = pair(self.kernel_size), pair(self.stride), self.padding
        if not p and not self.ceil_mode:  # the plain case, as fast as unfold allows
            return _REDUCE[self.kind](windows(x, (kh, kw), (sh, sw)), (-2, -1))
        h, w = x.shape[-2:]
        out_h = output_size(h, kh, sh, p, mode="floor", ceil_mode=self.ceil_mode)
        out_w = output_size(w, kw, sw, p, mode="floor", ceil_mode=self.ceil_mode)
        # Cells needed by the last window beyond the padded input (ceil mode only).
        extra = (max(0, (out_h - 1) * sh + kh - h - 2 * p),
                 max(0, (out_w - 1) * sw + kw - w - 2 * p))
        fill = float("-inf") if self.kind == "max" else 0.0
        pooled = _REDUCE[self.kind](windows(_padded(x, p, extra, fill), (kh, kw), (sh, sw)),
                                    (-2, -1))
        pooled = pooled[..., :out_h, :out_w]
        if self.kind != "avg":
            return pooled
        # The average divides the sum by the cells that count in each window.
        counted = x.new_ones(1, 1, h + 2 * p, w + 2 * p) if self.count_include_pad else \
            _padded(x.new_ones(1, 1, h, w), p, (0, 0), 0.0)
        counted = _padded(counted, 0, extra, 0.0)
        cells = windows(counted, (kh, kw), (sh, sw)).sum(dim=(-2, -1))[..., :out_h, :out_w]
        return pooled * (kh * kw) / cells

    def extra_repr(self) -> str:
        return (f"{self.kind}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, ceil_mode={self.ceil_mode}")


class MaxPool2d(Pool2d):
    """The most common pooling: keeps the strongest response in each window."""

    def __init__(self, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None, padding: int = 0,
                 ceil_mode: bool = False) -> None:
        super().__init__("max", kernel_size, stride, padding, ceil_mode)


class AvgPool2d(Pool2d):
    """Average pooling: smooths the map, damping noise."""

    def __init__(self, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None, padding: int = 0,
                 ceil_mode: bool = False, *, count_include_pad: bool = True) -> None:
        super().__init__("avg", kernel_size, stride, padding, ceil_mode,
                         count_include_pad=count_include_pad)


class SumPool2d(Pool2d):
    """Sum pooling: the window's total (= average x F*F); PyTorch has it as lp_pool2d with p=1,
    or, with padding and ceil mode, as avg_pool2d with divisor_override=1."""

    def __init__(self, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None, padding: int = 0,
                 ceil_mode: bool = False) -> None:
        super().__init__("sum", kernel_size, stride, padding, ceil_mode)


class GlobalPool2d(nn.Module):
    """The whole feature map as one window: (N, C, H, W) -> (N, C, 1, 1); max, avg or sum."""

    def __init__(self, kind: str = "avg") -> None:
        super().__init__()
        if kind not in _REDUCE:
            raise ValueError(f"kind must be one of {tuple(_REDUCE)}, not {kind!r}")
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
