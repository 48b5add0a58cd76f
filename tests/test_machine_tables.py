"""The CUDA tables: consistent with themselves, and the compatibility rules they encode."""

from __future__ import annotations

import pytest

from cnnsetup.machine import cuda_tables as t


def test_every_published_variant_has_a_driver_row_and_a_family_floor():
    for release in t.RELEASES:
        for variant in release.variants:
            assert variant.cuda in t.DRIVER_FOR_CUDA, variant.name
            assert variant.cuda[0] in t.FAMILY_FLOOR, variant.name


def test_releases_are_oldest_first_and_unique():
    keys = [r.key for r in t.RELEASES]
    assert keys == sorted(set(keys))
    assert t.NEWEST is t.RELEASES[-1]


@pytest.mark.parametrize("archs, cap, expected", [
    (["sm_60", "sm_70"], (6, 1), True),  # same major, newer minor
    (["sm_70", "sm_75"], (6, 1), False),  # older card than every cubin
    (["sm_86", "sm_90"], (12, 0), False),  # Blackwell needs sm_120
    (["sm_90", "compute_90"], (12, 0), True),  # PTX compiles on the fly for newer cards
    (["sm_120"], (12, 0), True),
    (["sm_90a"], (9, 0), True),
])
def test_what_runs_on_a_card(archs, cap, expected):
    assert t.runs_on(archs, cap) is expected


@pytest.mark.parametrize("variant, driver, driver_cuda, platform, expected", [
    ((11, 8), "470.256.02", "11.4", "linux", True),  # 11.x runs from 450.80.02 on
    ((12, 6), "470.256.02", "11.4", "linux", False),
    ((12, 8), "535.183.01", "12.2", "linux", True),  # minor-version compatibility
    ((13, 0), "575.51.03", "12.9", "linux", False),
    ((12, 4), "526.98", None, "win32", False),  # Windows floor 527.41
    ((12, 4), "526.98", None, "linux", True),  # Linux floor 525.60.13
    ((12, 4), None, None, "linux", None),
])
def test_driver_family_floors(variant, driver, driver_cuda, platform, expected):
    assert t.driver_runs(variant, driver_version=driver, driver_cuda=driver_cuda,
                         platform=platform) is expected


def test_full_support_needs_the_drivers_cuda_to_reach_the_wheels():
    assert t.driver_fully_supports((12, 8), driver_version=None, driver_cuda="12.9", platform="linux")
    assert not t.driver_fully_supports((12, 8), driver_version=None, driver_cuda="12.2",
                                       platform="linux")
    assert t.driver_fully_supports((12, 8), driver_version="570.65", driver_cuda=None,
                                   platform="win32")


@pytest.mark.parametrize("name, cap", [
    ("NVIDIA GeForce GTX 1080 Ti", "6.1"), ("NVIDIA GeForce RTX 2080", "7.5"),
    ("NVIDIA A100-SXM4-80GB", "8.0"), ("NVIDIA A10", "8.6"), ("NVIDIA L40S", "8.9"),
    ("NVIDIA GeForce RTX 5090", "12.0"), ("Some Unknown Card", None),
])
def test_capability_from_the_card_name(name, cap):
    assert t.capability_from_name(name) == cap


def test_parsing():
    assert t.parse_capability("sm_120") == (12, 0)
    assert t.parse_capability("8.6") == (8, 6)
    assert t.parse_capability("garbage") is None
    assert t.parse_version("570.26") == (570, 26)
    assert t.parse_version("2.7.1+cu118") == (2, 7, 1)
    assert t.release("2.7.1+cu118").version == "2.7"
    assert "cu118" in t.all_variant_names() and "cu132" in t.all_variant_names()
