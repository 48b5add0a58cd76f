"""`cnnsetup explain`: how a CNN's shapes and parameter counts come about.

With no options, the reference network that `verify` trains, layer by layer; with `--input` and
`--kernel`, one CONV layer (or, with `--pool`, one POOL layer) worked through with its numbers.
Pure arithmetic from `reference_net.shapes`: this command never imports torch.
"""

from __future__ import annotations

import re
from fractions import Fraction

import click

from cnnsetup.commands.base import command, json_option, option
from cnnsetup.errors import CnnsetupError, UsageError
from cnnsetup.i18n import N_, _, ngettext
from cnnsetup.render import echo, key_values, print_json, style, table
from reference_net import shapes
from reference_net.shapes import ConvExplanation, LayerInfo, PoolExplanation, ShapeError
from reference_net.smoke import SMOKE

CONV_SIZE = "(W - F + 2P) / S + 1"
POOL_SIZE = "(W - F) / S + 1"
CONV_PARAMS = "(F*F*C + 1) * K"

_INPUT = re.compile(r"^\s*(\d+)\s*[xX*\u00d7]\s*(\d+)\s*[xX*\u00d7]\s*(\d+)\s*$")


def parse_input(text: str) -> tuple[int, int, int]:
    """"5x5x3" -> (5, 5, 3): height, width, channels."""
    match = _INPUT.match(text)
    if not match:
        raise UsageError(
            _("Cannot read the input size {text!r}: write it as height x width x channels, "
              "for example {example}.").format(text=text, example="5x5x3")
        )
    h, w, c = (int(group) for group in match.groups())
    return h, w, c


def _shape(shape: tuple[int, ...]) -> str:
    return " x ".join(str(n) for n in shape)


def _number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def shape_error_message(error: ShapeError, option_floor: str = "--floor") -> CnnsetupError:
    """A translated, actionable message for a layer that cannot be applied."""
    v = error.values
    reason = error.reason
    if reason == "zero_stride":
        return CnnsetupError(
            _("The stride must be at least 1 (got {stride}): a window that does not move never "
              "covers the input.").format(stride=v["s"]))
    if reason == "kernel_too_large":
        return CnnsetupError(
            _("The kernel ({kernel}) is larger than the padded input ({size} + 2 x {pad} = "
              "{padded}): it fits nowhere.").format(kernel=v["f"], size=v["w"], pad=v["p"],
                                                      padded=v["padded"]),
            hint=_("Use a smaller kernel or more padding."))
    if reason == "not_integer":
        w, f, s, p = v["w"], v["f"], v["s"], v["p"]
        filled = f"({w} - {f} + 2*{p}) / {s} + 1"
        exact = shapes.exact_output_size(w, f, s, p)
        return CnnsetupError(
            _("The output size {formula} = {filled} = {value} is not a whole number: a kernel of "
              "{kernel} moving {stride} at a time does not fit the input evenly.").format(
                formula=CONV_SIZE, filled=filled, value=_number(exact), kernel=f, stride=s),
            hint=_("Choose a stride and padding for which S divides W - F + 2P (here {span}), "
                   "or add {option} to drop the remainder as PyTorch does (output {floor}).")
            .format(span=w - f + 2 * p, option=option_floor, floor=v["floor"]))
    if reason == "negative_padding":
        return CnnsetupError(_("The padding cannot be negative (got {pad}).").format(pad=v["p"]))
    if reason == "bad_kernel":
        return CnnsetupError(_("The kernel size must be at least 1 (got {kernel}).")
                             .format(kernel=v["f"]))
    if reason == "bad_filters":
        return CnnsetupError(_("A CONV layer needs at least one filter (got {filters}).")
                             .format(filters=v["k"]))
    if reason == "reflect_too_wide":
        return CnnsetupError(
            _("Reflect padding of {pad} needs an input larger than {pad} in each direction "
              "(got {size}).").format(pad=v["p"], size=v["w"]))
    return CnnsetupError(_("Every input size must be at least 1."))


# ---- computing (plain data) -------------------------------------------------------------------

def summary_json(summary: list[LayerInfo], input_shape: tuple[int, int, int], subject: str
                 ) -> dict:
    return {
        "subject": subject,
        "input_shape": list(input_shape),
        "layers": [layer.to_dict() for layer in summary],
        "total_params": shapes.total_params(summary),
        "layer_count": shapes.count_layers_in(summary),
    }


def conv_layer(step: ConvExplanation) -> LayerInfo:
    return LayerInfo("conv", "conv", step.output_shape, step.params)


def pool_layer(step: PoolExplanation) -> LayerInfo:
    return LayerInfo("pool", "pool", step.output_shape, 0)


def conv_json(step: ConvExplanation, mode: str) -> dict:
    data = summary_json([conv_layer(step)], step.input_shape, "conv")
    data["conv"] = {
        "kernel": step.kernel, "stride": step.stride, "padding": step.padding,
        "padding_mode": step.padding_mode, "filters": step.filters, "mode": mode,
        "padded_shape": list(step.padded_shape),
        "exact_output_size": [float(size) for size in step.exact_size],
        "output_shape": list(step.output_shape),
        "weights": step.weights, "biases": step.biases,
    }
    return data


def pool_json(step: PoolExplanation, mode: str) -> dict:
    data = summary_json([pool_layer(step)], step.input_shape, "pool")
    data["pool"] = {
        "kind": step.kind, "kernel": step.kernel, "stride": step.stride, "mode": mode,
        "exact_output_size": [float(size) for size in step.exact_size],
        "output_shape": list(step.output_shape),
    }
    return data


# ---- rendering ---------------------------------------------------------------------------------

def _yes_no(flag: bool) -> str:
    return _("yes") if flag else _("no")


def render_network(summary: list[LayerInfo], input_shape: tuple[int, int, int]) -> None:
    echo(style(_("The reference network: {architecture}").format(
        architecture=shapes.architecture(summary)), bold=True))
    echo(_("Input: {shape} (height x width x channels)").format(shape=_shape(input_shape)))
    echo()
    rows = [[layer.name, _shape(layer.output_shape), f"{layer.params:,}",
             _yes_no(layer.counts_as_layer)] for layer in summary]
    header = [_("Layer"), _("Output (H x W x C)"), _("Parameters"), _("Counts as a layer")]
    echo(table(rows, header=header, indent=2))
    echo()
    echo(_("Total parameters: {total}").format(total=f"{shapes.total_params(summary):,}"))
    echo(_("Layers: {count} (only CONV and FC layers count; RELU and POOL do not)").format(
        count=shapes.count_layers_in(summary)))


def _size_lines(exact: tuple[Fraction, Fraction], output: tuple[int, int], filled: list[str]
                ) -> list[str]:
    """"(5 - 3 + 2*1) / 2 + 1 = 3", once if height and width agree, else once for each."""
    lines = []
    for label, value, size, text in zip((_("height"), _("width")), exact, output, filled):
        line = f"{text} = {_number(value)}"
        if value.denominator != 1:
            line += " -> " + _("{size} (rounded down, as PyTorch does)").format(size=size)
        lines.append(f"{label}: {line}")
    if filled[0] == filled[1]:
        return [lines[0].split(": ", 1)[1]]
    return lines


def _stride_text(stride: int) -> str:
    return ngettext("{stride} (the window moves {stride} pixel at a time)",
                    "{stride} (the window moves {stride} pixels at a time)", stride
                    ).format(stride=stride)


def render_conv(step: ConvExplanation) -> None:
    h, w, c = step.input_shape
    f, s, p, k = step.kernel, step.stride, step.padding, step.filters
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
    echo(style(_("One CONV layer, step by step"), bold=True))
    echo(key_values([
        (_("Input (H x W x C)"), _shape(step.input_shape)),
        (_("Padding P"), padded.format(pad=p, size=_shape((h, w)), padded=_shape((ph, pw)))),
        (_("Kernel F"), _("{kernel} (each filter spans all {channels} input channels)").format(
            kernel=_shape((f, f, c)), channels=c)),
        (_("Stride S"), _stride_text(s)),
        (_("Filters K"), _("{filters} (each makes one feature map)").format(filters=k)),
    ]))
    echo()
    filled = [f"({n} - {f} + 2*{p}) / {s} + 1" for n in (h, w)]
    echo("  " + _("Output size = {formula}").format(formula=CONV_SIZE))
    for line in _size_lines(step.exact_size, step.output_shape[:2], filled):
        echo("    = " + line)
    echo("  " + _("Output (H x W x K): {shape}").format(shape=_shape(step.output_shape)))
    echo()
    echo("  " + _("Parameters = {formula}").format(formula=CONV_PARAMS))
    split = ngettext("({weights} weights + {biases} bias)", "({weights} weights + {biases} biases)",
                     step.biases).format(weights=f"{step.weights:,}", biases=step.biases)
    echo("    = " + f"({f}*{f}*{c} + 1) * {k} = {step.params:,}   " + split)
    echo("  " + _("Counts as a layer: {answer} (CONV and FC layers count; RELU and POOL do not)")
         .format(answer=_yes_no(True)))


_POOL_NAMES = {"max": N_("max pooling (the largest value in each window)"),
               "avg": N_("average pooling (the mean of each window)"),
               "sum": N_("sum pooling (the total of each window)")}


def render_pool(step: PoolExplanation) -> None:
    h, w, c = step.input_shape
    f, s = step.kernel, step.stride
    echo(style(_("One POOL layer, step by step"), bold=True))
    echo(key_values([
        (_("Input (H x W x C)"), _shape(step.input_shape)),
        (_("Pooling"), _(_POOL_NAMES[step.kind])),
        (_("Window F"), _("{window} on each channel separately").format(window=_shape((f, f)))),
        (_("Stride S"), _stride_text(s)),
        (_("Padding P"), _("none: the input is used as it is")),
    ]))
    echo()
    filled = [f"({n} - {f}) / {s} + 1" for n in (h, w)]
    echo("  " + _("Output size = {formula}").format(formula=POOL_SIZE))
    for line in _size_lines(step.exact_size, step.output_shape[:2], filled):
        echo("    = " + line)
    echo("  " + _("Output (H x W x C): {shape} (the channels stay as they are)").format(
        shape=_shape(step.output_shape)))
    echo("  " + _("Parameters: 0 (pooling learns nothing)"))
    echo("  " + _("Counts as a layer: {answer} (CONV and FC layers count; RELU and POOL do not)")
         .format(answer=_yes_no(False)))


# ---- the command -------------------------------------------------------------------------------

@command(
    "explain",
    help=N_("Show how a CNN's output shapes and parameter counts are computed: the reference "
            "network layer by layer, or one CONV or POOL layer worked through."),
)
@option("--input", "input_text", metavar="HxWxC",
        help=N_("Input size as height x width x channels, e.g. 5x5x3."))
@option("--kernel", type=int, help=N_("Kernel (window) size F."))
@option("--stride", type=int,
        help=N_("Stride S: pixels the window moves each step (default 1; for pooling, F)."))
@option("--pad", type=int, help=N_("Padding P on each side (CONV only; default 0)."))
@option("--filters", type=int, help=N_("Number of filters K (CONV only; default 1)."))
@option("--padding-mode", type=click.Choice(["zeros", "reflect"]), default="zeros",
        show_default=True, help=N_("What the padding is filled with (CONV only)."))
@option("--pool", type=click.Choice(["max", "avg", "sum"]),
        help=N_("Explain a pooling layer of this kind instead of a CONV layer."))
@option("--floor", is_flag=True,
        help=N_("Round a fractional output size down, as PyTorch does, instead of stopping."))
@json_option
def explain(input_text: str | None, kernel: int | None, stride: int | None, pad: int | None,
            filters: int | None, padding_mode: str, pool: str | None, floor: bool,
            as_json: bool) -> int:
    mode = "floor" if floor else "strict"
    layer_options = {"--kernel": kernel, "--stride": stride, "--pad": pad, "--filters": filters,
                     "--pool": pool}
    if input_text is None:
        given = [name for name, value in layer_options.items() if value is not None]
        if given:
            raise UsageError(_("{options} needs {input} (the size of the layer's input).")
                             .format(options=", ".join(given), input="--input"))
        summary = shapes.summarize_config(SMOKE.net)
        net = SMOKE.net
        input_shape = (net.input_size, net.input_size, net.in_channels)
        if as_json:
            data = summary_json(summary, input_shape, "network")
            data["architecture"] = shapes.architecture(summary)
            print_json(data)
        else:
            render_network(summary, input_shape)
        return 0

    input_shape = parse_input(input_text)
    if kernel is None:
        raise UsageError(_("{input} needs {kernel} (the kernel size F).")
                         .format(input="--input", kernel="--kernel"))
    try:
        if pool:
            for name, value in (("--pad", pad), ("--filters", filters)):
                if value is not None:
                    raise UsageError(_("{option} applies to a CONV layer, not to pooling.")
                                     .format(option=name))
            step = shapes.explain_pool(input_shape, pool, kernel, stride, mode=mode)
            if as_json:
                print_json(pool_json(step, mode))
            else:
                render_pool(step)
        else:
            conv = shapes.explain_conv(input_shape, kernel, 1 if stride is None else stride,
                                       pad or 0, 1 if filters is None else filters,
                                       padding_mode=padding_mode, mode=mode)
            if as_json:
                print_json(conv_json(conv, mode))
            else:
                render_conv(conv)
    except ShapeError as error:
        raise shape_error_message(error) from None
    return 0
