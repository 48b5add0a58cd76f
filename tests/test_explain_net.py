"""`cnnsetup explain --net`: a student's own network, every number against a PyTorch model that
the test builds from the same layers."""

from __future__ import annotations

import json
import random

import pytest

torch = pytest.importorskip("torch", reason="needs torch: install the CPU build (see README.md)")
from torch import nn  # noqa: E402

from reference_net.netspec import SpecError, parse  # noqa: E402


class _Sum(nn.Module):
    def forward(self, x):
        return x.sum(dim=(2, 3), keepdim=True)


class _SPP(nn.Module):
    def __init__(self, levels):
        super().__init__()
        self.levels = levels

    def forward(self, x):
        return torch.cat([nn.functional.adaptive_max_pool2d(x, n).flatten(1)
                          for n in self.levels], 1)


def _size(k):
    return f"{k[0]}" if k[0] == k[1] else f"{k[0]}x{k[1]}"


def _random_layer(rng, channels):
    """(text, PyTorch module or None for ReLU-like, new channel count) for one feature-map layer."""
    kind = rng.choice(("conv", "conv", "relu", "maxpool", "avgpool", "sumpool"))
    if kind == "relu":
        return "relu", nn.ReLU(), channels
    k = (rng.randint(1, 3), rng.randint(1, 3)) if rng.random() < 0.4 else (rng.randint(1, 4),) * 2
    if kind == "conv":
        out, s, p, d = rng.randint(1, 6), rng.randint(1, 2), rng.randint(0, 2), rng.randint(1, 2)
        text = f"conv({out}, {_size(k)}" + (f", s={s}" if s > 1 else "") + \
            (f",p={p}" if p else "") + (f", d={d}" if d > 1 else "") + ")"
        return text, nn.Conv2d(channels, out, k, stride=s, padding=p, dilation=d), out
    p = rng.randint(0, min(k) // 2)
    s = rng.choice((None, 1, 2, 3))
    ceil = rng.random() < 0.4
    text = f"{kind}({_size(k)}" + (f", s={s}" if s else "") + (f", p={p}" if p else "") + \
        (", ceil" if ceil else "") + ")"
    if kind == "maxpool":
        module = nn.MaxPool2d(k, s, p, ceil_mode=ceil)
    else:
        module = nn.AvgPool2d(k, s, p, ceil_mode=ceil,
                              divisor_override=1 if kind == "sumpool" else None)
    return text, module, channels


def _random_network(rng):
    """Layers the test builds in PyTorch as it writes their text; a layer PyTorch refuses on the
    current map is drawn again, so every network here runs in PyTorch."""
    h, w, c = rng.randint(6, 28), rng.randint(6, 28), rng.randint(1, 4)
    x = torch.zeros(1, c, h, w)
    texts, modules = [], []
    for _ in range(rng.randint(1, 6)):
        for _attempt in range(20):
            text, module, channels = _random_layer(rng, x.shape[1])
            try:
                y = module(x)
            except RuntimeError:
                continue
            if min(y.shape[-2:]) >= 1:
                texts.append(text)
                modules.append(module)
                x = y
                break
    ending = rng.choice(("fc", "gap", "gmp", "gsp", "adaptive", "spp", "none"))
    if ending in ("gap", "gmp", "gsp"):
        texts.append(ending)
        modules.append({"gap": nn.AdaptiveAvgPool2d(1), "gmp": nn.AdaptiveMaxPool2d(1),
                        "gsp": _Sum()}[ending])
    elif ending == "adaptive":
        size = (rng.randint(1, 3), rng.randint(1, 3))
        big = rng.random() < 0.5
        texts.append(f"adaptive({_size(size)}" + (", max" if big else "") + ")")
        modules.append((nn.AdaptiveMaxPool2d if big else nn.AdaptiveAvgPool2d)(size))
    elif ending == "spp":
        most = min(x.shape[-2:])
        levels = sorted({rng.randint(1, most) for _ in range(rng.randint(1, 3))}, reverse=True)
        texts.append("spp(" + ",".join(map(str, levels)) + ")")
        modules.append(_SPP(levels))
    if ending != "none":
        for _ in range(rng.randint(1, 2)):
            out = rng.randint(1, 12)
            texts.append(f"fc({out})")
            modules.append(nn.Sequential(nn.Flatten(), nn.LazyLinear(out)))
            if rng.random() < 0.5:
                texts.append("relu")
                modules.append(nn.ReLU())
    return ",".join(texts), (h, w, c), modules


def _torch_rows(modules, input_shape):
    """Per written layer: output [H, W, C], parameters, MACs from the module's shapes."""
    h, w, c = input_shape
    x = torch.zeros(1, c, h, w)
    rows = []
    for module in modules:
        y = module(x)
        macs = 0
        linear = module[1] if isinstance(module, nn.Sequential) else None
        if isinstance(module, nn.Conv2d):
            macs = y[0].numel() * module.in_channels * module.kernel_size[0] * \
                module.kernel_size[1]
        elif linear is not None:
            macs = linear.in_features * linear.out_features
        shape = [y.shape[2], y.shape[3], y.shape[1]] if y.dim() == 4 else [1, 1, y.shape[1]]
        rows.append({"output_shape": shape, "params": sum(p.numel() for p in module.parameters()),
                     "macs": macs, "activation_bytes": y[0].numel() * y.element_size(),
                     "counts_as_layer": isinstance(module, nn.Conv2d) or linear is not None})
        x = y
    return rows


def _net(invoke, text, input_shape, *extra):
    result = invoke("explain", "--net", text, "--input", "x".join(map(str, input_shape)),
                    "--json", *extra)
    assert result.exit_code == 0, (text, input_shape, result.stderr)
    return json.loads(result.stdout)


def test_random_networks_match_a_pytorch_model_built_from_the_same_layers(invoke):
    rng = random.Random(11)
    seen = set()
    for _ in range(40):
        text, input_shape, modules = _random_network(rng)
        with torch.no_grad():
            expected = _torch_rows(modules, input_shape)
        data = _net(invoke, text, input_shape, "--floor")
        written = [row for row in data["layers"] if row["spec"]]
        assert len(written) == len(expected), text
        for ours, theirs in zip(written, expected):
            for key, value in theirs.items():
                assert ours[key] == value, (text, ours, key, value)
        assert data["total_params"] == sum(r["params"] for r in expected)
        assert data["total_macs"] == sum(r["macs"] for r in expected)
        assert data["layer_count"] == sum(r["counts_as_layer"] for r in expected)
        seen.update(row["spec"].split("(")[0] for row in written)
        seen.update("ceil" for row in written if "ceil" in row["spec"])
        seen.update("dilation" for row in written if "d=" in row["spec"])
        seen.update("HxW" for row in written if "x" in row["spec"])
    assert seen >= {"conv", "relu", "maxpool", "avgpool", "sumpool", "gap", "gmp", "gsp",
                    "adaptive", "spp", "fc", "ceil", "dilation", "HxW"}, seen


def test_full_width_punctuation_from_a_chinese_input_method_is_read_as_ascii(invoke):
    typed = _net(invoke, "conv\uff0816\uff0c3\uff0cp\uff1d1\uff09\uff0crelu", (8, 8, 3))
    plain = _net(invoke, "conv(16,3,p=1),relu", (8, 8, 3))
    assert [row["output_shape"] for row in typed["layers"]] == \
        [row["output_shape"] for row in plain["layers"]]
    assert typed["total_params"] == plain["total_params"] == 448


def test_a_flatten_row_stands_before_the_first_fc_of_a_map(invoke):
    data = _net(invoke, "conv(4,3),relu,fc(10),relu,fc(2)", (8, 8, 1))
    kinds = [row["kind"] for row in data["layers"]]
    assert kinds == ["conv", "relu", "flatten", "fc", "relu", "fc"]
    assert data["layers"][2]["output_shape"] == [1, 1, 6 * 6 * 4]
    assert data["layers"][3]["params"] == (144 + 1) * 10
    after_gap = _net(invoke, "conv(4,3),gap,fc(2)", (8, 8, 1))
    assert [row["kind"] for row in after_gap["layers"]] == ["conv", "pool", "fc"]


def _measured_receptive_field(modules, size):
    """Rows and columns of the input that reach the centre output pixel, by backpropagation
    through positive weights (max pooling replaced by average pooling of the same windows)."""
    x = torch.ones(1, 1, size, size, requires_grad=True)
    y = x
    for module in modules:
        y = module(y)
    i, j = y.shape[2] // 2, y.shape[3] // 2
    y[0, :, i, j].sum().backward()
    rows = x.grad[0, 0].abs().sum(dim=1).nonzero().flatten()
    cols = x.grad[0, 0].abs().sum(dim=0).nonzero().flatten()
    return [int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)]


def test_the_receptive_field_is_what_backpropagation_reaches(invoke):
    rng = random.Random(12)
    for _ in range(12):
        texts, modules, channels = [], [], 1
        for _ in range(rng.randint(1, 4)):
            k = (rng.randint(1, 3), rng.randint(1, 3))
            s, d = rng.randint(1, 2), rng.randint(1, 2)
            if rng.random() < 0.6:
                texts.append(f"conv(2,{_size(k)},s={s},d={d})")
                conv = nn.Conv2d(channels, 2, k, stride=s, dilation=d)
                nn.init.constant_(conv.weight, 1.0)
                modules.append(conv)
                channels = 2
            else:
                texts.append(f"maxpool({_size(k)},s={s})")
                modules.append(nn.AvgPool2d(k, s))
        data = _net(invoke, ",".join(texts), (48, 48, 1), "--floor")
        rf = data["layers"][-1]["receptive_field"]
        rf = rf if isinstance(rf, list) else [rf, rf]
        assert rf == _measured_receptive_field(modules, 48), texts


def test_totals_and_the_table_for_the_readme_network(invoke):
    text = "conv(16,3,p=1),relu,maxpool(2),conv(32,3,p=1),relu,maxpool(2),fc(10)"
    data = _net(invoke, text, (32, 32, 3))
    assert data["total_params"] == 448 + 4640 + (8 * 8 * 32 + 1) * 10 == 25578
    assert data["total_macs"] == 32 * 32 * 16 * 27 + 16 * 16 * 32 * 144 + 2048 * 10
    assert data["layer_count"] == 3
    assert [row["receptive_field"] for row in data["layers"]] == [3, 3, 4, 8, 8, 10, 10, None]
    assert data["layers"][0]["activation_bytes"] == 32 * 32 * 16 * 4
    out = invoke("explain", "--net", text, "--input", "32x32x3").stdout
    assert "conv(16,3,p=1)  32 x 32 x 16" in out and "442,368" in out
    assert "Total multiply-accumulates (one image, forward pass): 1,642,496" in out


@pytest.mark.parametrize(
    "text, position, words",
    [("conv(16,3),relu,maxpol(2)", 17, "Did you mean maxpool?"),
     ("conv(16,3,p=1", 14, "Expected ')', found the end"),
     ("conv(16)", 8, "conv needs K"),
     ("conv(16,3,q=1)", 11, "conv has no argument q"),
     ("conv(16,3,p=-1)", 13, "p must be at least 0"),
     ("conv(0,3)", 6, "OUT must be at least 1"),
     ("fc(3x3)", 4, "OUT is one number"),
     ("relu(2)", 6, "relu takes no arguments"),
     ("conv(4,3) relu", 11, "Expected ',' or the end of the network, found 'relu'"),
     ("conv(4,3);relu", 10, "found ';'"),
     ("", 1, "no layers"),
     ("maxpool(2, s=1, s=2)", 17, "given more than once")],
)
def test_text_that_is_not_a_network_is_a_usage_error_pointing_at_the_place(invoke, text,
                                                                           position, words):
    result = invoke("explain", "--net", text, "--input", "8x8x1")
    assert result.exit_code == 2, result.stderr
    assert f"at character {position}:" in result.stderr
    assert words in result.stderr
    lines = result.stderr.splitlines()
    caret = next(line for line in lines if line.strip() == "^")
    assert caret.index("^") == 2 + position - 1  # under the character named
    with pytest.raises(SpecError):
        parse(text)


@pytest.mark.parametrize(
    "text, words",
    [("conv(4,5),conv(4,5)", "Layer 2 (conv(4,5)): The kernel (5) is larger"),
     ("conv(4,3),spp(4,2,1)", "Layer 2 (spp(4,2,1)): The pyramid level 4 x 4 is finer than the "
                              "3 x 3 map"),
     ("fc(4),conv(2,1)", "Layer 2 (conv(2,1)): This layer needs a feature map"),
     ("maxpool(3,p=2)", "at most half its window"),
     ("conv(2,3,d=3)", "The kernel (7) is larger")],
)
def test_a_network_that_cannot_work_is_a_usage_error_naming_the_layer(invoke, text, words):
    result = invoke("explain", "--net", text, "--input", "5x5x1")
    assert result.exit_code == 2, result.stderr
    assert words in result.stderr


def test_a_size_that_is_not_whole_is_explained_and_floor_continues(invoke):
    result = invoke("explain", "--net", "conv(4,3),maxpool(2),fc(2)", "--input", "9x9x1")
    assert result.exit_code == 1
    assert "Layer 2 (maxpool(2))" in result.stderr and "3.5" in result.stderr
    assert "--floor" in result.stderr and "maxpool(..., ceil)" in result.stderr
    data = _net(invoke, "conv(4,3),maxpool(2),fc(2)", (9, 9, 1), "--floor")
    assert data["layers"][1]["output_shape"] == [3, 3, 4]
    data = _net(invoke, "conv(4,3),maxpool(2,ceil),fc(2)", (9, 9, 1))
    assert data["layers"][1]["output_shape"] == [4, 4, 4]
