"""Training and validation: a plain loop over tensors already in memory, deterministic on CPU.

No DataLoader: the whole data set is a few megabytes, so batches are slices of one tensor chosen by
a seeded permutation; the loop costs no more than a hand-written one (the benchmark checks this).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from reference_net.data import ShapesData

Progress = Callable[[int, int], None]
"""progress(done_steps, total_steps): called once with (0, total) before the first step and then
after every optimisation step; done_steps == total_steps after the last one. An exception it
raises stops training and propagates to the caller (a way to enforce a time limit)."""


@dataclass
class TrainResult:
    """What a training run did and how well the network does on data it never trained on."""

    device: str
    epochs: int
    batch_size: int
    seed: int
    train_loss: list[float]  # mean cross-entropy of each epoch, over its batches as trained
    train_accuracy: list[float]  # fraction right in each epoch, over its batches as trained
    val_accuracy: float  # fraction of the validation split right after the last epoch
    seconds: float  # wall time of training plus the final validation (data generation excluded)
    samples_per_s: float  # training samples per second of the training loop
    steps: int  # optimisation steps taken
    data_seconds: float = 0.0  # time spent generating the data, where the caller measured it
    model: nn.Module | None = field(default=None, repr=False, compare=False)  # trained network

    def to_dict(self) -> dict:
        """The JSON-ready figures (everything but the model)."""
        return {
            "device": self.device, "epochs": self.epochs, "batch_size": self.batch_size,
            "seed": self.seed, "train_loss": self.train_loss,
            "train_accuracy": self.train_accuracy, "val_accuracy": self.val_accuracy,
            "seconds": self.seconds, "samples_per_s": self.samples_per_s, "steps": self.steps,
            "data_seconds": self.data_seconds,
        }


@contextlib.contextmanager
def deterministic(device: torch.device, threads: int | None = None) -> Iterator[None]:
    """Deterministic kernels where it costs little, restored afterwards.

    On CPU torch's kernels are already deterministic for a fixed thread count; `threads`, when
    given, fixes that count for the run. On CUDA, cuDNN is asked for deterministic algorithms and
    no autotuning (autotuning may pick a different algorithm on every run)."""
    saved_threads = torch.get_num_threads()
    cudnn = torch.backends.cudnn
    saved_cudnn = (cudnn.deterministic, cudnn.benchmark)
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        if device.type == "cuda":
            cudnn.deterministic, cudnn.benchmark = True, False
        yield
    finally:
        if threads is not None:
            torch.set_num_threads(saved_threads)
        cudnn.deterministic, cudnn.benchmark = saved_cudnn


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """torch.optim.Adam, as a student's code uses it: converges in a few epochs on the smoke data
    without any tuning per device. (A process's first optimizer imports torch._dynamo, about as
    long as `import torch`; `cnnsetup verify` starts that import early, in a thread.)"""
    return torch.optim.Adam(model.parameters(), lr=lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float, step: int, total: int) -> None:
    """Linear decay from `lr` to 0 over the run: the last steps settle instead of bouncing."""
    for group in optimizer.param_groups:
        group["lr"] = lr * (1 - step / total)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Fraction of `x` that `model` classifies as `y` (the model is left in eval mode)."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=y.device)
    for start in range(0, len(x), batch_size):
        logits = model(x[start:start + batch_size])
        correct += (logits.argmax(1) == y[start:start + batch_size]).sum()
    return correct.item() / max(1, len(x))


def train(
    model: nn.Module, data: ShapesData, *, device: str | torch.device = "cpu", epochs: int = 3,
    batch_size: int = 32, seed: int = 0, lr: float = 1e-2, progress: Progress | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Train `model` on `data.train_*` with Adam (learning rate `lr` decaying linearly to 0) and
    cross-entropy, then validate on `data.val_*`.

    The model is moved to `device` ("cpu", "cuda", "cuda:1", "mps") and trained in place. The
    batch order comes from a generator seeded with `seed`, so on CPU the same model weights, data,
    seed and thread count give bit-identical losses. The global random state is not touched;
    `threads` (torch.set_num_threads) and cuDNN's flags are set only for the run and restored."""
    device = torch.device(device)
    model.to(device)
    data = data.to(device)
    n = len(data.train_x)
    steps_per_epoch = -(-n // batch_size)
    total = steps_per_epoch * epochs
    order_rng = torch.Generator().manual_seed(seed)
    optimizer = make_optimizer(model, lr)
    losses: list[float] = []
    accuracies: list[float] = []
    step = 0
    if progress:
        progress(0, total)
    with deterministic(device, threads):
        started = time.perf_counter()
        model.train()
        for _epoch in range(epochs):
            order = torch.randperm(n, generator=order_rng).to(device)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), dtype=torch.long, device=device)
            for start in range(0, n, batch_size):
                index = order[start:start + batch_size]
                xb, yb = data.train_x[index], data.train_y[index]
                set_lr(optimizer, lr, step, total)
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                # Kept on the device: reading them every step would wait for the GPU each time.
                loss_sum += loss.detach() * len(index)
                correct += (logits.detach().argmax(1) == yb).sum()
                step += 1
                if progress:
                    progress(step, total)
            losses.append(loss_sum.item() / n)
            accuracies.append(correct.item() / n)
        trained = time.perf_counter()
        val_accuracy = evaluate(model, data.val_x, data.val_y)
        finished = time.perf_counter()
    return TrainResult(
        device=str(device), epochs=epochs, batch_size=batch_size, seed=seed,
        train_loss=losses, train_accuracy=accuracies, val_accuracy=val_accuracy,
        seconds=finished - started, samples_per_s=n * epochs / max(trained - started, 1e-9),
        steps=step, model=model,
    )
