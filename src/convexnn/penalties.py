r"""Penalties on the convex variables, each with value, prox, dual norm and ``lam_max``.

The neuron-wise group-ℓ2 penalty of SPEC §2/§3 acts on a tensor ``W`` whose last axis
is a neuron's weight vector (length ``d``); every other axis indexes neurons:

.. math::

    R(W) = \lambda \sum_{j} \|w_j\|_2, \qquad
    \operatorname{prox}_{tR}(W)_j = \Big(1 - \frac{t\lambda}{\|w_j\|_2}\Big)_+ w_j, \qquad
    R^*(S) = \iota\{\max_j \|s_j\|_2 \le \lambda\}.

With ``c`` outputs, ``W`` has shape ``(c, p, d)`` and group-ℓ2 treats every (output,
pattern) pair as its own neuron: the *separable* program, where each neuron feeds one
output. The vector-output program of SPEC §5 couples the outputs of a pattern through
the nuclear norm of the ``c × d`` matrix :math:`W_j = W[:, j, :]`
(:class:`GroupNuclear`):

.. math::

    R(W) = \lambda \sum_j \|W_j\|_*, \qquad
    \operatorname{prox}_{tR}(W)_j = U_j (\Sigma_j - t\lambda I)_+ V_j^\top, \qquad
    R^*(S) = \iota\{\max_j \|S_j\|_2 \le \lambda\},

with :math:`W_j = U_j \Sigma_j V_j^\top` an SVD and :math:`\|\cdot\|_2` the spectral
norm. For gated ReLU it is exact: neurons :math:`(\tilde w_k, \alpha_k)` sharing the
gate of pattern ``j`` give :math:`W_j = \sum_k \alpha_k \tilde w_k^\top` and pay
:math:`\tfrac12\sum_k(\|\tilde w_k\|^2 + \|\alpha_k\|^2) \ge \|W_j\|_*`, with
equality for the balanced SVD factors. With one output both penalties coincide.
"""

from __future__ import annotations

import torch

__all__ = ["GroupL2", "GroupNuclear", "Penalty", "block_spectral_norms", "penalty_for"]


class Penalty:
    """Interface: ``value``, ``prox``, ``dual_norm``, ``project_dual`` and ``lam_max``.

    ``block_dual_norms(S)`` gives the dual norm of every group (shape ``(c, p)`` for
    group-ℓ2, ``(1, p)`` when the outputs of a pattern form one group);
    ``couples_outputs`` says which.
    """

    lam: float
    couples_outputs: bool = False

    def block_dual_norms(self, S: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

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

    def block_dual_norms(self, S: torch.Tensor) -> torch.Tensor:
        """:math:`\\|s_j\\|_2` for every group, shape ``S.shape[:-1]``."""
        return torch.linalg.vector_norm(S, dim=-1)

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


def _blocks(W: torch.Tensor) -> torch.Tensor:
    """The ``p`` matrices :math:`W_j` (c × d) of ``W`` (c, p, d), as a (p, c, d) view."""
    return W.transpose(0, 1)


def block_spectral_norms(S: torch.Tensor) -> torch.Tensor:
    """Spectral norm :math:`\\|S_j\\|_2` of each pattern's ``c × d`` matrix of ``S``
    (c, p, d): shape (p,)."""
    if S.numel() == 0:
        return S.new_zeros(S.shape[1])
    return torch.linalg.matrix_norm(_blocks(S), ord=2)


class GroupNuclear(Penalty):
    """Pattern-wise nuclear norm :math:`\\lambda \\sum_j \\|W_{:, j, :}\\|_*` (vector outputs).

    ``W`` has shape ``(c, p, d)``; the groups are the ``c × d`` matrices of each pattern.
    """

    couples_outputs = True

    def __init__(self, lam: float) -> None:
        self.lam = float(lam)

    def value(self, W: torch.Tensor) -> torch.Tensor:
        if W.numel() == 0:
            return W.new_zeros(())
        return self.lam * torch.linalg.svdvals(_blocks(W)).sum()

    def prox(self, W: torch.Tensor, step: float) -> torch.Tensor:
        if W.numel() == 0:
            return W.clone()
        U, S, Vh = torch.linalg.svd(_blocks(W), full_matrices=False)
        S = torch.clamp(S - step * self.lam, min=0.0)
        return ((U * S[:, None, :]) @ Vh).transpose(0, 1).contiguous()

    def block_dual_norms(self, S: torch.Tensor) -> torch.Tensor:
        """Spectral norm :math:`\\|S_j\\|_2` of every pattern's matrix, shape ``(1, p)``."""
        return block_spectral_norms(S)[None, :]

    def dual_norm(self, S: torch.Tensor) -> torch.Tensor:
        if S.numel() == 0:
            return torch.zeros((), dtype=S.dtype, device=S.device)
        return self.block_dual_norms(S).max()

    def project_dual(self, S: torch.Tensor) -> torch.Tensor:
        """Projection onto :math:`\\{S : \\|S_j\\|_2 \\le \\lambda\\ \\forall j\\}`: clip the
        singular values at λ (the prox of R*)."""
        if S.numel() == 0:
            return S.clone()
        U, sv, Vh = torch.linalg.svd(_blocks(S), full_matrices=False)
        sv = torch.clamp(sv, max=self.lam)
        return ((U * sv[:, None, :]) @ Vh).transpose(0, 1).contiguous()

    @staticmethod
    def lam_max(gradient_image: torch.Tensor) -> float:
        """Smallest λ for which zero is optimal: the largest spectral norm of a pattern's
        block of :math:`A^\\top \\nabla L(0)`."""
        if gradient_image.numel() == 0:
            return 0.0
        return float(block_spectral_norms(gradient_image).max())


def penalty_for(lam: float, *, n_outputs: int, vector_outputs: bool) -> Penalty:
    """The group penalty of a program: nuclear when outputs are coupled (c > 1)."""
    if vector_outputs and n_outputs > 1:
        return GroupNuclear(lam)
    return GroupL2(lam)
