"""A synthetic image data set, drawn in memory from a seed: no files, no download.

Each image is one shape (square, circle, triangle, cross) of random size, position and colour on a
random background, with Gaussian noise. Every image is drawn at once with tensor arithmetic on a
coordinate grid (no Python loop over images), so generating it costs a small fraction of training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SHAPES = ("square", "circle", "triangle", "cross")


@dataclass
class ShapesData:
    """Train and validation splits: images (N, 3, H, W) float32, labels (N,) int64."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    classes: tuple[str, ...] = SHAPES

    def to(self, device: str | torch.device) -> ShapesData:
        """The same data on `device` (a copy only where the device differs)."""
        return ShapesData(*(t.to(device) for t in (self.train_x, self.train_y, self.val_x,
                                                     self.val_y)), classes=self.classes)


def _masks(n: int, size: int, classes: int, labels: torch.Tensor,
           g: torch.Generator) -> torch.Tensor:
    """(N, H, W) bool: where each image's shape is."""
    # Half-size r between 0.28 and 0.4 of the image (smaller, a 16-pixel circle and cross start
    # to look alike); the centre is kept far enough from the border that the whole shape shows.
    r = size * (0.28 + 0.12 * torch.rand(n, 1, 1, generator=g))
    margin = r + 0.5
    cy = margin + (size - 2 * margin) * torch.rand(n, 1, 1, generator=g)
    cx = margin + (size - 2 * margin) * torch.rand(n, 1, 1, generator=g)
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    dy = grid.view(1, size, 1) - cy
    dx = grid.view(1, 1, size) - cx
    ady, adx = dy.abs(), dx.abs()
    arm = r / 3
    every = torch.stack([
        (ady <= r) & (adx <= r),  # square
        dy * dy + dx * dx <= r * r,  # circle
        (dy <= r) & (adx <= (dy + r) / 2),  # triangle, apex up, base 2r wide
        ((ady <= arm) & (adx <= r)) | ((adx <= arm) & (ady <= r)),  # cross
    ])[:classes]
    return every[labels, torch.arange(n)]


def make_images(n: int, *, size: int = 16, classes: int = len(SHAPES), noise: float = 0.1,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` images (N, 3, size, size) and their labels (N,).

    Pixels are normalised as torchvision's Normalize(0.5, 0.5) would: (value - 0.5) / 0.5, so a
    colour in [0, 1] becomes [-1, 1] (plus noise); centred inputs train in fewer steps."""
    if not 1 <= classes <= len(SHAPES):
        raise ValueError(f"classes must be between 1 and {len(SHAPES)}")
    g = generator
    labels = torch.randint(classes, (n,), generator=g)
    mask = _masks(n, size, classes, labels, g).unsqueeze(1)
    # A random bright colour on a random dark one: every shape stands out in every channel.
    background = 0.3 * torch.rand(n, 3, 1, 1, generator=g)
    foreground = 0.5 + 0.5 * torch.rand(n, 3, 1, 1, generator=g)
    images = torch.where(mask, foreground, background)
    images += noise * torch.randn(n, 3, size, size, generator=g)
    return (images - 0.5) / 0.5, labels


def make_data(n_train: int = 2000, n_val: int = 500, *, size: int = 16,
              classes: int = len(SHAPES), noise: float = 0.1, seed: int = 0) -> ShapesData:
    """The whole data set from `seed`: the same seed gives the same tensors on any machine."""
    g = torch.Generator().manual_seed(seed)
    x, y = make_images(n_train + n_val, size=size, classes=classes, noise=noise, generator=g)
    return ShapesData(x[:n_train], y[:n_train], x[n_train:], y[n_train:], SHAPES[:classes])
