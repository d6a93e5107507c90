r"""Randomized low-rank approximation and Nyström-preconditioned CG.

* :func:`randomized_svd` (Halko, Martinsson & Tropp, 2011): range finder
  :math:`Y = (AA^\top)^q A\Omega`, ``Q = orth(Y)``, SVD of the small ``Qᵀ A``.
* :func:`nystrom` (Tropp, Yurtsever, Udell & Cevher, 2017, the numerically stable form):
  for a PSD operator ``K``, :math:`K \approx (K\Omega)(\Omega^\top K\Omega)^{+}(K\Omega)^\top
  = U \Lambda U^\top` with a shift :math:`\nu` for stability.
* :func:`nystrom_pcg` (Frangella, Tropp & Udell, 2023): CG for
  :math:`(K + \mu I)x = b` preconditioned by
  :math:`P^{-1} = (\lambda_\ell + \mu)\,U(\Lambda + \mu I)^{-1}U^\top + (I - UU^\top)`.
  ``K`` is given **only by a matvec closure**, so convex-network solvers can use it for
  the ridge-like systems ``(AᵀA + μI)x = b`` of their ADMM/augmented-Lagrangian steps
  (``matvec = lambda V: A.T @ (A @ V)``). With rank ``ℓ`` above the effective dimension
  ``d_μ`` the preconditioned condition number is ``O(1)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from convexnn.exceptions import ValidationError
from convexnn.sketching._inputs import as_operand, check_int, to_output
from convexnn.utils import make_generator

__all__ = ["NystromApproximation", "NystromPCGResult", "nystrom", "nystrom_pcg",
           "randomized_svd"]


def randomized_svd(
    A: Any,
    rank: int,
    *,
    n_oversamples: int = 10,
    n_iter: int = 2,
    random_state: Any = None,
) -> tuple[Any, Any, Any]:
    r"""Rank-``rank`` truncated SVD :math:`A \approx U \mathrm{diag}(s) V^\top` by sketching.

    Parameters
    ----------
    A : array-like or sparse matrix of shape (n, d)
        NumPy, SciPy sparse, or torch (dense/sparse, any device).
    rank : int
        Number of singular triplets, ``1 <= rank <= min(n, d)``.
    n_oversamples : int, default 10
        Extra sketch columns ``p`` (the sketch has ``rank + p`` columns).
    n_iter : int, default 2
        Power iterations ``q`` (each re-orthonormalized), for slowly decaying spectra.
    random_state : optional
        Seeds the Gaussian test matrix.

    Returns
    -------
    U : (n, rank), s : (rank,), Vh : (rank, d)
        Same array kind as ``A`` (NumPy for NumPy/SciPy input).
    """
    op, kind = as_operand(A, name="A", owner="randomized_svd")
    n, d = op.shape
    rank = check_int(rank, "rank", "randomized_svd", low=1)
    if rank > min(n, d):
        raise ValidationError(
            f"The 'rank' parameter of randomized_svd must be an int <= min(n, d) = "
            f"{min(n, d)}. Got {rank} instead."
        )
    ell = min(rank + check_int(n_oversamples, "n_oversamples", "randomized_svd", low=0), n, d)
    gen = make_generator(random_state, op.device)
    omega = torch.randn((d, ell), generator=gen, device=op.device, dtype=op.dtype)
    q = torch.linalg.qr(op.matvec(omega)).Q
    for _ in range(check_int(n_iter, "n_iter", "randomized_svd", low=0)):
        q = torch.linalg.qr(op.rmatvec(q)).Q
        q = torch.linalg.qr(op.matvec(q)).Q
    bt = op.rmatvec(q)  # (d, ell) = (Qᵀ A)ᵀ
    u_b, s, vh = torch.linalg.svd(bt.T, full_matrices=False)
    u = q @ u_b
    return (to_output(u[:, :rank], kind), to_output(s[:rank], kind),
            to_output(vh[:rank], kind))


@dataclass
class NystromApproximation:
    r"""``K ≈ U diag(lam) Uᵀ`` (``U`` orthonormal ``n × ℓ``, ``lam`` descending, >= 0)."""

    U: torch.Tensor
    lam: torch.Tensor

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """Apply the approximation ``U diag(lam) Uᵀ v``."""
        c = self.U.T @ v
        return self.U @ (self.lam.unsqueeze(-1) * c if c.ndim == 2 else self.lam * c)


def _as_matvec(K: Any, n: int | None, device: Any, dtype: Any):
    if callable(K):
        if n is None:
            raise ValidationError(
                "The 'n' parameter is required when K is given as a matvec callable."
            )
        dev = torch.device(device) if device is not None else torch.device("cpu")
        dt = dtype if isinstance(dtype, torch.dtype) else torch.float64
        return K, int(n), dev, dt, "torch"
    op, kind = as_operand(K, name="K", owner="nystrom")
    if op.shape[0] != op.shape[1]:
        raise ValidationError(
            f"Input K of nystrom must be a square PSD matrix. Got shape {op.shape} instead."
        )
    return op.matvec, op.shape[0], op.device, op.dtype, kind


def nystrom(
    K: Any,
    rank: int,
    *,
    n: int | None = None,
    random_state: Any = None,
    device: Any = None,
    dtype: Any = None,
) -> NystromApproximation:
    r"""Randomized Nyström approximation of a PSD operator ``K`` (stable shifted form).

    ``Ω`` Gaussian ``n × ℓ`` orthonormalized, ``Y = KΩ``, shift ``ν = eps·‖Y‖``,
    ``Y_ν = Y + νΩ``, ``C = chol(ΩᵀY_ν)``, ``B = Y_ν C⁻ᵀ = U Σ Vᵀ``,
    ``lam = max(Σ² − ν, 0)``.

    Parameters
    ----------
    K : array-like of shape (n, n) or callable
        A symmetric PSD matrix, or ``matvec(V) -> K V`` for torch ``V`` of shape ``(n, k)``.
    rank : int
        ``ℓ``, the sketch size / rank of the approximation.
    n : int, optional
        Dimension (required with a callable).
    random_state, device, dtype : optional
        Seed; device and dtype of ``Ω`` when ``K`` is a callable (default CPU, float64).

    Returns
    -------
    NystromApproximation
    """
    matvec, size, dev, dt, _ = _as_matvec(K, n, device, dtype)
    ell = check_int(rank, "rank", "nystrom", low=1)
    if ell > size:
        raise ValidationError(
            f"The 'rank' parameter of nystrom must be an int <= n ({size}). Got {ell} instead."
        )
    gen = make_generator(random_state, dev)
    omega = torch.linalg.qr(torch.randn((size, ell), generator=gen, device=dev, dtype=dt)).Q
    y = matvec(omega)
    nu = torch.finfo(dt).eps * torch.linalg.matrix_norm(y) * max(size, 1) ** 0.5
    y_nu = y + nu * omega
    core = omega.T @ y_nu
    core = 0.5 * (core + core.T)
    chol, info = torch.linalg.cholesky_ex(core)
    if int(info) != 0:
        evals, evecs = torch.linalg.eigh(core)
        evals = evals.clamp_min(float(nu))
        chol = torch.linalg.cholesky((evecs * evals) @ evecs.T)
    b = torch.linalg.solve_triangular(chol, y_nu.T, upper=False).T
    u, s, _ = torch.linalg.svd(b, full_matrices=False)
    lam = (s * s - nu).clamp_min(0)
    return NystromApproximation(u, lam)


@dataclass
class NystromPCGResult:
    """Solution of :func:`nystrom_pcg` with its iteration count and residual history."""

    x: Any
    n_iter: int
    converged: bool
    residuals: list = field(default_factory=list)


def nystrom_pcg(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: Any,
    mu: float,
    *,
    rank: int = 50,
    tol: float = 1e-8,
    max_iter: int = 500,
    random_state: Any = None,
    approximation: NystromApproximation | None = None,
) -> NystromPCGResult:
    r"""Solve :math:`(K + \mu I) x = b` by CG with a randomized Nyström preconditioner.

    Parameters
    ----------
    matvec : callable
        ``matvec(V) -> K V`` for torch tensors ``V`` of shape ``(n, k)``, ``K`` symmetric
        PSD (e.g. ``lambda V: A.T @ (A @ V)`` for ridge normal equations).
    b : array-like of shape (n,) or (n, k)
        Right-hand side(s); its device/dtype (torch) are used for the work.
    mu : float
        Shift ``μ > 0``.
    rank : int, default 50
        Nyström rank ``ℓ`` (ideally above the effective dimension ``d_μ`` of ``K``).
    tol : float, default 1e-8
        Stop when ``‖b − (K + μI)x‖ <= tol ‖b‖`` (per column).
    max_iter : int, default 500
    random_state : optional
    approximation : NystromApproximation, optional
        Reuse a precomputed approximation (e.g. across ADMM iterations).

    Returns
    -------
    NystromPCGResult
        ``x`` has the kind and shape of ``b``.
    """
    if not callable(matvec):
        raise ValidationError("The 'matvec' parameter of nystrom_pcg must be callable.")
    if not (isinstance(mu, (int, float)) and float(mu) > 0):
        raise ValidationError(
            f"The 'mu' parameter of nystrom_pcg must be a float in the range (0, inf). "
            f"Got {mu!r} instead."
        )
    numpy_out = not isinstance(b, torch.Tensor)
    bt = torch.as_tensor(np.asarray(b, dtype=np.float64)) if numpy_out else b
    if not bool(torch.isfinite(bt).all()):
        raise ValidationError("Input b of nystrom_pcg contains NaN or infinity.")
    vec = bt.ndim == 1
    b2 = bt.unsqueeze(1) if vec else bt
    n = b2.shape[0]
    approx = approximation or nystrom(matvec, min(rank, n), n=n, random_state=random_state,
                                      device=b2.device, dtype=b2.dtype)
    u, lam = approx.U, approx.lam
    lam_l = float(lam[-1]) if lam.numel() else 0.0
    coeff = (lam_l + mu) / (lam + mu) - 1.0

    def precond(r: torch.Tensor) -> torch.Tensor:
        return r + u @ (coeff.unsqueeze(-1) * (u.T @ r))

    def op(v: torch.Tensor) -> torch.Tensor:
        return matvec(v) + mu * v

    x = torch.zeros_like(b2)
    r = b2.clone()
    z = precond(r)
    p = z.clone()
    rz = (r * z).sum(0)
    bnorm = torch.linalg.vector_norm(b2, dim=0).clamp_min(torch.finfo(b2.dtype).tiny)
    residuals = [float((torch.linalg.vector_norm(r, dim=0) / bnorm).max())]
    converged = residuals[-1] <= tol
    it = 0
    while not converged and it < max_iter:
        q = op(p)
        pq = (p * q).sum(0)
        a = torch.where(pq > 0, rz / torch.where(pq > 0, pq, torch.ones_like(pq)),
                        torch.zeros_like(pq))
        x += a * p
        r -= a * q
        it += 1
        rel = torch.linalg.vector_norm(r, dim=0) / bnorm
        residuals.append(float(rel.max()))
        if residuals[-1] <= tol:
            converged = True
            break
        z = precond(r)
        rz_new = (r * z).sum(0)
        beta = torch.where(rz > 0, rz_new / torch.where(rz > 0, rz, torch.ones_like(rz)),
                           torch.zeros_like(rz))
        p = z + beta * p
        rz = rz_new
    out = x[:, 0] if vec else x
    return NystromPCGResult(out.cpu().numpy() if numpy_out else out, it, converged, residuals)
