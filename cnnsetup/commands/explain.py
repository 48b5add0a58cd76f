"""`cnnsetup explain`: how a CNN's numbers come about, every one shown.

- no options: the reference network that `verify` trains, layer by layer;
- `--input --kernel ...`: one CONV layer (or, with `--pool`, one POOL layer) worked through;
- `--net SPEC --input HxWxC`: the student's own network, with parameters, multiply-accumulates,
  receptive field and activation memory per layer (grammar in reference_net.netspec);
- `--demo`: the CS231n convolution demo with every number and one output worked through.

Pure arithmetic from `reference_net` (shapes, netspec, demo): this command never imports torch.
The pieces live in cnnsetup/explain/.
"""

from __future__ import annotations

import re

import click

from cnnsetup.commands.base import command, json_option, option
from cnnsetup.errors import UsageError
from cnnsetup.explain import demo as demo_view
from cnnsetup.explain import layer as layer_view
from cnnsetup.explain import network as network_view
from cnnsetup.explain.wording import coded, layer_error, shape_error, spec_error
from cnnsetup.i18n import N_, _
from cnnsetup.render import print_json
from reference_net import netspec, shapes
from reference_net.demo import cs231n_demo
from reference_net.shapes import ShapeError
from reference_net.smoke import SMOKE

_TIMES = r"\s*[xX*\u00d7]\s*"
_INPUT = re.compile(rf"^\s*(-?\d+){_TIMES}(-?\d+){_TIMES}(-?\d+)\s*$")
_KERNEL = re.compile(rf"^\s*(-?\d+)(?:{_TIMES}(-?\d+))?\s*$")


def parse_input(text: str) -> tuple[int, int, int]:
    """"5x5x3" -> (5, 5, 3): height, width, channels; each at least 1, else a usage error."""
    match = _INPUT.match(text)
    if not match:
        raise coded(UsageError(
            _("Cannot read the input size {text}: write it as height x width x channels, "
              "for example {example}.").format(text=text, example="5x5x3")), "explain.bad_input")
    h, w, c = (int(group) for group in match.groups())
    if min(h, w, c) < 1:
        raise coded(UsageError(
            _("Every input size must be at least 1 (got {text}): an image has at least one "
              "pixel and one channel.").format(text=text)), "explain.bad_input")
    return h, w, c


class KernelSize(click.ParamType):
    """--kernel: F (square) or HxW; each at least 1."""

    name = "F|HxW"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        match = _KERNEL.match(str(value))
        if not match:
            self.fail(_("{value} is not a kernel size: write F (for example 3) or height x width "
                        "(for example 3x2).").format(value=value), param, ctx)
        kh = int(match.group(1))
        kw = int(match.group(2)) if match.group(2) is not None else kh
        if min(kh, kw) < 1:
            self.fail(_("The kernel size must be at least 1 (got {kernel}).").format(
                kernel=value), param, ctx)
        return (kh, kw)


_AT_LEAST_1 = click.IntRange(min=1)


@command(
    "explain",
    help=N_("Show how a CNN's numbers are computed: the reference network layer by layer, one "
            "CONV or POOL layer worked through, your own network (--net), or the CS231n "
            "convolution demo with every number (--demo)."),
)
@option("--demo", is_flag=True,
        help=N_("The CS231n convolution demo: a 5x5x3 input padded by 1, two 3x3x3 filters, "
                "stride 2, every number shown and one output worked through."))
@option("--seed", type=click.IntRange(min=0),
        help=N_("With --demo: draw other inputs (0..2) and weights (-1..1); the biases stay "
                "1 and 0."))
@option("--net", "net_text", metavar="SPEC",
        help=N_("Your network as comma-separated layers, e.g. "
                "\"conv(16,3,p=1),relu,maxpool(2),fc(10)\"; needs --input."))
@option("--input", "input_text", metavar="HxWxC",
        help=N_("Input size as height x width x channels, e.g. 5x5x3."))
@option("--kernel", type=KernelSize(), help=N_("Kernel (window) size F, or HxW, e.g. 3x2."))
@option("--stride", type=_AT_LEAST_1,
        help=N_("Stride S: pixels the window moves each step (default 1; for pooling, F)."))
@option("--pad", type=click.IntRange(min=0),
        help=N_("Padding P on each side (default 0; pooling: at most half the window)."))
@option("--filters", type=_AT_LEAST_1, help=N_("Number of filters K (CONV only; default 1)."))
@option("--dilation", type=_AT_LEAST_1,
        help=N_("Dilation D: the kernel's taps are D pixels apart (CONV only; default 1)."))
@option("--padding-mode", type=click.Choice(["zeros", "reflect"]), default=None,
        help=N_("What the padding is filled with (CONV only; default zeros)."))
@option("--pool", type=click.Choice(["max", "avg", "sum"]),
        help=N_("Explain a pooling layer of this kind instead of a CONV layer."))
@option("--ceil", "ceil_mode", is_flag=True,
        help=N_("Pooling only: round the output size up (PyTorch's ceil_mode)."))
@option("--floor", is_flag=True,
        help=N_("Round a fractional output size down, as PyTorch does, instead of stopping."))
@json_option
def explain(demo: bool, seed: int | None, net_text: str | None, input_text: str | None,
            kernel: tuple[int, int] | None, stride: int | None, pad: int | None,
            filters: int | None, dilation: int | None, padding_mode: str | None,
            pool: str | None, ceil_mode: bool, floor: bool, as_json: bool) -> int:
    mode = "floor" if floor else "strict"
    layer_options = {"--kernel": kernel, "--stride": stride, "--pad": pad, "--filters": filters,
                     "--dilation": dilation, "--padding-mode": padding_mode, "--pool": pool,
                     "--ceil": ceil_mode or None}
    given = [name for name, value in layer_options.items() if value is not None]
    if seed is not None and not demo:
        raise _usage(_("{option} goes with {demo}.").format(option="--seed", demo="--demo"))
    if demo:
        others = given + [name for name, value in (("--net", net_text), ("--input", input_text),
                                                    ("--floor", floor or None))
                          if value is not None]
        if others:
            raise _usage(_("{demo} takes no other options than {allowed} (got {options}).")
                         .format(demo="--demo", allowed="--seed, --json",
                                 options=", ".join(others)))
        return _demo(0 if seed is None else seed, as_json)
    if net_text is not None:
        if given:
            raise _usage(_("{options}: with {net}, write these in the layers instead.").format(
                options=", ".join(given), net="--net"))
        if input_text is None:
            raise _usage(_("{net} needs {input} (the size of the network's input).").format(
                net="--net", input="--input"))
        return _net(net_text, parse_input(input_text), mode, as_json)
    if input_text is None:
        if given:
            raise _usage(_("{options} needs {input} (the size of the layer's input).")
                         .format(options=", ".join(given), input="--input"))
        summary = shapes.summarize_config(SMOKE.net)
        net = SMOKE.net
        input_shape = (net.input_size, net.input_size, net.in_channels)
        if as_json:
            print_json(network_view.reference_json(summary, input_shape))
        else:
            network_view.render_reference(summary, input_shape)
        return 0
    input_shape = parse_input(input_text)
    if kernel is None:
        raise _usage(_("{input} needs {kernel} (the kernel size F).")
                     .format(input="--input", kernel="--kernel"))
    if pool:
        return _pool(input_shape, pool, kernel, stride, pad, mode, ceil_mode, as_json,
                     [n for n in ("--filters", "--dilation", "--padding-mode")
                      if layer_options[n] is not None])
    if ceil_mode:
        raise _usage(_("{option} applies to pooling, not to a CONV layer.").format(
            option="--ceil"))
    try:
        step = shapes.explain_conv(input_shape, kernel, 1 if stride is None else stride,
                                   pad or 0, 1 if filters is None else filters,
                                   padding_mode=padding_mode or "zeros", mode=mode,
                                   dilation=dilation or 1)
    except ShapeError as error:
        raise shape_error(error) from None
    if as_json:
        print_json(layer_view.conv_json(step, mode))
    else:
        layer_view.render_conv(step)
    return 0


def _usage(message: str) -> UsageError:
    return coded(UsageError(message), "explain.usage")


def _pool(input_shape, kind, kernel, stride, pad, mode, ceil_mode, as_json, conv_only) -> int:
    if conv_only:
        raise _usage(_("{option} applies to a CONV layer, not to pooling.").format(
            option=conv_only[0]))
    try:
        step = shapes.explain_pool(input_shape, kind, kernel, stride, mode=mode,
                                   padding=pad or 0, ceil_mode=ceil_mode)
    except ShapeError as error:
        raise shape_error(error, pool=True) from None
    if as_json:
        print_json(layer_view.pool_json(step, mode))
    else:
        layer_view.render_pool(step)
    return 0


def _net(text: str, input_shape: tuple[int, int, int], mode: str, as_json: bool) -> int:
    try:
        rows = netspec.summarize(netspec.parse(text), input_shape, mode=mode)
    except netspec.SpecError as error:
        raise spec_error(error, text) from None
    except netspec.LayerError as error:
        raise layer_error(error) from None
    if as_json:
        print_json(network_view.net_json(rows, input_shape, text, mode))
    else:
        network_view.render_net(rows, input_shape)
    return 0


def _demo(seed: int, as_json: bool) -> int:
    demo = cs231n_demo(seed)
    worked = demo.worked(0, 0, 0)
    if as_json:
        print_json(demo_view.demo_json(demo, worked))
    else:
        demo_view.render_demo(demo, worked, seed)
    return 0
