"""The reference network's configuration, as plain data.

Kept apart from `model.py` (which needs torch) so that shape arithmetic and `cnnsetup explain`
can read it without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

POOL_KINDS = ("max", "avg", "sum")
PADDING_MODES = ("zeros", "reflect")


@dataclass(frozen=True)
class NetConfig:
    """CONV-RELU-POOL repeated once per entry of `widths`, then FC(-RELU-FC).

    The defaults are the smoke network: small enough to train to >= 99% on the synthetic shapes in
    about a second on two CPU cores, big enough to show every piece a course names.
    """

    input_size: int = 16  # height = width of the input images, in pixels
    in_channels: int = 3  # colour images: R, G, B
    widths: tuple[int, ...] = (8, 16)  # filters of each CONV layer (= feature maps it makes)
    kernel_size: int = 3  # F: each filter is F x F x C_in; padding F // 2 keeps the size
    pool: str = "max"  # max | avg | sum, after each CONV-RELU
    pool_size: int = 2  # pooling window F and stride S (non-overlapping, as in most courses)
    padding_mode: str = "zeros"  # zeros | reflect: what the border padding is filled with
    hidden: int = 32  # width of the hidden FC layer; 0 = a single FC layer to the classes
    classes: int = 4  # outputs of the last FC layer

    @property
    def padding(self) -> int:
        """P = F // 2: 'same' padding for odd kernels, so only pooling shrinks the maps."""
        return self.kernel_size // 2

    def __post_init__(self) -> None:
        if self.pool not in POOL_KINDS:
            raise ValueError(f"pool must be one of {POOL_KINDS}, not {self.pool!r}")
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, not {self.padding_mode!r}")
        if not self.widths:
            raise ValueError("widths needs at least one CONV layer")
        for name in ("input_size", "in_channels", "kernel_size", "classes", "pool_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.hidden < 0 or min(self.widths) < 1:
            raise ValueError("widths must be positive and hidden at least 0")
