"""Shape and parameter arithmetic (reference_net.shapes) against real PyTorch layers."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: install the CPU build (see README.md)")

import random
import subprocess
import sys

import pytest
import torch
from torch import nn

from reference_net import shapes
from reference_net.config import NetConfig
from reference_net.model import ReferenceNet, build_model, count_layers, layer_summary
from reference_net.pooling import SpatialPyramidPool
from reference_net.shapes import ShapeError, conv_params, fc_params, output_size
from tests.conftest import REPO_ROOT


def _random_conv_configs(count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        f, p, s = rng.randint(1, 6), rng.randint(0, 3), rng.randint(1, 4)
        w = rng.randint(max(1, f - 2 * p), 24)
        yield w, f, s, p, rng.randint(1, 5), rng.randint(1, 6)


def test_output_size_in_floor_mode_matches_conv2d_on_many_random_layers():
    for w, f, s, p, c_in, k in _random_conv_configs(200, seed=1):
        layer = nn.Conv2d(c_in, k, f, stride=s, padding=p)
        out = layer(torch.zeros(1, c_in, w, w + 1))
        assert out.shape[-2:] == (output_size(w, f, s, p, mode="floor"),
                                  output_size(w + 1, f, s, p, mode="floor"))
        assert out.shape[1] == k


def test_strict_mode_agrees_with_pytorch_when_the_kernel_fits_evenly():
    fitted = 0
    for w, f, s, p, c_in, k in _random_conv_configs(200, seed=2):
        if (w - f + 2 * p) % s:
            with pytest.raises(ShapeError) as caught:
                output_size(w, f, s, p)
            assert caught.value.reason == "not_integer"
            continue
        fitted += 1
        out = nn.Conv2d(c_in, k, f, stride=s, padding=p)(torch.zeros(1, c_in, w, w))
        assert out.shape[-1] == output_size(w, f, s, p, mode="strict")
    assert fitted > 30  # both branches were exercised


def test_output_size_matches_max_and_avg_pooling_in_floor_mode():
    rng = random.Random(3)
    for _ in range(100):
        f, s = rng.randint(1, 5), rng.randint(1, 4)
        w = rng.randint(f, 30)
        x = torch.zeros(1, 2, w, w)
        expected = output_size(w, f, s, 0, mode="floor")
        assert nn.MaxPool2d(f, s)(x).shape[-1] == expected
        assert nn.AvgPool2d(f, s)(x).shape[-1] == expected


def test_cs231n_invalid_example_is_an_error_with_the_numbers_in_it():
    with pytest.raises(ShapeError) as caught:
        output_size(10, 3, 2, 0, mode="strict")
    assert caught.value.reason == "not_integer"
    assert "4.5" in str(caught.value)
    assert caught.value.values["floor"] == 4
    assert output_size(10, 3, 2, 0, mode="floor") == 4
    assert nn.Conv2d(1, 1, 3, stride=2)(torch.zeros(1, 1, 10, 10)).shape[-1] == 4


@pytest.mark.parametrize(
    "args, reason",
    [((5, 3, 0, 0), "zero_stride"), ((5, 3, -1, 0), "zero_stride"),
     ((5, 9, 1, 1), "kernel_too_large"), ((5, 3, 1, -1), "negative_padding"),
     ((0, 3, 1, 1), "bad_input"), ((5, 0, 1, 0), "bad_kernel")],
)
def test_impossible_layers_are_shape_errors(args, reason):
    with pytest.raises(ShapeError) as caught:
        output_size(*args, mode="floor")
    assert caught.value.reason == reason


def test_a_5x5_input_padded_by_1_is_7x7_and_the_cs231n_layer_gives_3x3x2_with_56_params():
    step = shapes.explain_conv((5, 5, 3), 3, 2, 1, 2)
    assert step.padded_shape == (7, 7, 3)
    assert step.output_shape == (3, 3, 2)
    assert step.params == 56 == sum(p.numel() for p in nn.Conv2d(3, 2, 3, 2, 1).parameters())


def test_parameter_counts_match_conv2d_and_linear_on_random_layers():
    rng = random.Random(4)
    for _ in range(100):
        f, c_in, k = rng.randint(1, 7), rng.randint(1, 64), rng.randint(1, 64)
        bias = rng.random() < 0.8
        conv = nn.Conv2d(c_in, k, f, bias=bias)
        assert conv_params(f, c_in, k, bias=bias) == sum(p.numel() for p in conv.parameters())
        n_in, n_out = rng.randint(1, 500), rng.randint(1, 100)
        fc = nn.Linear(n_in, n_out, bias=bias)
        assert fc_params(n_in, n_out, bias=bias) == sum(p.numel() for p in fc.parameters())


def _random_net_configs(count: int, seed: int):
    rng = random.Random(seed)
    yield NetConfig()
    for _ in range(count):
        depth = rng.randint(1, 3)
        kernel = rng.choice((1, 3, 5))
        yield NetConfig(
            input_size=rng.randint(3 * 2 ** depth, 40), in_channels=rng.randint(1, 4),
            widths=tuple(rng.randint(1, 12) for _ in range(depth)), kernel_size=kernel,
            pool=rng.choice(("max", "avg", "sum")), padding_mode=rng.choice(("zeros", "reflect")),
            hidden=rng.choice((0, 7, 32)), classes=rng.randint(2, 10),
        )


def test_the_summary_by_arithmetic_equals_a_forward_pass_through_the_real_network():
    for config in _random_net_configs(25, seed=5):
        by_arithmetic = shapes.summarize_config(config)
        by_torch = layer_summary(ReferenceNet(config))
        assert by_arithmetic == by_torch, config
        model = ReferenceNet(config)
        assert shapes.total_params(by_arithmetic) == sum(p.numel() for p in model.parameters())
        assert shapes.count_layers_in(by_arithmetic) == count_layers(model)


def test_the_reference_network_is_conv_relu_pool_twice_then_fc_relu_fc():
    summary = shapes.summarize_config(NetConfig())
    assert shapes.architecture(summary) == "CONV-RELU-POOL-CONV-RELU-POOL-FC-RELU-FC"
    assert [layer.name for layer in summary][:3] == ["conv1", "relu1", "pool1"]
    assert shapes.count_layers_in(summary) == 4
    assert [layer.output_shape for layer in summary if layer.kind == "pool"] == [(8, 8, 8),
                                                                                (4, 4, 16)]


def test_count_layers_counts_conv_and_fc_only():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 8),
                          nn.ReLU(), nn.Linear(8, 2))
    assert count_layers(model) == 4
    assert count_layers(nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))) == 0
    assert count_layers(build_model(NetConfig(widths=(4, 4, 4), hidden=0))) == 4


def test_spp_length_matches_the_module_on_any_input_size():
    assert shapes.spp_length(256) == 21 * 256 == 5376
    spp = SpatialPyramidPool((4, 2, 1))
    for h, w in ((4, 4), (13, 7), (30, 41)):
        assert spp(torch.zeros(1, 256, h, w)).shape == (1, shapes.spp_length(256))


def test_shapes_config_and_smoke_import_without_torch():
    code = ("import sys; import reference_net, reference_net.shapes, reference_net.config, "
            "reference_net.smoke, reference_net.netspec, reference_net.demo; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_output_size_with_dilation_and_non_square_kernels_matches_conv2d():
    rng = random.Random(6)
    for _ in range(60):
        kh, kw, d = rng.randint(1, 4), rng.randint(1, 4), rng.randint(1, 3)
        s, p = rng.randint(1, 3), rng.randint(0, 2)
        h = rng.randint(max(1, d * (kh - 1) + 1 - 2 * p), 20)
        w = rng.randint(max(1, d * (kw - 1) + 1 - 2 * p), 20)
        out = nn.Conv2d(1, 1, (kh, kw), stride=s, padding=p, dilation=d)(torch.zeros(1, 1, h, w))
        assert out.shape[-2:] == (output_size(h, kh, s, p, mode="floor", dilation=d),
                                  output_size(w, kw, s, p, mode="floor", dilation=d))
    with pytest.raises(ShapeError) as caught:  # 3 taps 2 apart span 5 pixels: 4 is too small
        output_size(4, 3, 1, 0, mode="floor", dilation=2)
    assert caught.value.reason == "kernel_too_large" and caught.value.values["f"] == 5


def test_ceil_mode_output_size_matches_max_pool2d_including_the_last_window_rule():
    rng = random.Random(7)
    rule_applied = 0
    for _ in range(300):
        f, s = rng.randint(1, 5), rng.randint(1, 4)
        p = rng.randint(0, f // 2)
        w = rng.randint(max(1, f - 2 * p), 16)
        expected = nn.MaxPool2d(f, s, p, ceil_mode=True)(torch.zeros(1, 1, w, w)).shape[-1]
        assert output_size(w, f, s, p, mode="strict", ceil_mode=True) == expected, (w, f, s, p)
        rule_applied += -(-(w - f + 2 * p) // s) + 1 != expected  # plain rounding up is wrong
    assert rule_applied > 0


def test_pooling_padding_may_be_at_most_half_the_window_as_in_pytorch():
    for f in range(1, 6):
        for p in range(0, 4):
            try:
                nn.MaxPool2d(f, 1, p)(torch.zeros(1, 1, 9, 9))
                allowed = True
            except RuntimeError:
                allowed = False
            try:
                shapes.check_pool_padding(f, p)
                ours = True
            except ShapeError as error:
                assert error.reason == "pool_padding_too_large"
                ours = False
            assert ours == allowed, (f, p)


def test_a_non_square_dilated_conv_layer_is_worked_through_like_nn_conv2d():
    step = shapes.explain_conv((11, 9, 4), (3, 2), 2, 1, 5, dilation=2, mode="floor")
    layer = nn.Conv2d(4, 5, (3, 2), stride=2, padding=1, dilation=2)
    out = layer(torch.zeros(1, 4, 11, 9))
    assert step.output_shape == (out.shape[2], out.shape[3], out.shape[1])
    assert step.params == sum(p.numel() for p in layer.parameters())
    assert step.macs == out[0].numel() * 4 * 3 * 2
    assert step.effective_kernel == (5, 3)


def test_a_pooling_layer_with_padding_and_ceil_mode_is_worked_through_like_nn_maxpool2d():
    step = shapes.explain_pool((10, 7, 3), "max", (3, 2), 2, padding=1, ceil_mode=True)
    out = nn.MaxPool2d((3, 2), 2, 1, ceil_mode=True)(torch.zeros(1, 3, 10, 7))
    assert step.output_shape == (out.shape[2], out.shape[3], 3)


def test_macs_and_activation_memory_by_the_course_formulas():
    assert shapes.conv_macs((3, 3), 3, 2, 3) == 3 * 3 * 2 * 27 == 486
    assert shapes.fc_macs(4096, 1000) == 4096000
    assert shapes.activation_bytes((224, 224, 64)) == 224 * 224 * 64 * 4  # VGG's first CONV
