"""``torch.nn.Module`` equivalents of fitted networks (for export)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["GatedReLUNetwork", "relu_network"]


def relu_network(W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray,
                 dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """``Linear → ReLU → Linear`` holding the given weights (``W1`` is (d, m))."""
    d, m = W1.shape
    c = W2.shape[1]
    first = nn.Linear(d, m, dtype=dtype)
    second = nn.Linear(m, c, dtype=dtype)
    with torch.no_grad():
        first.weight.copy_(torch.as_tensor(W1.T))
        first.bias.copy_(torch.as_tensor(b1))
        second.weight.copy_(torch.as_tensor(W2.T))
        second.bias.copy_(torch.as_tensor(b2))
    return nn.Sequential(first, nn.ReLU(), second)


class GatedReLUNetwork(nn.Module):
    r"""Gated ReLU network.

    :math:`f(x) = \sum_j 1[\tilde x^\top g_j \ge 0]\,(x^\top w_j + b_j)\,\alpha_j + b`.

    ``gates`` are fixed buffers (shape (m, d) or (m, d + 1) with a bias entry).
    """

    def __init__(self, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray,
                 gates: np.ndarray, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.first = nn.Linear(W1.shape[0], W1.shape[1], dtype=dtype)
        self.second = nn.Linear(W2.shape[0], W2.shape[1], dtype=dtype)
        with torch.no_grad():
            self.first.weight.copy_(torch.as_tensor(W1.T))
            self.first.bias.copy_(torch.as_tensor(b1))
            self.second.weight.copy_(torch.as_tensor(W2.T))
            self.second.bias.copy_(torch.as_tensor(b2))
        self.register_buffer("gates", torch.as_tensor(gates, dtype=dtype))
        self.gate_bias = gates.shape[1] == W1.shape[0] + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xa = torch.cat([x, torch.ones_like(x[:, :1])], 1) if self.gate_bias else x
        gate = (xa @ self.gates.T >= 0).to(x.dtype)
        return self.second(gate * self.first(x))
