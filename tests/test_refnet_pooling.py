"""The pooling family: hand-computed values, and PyTorch where it has the same thing."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: install the CPU build (see README.md)")

import random

import pytest
import torch
import torch.nn.functional as F

from reference_net.shapes import ShapeError
from reference_net.pooling import (
    AdaptivePool2d, AvgPool2d, GlobalPool2d, MaxPool2d, Pool2d, SpatialPyramidPool, SumPool2d,
    adaptive_bins,
)

# The 4x4 single-channel example from CS231n's pooling figure.
GRID = torch.tensor([[1.0, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]).view(1, 1, 4, 4)


def test_max_pooling_2x2_stride_2_by_hand():
    assert MaxPool2d(2)(GRID).view(2, 2).tolist() == [[6, 8], [3, 4]]


def test_average_pooling_2x2_stride_2_by_hand():
    assert AvgPool2d(2)(GRID).view(2, 2).tolist() == [[3.25, 5.25], [2.0, 2.0]]


def test_sum_pooling_2x2_stride_2_by_hand():
    assert SumPool2d(2)(GRID).view(2, 2).tolist() == [[13, 21], [8, 8]]


def test_overlapping_max_pooling_3x3_stride_1_by_hand():
    assert MaxPool2d(3, 1)(GRID).view(2, 2).tolist() == [[7, 8], [7, 8]]


def test_global_pooling_takes_the_whole_map_per_channel():
    x = torch.cat([GRID, -GRID], dim=1)
    assert GlobalPool2d("max")(x).view(2).tolist() == [8, -0.0]
    assert GlobalPool2d("avg")(x).view(2).tolist() == [3.125, -3.125]
    assert GlobalPool2d("avg")(x).shape == (1, 2, 1, 1)


def _random_inputs(count: int, seed: int):
    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    for _ in range(count):
        f, s = rng.randint(1, 4), rng.randint(1, 3)
        h, w = rng.randint(f, 12), rng.randint(f, 12)
        yield torch.randn(rng.randint(1, 2), rng.randint(1, 3), h, w, generator=g), f, s


def test_max_avg_and_sum_pooling_match_pytorch_on_random_inputs():
    for x, f, s in _random_inputs(80, seed=1):
        torch.testing.assert_close(MaxPool2d(f, s)(x), F.max_pool2d(x, f, s), rtol=0, atol=0)
        torch.testing.assert_close(AvgPool2d(f, s)(x), F.avg_pool2d(x, f, s), atol=1e-6, rtol=0)
        # PyTorch's only sum pooling is the power-average pooling with p = 1.
        torch.testing.assert_close(SumPool2d(f, s)(x), F.lp_pool2d(x, 1, f, s), atol=1e-5,
                                   rtol=0)


def test_global_pooling_matches_adaptive_pooling_to_one_by_one():
    for x, _f, _s in _random_inputs(20, seed=2):
        torch.testing.assert_close(GlobalPool2d("max")(x), F.adaptive_max_pool2d(x, 1))
        torch.testing.assert_close(GlobalPool2d("avg")(x), F.adaptive_avg_pool2d(x, 1))


def test_adaptive_bins_cover_the_input_and_overlap_only_when_sizes_do_not_divide():
    assert adaptive_bins(8, 4) == [(0, 2), (2, 4), (4, 6), (6, 8)]
    assert adaptive_bins(5, 3) == [(0, 2), (1, 4), (3, 5)]


def test_adaptive_pooling_matches_pytorch_for_any_input_and_output_size():
    rng = random.Random(3)
    g = torch.Generator().manual_seed(3)
    for _ in range(40):
        h, w = rng.randint(1, 15), rng.randint(1, 15)
        out = (rng.randint(1, h), rng.randint(1, w))
        x = torch.randn(2, 3, h, w, generator=g)
        torch.testing.assert_close(AdaptivePool2d("max", out)(x), F.adaptive_max_pool2d(x, out))
        torch.testing.assert_close(AdaptivePool2d("avg", out)(x), F.adaptive_avg_pool2d(x, out))


def test_spatial_pyramid_pooling_gives_5376_numbers_for_256_channels_whatever_the_size():
    spp = SpatialPyramidPool((4, 2, 1))
    g = torch.Generator().manual_seed(4)
    for h, w in ((4, 4), (6, 9), (13, 13), (17, 31), (40, 23)):
        x = torch.randn(2, 256, h, w, generator=g)
        out = spp(x)
        assert out.shape == (2, 21 * 256) == (2, 5376)
        expected = torch.cat([F.adaptive_max_pool2d(x, n).flatten(1) for n in (4, 2, 1)], 1)
        torch.testing.assert_close(out, expected)


def test_unknown_pooling_kinds_are_refused():
    with pytest.raises(ValueError):
        Pool2d("median", 2)
    with pytest.raises(ValueError):
        GlobalPool2d("median")


def test_global_sum_pooling_is_the_total_of_each_map():
    x = torch.cat([GRID, -GRID], dim=1)
    assert GlobalPool2d("sum")(x).view(2).tolist() == [50, -50]
    for x, _f, _s in _random_inputs(10, seed=6):
        torch.testing.assert_close(GlobalPool2d("sum")(x), x.sum(dim=(2, 3), keepdim=True))
        torch.testing.assert_close(GlobalPool2d("sum")(x),
                                   F.adaptive_avg_pool2d(x, 1) * x.shape[2] * x.shape[3])


def test_ceil_mode_pools_the_partial_last_window_by_hand():
    # 5 wide, window 2, stride 2: floor gives 2 windows, ceil a third over the last column alone.
    x = torch.arange(25.0).view(1, 1, 5, 5)
    assert MaxPool2d(2, ceil_mode=True)(x).view(3, 3)[:, 2].tolist() == [9, 19, 24]
    assert SumPool2d(2, ceil_mode=True)(x).view(3, 3)[2].tolist() == [41, 45, 24]
    # The last window must start inside the input or the left padding: 4 wide, window 2,
    # stride 3 gives windows at 0 and 3 (the second covers column 3 only).
    assert MaxPool2d(2, 3, ceil_mode=True)(torch.ones(1, 1, 4, 4)).shape[-1] == 2
    # Padded by 1: 5 + 2 = 7 wide, stride 2: windows at -1, 1, 3; one at 5 would start in the
    # right padding, so ceil mode does not add it.
    assert MaxPool2d(2, 2, 1, ceil_mode=True)(torch.ones(1, 1, 5, 5)).shape[-1] == 3


def test_padding_never_wins_a_max_and_adds_nothing_to_a_sum():
    x = -torch.ones(1, 1, 2, 2)
    assert MaxPool2d(2, 2, 1)(x).view(-1).tolist() == [-1.0] * 4
    assert SumPool2d(3, 1, 1)(torch.ones(1, 1, 3, 3)).view(3, 3).tolist() == [
        [4, 6, 4], [6, 9, 6], [4, 6, 4]]


def test_pooling_padding_larger_than_half_the_window_is_refused_as_pytorch_does():
    from reference_net.shapes import ShapeError

    with pytest.raises(ShapeError):
        MaxPool2d(3, padding=2)
    with pytest.raises(RuntimeError):
        F.max_pool2d(torch.zeros(1, 1, 5, 5), 3, padding=2)


def _random_pooling_cases(count: int, seed: int):
    """Kh x Kw windows, strides per axis, padding up to half the window, floor and ceil mode."""
    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    for _ in range(count):
        kh, kw = rng.randint(1, 4), rng.randint(1, 4)
        p = rng.randint(0, min(kh, kw) // 2)
        stride = (rng.randint(1, 3), rng.randint(1, 3))
        ceil = rng.random() < 0.5
        # In ceil mode a window may overhang a map smaller than itself (PyTorch allows that).
        h = rng.randint(1 if ceil else max(1, kh - 2 * p), 11)
        w = rng.randint(1 if ceil else max(1, kw - 2 * p), 11)
        x = torch.randn(rng.randint(1, 2), rng.randint(1, 3), h, w, generator=g)
        yield x, (kh, kw), stride, p, ceil


def test_pooling_with_padding_and_ceil_mode_matches_pytorch_on_random_inputs():
    cases = list(_random_pooling_cases(80, seed=8))
    assert {c[4] for c in cases} == {True, False} and max(c[3] for c in cases) >= 1
    # Random cases where ceil mode adds a partial window, and where PyTorch's rule removes one.
    assert any(F.max_pool2d(x, k, s, p, ceil_mode=True).shape != F.max_pool2d(x, k, s, p).shape
               for x, k, s, p, _ in cases)
    overhanging = 0
    for x, k, s, p, ceil in cases:
        args = (x, k, s, p)
        try:
            F.max_pool2d(*args, ceil_mode=ceil)
        except RuntimeError:  # "output size is too small": ours must refuse it too
            with pytest.raises(ShapeError):
                MaxPool2d(k, s, p, ceil)(x)
            continue
        overhanging += x.shape[2] + 2 * p < k[0] or x.shape[3] + 2 * p < k[1]
        torch.testing.assert_close(MaxPool2d(k, s, p, ceil)(x),
                                   F.max_pool2d(*args, ceil_mode=ceil), rtol=0, atol=0)
        torch.testing.assert_close(AvgPool2d(k, s, p, ceil)(x),
                                   F.avg_pool2d(*args, ceil_mode=ceil), atol=1e-6, rtol=0)
        torch.testing.assert_close(
            AvgPool2d(k, s, p, ceil, count_include_pad=False)(x),
            F.avg_pool2d(*args, ceil_mode=ceil, count_include_pad=False), atol=1e-6, rtol=0)
        # Sum pooling: the average with a divisor of 1 (lp_pool2d has no padding, and in ceil
        # mode it rescales a partial window as if it were whole).
        torch.testing.assert_close(SumPool2d(k, s, p, ceil)(x),
                                   F.avg_pool2d(*args, ceil_mode=ceil, divisor_override=1),
                                   atol=1e-5, rtol=0)
    assert overhanging > 0
