"""Shapes and parameter counts by arithmetic alone: no torch here, so `cnnsetup explain` starts fast.

The rules a course teaches, each checked against real PyTorch layers in the tests:

- output size of a CONV or POOL layer: (W - F + 2P) / S + 1. In *strict* mode a result that is not
  a whole number is an error (CS231n: W=10, F=3, P=0, S=2 gives 4.5, "invalid"); in *floor* mode
  the remainder is dropped, which is what PyTorch does. A dilation D spreads the kernel's taps D
  apart, so it covers D*(F - 1) + 1 pixels (PyTorch's nn.Conv2d docs). Pooling in *ceil* mode rounds
  up instead, but the last window must start inside the input or the left padding (PyTorch's
  pooling_output_shape), and its padding may be at most half the window (nn.MaxPool2d's check);
- a CONV layer with K filters of Kh x Kw x C_in has (Kh*Kw*C_in + 1) * K parameters (one bias each)
  and does H_out*W_out*K*C_in*Kh*Kw multiply-accumulates (MACs); an FC layer n_in*n_out;
- the receptive field of one output pixel grows, layer by layer, by (F_eff - 1) times the product
  of the strides before it (Araujo et al., "Computing receptive fields of CNNs", Distill 2019);
- an FC layer y = Wx + b from n_in to n_out has (n_in + 1) * n_out parameters;
- only CONV and FC layers count towards a network's depth; RELU and POOL do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from reference_net.config import NetConfig

MODES = ("strict", "floor")
COUNTED_KINDS = ("conv", "fc")  # the layers that have weights; RELU, POOL, flatten do not count


class ShapeError(ValueError):
    """A layer that cannot be applied to its input. `reason` says which rule broke, `values`
    holds the numbers, so a caller can word its own (translated) message."""

    def __init__(self, reason: str, message: str, **values: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.values = values


Pair = tuple[int, int]


def pair(value: int | Pair) -> Pair:
    """3 -> (3, 3); (3, 2) stays (height, width), as PyTorch reads kernel_size."""
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def effective_kernel(f: int, d: int = 1) -> int:
    """Pixels a kernel of F taps, D apart, covers: D*(F - 1) + 1 (F itself when D = 1)."""
    return d * (f - 1) + 1


def output_size(w: int, f: int, s: int = 1, p: int = 0, *, mode: str = "strict",
                dilation: int = 1, ceil_mode: bool = False) -> int:
    """(W - F_eff + 2P) / S + 1 for an input W wide, kernel F (F_eff = D*(F - 1) + 1 with dilation
    D), stride S, padding P on each side; rounded up with `ceil_mode` (pooling only).

    Raises ShapeError (`reason` bad_input, bad_kernel, bad_dilation, zero_stride,
    negative_padding, kernel_too_large, or not_integer in strict mode without ceil_mode)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if w < 1:
        raise ShapeError("bad_input", f"the input size must be at least 1, not {w}", w=w)
    if f < 1:
        raise ShapeError("bad_kernel", f"the kernel size must be at least 1, not {f}", f=f)
    if dilation < 1:
        raise ShapeError("bad_dilation", f"the dilation must be at least 1, not {dilation}",
                         d=dilation)
    if s < 1:
        raise ShapeError("zero_stride", f"the stride must be at least 1, not {s}", s=s)
    if p < 0:
        raise ShapeError("negative_padding", f"the padding cannot be negative ({p})", p=p)
    fe = effective_kernel(f, dilation)
    span = w - fe + 2 * p
    if ceil_mode:
        # Rounding up, a window may overhang the end, even the whole input (PyTorch pools what
        # it covers), but the last window must start inside the input or the left padding.
        out = -(-span // s) + 1
        out = out - 1 if (out - 1) * s >= w + p else out
        if out >= 1:
            return out
    if span < 0:
        raise ShapeError(
            "kernel_too_large",
            f"the kernel ({fe}) is larger than the padded input ({w} + 2*{p} = {w + 2 * p})",
            w=w, f=fe, p=p, padded=w + 2 * p,
        )
    if span % s and mode == "strict":
        raise ShapeError(
            "not_integer",
            f"(W - F + 2P)/S + 1 = ({w} - {fe} + 2*{p})/{s} + 1 = "
            f"{float(Fraction(span, s) + 1):g} is not a whole number: the kernel does not fit "
            f"the input evenly with stride {s}",
            w=w, f=fe, s=s, p=p, floor=span // s + 1, ceil=output_size(w, fe, s, p, ceil_mode=True),
        )
    return span // s + 1


def exact_output_size(w: int, f: int, s: int = 1, p: int = 0, *, dilation: int = 1) -> Fraction:
    """(W - F_eff + 2P) / S + 1 as an exact fraction (4.5 for W=10, F=3, P=0, S=2); no checks."""
    return Fraction(w - effective_kernel(f, dilation) + 2 * p, s) + 1


def check_pool_padding(f: int, p: int) -> None:
    """Pooling pads by at most half its window (P <= F // 2), as PyTorch's pooling requires: a
    window made mostly of padding would pool nothing of the input."""
    if p > f // 2:
        raise ShapeError("pool_padding_too_large",
                         f"pooling padding {p} is more than half the window {f}", f=f, p=p)


def check_padding(w: int, p: int, padding_mode: str = "zeros") -> None:
    """Reflect padding mirrors the input without repeating the edge, so it needs P < W."""
    if padding_mode == "reflect" and p >= w:
        raise ShapeError(
            "reflect_too_wide",
            f"reflect padding of {p} needs an input wider than {p} (it is {w})",
            w=w, p=p,
        )


def conv_params(f: int | Pair, c_in: int, k: int, *, bias: bool = True) -> int:
    """(F*F*C_in + 1) * K: each of K filters has F*F*C_in weights and one bias (Kh*Kw*C_in for
    a Kh x Kw kernel given as a pair)."""
    fh, fw = pair(f)
    return (fh * fw * c_in + (1 if bias else 0)) * k


def conv_macs(output_hw: Pair, c_in: int, k: int, f: int | Pair) -> int:
    """Multiply-accumulates of a CONV layer: H_out*W_out*K*C_in*Kh*Kw (bias additions excluded).
    Each of the H_out*W_out*K outputs is a dot product of Kh*Kw*C_in pairs."""
    fh, fw = pair(f)
    return output_hw[0] * output_hw[1] * k * c_in * fh * fw


def fc_macs(n_in: int, n_out: int) -> int:
    """Multiply-accumulates of an FC layer: n_in * n_out (the bias additions excluded)."""
    return n_in * n_out


FLOAT32_BYTES = 4


def activation_bytes(shape: tuple[int, ...], itemsize: int = FLOAT32_BYTES) -> int:
    """Memory of one image's activations of this shape: H*W*C numbers of `itemsize` bytes (float32:
    4), as CS231n's VGGNet table counts them."""
    total = itemsize
    for n in shape:
        total *= n
    return total


def fc_params(n_in: int, n_out: int, *, bias: bool = True) -> int:
    """(n_in + 1) * n_out: y = Wx + b with W of n_out x n_in and b of n_out."""
    return (n_in + (1 if bias else 0)) * n_out


@dataclass(frozen=True)
class LayerInfo:
    """One line of a layer summary. `output_shape` is (H, W, C), as courses draw it."""

    name: str
    kind: str  # conv | relu | pool | flatten | fc
    output_shape: tuple[int, int, int]
    params: int

    @property
    def counts_as_layer(self) -> bool:
        return self.kind in COUNTED_KINDS

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "output_shape": list(self.output_shape),
            "params": self.params,
            "counts_as_layer": self.counts_as_layer,
        }


def count_layers_in(summary: list[LayerInfo]) -> int:
    """The network's depth as courses count it: CONV and FC layers only."""
    return sum(1 for layer in summary if layer.counts_as_layer)


def total_params(summary: list[LayerInfo]) -> int:
    return sum(layer.params for layer in summary)


def summarize_config(config: NetConfig) -> list[LayerInfo]:
    """The layer summary of the network `config` describes, by arithmetic alone.

    Uses floor mode, as the network is built from PyTorch layers (a test checks this against a
    forward pass through the real model)."""
    size, channels = config.input_size, config.in_channels
    f, p = config.kernel_size, config.padding
    layers: list[LayerInfo] = []
    for i, width in enumerate(config.widths, start=1):
        check_padding(size, p, config.padding_mode)
        params = conv_params(f, channels, width)
        size, channels = output_size(size, f, 1, p, mode="floor"), width
        layers.append(LayerInfo(f"conv{i}", "conv", (size, size, channels), params))
        layers.append(LayerInfo(f"relu{i}", "relu", (size, size, channels), 0))
        size = output_size(size, config.pool_size, config.pool_size, 0, mode="floor")
        layers.append(LayerInfo(f"pool{i}", "pool", (size, size, channels), 0))
    features = size * size * channels
    layers.append(LayerInfo("flatten", "flatten", (1, 1, features), 0))
    if config.hidden:
        layers.append(LayerInfo("fc1", "fc", (1, 1, config.hidden), fc_params(features, config.hidden)))
        layers.append(LayerInfo(f"relu{len(config.widths) + 1}", "relu", (1, 1, config.hidden), 0))
        features = config.hidden
    name = "fc2" if config.hidden else "fc1"
    layers.append(LayerInfo(name, "fc", (1, 1, config.classes), fc_params(features, config.classes)))
    return layers


def architecture(summary: list[LayerInfo]) -> str:
    """"CONV-RELU-POOL-...-FC" for a summary (flatten is bookkeeping, not a layer)."""
    return "-".join(layer.kind.upper() for layer in summary if layer.kind != "flatten")


@dataclass(frozen=True)
class ConvExplanation:
    """One CONV layer worked through: the numbers behind its output shape and parameter count."""

    input_shape: tuple[int, int, int]  # H, W, C
    kernel: Pair  # (Kh, Kw); (F, F) for a square kernel
    stride: int  # S
    padding: int  # P
    filters: int  # K
    padding_mode: str
    padded_shape: tuple[int, int, int]  # (H + 2P, W + 2P, C)
    exact_size: tuple[Fraction, Fraction]  # (W - F + 2P)/S + 1 for H and for W, before flooring
    output_shape: tuple[int, int, int]  # H_out, W_out, K
    weights: int  # Kh*Kw*C*K
    biases: int  # K
    dilation: int = 1  # D: the kernel's taps are D pixels apart

    @property
    def params(self) -> int:
        return self.weights + self.biases

    @property
    def effective_kernel(self) -> Pair:
        return (effective_kernel(self.kernel[0], self.dilation),
                effective_kernel(self.kernel[1], self.dilation))

    @property
    def macs(self) -> int:
        return conv_macs(self.output_shape[:2], self.input_shape[2], self.filters, self.kernel)


def explain_conv(
    input_shape: tuple[int, int, int], kernel: int | Pair, stride: int = 1, padding: int = 0,
    filters: int = 1, *, padding_mode: str = "zeros", mode: str = "strict", dilation: int = 1,
) -> ConvExplanation:
    """Work one CONV layer through; raises ShapeError when it cannot be applied."""
    h, w, c = input_shape
    kh, kw = pair(kernel)
    if c < 1:
        raise ShapeError("bad_input", f"the input needs at least one channel, not {c}", c=c)
    if filters < 1:
        raise ShapeError("bad_filters", f"a CONV layer needs at least one filter, not {filters}",
                         k=filters)
    out_h = output_size(h, kh, stride, padding, mode=mode, dilation=dilation)
    out_w = output_size(w, kw, stride, padding, mode=mode, dilation=dilation)
    check_padding(min(h, w), padding, padding_mode)
    return ConvExplanation(
        input_shape=(h, w, c), kernel=(kh, kw), stride=stride, padding=padding, filters=filters,
        padding_mode=padding_mode,
        padded_shape=(h + 2 * padding, w + 2 * padding, c),
        exact_size=(exact_output_size(h, kh, stride, padding, dilation=dilation),
                    exact_output_size(w, kw, stride, padding, dilation=dilation)),
        output_shape=(out_h, out_w, filters),
        weights=kh * kw * c * filters, biases=filters, dilation=dilation,
    )


@dataclass(frozen=True)
class PoolExplanation:
    """One POOL layer worked through: each channel is pooled on its own, with no parameters."""

    input_shape: tuple[int, int, int]
    kind: str  # max | avg | sum
    kernel: Pair  # (Kh, Kw)
    stride: Pair  # (Sh, Sw): the window by default
    exact_size: tuple[Fraction, Fraction]
    output_shape: tuple[int, int, int]
    padding: int = 0
    ceil_mode: bool = False

    params = 0


def explain_pool(
    input_shape: tuple[int, int, int], kind: str, kernel: int | Pair, stride: int | None = None,
    *, mode: str = "strict", padding: int = 0, ceil_mode: bool = False,
) -> PoolExplanation:
    """Work one POOL layer through (stride defaults to the window, as in PyTorch; padding at most
    half the window; `ceil_mode` rounds the output size up as PyTorch does)."""
    h, w, c = input_shape
    if c < 1:
        raise ShapeError("bad_input", f"the input needs at least one channel, not {c}", c=c)
    kh, kw = pair(kernel)
    sh, sw = (kh, kw) if stride is None else (stride, stride)
    check_pool_padding(min(kh, kw), padding)
    out_h = output_size(h, kh, sh, padding, mode=mode, ceil_mode=ceil_mode)
    out_w = output_size(w, kw, sw, padding, mode=mode, ceil_mode=ceil_mode)
    return PoolExplanation(
        input_shape=(h, w, c), kind=kind, kernel=(kh, kw), stride=(sh, sw),
        exact_size=(exact_output_size(h, kh, sh, padding), exact_output_size(w, kw, sw, padding)),
        output_shape=(out_h, out_w, c), padding=padding, ceil_mode=ceil_mode,
    )


def spp_length(channels: int, levels: tuple[int, ...] = (4, 2, 1)) -> int:
    """Spatial pyramid pooling's fixed output length: C * sum(n*n for each n x n level)."""
    return channels * sum(n * n for n in levels)


def spp_check(size: Pair, levels: tuple[int, ...]) -> None:
    """Every pyramid level n needs a map at least n x n: a finer grid than the map has pixels
    would pool the same pixels into several bins (He et al. 2014 pool n x n bins of the map)."""
    for n in levels:
        if n < 1:
            raise ShapeError("bad_level", f"a pyramid level must be at least 1, not {n}", n=n)
        if n > min(size):
            raise ShapeError("spp_level_too_large",
                             f"pyramid level {n} x {n} is finer than the {size[0]} x {size[1]} map",
                             n=n, h=size[0], w=size[1])
