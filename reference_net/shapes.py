"""Shapes and parameter counts by arithmetic alone: no torch here, so `cnnsetup explain` starts fast.

The rules a course teaches, each checked against real PyTorch layers in the tests:

- output size of a CONV or POOL layer: (W - F + 2P) / S + 1. In *strict* mode a result that is not
  a whole number is an error (CS231n: W=10, F=3, P=0, S=2 gives 4.5, "invalid"); in *floor* mode
  the remainder is dropped, which is what PyTorch does;
- a CONV layer with K filters of F x F x C_in has (F*F*C_in + 1) * K parameters (one bias each);
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


def output_size(w: int, f: int, s: int = 1, p: int = 0, *, mode: str = "strict") -> int:
    """(W - F + 2P) / S + 1 for an input W wide, kernel F, stride S, padding P (on each side)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if w < 1:
        raise ShapeError("bad_input", f"the input size must be at least 1, not {w}", w=w)
    if f < 1:
        raise ShapeError("bad_kernel", f"the kernel size must be at least 1, not {f}", f=f)
    if s < 1:
        raise ShapeError("zero_stride", f"the stride must be at least 1, not {s}", s=s)
    if p < 0:
        raise ShapeError("negative_padding", f"the padding cannot be negative ({p})", p=p)
    span = w - f + 2 * p
    if span < 0:
        raise ShapeError(
            "kernel_too_large",
            f"the kernel ({f}) is larger than the padded input ({w} + 2*{p} = {w + 2 * p})",
            w=w, f=f, p=p, padded=w + 2 * p,
        )
    if span % s and mode == "strict":
        raise ShapeError(
            "not_integer",
            f"(W - F + 2P)/S + 1 = ({w} - {f} + 2*{p})/{s} + 1 = {float(Fraction(span, s) + 1):g} "
            f"is not a whole number: the kernel does not fit the input evenly with stride {s}",
            w=w, f=f, s=s, p=p, floor=span // s + 1,
        )
    return span // s + 1


def exact_output_size(w: int, f: int, s: int = 1, p: int = 0) -> Fraction:
    """(W - F + 2P) / S + 1 as an exact fraction (4.5 for W=10, F=3, P=0, S=2); no checks."""
    return Fraction(w - f + 2 * p, s) + 1


def check_padding(w: int, p: int, padding_mode: str = "zeros") -> None:
    """Reflect padding mirrors the input without repeating the edge, so it needs P < W."""
    if padding_mode == "reflect" and p >= w:
        raise ShapeError(
            "reflect_too_wide",
            f"reflect padding of {p} needs an input wider than {p} (it is {w})",
            w=w, p=p,
        )


def conv_params(f: int, c_in: int, k: int, *, bias: bool = True) -> int:
    """(F*F*C_in + 1) * K: each of K filters has F*F*C_in weights and one bias."""
    return (f * f * c_in + (1 if bias else 0)) * k


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
    kernel: int  # F
    stride: int  # S
    padding: int  # P
    filters: int  # K
    padding_mode: str
    padded_shape: tuple[int, int, int]  # (H + 2P, W + 2P, C)
    exact_size: tuple[Fraction, Fraction]  # (W - F + 2P)/S + 1 for H and for W, before flooring
    output_shape: tuple[int, int, int]  # H_out, W_out, K
    weights: int  # F*F*C*K
    biases: int  # K

    @property
    def params(self) -> int:
        return self.weights + self.biases


def explain_conv(
    input_shape: tuple[int, int, int], kernel: int, stride: int = 1, padding: int = 0,
    filters: int = 1, *, padding_mode: str = "zeros", mode: str = "strict",
) -> ConvExplanation:
    """Work one CONV layer through; raises ShapeError when it cannot be applied."""
    h, w, c = input_shape
    if c < 1:
        raise ShapeError("bad_input", f"the input needs at least one channel, not {c}", c=c)
    if filters < 1:
        raise ShapeError("bad_filters", f"a CONV layer needs at least one filter, not {filters}",
                         k=filters)
    out_h = output_size(h, kernel, stride, padding, mode=mode)
    out_w = output_size(w, kernel, stride, padding, mode=mode)
    check_padding(min(h, w), padding, padding_mode)
    return ConvExplanation(
        input_shape=(h, w, c), kernel=kernel, stride=stride, padding=padding, filters=filters,
        padding_mode=padding_mode,
        padded_shape=(h + 2 * padding, w + 2 * padding, c),
        exact_size=(exact_output_size(h, kernel, stride, padding),
                    exact_output_size(w, kernel, stride, padding)),
        output_shape=(out_h, out_w, filters),
        weights=kernel * kernel * c * filters, biases=filters,
    )


@dataclass(frozen=True)
class PoolExplanation:
    """One POOL layer worked through: each channel is pooled on its own, with no parameters."""

    input_shape: tuple[int, int, int]
    kind: str  # max | avg | sum
    kernel: int
    stride: int
    exact_size: tuple[Fraction, Fraction]
    output_shape: tuple[int, int, int]

    params = 0


def explain_pool(
    input_shape: tuple[int, int, int], kind: str, kernel: int, stride: int | None = None,
    *, mode: str = "strict",
) -> PoolExplanation:
    """Work one POOL layer through (no padding; stride defaults to the window, as in PyTorch)."""
    h, w, c = input_shape
    if c < 1:
        raise ShapeError("bad_input", f"the input needs at least one channel, not {c}", c=c)
    stride = kernel if stride is None else stride
    out_h = output_size(h, kernel, stride, 0, mode=mode)
    out_w = output_size(w, kernel, stride, 0, mode=mode)
    return PoolExplanation(
        input_shape=(h, w, c), kind=kind, kernel=kernel, stride=stride,
        exact_size=(exact_output_size(h, kernel, stride), exact_output_size(w, kernel, stride)),
        output_shape=(out_h, out_w, c),
    )


def spp_length(channels: int, levels: tuple[int, ...] = (4, 2, 1)) -> int:
    """Spatial pyramid pooling's fixed output length: C * sum(n*n for each n x n level)."""
    return channels * sum(n * n for n in levels)
