"""`cnnsetup explain`: the reference network and single layers, worked through, without torch."""

from __future__ import annotations

import importlib.util

import json
import subprocess
import sys

import pytest

from cnnsetup.cli import main
from tests.conftest import REPO_ROOT, run_cnnsetup


def _json(invoke, *args):
    result = invoke("explain", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_explain_prints_the_reference_network_layer_by_layer(invoke):
    result = invoke("explain")
    assert result.exit_code == 0
    out = result.stdout
    assert "CONV-RELU-POOL-CONV-RELU-POOL-FC-RELU-FC" in out
    assert "conv1" in out and "16 x 16 x 8" in out and "4 x 4 x 16" in out
    assert "Total parameters: 9,748" in out
    assert "Layers: 4" in out


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_explain_json_equals_what_the_real_torch_network_reports(invoke):
    from reference_net.model import build_model, count_layers, layer_summary
    from reference_net.smoke import SMOKE

    data = _json(invoke)
    model = build_model(SMOKE.net)
    assert data["layers"] == [layer.to_dict() for layer in layer_summary(model)]
    assert data["total_params"] == sum(p.numel() for p in model.parameters())
    assert data["layer_count"] == count_layers(model) == 4
    assert data["input_shape"] == [16, 16, 3]
    for layer in data["layers"]:
        assert set(layer) >= {"name", "output_shape", "params", "counts_as_layer"}
        assert len(layer["output_shape"]) == 3


def test_the_cs231n_conv_layer_is_walked_through_with_stride_and_padding_named(invoke):
    result = invoke("explain", "--input", "5x5x3", "--kernel", "3", "--stride", "2", "--pad", "1",
                    "--filters", "2")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "Stride S" in out and "Padding P" in out
    assert "5 x 5 becomes 7 x 7" in out
    assert "(W - F + 2P) / S + 1" in out and "(5 - 3 + 2*1) / 2 + 1 = 3" in out
    assert "3 x 3 x 2" in out
    assert "(3*3*3 + 1) * 2 = 56" in out and "54 weights + 2 biases" in out


def test_the_cs231n_conv_layer_as_json(invoke):
    data = _json(invoke, "--input", "5x5x3", "--kernel", "3", "--stride", "2", "--pad", "1",
                 "--filters", "2")
    assert data["layers"] == [{"name": "conv", "kind": "conv", "output_shape": [3, 3, 2],
                               "params": 56, "counts_as_layer": True}]
    assert data["total_params"] == 56 and data["layer_count"] == 1
    assert data["conv"]["padded_shape"] == [7, 7, 3]
    assert data["conv"]["weights"] == 54 and data["conv"]["biases"] == 2


def test_a_conv_layer_matches_nn_conv2d(invoke):
    import torch
    from torch import nn

    data = _json(invoke, "--input", "11x8x4", "--kernel", "3", "--stride", "2", "--pad", "1",
                 "--filters", "6", "--padding-mode", "reflect", "--floor")
    layer = nn.Conv2d(4, 6, 3, stride=2, padding=1, padding_mode="reflect")
    out = layer(torch.zeros(1, 4, 11, 8))
    assert data["layers"][0]["output_shape"] == [out.shape[2], out.shape[3], out.shape[1]]
    assert data["total_params"] == sum(p.numel() for p in layer.parameters())


def test_pooling_is_walked_through_and_has_no_parameters(invoke):
    result = invoke("explain", "--input", "224x224x64", "--pool", "max", "--kernel", "2")
    assert result.exit_code == 0, result.stderr
    assert "(224 - 2) / 2 + 1 = 112" in result.stdout
    assert "112 x 112 x 64" in result.stdout
    data = _json(invoke, "--input", "7x7x3", "--pool", "sum", "--kernel", "3", "--stride", "2")
    assert data["layers"] == [{"name": "pool", "kind": "pool", "output_shape": [3, 3, 3],
                               "params": 0, "counts_as_layer": False}]
    assert data["layer_count"] == 0 and data["pool"]["kind"] == "sum"


def test_a_fractional_output_size_is_an_error_unless_floor_is_asked_for(invoke):
    result = invoke("explain", "--input", "10x10x3", "--kernel", "3", "--stride", "2")
    assert result.exit_code == 1
    assert "4.5" in result.stderr and "not a whole number" in result.stderr
    assert "--floor" in result.stderr
    data = _json(invoke, "--input", "10x10x3", "--kernel", "3", "--stride", "2", "--floor")
    assert data["layers"][0]["output_shape"] == [4, 4, 1]
    assert data["conv"]["exact_output_size"] == [4.5, 4.5]


@pytest.mark.parametrize(
    "args, words",
    [(["--input", "5x5x3", "--kernel", "3", "--stride", "0"], "stride must be at least 1"),
     (["--input", "5x5x3", "--kernel", "9", "--pad", "1"], "larger than the padded input"),
     (["--input", "4x4x1", "--pool", "avg", "--kernel", "5"], "larger than the padded input"),
     (["--input", "5x5x3", "--kernel", "3", "--pad", "-1"], "cannot be negative"),
     (["--input", "0x5x3", "--kernel", "1"], "at least 1"),
     (["--input", "5x5x3", "--kernel", "3", "--pad", "5", "--padding-mode", "reflect"],
      "Reflect padding")],
)
def test_impossible_shapes_get_a_clear_message_and_exit_1(invoke, args, words):
    result = invoke("explain", *args)
    assert result.exit_code == 1
    assert words in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [["--kernel", "3"], ["--input", "5x5"], ["--input", "5x5x3"], ["--input", "axbxc", "--kernel", "3"],
     ["--input", "5x5x3", "--pool", "max", "--kernel", "2", "--filters", "3"]],
)
def test_incomplete_or_unreadable_options_are_usage_errors(invoke, args):
    result = invoke("explain", *args)
    assert result.exit_code == 2
    assert "Error:" in result.stderr


def test_a_real_process_exits_1_on_a_bad_shape_and_0_otherwise():
    bad = run_cnnsetup("explain", "--input", "10x10x3", "--kernel", "3", "--stride", "2")
    assert bad.returncode == 1 and "4.5" in bad.stderr
    good = run_cnnsetup("explain", "--json")
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["total_params"] == 9748


def test_main_returns_the_exit_status_of_a_failed_explain(capsys):
    assert main(["explain", "--input", "5x5x3", "--kernel", "3", "--stride", "0"]) == 1
    assert main(["explain", "--kernel", "3"]) == 2
    assert main(["explain", "--json"]) == 0
    capsys.readouterr()


def test_explain_never_imports_torch():
    code = ("import sys; from cnnsetup.cli import main; "
            "codes = [main(['explain']), main(['explain', '--input', '5x5x3', '--kernel', '3']), "
            "main(['explain', '--input', '8x8x1', '--pool', 'max', '--kernel', '2'])]; "
            "assert codes == [0, 0, 0], codes; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_messages_go_through_the_translation_function(invoke, monkeypatch):
    import cnnsetup.commands.explain as explain_module

    monkeypatch.setattr(explain_module, "_", lambda message: "<" + message + ">")
    result = invoke("explain", "--input", "5x5x3", "--kernel", "3", "--stride", "2", "--pad", "1")
    assert "<Stride S>" in result.stdout and "<Padding P>" in result.stdout
