"""Forward and backward passes of the network's layers, written out from their definitions.

What autograd should compute, without autograd: every gradient here is the formula a course
derives by hand (CS231n, "Backpropagation, Intuitions" and the layer notes), written with plain
tensor arithmetic (products, sums, comparisons, exp and log) and never with `conv2d`, `linear`,
the pooling functions or `backward()`. A broken kernel or a broken autograd therefore cannot agree
with itself here: `cnnsetup verify` computes these in float64 and compares them with what
`torch.nn`, `torch.nn.functional` and `loss.backward()` give in float32.

Conventions: a layer's forward maps x to y; its backward takes the upstream gradient
G = dL/dy (same shape as y) and returns dL/dx (and dL/dW, dL/db for layers with weights).
Because every forward here is linear in each of its inputs separately, calling it on absolute
values gives sum(|term|) for each output: the magnitude that bounds its rounding error
(`cnnsetup.machine.proof` uses this to state its tolerances).
"""

from __future__ import annotations

import torch

from reference_net.conv import conv2d as conv2d_forward, pad2d
from reference_net.fc import fully_connected, relu as relu_forward
from reference_net.shapes import output_size

__all__ = [
    "conv2d_forward", "conv2d_backward", "relu_forward", "relu_backward", "max_pool2d_forward",
    "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward", "linear_forward",
    "linear_backward", "cross_entropy_forward", "cross_entropy_backward",
]


def conv2d_backward(x: torch.Tensor, weight: torch.Tensor, grad_out: torch.Tensor,
                    stride: int = 1, padding: int = 0) -> tuple[torch.Tensor, ...]:
    """Gradients of y = conv2d(x, W, b, stride, padding) (zero padding).

    x (N, C, H, W), weight (K, C, F, F), grad_out G (N, K, H_out, W_out). Returns
    (dx (N, C, H, W), dW (K, C, F, F), db (K,)), from y[n,k,i,j] = b[k] +
    sum_{c,u,v} W[k,c,u,v] * xp[n,c,iS+u,jS+v] (xp: x padded by P):
    dW[k,c,u,v] = sum_{n,i,j} G[n,k,i,j] xp[n,c,iS+u,jS+v]; db[k] = sum_{n,i,j} G[n,k,i,j];
    dxp[n,c,iS+u,jS+v] += sum_k G[n,k,i,j] W[k,c,u,v], then dx is dxp without the padding."""
    n, c, h, w = x.shape
    k, _, fh, fw = weight.shape
    xp = pad2d(x, padding)
    dxp = torch.zeros_like(xp)
    dw = torch.zeros_like(weight)
    out_h, out_w = grad_out.shape[-2:]
    for i in range(out_h):
        for j in range(out_w):
            rows = slice(i * stride, i * stride + fh)
            cols = slice(j * stride, j * stride + fw)
            g = grad_out[:, :, i, j].reshape(n, k, 1, 1, 1)
            dw += (g * xp[:, :, rows, cols].unsqueeze(1)).sum(dim=0)  # (K, C, F, F)
            dxp[:, :, rows, cols] += (g * weight.unsqueeze(0)).sum(dim=1)  # (N, C, F, F)
    db = grad_out.sum(dim=(0, 2, 3))
    dx = dxp[:, :, padding:padding + h, padding:padding + w]
    return dx, dw, db


def relu_backward(x: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
    """dL/dx of max(0, x): G where x > 0, else 0."""
    return torch.where(x > 0, grad_out, torch.zeros_like(grad_out))


def _windows(size_h: int, size_w: int, kernel: int, stride: int):
    out_h = output_size(size_h, kernel, stride, 0, mode="floor")
    out_w = output_size(size_w, kernel, stride, 0, mode="floor")
    for i in range(out_h):
        for j in range(out_w):
            yield (i, j, slice(i * stride, i * stride + kernel),
                   slice(j * stride, j * stride + kernel))


def _pooled_shape(x: torch.Tensor, kernel: int, stride: int) -> tuple[int, ...]:
    return (*x.shape[:2], output_size(x.shape[-2], kernel, stride, 0, mode="floor"),
            output_size(x.shape[-1], kernel, stride, 0, mode="floor"))


def max_pool2d_forward(x: torch.Tensor, kernel: int, stride: int | None = None) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H_out, W_out): the largest value of each F x F window, S apart
    (no padding, the remainder dropped as PyTorch's floor mode does)."""
    stride = kernel if stride is None else stride
    out = x.new_zeros(_pooled_shape(x, kernel, stride))
    for i, j, rows, cols in _windows(*x.shape[-2:], kernel, stride):
        out[:, :, i, j] = x[:, :, rows, cols].amax(dim=(-2, -1))
    return out


def max_pool2d_backward(x: torch.Tensor, grad_out: torch.Tensor, kernel: int,
                        stride: int | None = None) -> torch.Tensor:
    """dL/dx of max pooling: each window's G goes to the position of its maximum (the inputs
    used here have no ties); every other position gets 0, and overlapping windows add up."""
    stride = kernel if stride is None else stride
    dx = torch.zeros_like(x)
    for i, j, rows, cols in _windows(*x.shape[-2:], kernel, stride):
        window = x[:, :, rows, cols]
        is_max = window == window.amax(dim=(-2, -1), keepdim=True)
        dx[:, :, rows, cols] += is_max * grad_out[:, :, i, j, None, None]
    return dx


def avg_pool2d_forward(x: torch.Tensor, kernel: int, stride: int | None = None) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H_out, W_out): the mean of each F x F window, S apart."""
    stride = kernel if stride is None else stride
    out = x.new_zeros(_pooled_shape(x, kernel, stride))
    for i, j, rows, cols in _windows(*x.shape[-2:], kernel, stride):
        out[:, :, i, j] = x[:, :, rows, cols].sum(dim=(-2, -1)) / (kernel * kernel)
    return out


def avg_pool2d_backward(x: torch.Tensor, grad_out: torch.Tensor, kernel: int,
                        stride: int | None = None) -> torch.Tensor:
    """dL/dx of average pooling: each window's G / F^2 to every position of the window."""
    stride = kernel if stride is None else stride
    dx = torch.zeros_like(x)
    for i, j, rows, cols in _windows(*x.shape[-2:], kernel, stride):
        dx[:, :, rows, cols] += grad_out[:, :, i, j, None, None] / (kernel * kernel)
    return dx


def linear_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """y = x W^T + b: x (N, n_in), weight (n_out, n_in), bias (n_out,) -> (N, n_out)."""
    return fully_connected(x, weight, bias)


def linear_backward(x: torch.Tensor, weight: torch.Tensor, grad_out: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of y = x W^T + b: dx = G W, dW = G^T x, db = sum of G over the batch."""
    dx = (grad_out.unsqueeze(2) * weight.unsqueeze(0)).sum(dim=1)  # (N, n_in)
    dw = (grad_out.unsqueeze(2) * x.unsqueeze(1)).sum(dim=0)  # (n_out, n_in)
    return dx, dw, grad_out.sum(dim=0)


def _log_sum_exp(z: torch.Tensor) -> torch.Tensor:
    """log(sum_j exp(z_j)) per row, shifted by the row's maximum so exp cannot overflow."""
    top = z.amax(dim=1, keepdim=True)
    return (top + (z - top).exp().sum(dim=1, keepdim=True).log()).squeeze(1)


def cross_entropy_forward(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -log softmax(z)[y] = log(sum_j exp(z_j)) - z_y (a scalar).
    logits (N, classes), target (N,) class indices."""
    rows = torch.arange(len(target))
    return (_log_sum_exp(logits) - logits[rows, target]).sum() / len(target)


def cross_entropy_backward(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """dL/dz of the mean cross-entropy: (softmax(z) - onehot(y)) / N."""
    probs = (logits - _log_sum_exp(logits).unsqueeze(1)).exp()
    onehot = torch.zeros_like(logits)
    onehot[torch.arange(len(target)), target] = 1.0
    return (probs - onehot) / len(target)
