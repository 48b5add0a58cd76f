"""Convolution written from its definition, and the proof that it is what PyTorch computes.

The definition a course gives: pad the input (zeros, or a mirror image of the border); slide each
F x F x C filter over it, S pixels at a time; at every position multiply the window and the filter
element by element, sum over the window and over all channels, and add the filter's bias. Each of
the K filters makes one feature map, so the output has K channels. A filter may be Kh x Kw (not
square), and with dilation D its taps are D pixels apart, so it spans D*(F - 1) + 1 pixels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from reference_net.demo import cs231n_demo
from reference_net.shapes import check_padding, conv_params, output_size

PADDING_MODES = ("zeros", "reflect")


def reflect_index(n: int, p: int) -> list[int]:
    """Source index of each of the n + 2p positions after reflect padding by p: the border is
    mirrored without repeating the edge (for n = 4, p = 2: 2 1 | 0 1 2 3 | 2 1)."""
    check_padding(n, p, "reflect")
    return [-i if i < 0 else 2 * (n - 1) - i if i >= n else i for i in range(-p, n + p)]


def pad2d(x: torch.Tensor, p: int, mode: str = "zeros") -> torch.Tensor:
    """(..., H, W) -> (..., H + 2p, W + 2p): a 5 x 5 input padded by 1 becomes 7 x 7."""
    if mode not in PADDING_MODES:
        raise ValueError(f"padding mode must be one of {PADDING_MODES}, not {mode!r}")
    if p < 0:
        raise ValueError(f"padding cannot be negative ({p})")
    h, w = x.shape[-2:]
    if mode == "zeros":
        out = x.new_zeros(*x.shape[:-2], h + 2 * p, w + 2 * p)
        out[..., p:p + h, p:p + w] = x
        return out
    rows = torch.tensor(reflect_index(h, p), device=x.device)
    cols = torch.tensor(reflect_index(w, p), device=x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride: int = 1, padding: int = 0, padding_mode: str = "zeros", dilation: int = 1
           ) -> torch.Tensor:
    """Convolution by definition. x: (N, C, H, W) or (C, H, W); weight: (K, C, Kh, Kw); bias: (K,).

    Returns (N, K, H_out, W_out) (or (K, H_out, W_out)) with
    H_out = (H - D*(Kh - 1) - 1 + 2P) // S + 1, likewise W_out with Kw."""
    single = x.dim() == 3
    if single:
        x = x.unsqueeze(0)
    n, c = x.shape[:2]
    k, c_w, fh, fw = weight.shape
    if c != c_w:
        raise ValueError(f"the input has {c} channels but each filter has {c_w}")
    xp = pad2d(x, padding, padding_mode)
    d = dilation
    out_h = output_size(xp.shape[-2], fh, stride, 0, mode="floor", dilation=d)
    out_w = output_size(xp.shape[-1], fw, stride, 0, mode="floor", dilation=d)
    out = x.new_zeros(n, k, out_h, out_w)
    for i in range(out_h):
        for j in range(out_w):
            # The Kh x Kw taps of the window, D apart: rows i*S, i*S + D, ..., i*S + D*(Kh - 1).
            window = xp[:, :, i * stride:i * stride + d * (fh - 1) + 1:d,
                        j * stride:j * stride + d * (fw - 1) + 1:d]  # N,C,Kh,Kw
            # Every filter times the window, element by element, summed over channels and window.
            out[:, :, i, j] = (window.unsqueeze(1) * weight).sum(dim=(2, 3, 4))
    if bias is not None:
        out += bias.view(1, k, 1, 1)
    return out[0] if single else out


def torch_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 stride: int = 1, padding: int = 0, padding_mode: str = "zeros",
                 dilation: int = 1) -> torch.Tensor:
    """The same through PyTorch: F.conv2d (reflect padding via F.pad, as nn.Conv2d does)."""
    if padding_mode == "reflect" and padding:
        return F.conv2d(F.pad(x, (padding,) * 4, mode="reflect"), weight, bias, stride,
                        dilation=dilation)
    return F.conv2d(x, weight, bias, stride, padding, dilation)


@dataclass
class WorkedExample:
    """The CS231n convolution demo: 5x5x3 input, two 3x3x3 filters, stride 2, pad 1, b = (1, 0)."""

    x: torch.Tensor  # (3, 5, 5): C, H, W
    weight: torch.Tensor  # (2, 3, 3, 3)
    bias: torch.Tensor  # (2,)
    stride: int
    padding: int
    output: torch.Tensor  # (2, 3, 3): two 3x3 feature maps
    params: int  # (3*3*3 + 1) * 2 = 56


def cs231n_example(seed: int = 0) -> WorkedExample:
    """The demo with small integers (inputs 0..2, weights -1..1) drawn from `seed`, as on the
    course page, so every output can be checked by hand: the same numbers as
    `cnnsetup explain --demo --seed SEED` (reference_net.demo), convolved here with tensors."""
    demo = cs231n_demo(seed)
    x = torch.tensor(demo.input, dtype=torch.float32)
    weight = torch.tensor(demo.weights, dtype=torch.float32)
    bias = torch.tensor(demo.bias, dtype=torch.float32)
    output = conv2d(x, weight, bias, stride=demo.stride, padding=demo.padding)
    return WorkedExample(x, weight, bias, demo.stride, demo.padding, output, conv_params(3, 3, 2))


@dataclass(frozen=True)
class ConvCase:
    """One random configuration for the comparison with PyTorch."""

    n: int
    channels: int
    filters: int
    height: int
    width: int
    kernel: int
    stride: int
    padding: int
    padding_mode: str
    bias: bool
    kernel_width: int | None = None  # None: a square kernel (kernel x kernel)
    dilation: int = 1

    @property
    def kernel_size(self) -> tuple[int, int]:
        return (self.kernel, self.kernel if self.kernel_width is None else self.kernel_width)


def random_cases(count: int, seed: int = 0) -> list[ConvCase]:
    """`count` valid configurations: several channels and filters, strides 1-3, zero and reflect
    padding 0-2, square and Kh x Kw kernels, dilation 1-3, with and without bias. The first is
    the CS231n demo's."""
    rng = random.Random(seed)
    cases = [ConvCase(1, 3, 2, 5, 5, 3, 2, 1, "zeros", True)]
    while len(cases) < count:
        kernel, padding = rng.randint(1, 4), rng.randint(0, 2)
        kernel_width = rng.randint(1, 4) if rng.random() < 0.4 else None
        dilation = rng.choice((1, 1, 2, 3))
        span = dilation * (max(kernel, kernel_width or kernel) - 1) + 1
        mode = rng.choice(PADDING_MODES)
        low = max(span - 2 * padding, padding + 1 if mode == "reflect" else 1, 1)
        cases.append(ConvCase(
            n=rng.randint(1, 3), channels=rng.randint(1, 4), filters=rng.randint(1, 4),
            height=rng.randint(low, low + 8), width=rng.randint(low, low + 8), kernel=kernel,
            stride=rng.randint(1, 3), padding=padding, padding_mode=mode,
            bias=rng.random() < 0.75, kernel_width=kernel_width, dilation=dilation,
        ))
    return cases[:count]


def check_against_torch(device: str = "cpu", cases: int = 20, seed: int = 0) -> float:
    """Largest absolute difference between `conv2d` and PyTorch's conv2d on `device`, over `cases`
    random configurations drawn from `seed` (inputs and weights from N(0, 1)).

    Computed in float64 (float32 on MPS, which has no float64), so TF32 or similar shortcuts a GPU
    may take in float32 do not blur the comparison: expect about 1e-15 (1e-6 in float32)."""
    device = torch.device(device)
    dtype = torch.float32 if device.type == "mps" else torch.float64
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for case in random_cases(cases, seed):
        x = torch.randn(case.n, case.channels, case.height, case.width, generator=g, dtype=dtype)
        w = torch.randn(case.filters, case.channels, *case.kernel_size, generator=g, dtype=dtype)
        b = torch.randn(case.filters, generator=g, dtype=dtype) if case.bias else None
        x, w = x.to(device), w.to(device)
        b = b.to(device) if b is not None else None
        ours = conv2d(x, w, b, case.stride, case.padding, case.padding_mode, case.dilation)
        theirs = torch_conv2d(x, w, b, case.stride, case.padding, case.padding_mode,
                              case.dilation)
        worst = max(worst, (ours - theirs).abs().max().item())
    return worst
