r"""Sketch-based preconditioners and robust small dense solves (rank-revealing by SVD).

From a sketch ``SA`` (``m × d``) with thin SVD :math:`SA = U \Sigma V^\top` the sketched
Hessian of the (ridge) least-squares objective
:math:`\|Ax - b\|^2 + \alpha \|x\|^2` is :math:`H_S = (SA)^\top SA + \alpha I`. The
preconditioner ``P`` satisfies :math:`P P^\top = H_S^{+}`:

* ``α = 0``: :math:`P = V_r \Sigma_r^{-1}` (``d × r``), ``r`` the numerical rank of ``SA``.
  Because ``S`` embeds ``range(A)``, ``null(SA) = null(A)``: iterating on ``x = P y``
  stays in ``row(A)`` and converges to the **minimum-norm** solution, even when ``A`` is
  rank deficient (where ``torch.linalg.lstsq`` on CUDA, a QR without pivoting, is wrong);
* ``α > 0``: :math:`P = V (\Sigma^2 + \alpha)^{-1/2} V^\top + \alpha^{-1/2}(I - V V^\top)`
  (symmetric ``d × d``, applied in factored form), also when ``m < d``.

If ``S`` is a subspace embedding, the spectrum of :math:`P^\top H P` lies in
:math:`[(1+\sqrt\rho)^{-2}, (1-\sqrt\rho)^{-2}]` with :math:`\rho = d_\alpha / m` for a
Gaussian sketch (Marchenko–Pastur), whatever the condition number of ``A``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "SketchPreconditioner",
    "build_preconditioner",
    "effective_dimension",
    "svd_solve",
]


def _rcond(shape: tuple[int, int], dtype: torch.dtype) -> float:
    return max(shape) * torch.finfo(dtype).eps


def effective_dimension(singular_values: torch.Tensor, alpha: float) -> float:
    r"""Effective dimension :math:`d_\alpha = \sum_i \sigma_i^2 / (\sigma_i^2 + \alpha)`.

    With ``alpha = 0`` it is the number of non-zero singular values (the rank).
    """
    s2 = singular_values.double() ** 2
    if alpha <= 0:
        tol = float(s2.max()) * _rcond((len(s2), len(s2)), singular_values.dtype) ** 2 if len(
            s2
        ) else 0.0
        return float((s2 > tol).sum())
    return float((s2 / (s2 + alpha)).sum())


@dataclass
class SketchPreconditioner:
    """``P`` with ``P Pᵀ = ((SA)ᵀ SA + αI)⁺`` in factored form (see the module notes)."""

    v: torch.Tensor  # d × r right singular vectors of SA
    scale: torch.Tensor  # r: 1/σ (α = 0) or (σ² + α)^(-1/2)
    sigma: torch.Tensor  # all singular values of SA (descending)
    alpha: float
    perp: float | None  # α^(-1/2) on the orthogonal complement (projector form) or None
    m: int

    @property
    def rank(self) -> int:
        """Number of directions kept (numerical rank of ``SA`` when ``α = 0``)."""
        return int(self.v.shape[1])

    @property
    def dim(self) -> int:
        """Dimension of the preconditioned variable ``y`` (``x = P y``)."""
        return self.v.shape[0] if self.perp is not None else self.v.shape[1]

    def effective_dimension(self) -> float:
        """The sketch's estimate of ``d_α`` (rank when ``α = 0``)."""
        return effective_dimension(self.sigma, self.alpha) if self.alpha > 0 else float(self.rank)

    def apply(self, y: torch.Tensor) -> torch.Tensor:
        """Return ``P y``."""
        if self.perp is None:
            return self.v @ (self.scale.unsqueeze(-1) * y if y.ndim == 2 else self.scale * y)
        vy = self.v.T @ y
        sv = self.scale.unsqueeze(-1) * vy if y.ndim == 2 else self.scale * vy
        return self.v @ sv + self.perp * (y - self.v @ vy)

    def apply_t(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``Pᵀ x``."""
        if self.perp is None:
            vx = self.v.T @ x
            return self.scale.unsqueeze(-1) * vx if x.ndim == 2 else self.scale * vx
        return self.apply(x)

    def solve(self, g: torch.Tensor) -> torch.Tensor:
        """Return ``P Pᵀ g = H_S⁺ g``."""
        return self.apply(self.apply_t(g))


def build_preconditioner(sa: torch.Tensor, alpha: float = 0.0) -> SketchPreconditioner:
    """Build :class:`SketchPreconditioner` from the sketched matrix ``SA`` (``m × d``).

    ``m >= d``: a QR of ``SA`` then an SVD of the ``d × d`` factor ``R``; ``m < d``: a thin
    SVD of ``SA``. Singular values below ``max(m, d) · eps · σ_max`` are dropped when
    ``alpha = 0``.
    """
    m, d = sa.shape
    if m >= d:
        r = torch.linalg.qr(sa, mode="r")[1]
        _, s, vh = torch.linalg.svd(r, full_matrices=False)
    else:
        _, s, vh = torch.linalg.svd(sa, full_matrices=False)
    v = vh.T
    if alpha > 0:
        scale = torch.rsqrt(s * s + alpha)
        perp = None if v.shape[1] == d else float(alpha) ** -0.5
        return SketchPreconditioner(v, scale, s, float(alpha), perp, m)
    if s.numel() == 0 or float(s[0]) == 0.0:
        keep = 0
    else:
        keep = int((s > s[0] * _rcond((m, d), sa.dtype)).sum())
    keep = max(keep, 1)
    return SketchPreconditioner(v[:, :keep], 1.0 / s[:keep], s, 0.0, None, m)


def svd_solve(a: torch.Tensor, b: torch.Tensor, alpha: float = 0.0) -> tuple[torch.Tensor, int]:
    r"""Minimum-norm solution of :math:`\min \|a x - b\|^2 + \alpha \|x\|^2` by QR + SVD.

    Robust to rank deficiency on every device (unlike ``torch.linalg.lstsq`` on CUDA):
    ``a = Q R`` (when tall), ``R = U Σ Vᵀ``, ``x = V diag(σ / (σ² + α)) Uᵀ Qᵀ b`` with
    singular values below ``max(shape) · eps · σ_max`` dropped when ``alpha = 0``.

    Returns
    -------
    x : torch.Tensor
        Shape ``(d,)`` or ``(d, k)`` like ``b``.
    rank : int
        Number of singular values kept.
    """
    m, d = a.shape
    if m > d:
        q, r = torch.linalg.qr(a, mode="reduced")
        rhs = q.T @ b
        u, s, vh = torch.linalg.svd(r, full_matrices=False)
    else:
        rhs = b
        u, s, vh = torch.linalg.svd(a, full_matrices=False)
    c = u.T @ rhs
    if alpha > 0:
        w = s / (s * s + alpha)
        rank = int(s.numel())
    else:
        keep = s > (s[0] * _rcond((m, d), a.dtype) if s.numel() else 0)
        w = torch.where(keep, 1.0 / torch.where(keep, s, torch.ones_like(s)), torch.zeros_like(s))
        rank = int(keep.sum())
    x = vh.T @ (w.unsqueeze(-1) * c if c.ndim == 2 else w * c)
    return x, rank
