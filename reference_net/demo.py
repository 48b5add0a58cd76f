"""The CS231n convolution demo in plain Python integers: no torch, so `cnnsetup explain --demo`
starts fast, and every number can be checked by hand.

As on the course page (https://cs231n.github.io/convolutional-networks/, "Convolution Demo"): an
input volume of 5 x 5 x 3 with values 0..2, padded by 1 to 7 x 7 x 3; two filters W0 and W1 of
3 x 3 x 3 with weights -1..1; biases b0 = 1 and b1 = 0; stride 2. The output volume is
3 x 3 x 2: (5 - 3 + 2*1) / 2 + 1 = 3. Each output number is the sum of the 27 products of a filter
with the window it covers, plus that filter's bias. The tests compare every number with
PyTorch's conv2d.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from reference_net.shapes import output_size

Volume = list[list[list[int]]]  # [C][H][W], or [K][H][W] for an output


@dataclass(frozen=True)
class WorkedOutput:
    """One output number worked through: output[filter][row][col] =
    sum over c, i, j of window[c][i][j] * weights[filter][c][i][j], plus bias[filter]."""

    filter: int
    row: int
    col: int
    top: int  # first row of the window in the padded input (row * stride)
    left: int  # first column of the window in the padded input (col * stride)
    window: Volume  # [C][F][F]: the padded input under the filter
    products: Volume  # [C][F][F]: window times weights, element by element
    sum: int
    bias: int
    value: int


@dataclass(frozen=True)
class ConvDemo:
    """The demo's numbers: `input` [C][H][W] before padding, `weights` [K][C][F][F], `bias` [K],
    `output` [K][H_out][W_out]."""

    input: Volume
    weights: list[Volume]
    bias: list[int]
    stride: int
    padding: int
    output: Volume

    @property
    def padded(self) -> Volume:
        """The input with `padding` rows and columns of zeros on each side ([C][H+2P][W+2P])."""
        p = self.padding
        out = []
        for channel in self.input:
            width = len(channel[0]) + 2 * p
            rows = [[0] * width for _ in range(p)]
            rows += [[0] * p + list(row) + [0] * p for row in channel]
            rows += [[0] * width for _ in range(p)]
            out.append(rows)
        return out

    def worked(self, filter: int = 0, row: int = 0, col: int = 0) -> WorkedOutput:
        """output[filter][row][col], with every product that makes it."""
        padded = self.padded
        weights = self.weights[filter]
        f = len(weights[0])
        top, left = row * self.stride, col * self.stride
        window = [[channel[top + i][left:left + f] for i in range(f)] for channel in padded]
        products = [[[window[c][i][j] * weights[c][i][j] for j in range(f)] for i in range(f)]
                    for c in range(len(window))]
        total = sum(v for channel in products for line in channel for v in line)
        bias = self.bias[filter]
        return WorkedOutput(filter, row, col, top, left, window, products, total, bias,
                            total + bias)


def convolve(x: Volume, weights: list[Volume], bias: list[int], stride: int, padding: int
             ) -> Volume:
    """Convolution by definition on integers: [C][H][W] input, [K][C][F][F] filters -> [K][..]."""
    demo = ConvDemo(x, weights, bias, stride, padding, [])
    h, w, f = len(x[0]), len(x[0][0]), len(weights[0][0])
    out_h = output_size(h, f, stride, padding, mode="floor")
    out_w = output_size(w, f, stride, padding, mode="floor")
    return [[[demo.worked(k, i, j).value for j in range(out_w)] for i in range(out_h)]
            for k in range(len(weights))]


def cs231n_demo(seed: int = 0, *, size: int = 5, channels: int = 3, filters: int = 2,
                kernel: int = 3, stride: int = 2, padding: int = 1) -> ConvDemo:
    """The demo's volume with inputs 0..2 and weights -1..1 drawn from `seed` (Python's random,
    so the same seed gives the same numbers everywhere); biases 1 for W0 and 0 for the others."""
    rng = random.Random(seed)
    x = [[[rng.randint(0, 2) for _ in range(size)] for _ in range(size)] for _ in range(channels)]
    weights = [[[[rng.randint(-1, 1) for _ in range(kernel)] for _ in range(kernel)]
                for _ in range(channels)] for _ in range(filters)]
    bias = [1] + [0] * (filters - 1)
    return ConvDemo(x, weights, bias, stride, padding,
                    convolve(x, weights, bias, stride, padding))
