"""Small dense linear algebra: deterministic least squares, Gram eigen-components."""

from __future__ import annotations

import torch

__all__ = ["gram_components", "lstsq"]


def lstsq(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Minimum-norm least-squares solution of ``A X = B`` (``B`` of shape (m, k)).

    On the CPU the SVD driver ``gelsd``: torch's default there, ``gelsy``, returned
    different last bits from call to call for the same inputs (MKL; 19 distinct results
    in 30 calls on a 50 × 50 system, and on rank-deficient systems — the softmax output
    bias, whose Hessian has the null vector 1 — a different null-space component),
    which made fits differ from run to run. CUDA has only ``gels`` (QR without pivoting:
    no rank check, so a singular system gives inf/NaN): off the CPU the (small) system is
    solved there and the solution moved back.
    """
    if A.device.type == "cpu":
        return torch.linalg.lstsq(A, B, driver="gelsd").solution
    return torch.linalg.lstsq(A.cpu(), B.cpu(), driver="gelsd").solution.to(A.device)


def gram_components(B: torch.Tensor, *, wide: bool = True
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Eigen-components of a batch of matrices from their small Gram matrices.

    For each ``B_j`` (``B`` of shape (p, a, b)) with ``wide`` (use when a ≤ b):
    :math:`B_j B_j^\top = U_j \operatorname{diag}(e_j) U_j^\top` and the components
    :math:`M_j = U_j^\top B_j` (rows), so that :math:`B_j = U_j M_j` exactly; otherwise
    :math:`B_j^\top B_j = U_j \operatorname{diag}(e_j) U_j^\top`, :math:`M_j = B_j U_j`
    (columns), :math:`B_j = M_j U_j^\top`. Returns ``(e, U, M)``. The eigenvalues are the
    squared singular values only down to about :math:`\sqrt{\varepsilon}` of the largest
    (squaring blurs the rest); the components are products, so their norms stay accurate.
    """
    if wide:
        e, U = torch.linalg.eigh(B @ B.transpose(1, 2))
        return e, U, U.transpose(1, 2) @ B
    e, U = torch.linalg.eigh(B.transpose(1, 2) @ B)
    return e, U, B @ U
