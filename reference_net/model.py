"""The reference network: CONV-RELU-POOL-CONV-RELU-POOL-FC-RELU-FC, built from a `NetConfig`.

An `nn.Sequential` with named layers (conv1, relu1, pool1, ..., fc2), so a student can read the
network layer by layer and `layer_summary` can show every output shape.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from reference_net.config import NetConfig
from reference_net.pooling import AdaptivePool2d, GlobalPool2d, Pool2d, SpatialPyramidPool
from reference_net.shapes import LayerInfo, output_size

__all__ = ["NetConfig", "ReferenceNet", "build_model", "count_layers", "layer_summary"]


def _pool(config: NetConfig) -> nn.Module:
    # PyTorch's own max and average pooling are the same arithmetic as pooling.Pool2d (the tests
    # prove it) but faster to train through; sum pooling exists only in pooling.py.
    if config.pool == "max":
        return nn.MaxPool2d(config.pool_size)
    if config.pool == "avg":
        return nn.AvgPool2d(config.pool_size)
    return Pool2d("sum", config.pool_size)


class ReferenceNet(nn.Sequential):
    """The network a `NetConfig` describes; input (N, C, H, W), output (N, classes) logits."""

    def __init__(self, config: NetConfig = NetConfig()) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels, size = config.in_channels, config.input_size
        for i, width in enumerate(config.widths, start=1):
            layers[f"conv{i}"] = nn.Conv2d(channels, width, config.kernel_size,
                                           padding=config.padding,
                                           padding_mode=config.padding_mode)
            layers[f"relu{i}"] = nn.ReLU()
            layers[f"pool{i}"] = _pool(config)
            channels = width
            size = output_size(size, config.kernel_size, 1, config.padding, mode="floor")
            size = output_size(size, config.pool_size, config.pool_size, 0, mode="floor")
        layers["flatten"] = nn.Flatten()
        features = channels * size * size
        if config.hidden:
            layers["fc1"] = nn.Linear(features, config.hidden)
            layers[f"relu{len(config.widths) + 1}"] = nn.ReLU()
            features = config.hidden
        layers["fc2" if config.hidden else "fc1"] = nn.Linear(features, config.classes)
        super().__init__(layers)
        self.config = config


def build_model(config: NetConfig = NetConfig(), *, seed: int = 0) -> ReferenceNet:
    """The network with initial weights drawn from `seed`, on the CPU: the same seed gives the same
    weights on every machine. The caller's global random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ReferenceNet(config)


_KINDS = (
    ((nn.modules.conv._ConvNd,), "conv"),
    ((nn.Linear, nn.Bilinear), "fc"),
    ((nn.ReLU,), "relu"),
    ((nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
      nn.modules.pooling._AdaptiveMaxPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
      nn.modules.pooling._LPPoolNd, Pool2d, GlobalPool2d, AdaptivePool2d, SpatialPyramidPool),
     "pool"),
    ((nn.Flatten,), "flatten"),
)


def layer_kind(module: nn.Module) -> str:
    """conv | fc | relu | pool | flatten | other."""
    for types, kind in _KINDS:
        if isinstance(module, types):
            return kind
    return "other"


def count_layers(model: nn.Module) -> int:
    """The depth as courses count it: CONV and FC layers only (RELU and POOL do not count)."""
    return sum(1 for m in model.modules() if layer_kind(m) in ("conv", "fc"))


def layer_summary(model: nn.Module, input_shape: tuple[int, int, int] | None = None) -> list[LayerInfo]:
    """Run one zero image (H, W, C) through `model` and record each leaf layer's output shape
    (as H, W, C; an FC output of n is 1, 1, n) and parameter count, in the order they ran."""
    if input_shape is None:
        config = model.config  # type: ignore[attr-defined]
        input_shape = (config.input_size, config.input_size, config.in_channels)
    h, w, c = input_shape
    seen: list[LayerInfo] = []

    def record(name: str):
        def hook(module: nn.Module, args: object, output: torch.Tensor) -> None:
            shape = tuple(output.shape[1:])
            hwc = (shape[1], shape[2], shape[0]) if len(shape) == 3 else (1, 1, shape[-1])
            params = sum(p.numel() for p in module.parameters())
            seen.append(LayerInfo(name, layer_kind(module), hwc, params))
        return hook

    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    handles = [m.register_forward_hook(record(n)) for n, m in leaves]
    try:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else "cpu"
        with torch.no_grad():
            model(torch.zeros(1, c, h, w, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return seen
