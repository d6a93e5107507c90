"""Deterministic dense least squares."""

from __future__ import annotations

import torch

__all__ = ["lstsq"]


def lstsq(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Minimum-norm least-squares solution of ``A X = B`` (``B`` of shape (m, k)).

    On the CPU the SVD driver ``gelsd``: torch's default there, ``gelsy``, returned
    different last bits from call to call for the same inputs (MKL; 19 distinct results
    in 30 calls on a 50 × 50 system, and on rank-deficient systems — the softmax output
    bias, whose Hessian has the null vector 1 — a different null-space component),
    which made fits differ from run to run. CUDA has only ``gels``.
    """
    driver = "gelsd" if A.device.type == "cpu" else None
    return torch.linalg.lstsq(A, B, driver=driver).solution
