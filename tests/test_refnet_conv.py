"""Convolution, padding, FC and ReLU by definition, against PyTorch."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: install the CPU build (see README.md)")

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reference_net.conv import (
    check_against_torch, conv2d, cs231n_example, pad2d, random_cases, reflect_index,
)
from reference_net.fc import fully_connected, relu
from reference_net.shapes import ShapeError


def test_conv2d_agrees_with_pytorch_to_1e_5_on_random_float32_cases():
    g = torch.Generator().manual_seed(0)
    cases = random_cases(60, seed=7)
    assert {c.padding_mode for c in cases} == {"zeros", "reflect"}
    assert {c.stride for c in cases} == {1, 2, 3}
    assert max(c.channels for c in cases) > 1 and max(c.filters for c in cases) > 1
    assert {c.bias for c in cases} == {True, False}
    assert {c.dilation for c in cases} == {1, 2, 3}
    assert any(c.kernel_size[0] != c.kernel_size[1] for c in cases)
    for case in cases:
        x = torch.randn(case.n, case.channels, case.height, case.width, generator=g)
        w = torch.randn(case.filters, case.channels, *case.kernel_size, generator=g)
        b = torch.randn(case.filters, generator=g) if case.bias else None
        layer = nn.Conv2d(case.channels, case.filters, case.kernel_size, stride=case.stride,
                          padding=case.padding, padding_mode=case.padding_mode, bias=case.bias,
                          dilation=case.dilation)
        with torch.no_grad():
            layer.weight.copy_(w)
            if b is not None:
                layer.bias.copy_(b)
            expected = layer(x)
        ours = conv2d(x, w, b, case.stride, case.padding, case.padding_mode,
                      dilation=case.dilation)
        assert ours.shape == expected.shape, case
        torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)


def test_check_against_torch_reports_a_tiny_error_in_float64():
    assert check_against_torch("cpu", cases=15, seed=3) < 1e-12


def test_one_output_is_the_window_times_the_filter_summed_over_channels_plus_bias():
    ex = cs231n_example(seed=1)
    padded = F.pad(ex.x, (1, 1, 1, 1))
    # Output (filter 0, row 1, column 2) by hand: window rows 2..4, columns 4..6 of the padded input.
    total = 0.0
    for c in range(3):
        for i in range(3):
            for j in range(3):
                total += float(padded[c, 2 + i, 4 + j]) * float(ex.weight[0, c, i, j])
    assert float(ex.output[0, 1, 2]) == total + 1.0  # bias b0 = 1


def test_a_dilated_3x3_kernel_takes_every_other_pixel_of_a_5x5_window():
    x = torch.arange(25.0).view(1, 1, 5, 5)
    weight = torch.zeros(1, 1, 3, 3)
    weight[0, 0, 2, 2] = 1.0  # picks the window's bottom-right tap
    out = conv2d(x, weight, dilation=2)
    assert out.shape == (1, 1, 1, 1) and out.item() == 24.0  # the tap at (4, 4), not (2, 2)


def test_the_cs231n_example_has_the_numbers_explain_demo_prints():
    from reference_net.demo import cs231n_demo

    for seed in (0, 5):
        demo = cs231n_demo(seed)
        ex = cs231n_example(seed)
        assert ex.x.tolist() == demo.input and ex.weight.tolist() == demo.weights
        assert ex.output.tolist() == demo.output


def test_the_cs231n_demo_is_5x5x3_in_3x3x2_out_with_56_parameters():
    ex = cs231n_example()
    assert ex.x.shape == (3, 5, 5) and ex.weight.shape == (2, 3, 3, 3)
    assert ex.bias.tolist() == [1.0, 0.0]
    assert ex.output.shape == (2, 3, 3)
    assert ex.params == 56
    assert torch.equal(ex.output, F.conv2d(ex.x, ex.weight, ex.bias, stride=2, padding=1))
    assert set(ex.x.unique().tolist()) <= {0.0, 1.0, 2.0}
    assert set(ex.weight.unique().tolist()) <= {-1.0, 0.0, 1.0}


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_padding_matches_f_pad(mode):
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    for p in range(0, 4):
        torch_mode = "constant" if mode == "zeros" else "reflect"
        assert torch.equal(pad2d(x, p, mode), F.pad(x, (p,) * 4, mode=torch_mode))


def test_a_5x5_input_padded_by_1_becomes_7x7_with_a_ring_of_zeros():
    padded = pad2d(torch.ones(5, 5), 1)
    assert padded.shape == (7, 7)
    assert padded.sum() == 25 and padded[0].sum() == 0 and padded[:, -1].sum() == 0


def test_reflect_padding_mirrors_without_repeating_the_edge_and_needs_p_below_the_size():
    assert reflect_index(4, 2) == [2, 1, 0, 1, 2, 3, 2, 1]
    with pytest.raises(ShapeError):
        reflect_index(3, 3)


def test_conv2d_refuses_filters_with_the_wrong_number_of_channels():
    with pytest.raises(ValueError, match="3 channels"):
        conv2d(torch.zeros(1, 3, 5, 5), torch.zeros(2, 4, 3, 3))


def test_fully_connected_is_wx_plus_b_as_in_nn_linear():
    g = torch.Generator().manual_seed(1)
    layer = nn.Linear(13, 5)
    x = torch.randn(4, 13, generator=g)
    torch.testing.assert_close(fully_connected(x, layer.weight, layer.bias), layer(x))
    torch.testing.assert_close(fully_connected(x, layer.weight), x @ layer.weight.T)


def test_relu_is_max_of_zero_and_x():
    x = torch.tensor([-2.0, -0.0, 0.0, 0.5, 3.0])
    assert relu(x).tolist() == [0.0, 0.0, 0.0, 0.5, 3.0]
    y = torch.randn(100, generator=torch.Generator().manual_seed(2))
    assert torch.equal(relu(y), nn.ReLU()(y))
