"""The CS231n convolution demo with every number shown (`cnnsetup explain --demo`): each input
channel with its padding, each filter, the output volume, and one output number worked through
(its 27 products, their sum, plus the bias), with a drawing of where the window sits.

The numbers come from reference_net.demo (plain integers, no torch); the tests compare them with
PyTorch's conv2d. Written as the course page writes them: x[:,:,d] is depth slice d of the input,
w0[:,:,d] of filter W0, o[:,:,k] the output of filter k.
"""

from __future__ import annotations

from cnnsetup.i18n import _
from cnnsetup.render import echo, style
from reference_net.demo import ConvDemo, WorkedOutput


def demo_json(demo: ConvDemo, worked: WorkedOutput) -> dict:
    """input [C][H][W] (before padding), weights [K][C][F][F], bias [K], stride, padding,
    output [K][H][W], worked {filter, row, col, products [C][F][F], sum, bias, value}."""
    return {
        "input": demo.input,
        "weights": demo.weights,
        "bias": demo.bias,
        "stride": demo.stride,
        "padding": demo.padding,
        "output": demo.output,
        "worked": {"filter": worked.filter, "row": worked.row, "col": worked.col,
                   "products": worked.products, "sum": worked.sum, "bias": worked.bias,
                   "value": worked.value},
    }


def _grid(rows: list[list[int]], padding: int = 0) -> list[str]:
    """Numbers right-aligned in columns; the outer `padding` ring dimmed (on a terminal)."""
    cells = [[f"{v:>3}" for v in row] for row in rows]
    height, width = len(rows), len(rows[0])
    lines = []
    for i, row in enumerate(cells):
        out = []
        for j, cell in enumerate(row):
            ring = i < padding or j < padding or i >= height - padding or j >= width - padding
            out.append(style(cell, fg="bright_black") if ring and padding else cell)
        lines.append("    " + "".join(out))
    return lines


def _term(x: int, w: int) -> str:
    return f"{x}*{w}" if w >= 0 else f"{x}*({w})"


def render_demo(demo: ConvDemo, worked: WorkedOutput, seed: int) -> None:
    c, h, w = len(demo.input), len(demo.input[0]), len(demo.input[0][0])
    k, f = len(demo.weights), len(demo.weights[0][0])
    p, s = demo.padding, demo.stride
    oh, ow = len(demo.output[0]), len(demo.output[0][0])
    echo(style(_("The CS231n convolution demo, every number shown (seed {seed})").format(
        seed=seed), bold=True))
    echo(_("Input {input} padded by {pad} to {padded}; {filters} filters of {kernel}; stride "
           "{stride}; output {output}.").format(
        input=f"{h} x {w} x {c}", pad=p, padded=f"{h + 2 * p} x {w + 2 * p} x {c}", filters=k,
        kernel=f"{f} x {f} x {c}", stride=s, output=f"{oh} x {ow} x {k}"))
    echo()
    echo(style(_("Input volume (the outer ring of 0 is the padding)"), bold=True))
    for d, channel in enumerate(demo.padded):
        echo(f"  x[:,:,{d}]")
        for line in _grid(channel, p):
            echo(line)
    echo()
    for n, filt in enumerate(demo.weights):
        echo(style(_("Filter W{n} ({kernel}), bias b{n} = {bias}").format(
            n=n, kernel=f"{f} x {f} x {c}", bias=demo.bias[n]), bold=True))
        for d, depth in enumerate(filt):
            echo(f"  w{n}[:,:,{d}]")
            for line in _grid(depth):
                echo(line)
    echo()
    echo(style(_("Output volume ({output})").format(output=f"{oh} x {ow} x {k}"), bold=True))
    for n, plane in enumerate(demo.output):
        echo(f"  o[:,:,{n}]")
        for line in _grid(plane):
            echo(line)
    echo()
    _render_worked(demo, worked)


def _render_worked(demo: ConvDemo, worked: WorkedOutput) -> None:
    n, i, j = worked.filter, worked.row, worked.col
    f = len(worked.window[0])
    s = demo.stride
    echo(style(_("One output number worked through: o[{row},{col},{n}]").format(
        row=i, col=j, n=n), bold=True))
    echo("  " + _("The window starts at row {row} x {stride} = {top} and column {col} x {stride} "
                  "= {left} of the padded input; it covers rows {top}-{bottom} and columns "
                  "{left}-{right}:").format(
        row=i, col=j, stride=s, top=worked.top, left=worked.left, bottom=worked.top + f - 1,
        right=worked.left + f - 1))
    padded = demo.padded[0]
    p = demo.padding
    for r in range(len(padded)):
        cells = []
        for q in range(len(padded[0])):
            inside = worked.top <= r < worked.top + f and worked.left <= q < worked.left + f
            border = r < p or q < p or r >= len(padded) - p or q >= len(padded[0]) - p
            cells.append("#" if inside else "." if border else "o")
        echo("    " + " ".join(cells))
    echo("  " + _("# the window, o the input, . the padding"))
    echo()
    totals = []
    for d in range(len(worked.window)):
        terms = [_term(worked.window[d][a][b], demo.weights[n][d][a][b])
                 for a in range(f) for b in range(f)]
        subtotal = sum(v for line in worked.products[d] for v in line)
        totals.append(subtotal)
        echo(f"  x[:,:,{d}] * w{n}[:,:,{d}]: " + " + ".join(terms) + f" = {subtotal}")
    count = len(worked.window) * f * f
    joined = " + ".join(str(t) if t >= 0 else f"({t})" for t in totals)
    echo("  " + _("Sum of the {count} products: {terms} = {sum}").format(
        count=count, terms=joined, sum=worked.sum))
    bias = worked.bias
    echo("  " + _("Plus the bias b{n} = {bias}: {sum} + {bias_term} = {value}").format(
        n=n, bias=bias, sum=worked.sum, bias_term=bias if bias >= 0 else f"({bias})",
        value=worked.value))
    echo("  " + _("o[{row},{col},{n}] = {value}, as in the output volume above.").format(
        row=i, col=j, n=n, value=worked.value))
