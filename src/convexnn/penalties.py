r"""Penalties on the convex variables, each with value, prox, dual norm and ``lam_max``.

The neuron-wise group-ℓ2 penalty of SPEC §2/§3 acts on a tensor ``W`` whose last axis
is a neuron's weight vector (length ``d``); every other axis indexes neurons:

.. math::

    R(W) = \lambda \sum_{j} \|w_j\|_2, \qquad
    \operatorname{prox}_{tR}(W)_j = \Big(1 - \frac{t\lambda}{\|w_j\|_2}\Big)_+ w_j, \qquad
    R^*(S) = \iota\{\max_j \|s_j\|_2 \le \lambda\}.
"""

from __future__ import annotations

import torch

__all__ = ["GroupL2", "Penalty"]


class Penalty:
    """Interface: ``value``, ``prox``, ``dual_norm``, ``project_dual`` and ``lam_max``."""

    lam: float

    def value(self, W: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def prox(self, W: torch.Tensor, step: float) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def dual_norm(self, S: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def project_dual(self, S: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class GroupL2(Penalty):
    """Neuron-wise group-ℓ2 penalty :math:`\\lambda \\sum_j \\|w_j\\|_2` (groups = last axis)."""

    def __init__(self, lam: float) -> None:
        self.lam = float(lam)

    def value(self, W: torch.Tensor) -> torch.Tensor:
        return self.lam * torch.linalg.vector_norm(W, dim=-1).sum()

    def prox(self, W: torch.Tensor, step: float) -> torch.Tensor:
        norms = torch.linalg.vector_norm(W, dim=-1, keepdim=True)
        shrink = torch.clamp(1.0 - step * self.lam / norms.clamp_min(1e-300), min=0.0)
        return W * shrink

    def dual_norm(self, S: torch.Tensor) -> torch.Tensor:
        """:math:`\\max_j \\|s_j\\|_2` (R is λ times the norm whose dual this is)."""
        if S.numel() == 0:
            return torch.zeros((), dtype=S.dtype, device=S.device)
        return torch.linalg.vector_norm(S, dim=-1).max()

    def project_dual(self, S: torch.Tensor) -> torch.Tensor:
        """Projection onto :math:`\\{S : \\|s_j\\|_2 \\le \\lambda\\ \\forall j\\}` (prox of R*)."""
        norms = torch.linalg.vector_norm(S, dim=-1, keepdim=True)
        return S * torch.clamp(self.lam / norms.clamp_min(1e-300), max=1.0)

    @staticmethod
    def lam_max(gradient_image: torch.Tensor) -> float:
        """Smallest λ for which zero is optimal: the dual norm of :math:`A^\\top \\nabla L(0)`."""
        if gradient_image.numel() == 0:
            return 0.0
        return float(torch.linalg.vector_norm(gradient_image, dim=-1).max())
