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
    [(["--input", "5x5x3", "--kernel", "3", "--stride", "0"], "--stride"),
     (["--input", "5x5x3", "--kernel", "-3"], "kernel size must be at least 1"),
     (["--input", "5x5x3", "--kernel", "0x2"], "kernel size must be at least 1"),
     (["--input", "5x5x3", "--kernel", "3", "--dilation", "0"], "--dilation"),
     (["--input", "5x5x3", "--kernel", "9", "--pad", "1"], "larger than the padded input"),
     (["--input", "5x5x3", "--kernel", "3", "--dilation", "3"], "smaller dilation"),
     (["--input", "5x5x3", "--kernel", "3", "--pad", "-1"], "--pad"),
     (["--input", "0x5x3", "--kernel", "1"], "at least 1"),
     (["--input", "0x0x3", "--kernel", "3"], "at least 1"),
     (["--input", "-5x5x3", "--kernel", "3"], "at least 1"),
     (["--input", "5x5x3", "--kernel", "3", "--pad", "5", "--padding-mode", "reflect"],
      "Reflect padding")],
)
def test_values_that_can_never_work_are_usage_errors(invoke, args, words):
    result = invoke("explain", *args)
    assert result.exit_code == 2, result.stderr
    assert words in result.stderr
    assert result.stdout == ""


def test_a_pooling_window_too_large_is_called_a_window_and_padding_is_limited_to_half_of_it(
        invoke):
    result = invoke("explain", "--input", "4x4x1", "--pool", "avg", "--kernel", "5")
    assert result.exit_code == 2
    assert "pooling window (5) is larger" in result.stderr and "kernel" not in result.stderr
    assert "more padding" not in result.stderr
    result = invoke("explain", "--input", "5x5x1", "--pool", "max", "--kernel", "3", "--pad", "2")
    assert result.exit_code == 2 and "at most half its window" in result.stderr
    # An uneven pooling is explained with both ways PyTorch can round.
    result = invoke("explain", "--input", "5x5x1", "--pool", "max", "--kernel", "2")
    assert result.exit_code == 1
    assert "pooling window of 2" in result.stderr
    assert "--floor" in result.stderr and "(output 2)" in result.stderr
    assert "--ceil" in result.stderr and "(output 3)" in result.stderr
    # Padded by 1, rounding up adds no window (it would start in the right padding): not offered.
    result = invoke("explain", "--input", "5x5x1", "--pool", "max", "--kernel", "2", "--pad", "1")
    assert result.exit_code == 1 and "(output 3)" in result.stderr
    assert "--ceil" not in result.stderr


def test_pooling_with_padding_and_ceil_mode_matches_nn_maxpool2d(invoke):
    import torch
    from torch import nn

    for args in (["--kernel", "3x2", "--pad", "1", "--stride", "2", "--ceil"],
                 ["--kernel", "2", "--ceil"], ["--kernel", "3", "--pad", "1", "--stride", "2"]):
        data = _json(invoke, "--input", "10x7x3", "--pool", "max", *args, "--floor")
        kernel = tuple(int(n) for n in args[1].split("x")) if "x" in args[1] else int(args[1])
        pad = int(args[args.index("--pad") + 1]) if "--pad" in args else 0
        stride = int(args[args.index("--stride") + 1]) if "--stride" in args else None
        layer = nn.MaxPool2d(kernel, stride, pad, ceil_mode="--ceil" in args)
        out = layer(torch.zeros(1, 3, 10, 7))
        assert data["layers"][0]["output_shape"] == [out.shape[2], out.shape[3], 3], args
    text = invoke("explain", "--input", "5x5x1", "--pool", "max", "--kernel", "2", "--ceil")
    assert "(5 - 2) / 2 + 1 = 2.5 -> 3 (rounded up: ceil mode)" in text.stdout


def test_a_non_square_dilated_conv_layer_matches_nn_conv2d(invoke):
    import torch
    from torch import nn

    data = _json(invoke, "--input", "11x9x4", "--kernel", "3x2", "--dilation", "2", "--pad",
                 "1", "--stride", "2", "--filters", "5", "--floor")
    layer = nn.Conv2d(4, 5, (3, 2), stride=2, padding=1, dilation=2)
    out = layer(torch.zeros(1, 4, 11, 9))
    assert data["layers"][0]["output_shape"] == [out.shape[2], out.shape[3], out.shape[1]]
    assert data["total_params"] == sum(p.numel() for p in layer.parameters())
    assert data["conv"]["kernel"] == [3, 2] and data["conv"]["dilation"] == 2
    assert data["conv"]["macs"] == out[0].numel() * 4 * 3 * 2
    text = invoke("explain", "--input", "9x7x2", "--kernel", "3x2", "--dilation", "2", "--pad",
                  "1").stdout
    assert "spans 5 x 3" in text and "(9 - 2*(3 - 1) - 1 + 2*1) / 1 + 1 = 7" in text
    assert "(3*2*2 + 1) * 1 = 13" in text


@pytest.mark.parametrize(
    "args",
    [["--input", "5x5x3", "--kernel", "3", "--ceil"],
     ["--input", "5x5x3", "--pool", "max", "--kernel", "2", "--dilation", "2"],
     ["--seed", "3"], ["--demo", "--input", "5x5x3"], ["--net", "relu"],
     ["--net", "relu", "--input", "5x5x3", "--kernel", "3"]],
)
def test_options_that_do_not_go_together_are_usage_errors(invoke, args):
    result = invoke("explain", *args)
    assert result.exit_code == 2, result.stderr
    assert "Error:" in result.stderr


def test_a_json_failure_prints_exactly_one_json_error_object(invoke):
    result = invoke("explain", "--input", "0x0x3", "--kernel", "3", "--json")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["error"]["code"] == "usage.explain.bad_input" and data["error"]["message"]


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
    assert main(["explain", "--input", "10x10x3", "--kernel", "3", "--stride", "2"]) == 1
    assert main(["explain", "--input", "5x5x3", "--kernel", "3", "--stride", "0"]) == 2
    assert main(["explain", "--kernel", "3"]) == 2
    assert main(["explain", "--json"]) == 0
    capsys.readouterr()


def test_explain_never_imports_torch():
    code = ("import sys; from cnnsetup.cli import main; "
            "codes = [main(['explain']), main(['explain', '--input', '5x5x3', '--kernel', '3']), "
            "main(['explain', '--input', '8x8x1', '--pool', 'max', '--kernel', '2']), "
            "main(['explain', '--demo']), main(['explain', '--demo', '--json']), "
            "main(['explain', '--net', 'conv(4,3),relu,spp(2,1),fc(3)', '--input', '9x9x3'])]; "
            "assert codes == [0] * 6, codes; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_messages_go_through_the_translation_function(invoke, monkeypatch):
    from cnnsetup.explain import demo, layer, network

    for module in (demo, layer, network):
        monkeypatch.setattr(module, "_", lambda message: "<" + message + ">")
    result = invoke("explain", "--input", "5x5x3", "--kernel", "3", "--stride", "2", "--pad", "1")
    assert "<Stride S>" in result.stdout and "<Padding P>" in result.stdout
    assert "<Receptive field>" in invoke("explain", "--net", "relu", "--input", "2x2x1").stdout
    assert "<Output volume (3 x 3 x 2)>" in invoke("explain", "--demo").stdout


def test_explain_speaks_chinese(invoke):
    result = invoke("--lang", "zh", "explain", "--net", "conv(4,3),relu,gap,fc(2)", "--input",
                    "8x8x3")
    assert result.exit_code == 0
    assert "感受野" in result.stdout
    assert "x[:,:,0]" in invoke("--lang", "zh", "explain", "--demo").stdout


def test_every_new_explain_message_is_in_the_chinese_catalog():
    from cnnsetup.i18n import UNTRANSLATED_MARK

    commands = [
        ["explain", "--demo"],
        ["explain", "--help"],
        ["explain", "--net", "conv(4,3x2,d=2,p=1),relu,maxpool(2,p=1,ceil),gsp,fc(2)",
         "--input", "9x9x3"],
        ["explain", "--net", "conv(4,3),maxpool(2),fc(2)", "--input", "9x9x1"],
        ["explain", "--net", "conv(4,3),spp(9)", "--input", "9x9x1"],
        ["explain", "--net", "relu(3)", "--input", "9x9x1"],
        ["explain", "--net", "maxpol(3", "--input", "9x9x1"],
        ["explain", "--input", "9x7x2", "--kernel", "3x2", "--dilation", "2", "--pad", "1"],
        ["explain", "--input", "5x5x1", "--pool", "avg", "--kernel", "2", "--pad", "1", "--ceil"],
        ["explain", "--input", "5x5x1", "--pool", "sum", "--kernel", "2"],
        ["explain", "--input", "4x4x1", "--pool", "max", "--kernel", "5"],
        ["explain", "--input", "0x0x3", "--kernel", "3"],
    ]
    for args in commands:
        done = run_cnnsetup("--lang", "zh", *args, env={"CNNSETUP_I18N_CHECK": "1"})
        output = done.stdout + done.stderr
        assert done.returncode in (0, 1, 2) and "Traceback" not in output, (args, output)
        assert UNTRANSLATED_MARK not in output, (args, output)


def test_the_chinese_size_lines_take_a_full_width_colon(invoke):
    result = invoke("--lang", "zh", "explain", "--input", "9x7x2", "--kernel", "3x2",
                    "--dilation", "2", "--pad", "1")
    assert result.exit_code == 0, result.output
    assert "高：" in result.stdout and "宽：" in result.stdout
    assert "高:" not in result.stdout and "宽:" not in result.stdout
