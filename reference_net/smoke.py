"""The smoke test: the reference network trained on the synthetic shapes in about a second.

`cnnsetup verify` calls `run_smoke(device)` on every device and passes when the validation accuracy
reaches `SMOKE.target_accuracy`. Importing this module does not import torch (only `run_smoke`
does), so a process can read the configuration before deciding to train.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from reference_net.config import NetConfig

if TYPE_CHECKING:
    from reference_net.data import ShapesData
    from reference_net.train import TrainResult


@dataclass(frozen=True)
class SmokeConfig:
    """Everything that decides a smoke run; the defaults train in about a second on 2 CPU cores."""

    net: NetConfig = field(default_factory=NetConfig)
    n_train: int = 3000  # training images
    n_val: int = 1000  # validation images, never trained on
    epochs: int = 4
    batch_size: int = 64
    lr: float = 1e-2  # Adam's initial learning rate, decaying linearly to 0
    seed: int = 0  # data, initial weights and batch order
    target_accuracy: float = 0.99  # validation accuracy a working installation reaches
    max_threads: int = 4  # torch CPU threads at most: batches this small gain nothing from more,
    # and on a many-core machine the cost of waking every thread for each small op dominates


SMOKE = SmokeConfig()


def smoke_data(seed: int | None = None, config: SmokeConfig = SMOKE) -> ShapesData:
    """The smoke data set for `seed` (default: the configuration's)."""
    from reference_net.data import make_data

    return make_data(config.n_train, config.n_val, size=config.net.input_size,
                     classes=config.net.classes, seed=config.seed if seed is None else seed)


def run_smoke(
    device: str = "cpu", *, epochs: int | None = None, seed: int | None = None,
    progress: Callable[[int, int], None] | None = None, threads: int | None = None,
    config: SmokeConfig = SMOKE,
) -> TrainResult:
    """Generate the data, build the network from `seed` and train it on `device`.

    `epochs` and `seed` default to the configuration's. `progress(done_steps, total_steps)` is
    called before the first step and after every step (an exception it raises stops training and
    propagates). `threads` sets torch's CPU thread count for this run only, restored afterwards
    (None: torch's own count, capped at `config.max_threads`; processes sharing the cores, as in
    distributed training, should pass cores // processes). The result's `val_accuracy` is to be
    compared with `config.target_accuracy`; `data_seconds` holds the time spent generating data."""
    from reference_net.model import build_model
    from reference_net.train import train

    import torch

    seed = config.seed if seed is None else seed
    if threads is None:
        threads = min(torch.get_num_threads(), config.max_threads)
    started = time.perf_counter()
    data = smoke_data(seed, config)
    data_seconds = time.perf_counter() - started
    model = build_model(config.net, seed=seed)
    result = train(model, data, device=device, epochs=config.epochs if epochs is None else epochs,
                   batch_size=config.batch_size, seed=seed, lr=config.lr, progress=progress,
                   threads=threads)
    result.data_seconds = data_seconds
    return result


def fastest_threads(config: SmokeConfig = SMOKE, device: str = "cpu", *, repeats: int = 3,
                    most: int | None = None) -> tuple[int, dict]:
    """The CPU thread count that trains fastest *now*: torch's own count (capped at
    `config.max_threads`) or one, each timed on `repeats` training steps of the smoke network
    (forward, backward, no update), best time of each; the measuring of more threads stops at
    once when a step takes ten times as long as with one (the cores are busy).

    Why measure: on a machine where other processes use the cores, torch's worker threads wait
    for each other at every operation; measured on 2 busy cores, the smoke run took 52-77 s with
    2 threads against 5 s with 1, while on idle cores 2 threads are somewhat faster. One thread
    is kept unless more are at least 20% faster. Returns (threads, {threads: seconds per step})."""
    import torch

    from reference_net.model import build_model

    most = min(torch.get_num_threads(), config.max_threads) if most is None else most
    if device != "cpu" or most <= 1:
        return max(1, most), {}
    net = config.net
    model = build_model(net, seed=0)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(config.batch_size, net.in_channels, net.input_size, net.input_size,
                    generator=generator)
    y = torch.randint(net.classes, (config.batch_size,), generator=generator)
    saved = torch.get_num_threads()

    def step_seconds() -> float:
        started = time.perf_counter()
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        return time.perf_counter() - started

    best = {}
    try:
        torch.set_num_threads(1)
        step_seconds()  # first-call set-up, untimed
        best[1] = min(step_seconds() for _ in range(repeats))
        torch.set_num_threads(most)
        best[most] = float("inf")
        for _ in range(repeats):
            best[most] = min(best[most], step_seconds())
            if best[most] > 10 * best[1]:  # threads waiting for busy cores: no need to see more
                break
    finally:
        torch.set_num_threads(saved)
    chosen = most if best[most] < 0.8 * best[1] else 1
    return chosen, {str(k): round(v, 5) for k, v in best.items()}
