"""The fast Walsh–Hadamard transform (FWHT) on torch tensors, any length by zero padding.

The unnormalized Hadamard matrix of order ``N = 2^L`` is ``H_N[i, j] = (-1)^{popcount(i & j)}``
(Sylvester's construction ``H_{2N} = [[H_N, H_N], [H_N, -H_N]]``); it is symmetric and
``H_N H_N = N I``. Because ``H_{ab} = H_a ⊗ H_b`` for powers of two, the transform is
applied as a sequence of small dense Kronecker factors (radix 16), each one a batched
matrix product: ``O(N log N)`` work per column, ``ceil(L / 4)`` passes over memory, on
CPU and CUDA alike.
"""

from __future__ import annotations

import torch

__all__ = ["fwht", "hadamard_parity", "next_power_of_two"]

_RADIX_BITS = 4


def next_power_of_two(n: int) -> int:
    """Return the smallest power of two ``>= n`` (and 1 for ``n <= 1``)."""
    n = int(n)
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def _small_hadamard(bits: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    h = torch.ones((1, 1), device=device, dtype=dtype)
    for _ in range(bits):
        h = torch.cat([torch.cat([h, h], dim=1), torch.cat([h, -h], dim=1)], dim=0)
    return h


def fwht(x: torch.Tensor) -> torch.Tensor:
    r"""Unnormalized Walsh–Hadamard transform along dimension 0.

    Computes :math:`H_N x` for ``x`` of shape ``(N,)`` or ``(N, k)`` with ``N`` a power
    of two, where :math:`H_N[i, j] = (-1)^{\mathrm{popcount}(i \wedge j)}`. The result
    is a new tensor; ``H_N H_N = N I`` so ``fwht(fwht(x)) / N == x``.

    Parameters
    ----------
    x : torch.Tensor
        Floating tensor whose first dimension is a power of two.

    Returns
    -------
    torch.Tensor
        :math:`H_N x`, same shape, device and dtype as ``x``.
    """
    n = x.shape[0]
    if n & (n - 1) or n == 0:
        raise ValueError(f"fwht needs a power-of-two length along dim 0; got {n}.")
    vec = x.ndim == 1
    y = x.reshape(n, -1)
    k = y.shape[1]
    total_bits = n.bit_length() - 1
    done = 0
    while done < total_bits:
        bits = min(_RADIX_BITS, total_bits - done)
        r = 1 << bits
        h = _small_hadamard(bits, y.device, y.dtype)
        inner = (1 << done) * k
        # index i = outer * (r * 2^done) + mid * 2^done + low: factor H_r acts on "mid".
        y = torch.matmul(h, y.reshape(n // (r << done), r, inner)).reshape(n, k)
        done += bits
    return y.reshape(n) if vec else y


def hadamard_parity(a: torch.Tensor) -> torch.Tensor:
    """Return ``popcount(a) mod 2`` elementwise for a non-negative int64 tensor."""
    a = a.clone()
    for shift in (32, 16, 8, 4, 2, 1):
        a ^= a >> shift
    return a & 1
