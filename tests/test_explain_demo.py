"""`cnnsetup explain --demo`: the CS231n convolution demo, every number equal to PyTorch's."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch", reason="needs torch: install the CPU build (see README.md)")
F = torch.nn.functional

FIELDS = {"ok", "input", "weights", "bias", "stride", "padding", "output", "worked"}
WORKED = {"filter", "row", "col", "products", "sum", "bias", "value"}


def _demo(invoke, *args):
    result = invoke("explain", "--demo", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("seed", [None, "1", "7", "123"])
def test_every_output_number_equals_pytorch_conv2d_exactly(invoke, seed):
    data = _demo(invoke, *(["--seed", seed] if seed else []))
    assert set(data) == FIELDS and set(data["worked"]) == WORKED
    x = torch.tensor(data["input"], dtype=torch.float64)
    w = torch.tensor(data["weights"], dtype=torch.float64)
    b = torch.tensor(data["bias"], dtype=torch.float64)
    assert x.shape == (3, 5, 5) and w.shape == (2, 3, 3, 3) and data["bias"] == [1, 0]
    assert data["stride"] == 2 and data["padding"] == 1
    assert set(x.flatten().tolist()) <= {0, 1, 2} and set(w.flatten().tolist()) <= {-1, 0, 1}
    expected = F.conv2d(x, w, b, stride=2, padding=1)
    assert expected.shape == (2, 3, 3)
    assert data["output"] == expected.to(torch.int64).tolist()
    assert torch.equal(torch.tensor(data["output"], dtype=torch.float64), expected)


def test_the_worked_number_is_27_products_summed_plus_the_bias(invoke):
    data = _demo(invoke, "--seed", "5")
    worked = data["worked"]
    n, i, j = worked["filter"], worked["row"], worked["col"]
    padded = F.pad(torch.tensor(data["input"]), (1, 1, 1, 1))
    window = padded[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
    products = window * torch.tensor(data["weights"][n])
    assert worked["products"] == products.tolist()
    assert len(products.flatten()) == 27
    assert worked["sum"] == products.sum().item()
    assert worked["bias"] == data["bias"][n]
    assert worked["value"] == worked["sum"] + worked["bias"] == data["output"][n][i][j]


def test_the_seed_draws_other_numbers_and_the_same_seed_the_same(invoke):
    first, again, other = _demo(invoke), _demo(invoke, "--seed", "0"), _demo(invoke, "--seed", "9")
    assert first == again
    assert other["input"] != first["input"] and other["bias"] == first["bias"]


def test_the_text_shows_the_padding_each_filter_the_output_and_the_worked_sum(invoke):
    data = _demo(invoke, "--seed", "2")
    out = invoke("explain", "--demo", "--seed", "2").stdout
    assert out.count("x[:,:,") == 3 + 3  # three padded channels, then each channel's products
    lines = out.splitlines()
    channel = lines.index("  x[:,:,0]")
    assert lines[channel + 1].split() == ["0"] * 7  # the padding's top row
    first_row = [0, *data["input"][0][0], 0]
    assert lines[channel + 2].split() == [str(v) for v in first_row]
    assert "Filter W0 (3 x 3 x 3), bias b0 = 1" in out and "w1[:,:,2]" in out
    assert "Output volume (3 x 3 x 2)" in out
    for plane in data["output"]:
        for row in plane:
            assert "    " + "".join(f"{v:>3}" for v in row) in lines
    worked = data["worked"]
    window = F.pad(torch.tensor(data["input"]), (1, 1, 1, 1))[0, :3, :3].flatten().tolist()
    weights = torch.tensor(data["weights"][0][0]).flatten().tolist()
    terms = " + ".join(f"{x}*{w}" if w >= 0 else f"{x}*({w})" for x, w in zip(window, weights))
    subtotal = sum(x * w for x, w in zip(window, weights))
    assert f"  x[:,:,0] * w0[:,:,0]: {terms} = {subtotal}" in lines
    assert "Sum of the 27 products: " in out and f"= {worked['sum']}" in out
    assert f"Plus the bias b0 = 1: {worked['sum']} + 1 = {worked['value']}" in out
    assert "# # # . . . ." in out  # the window in the top-left corner, over the padding
