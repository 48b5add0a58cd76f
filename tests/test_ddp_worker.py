"""The pieces of the per-rank training program, in one process: how the data is shared out, how
replicas are compared, and the result's shape the launcher reads."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: install the CPU build (see README.md)")

import argparse
import dataclasses

import pytest
import torch

from cnnsetup.machine.ddp import DdpResult
from reference_net import distributed
from reference_net.data import make_data
from reference_net.model import build_model
from reference_net.smoke import SMOKE


@pytest.mark.parametrize("world_size", [1, 2, 3, 7])
def test_every_rank_gets_as_many_distinct_training_images_and_the_whole_validation_split(
        world_size):
    data = make_data(100, 10, seed=0)
    shards = [distributed.shard(data, rank, world_size) for rank in range(world_size)]
    sizes = {len(s.train_x) for s in shards}
    assert sizes == {100 // world_size}  # the same number of steps on every rank
    seen = torch.cat([s.train_x.reshape(len(s.train_x), -1) for s in shards])
    assert len(torch.unique(seen, dim=0)) == len(seen)  # no image on two ranks
    for s in shards:
        assert torch.equal(s.val_x, data.val_x) and torch.equal(s.val_y, data.val_y)
    # Labels travel with their images.
    assert torch.equal(shards[-1].train_y, data.train_y[world_size - 1::world_size][:len(
        shards[-1].train_y)])


def test_the_global_batch_stays_the_smoke_batch():
    assert distributed.rank_batch_size(1) == SMOKE.batch_size
    assert distributed.rank_batch_size(2) * 2 == SMOKE.batch_size
    assert distributed.rank_batch_size(1000) == 1


def test_replicas_compare_equal_only_when_every_weight_is_the_same_bit_for_bit():
    weights = distributed.flat_weights(build_model(SMOKE.net, seed=0))
    assert weights.numel() == sum(p.numel() for p in build_model(SMOKE.net).parameters())
    assert distributed.compare_replicas([weights, weights.clone(), weights.clone()]) == (True, 0.0)
    nudged = weights.clone()
    nudged[-1] = torch.nextafter(nudged[-1], torch.tensor(float("inf")))  # one ulp
    identical, diff = distributed.compare_replicas([weights, weights.clone(), nudged])
    assert not identical and 0 < diff < 1e-6
    other = distributed.flat_weights(build_model(SMOKE.net, seed=1))
    assert distributed.compare_replicas([weights, other])[0] is False


def test_the_same_seed_gives_every_rank_the_same_initial_weights():
    a = distributed.flat_weights(build_model(SMOKE.net, seed=3))
    b = distributed.flat_weights(build_model(SMOKE.net, seed=3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("world_size, cores, expected", [(2, 2, 1), (1, 2, 2), (8, 2, 1),
                                                         (2, 64, SMOKE.max_threads)])
def test_threads_per_rank_share_out_the_cores(world_size, cores, expected):
    assert distributed.default_threads(world_size, cores) == expected


def test_every_field_the_ranks_write_is_one_the_launcher_reads():
    args = argparse.Namespace(device="cpu", epochs=None, seed=0)
    written = set(distributed.base_result(args, 2, "gloo"))
    fields = {f.name for f in dataclasses.fields(DdpResult)}
    assert written <= fields, written - fields
    assert {"ok", "world_size", "backend", "device", "val_accuracy", "target",
            "replicas_identical", "max_weight_diff", "seconds", "samples_per_s", "epochs",
            "error"} <= written


def test_without_torchs_launcher_the_program_says_how_to_start_it(monkeypatch, tmp_path):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit, match="torch.distributed.run"):
        distributed.train_and_check(distributed.parse_args(["--result", str(tmp_path / "r")]))
