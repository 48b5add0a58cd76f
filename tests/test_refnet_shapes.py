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
            "reference_net.smoke; assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
