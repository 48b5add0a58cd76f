"""Data, training and the smoke run: deterministic, self-contained, and good enough."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: install the CPU build (see README.md)")

import torch

from reference_net.config import NetConfig
from reference_net.data import SHAPES, make_data
from reference_net.model import build_model
from reference_net.smoke import SMOKE, SmokeConfig, run_smoke
from reference_net.train import TrainResult, train

SMALL = SmokeConfig(n_train=256, n_val=64, epochs=2, batch_size=32)


def test_the_same_seed_gives_the_same_data_and_another_seed_does_not():
    a, b, c = make_data(200, 50, seed=3), make_data(200, 50, seed=3), make_data(200, 50, seed=4)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.val_y, b.val_y)
    assert not torch.equal(a.train_x, c.train_x)


def test_the_data_is_colour_images_of_every_class_split_in_train_and_val():
    data = make_data(400, 100, size=16, seed=0)
    assert data.train_x.shape == (400, 3, 16, 16) and data.val_x.shape == (100, 3, 16, 16)
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert data.classes == SHAPES
    counts = torch.bincount(data.train_y, minlength=len(SHAPES))
    assert counts.min() > 60  # every class is there, roughly balanced
    # Colours vary from image to image: the per-image mean colour is not one fixed value.
    assert data.train_x.mean(dim=(2, 3)).std(dim=0).min() > 0.05


def test_each_class_is_drawn_as_a_different_shape():
    data = make_data(2000, 0, seed=1)
    bright = (data.train_x.mean(dim=1) > 0).float()  # shapes are bright on a dark background
    area = bright.mean(dim=(1, 2))
    per_class = [area[data.train_y == k].mean().item() for k in range(len(SHAPES))]
    # square > circle > triangle, cross: four distinct mean areas
    assert per_class[0] > per_class[1] > per_class[2]
    assert len({round(a, 2) for a in per_class}) == 4


def _small_run(seed: int, progress=None) -> TrainResult:
    return run_smoke("cpu", seed=seed, progress=progress, config=SMALL)


def test_two_runs_with_the_same_seed_give_identical_losses_and_weights():
    first, second = _small_run(5), _small_run(5)
    assert first.train_loss == second.train_loss
    assert first.train_accuracy == second.train_accuracy
    assert first.val_accuracy == second.val_accuracy
    for p, q in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(p, q)
    assert _small_run(6).train_loss != first.train_loss


def test_progress_is_reported_from_zero_to_the_total_number_of_steps():
    calls = []
    result = _small_run(0, progress=lambda done, total: calls.append((done, total)))
    total = SMALL.epochs * (SMALL.n_train // SMALL.batch_size)
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [done for done, _ in calls] == list(range(total + 1))
    assert result.steps == total


def test_training_leaves_the_callers_random_state_and_thread_count_alone():
    torch.manual_seed(1234)
    threads = torch.get_num_threads()
    expected = torch.rand(3)
    torch.manual_seed(1234)
    run_smoke("cpu", config=SMALL, threads=1)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_the_result_has_json_ready_figures():
    result = _small_run(0)
    data = result.to_dict()
    assert set(data) >= {"device", "val_accuracy", "seconds", "samples_per_s", "epochs"}
    assert data["device"] == "cpu" and len(data["train_loss"]) == SMALL.epochs
    assert 0 <= data["val_accuracy"] <= 1 and data["samples_per_s"] > 0
    assert "model" not in data


def test_train_works_on_any_model_and_data_it_is_given():
    data = make_data(128, 32, size=12, classes=2, seed=0)
    model = build_model(NetConfig(input_size=12, widths=(4,), hidden=0, classes=2), seed=0)
    result = train(model, data, epochs=1, batch_size=64, seed=0)
    assert result.steps == 2 and len(result.train_loss) == 1


def test_the_smoke_configuration_reaches_its_accuracy_target_on_cpu():
    result = run_smoke("cpu")
    assert result.val_accuracy >= SMOKE.target_accuracy == 0.99
    assert result.train_loss[-1] < result.train_loss[0]
    assert result.epochs == SMOKE.epochs and result.data_seconds > 0
