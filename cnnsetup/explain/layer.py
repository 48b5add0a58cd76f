"""One CONV or POOL layer worked through (`cnnsetup explain --input ... --kernel ...`): the
output-size formula filled in, the parameter count, multiply-accumulates and output memory."""

from __future__ import annotations

import math
from fractions import Fraction

from cnnsetup.explain.wording import CONV_SIZE, POOL_SIZE, number
from cnnsetup.i18n import N_, _, ngettext
from cnnsetup.render import echo, key_values, style
from reference_net import shapes
from reference_net.shapes import ConvExplanation, LayerInfo, Pair, PoolExplanation

CONV_PARAMS = "(F*F*C + 1) * K"
CONV_PARAMS_HW = "(Kh*Kw*C + 1) * K"
CONV_MACS = "H_out*W_out*K*C*Kh*Kw"
CONV_SIZE_DILATED = "(W - D*(F - 1) - 1 + 2P) / S + 1"
POOL_SIZE_PADDED = "(W - F + 2P) / S + 1"


def shape_text(shape: tuple[int, ...]) -> str:
    return " x ".join(str(n) for n in shape)


def size_or_pair(value: Pair) -> int | list[int]:
    """(3, 3) -> 3 and (3, 2) -> [3, 2], as the JSON writes kernels and receptive fields."""
    return value[0] if value[0] == value[1] else list(value)


def byte_text(count: int) -> str:
    """1536 -> "1.5 KB" (SI: 1 KB = 1000 bytes), as the style guide writes units."""
    for unit, size in (("GB", 10 ** 9), ("MB", 10 ** 6), ("KB", 10 ** 3)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count} B"


def yes_no(flag: bool) -> str:
    return _("yes") if flag else _("no")


# ---- plain data --------------------------------------------------------------------------------

def summary_json(summary: list[LayerInfo], input_shape: tuple[int, int, int], subject: str
                 ) -> dict:
    return {
        "subject": subject,
        "input_shape": list(input_shape),
        "layers": [layer.to_dict() for layer in summary],
        "total_params": shapes.total_params(summary),
        "layer_count": shapes.count_layers_in(summary),
    }


def conv_json(step: ConvExplanation, mode: str) -> dict:
    data = summary_json([LayerInfo("conv", "conv", step.output_shape, step.params)],
                        step.input_shape, "conv")
    data["conv"] = {
        "kernel": size_or_pair(step.kernel), "stride": step.stride, "padding": step.padding,
        "dilation": step.dilation, "padding_mode": step.padding_mode, "filters": step.filters,
        "mode": mode, "padded_shape": list(step.padded_shape),
        "exact_output_size": [float(size) for size in step.exact_size],
        "output_shape": list(step.output_shape),
        "weights": step.weights, "biases": step.biases, "macs": step.macs,
        "activation_bytes": shapes.activation_bytes(step.output_shape),
    }
    return data


def pool_json(step: PoolExplanation, mode: str) -> dict:
    data = summary_json([LayerInfo("pool", "pool", step.output_shape, 0)], step.input_shape,
                        "pool")
    data["pool"] = {
        "kind": step.kind, "kernel": size_or_pair(step.kernel),
        "stride": size_or_pair(step.stride), "padding": step.padding,
        "ceil_mode": step.ceil_mode, "mode": mode,
        "exact_output_size": [float(size) for size in step.exact_size],
        "output_shape": list(step.output_shape),
        "activation_bytes": shapes.activation_bytes(step.output_shape),
    }
    return data


# ---- rendering ---------------------------------------------------------------------------------

def _size_lines(exact: tuple[Fraction, Fraction], output: tuple[int, int], filled: list[str],
                ceil_mode: bool = False) -> list[str]:
    """"(5 - 3 + 2*1) / 2 + 1 = 3", once if height and width agree, else once for each."""
    lines, bare = [], []
    for label, value, size, text in zip((_("height"), _("width")), exact, output, filled):
        line = f"{text} = {number(value)}"
        if value.denominator != 1 and not ceil_mode:
            line += " -> " + _("{size} (rounded down, as PyTorch does)").format(size=size)
        elif value.denominator != 1 and size == math.ceil(value):
            line += " -> " + _("{size} (rounded up: ceil mode)").format(size=size)
        elif value.denominator != 1:
            line += " -> " + _("{size} (rounded up, less a last window that would start in the "
                               "right padding)").format(size=size)
        bare.append(line)
        lines.append(_("{label}: {value}").format(label=label, value=line))
    if filled[0] == filled[1]:
        return bare[:1]
    return lines


def _stride_text(stride: int) -> str:
    return ngettext("{stride} (the window moves {stride} pixel at a time)",
                    "{stride} (the window moves {stride} pixels at a time)", stride
                    ).format(stride=stride)


def _memory_line(shape: tuple[int, int, int]) -> str:
    count = shape[0] * shape[1] * shape[2]
    return _("Output memory (one image, float32): {count} numbers x 4 B = {size}").format(
        count=f"{count:,}", size=byte_text(4 * count))


def render_conv(step: ConvExplanation) -> None:
    h, w, c = step.input_shape
    (kh, kw), s, p, k, d = step.kernel, step.stride, step.padding, step.filters, step.dilation
    ph, pw, _c = step.padded_shape
    if p == 0:
        padded = _("none: the input is used as it is")
    elif step.padding_mode == "reflect":
        padded = ngettext(
            "{pad} pixel on each side, mirroring the border: {size} becomes {padded}",
            "{pad} pixels on each side, mirroring the border: {size} becomes {padded}", p)
    else:
        padded = ngettext("{pad} pixel of zeros on each side: {size} becomes {padded}",
                          "{pad} pixels of zeros on each side: {size} becomes {padded}", p)
    rows = [
        (_("Input (H x W x C)"), shape_text(step.input_shape)),
        (_("Padding P"), padded.format(pad=p, size=shape_text((h, w)),
                                       padded=shape_text((ph, pw)))),
        (_("Kernel F"), _("{kernel} (each filter spans all {channels} input channels)").format(
            kernel=shape_text((kh, kw, c)), channels=c)),
    ]
    if d > 1:
        eh, ew = step.effective_kernel
        rows.append((_("Dilation D"), _("{dilation} (the kernel's taps are {dilation} pixels "
                                        "apart, so it spans {span})").format(
            dilation=d, span=shape_text((eh, ew)))))
    rows += [(_("Stride S"), _stride_text(s)),
             (_("Filters K"), _("{filters} (each makes one feature map)").format(filters=k))]
    echo(style(_("One CONV layer, step by step"), bold=True))
    echo(key_values(rows))
    echo()
    if d > 1:
        filled = [f"({n} - {d}*({f} - 1) - 1 + 2*{p}) / {s} + 1" for n, f in ((h, kh), (w, kw))]
        formula = CONV_SIZE_DILATED
    else:
        filled = [f"({n} - {f} + 2*{p}) / {s} + 1" for n, f in ((h, kh), (w, kw))]
        formula = CONV_SIZE
    echo("  " + _("Output size = {formula}").format(formula=formula))
    for line in _size_lines(step.exact_size, step.output_shape[:2], filled):
        echo("    = " + line)
    echo("  " + _("Output (H x W x K): {shape}").format(shape=shape_text(step.output_shape)))
    echo()
    echo("  " + _("Parameters = {formula}").format(
        formula=CONV_PARAMS if kh == kw else CONV_PARAMS_HW))
    split = ngettext("({weights} weights + {biases} bias)", "({weights} weights + {biases} biases)",
                     step.biases).format(weights=f"{step.weights:,}", biases=step.biases)
    echo("    = " + f"({kh}*{kw}*{c} + 1) * {k} = {step.params:,}   " + split)
    oh, ow, _k = step.output_shape
    echo("  " + _("Multiply-accumulates = {formula}").format(formula=CONV_MACS))
    echo("    = " + f"{oh}*{ow}*{k}*{c}*{kh}*{kw} = {step.macs:,}")
    echo("  " + _memory_line(step.output_shape))
    echo("  " + _("Counts as a layer: {answer} (CONV and FC layers count; RELU and POOL do not)")
         .format(answer=yes_no(True)))


_POOL_NAMES = {"max": N_("max pooling (the largest value in each window)"),
               "avg": N_("average pooling (the mean of each window)"),
               "sum": N_("sum pooling (the total of each window)")}


_POOL_PADDING = {"max": N_("(padding never wins a max)"),
                 "avg": N_("(zeros, counted in the average as PyTorch does by default)"),
                 "sum": N_("(padding adds nothing to a sum)")}


def render_pool(step: PoolExplanation) -> None:
    h, w, c = step.input_shape
    (kh, kw), (sh, sw), p = step.kernel, step.stride, step.padding
    if p == 0:
        padded = _("none: the input is used as it is")
    else:
        padded = ngettext("{pad} pixel on each side {why}", "{pad} pixels on each side {why}",
                          p).format(pad=p, why=_(_POOL_PADDING[step.kind]))
    rows = [
        (_("Input (H x W x C)"), shape_text(step.input_shape)),
        (_("Pooling"), _(_POOL_NAMES[step.kind])),
        (_("Window F"), _("{window} on each channel separately").format(
            window=shape_text((kh, kw)))),
        (_("Stride S"), _stride_text(sh) if sh == sw else shape_text((sh, sw))),
        (_("Padding P"), padded),
    ]
    if step.ceil_mode:
        rows.append((_("Rounding"), _("up (ceil mode): a last, partial window is pooled too if "
                                      "it starts inside the input or the left padding")))
    echo(style(_("One POOL layer, step by step"), bold=True))
    echo(key_values(rows))
    echo()
    if p:
        filled = [f"({n} - {f} + 2*{p}) / {s} + 1" for n, f, s in ((h, kh, sh), (w, kw, sw))]
    else:
        filled = [f"({n} - {f}) / {s} + 1" for n, f, s in ((h, kh, sh), (w, kw, sw))]
    echo("  " + _("Output size = {formula}").format(formula=POOL_SIZE_PADDED if p else POOL_SIZE))
    for line in _size_lines(step.exact_size, step.output_shape[:2], filled, step.ceil_mode):
        echo("    = " + line)
    echo("  " + _("Output (H x W x C): {shape} (the channels stay as they are)").format(
        shape=shape_text(step.output_shape)))
    echo("  " + _("Parameters: 0 (pooling learns nothing)"))
    echo("  " + _("Multiply-accumulates: 0 (pooling compares or adds; it multiplies nothing)"))
    echo("  " + _memory_line(step.output_shape))
    echo("  " + _("Counts as a layer: {answer} (CONV and FC layers count; RELU and POOL do not)")
         .format(answer=yes_no(False)))
