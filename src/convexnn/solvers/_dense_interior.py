r"""A dense primal-dual barrier method for small ReLU programs with any linear outputs.

For programs whose operator couples the outputs in a way the structured interior points
of :mod:`convexnn.solvers._primal_dual` do not model — the directional operator
:class:`convexnn.operators.DirectionalOperator`, one output direction per block — and
whose Newton matrix fits in memory. The program

.. math::

    \min_{W, b}\; L(\mathcal A W + \mathbf 1 b^\top) + \lambda\sum_j \|w_j\|_2
    \quad\text{s.t.}\quad r_j = (2D_j - I) X w_j \ge 0,

is solved along the central path of
:math:`M_\nu = L + \sum_j\psi_\nu(w_j) - \nu\sum\log r` (the smoothed norm
:math:`\psi_\nu` of :func:`convexnn.solvers._primal_dual._smoothed_norm` replaces each
second-order cone), with primal-dual multipliers ``z`` on the rows: each step solves

.. math:: \bigl(J^\top H J + \nabla^2\psi_\nu + \mathrm{blkdiag}_j X^\top
          \mathrm{diag}(z_j/r_j) X\bigr)\,\Delta x = -\nabla M_\nu

with the explicit Jacobian ``J = op.to_dense()`` (``n c × m d``) and the loss Hessian
``H`` (block diagonal, one ``c × c`` block per sample), one dense Cholesky factorization
per step (:math:`(md)^3/3` flops), then a fraction-to-the-boundary cut and an Armijo
search on :math:`M_\nu`. ν shrinks by ``sigma`` after every long step (α ≥ 0.9); the
method stops when the duality measure :math:`r^\top z + 2m\nu` is below ``tol · |F|``
after a long step with a small Newton decrement. Every iterate
is strictly feasible.
"""

from __future__ import annotations

import logging
import math

import torch

from convexnn.solvers._apg import SolverResult
from convexnn.solvers._primal_dual import _smoothed_norm, weighted_block_grams
from convexnn.solvers._problem import ConvexProblem

__all__ = ["dense_interior", "dense_newton_flops"]

log = logging.getLogger(__name__)

#: fraction of the start moved towards the blocks' interior directions
_PUSH = 0.05
#: multipliers are kept within this factor of the centre ν / r (as the barrier method's)
_KAPPA_Z = 1e10


def dense_newton_flops(problem: ConvexProblem) -> float:
    """Flops of one Newton step of :func:`dense_interior` on ``problem``: forming
    :math:`J^\top H J` (``c n k²`` for ``k = m d`` unknowns) and factoring it (``k³/3``)."""
    n, d = problem.op.X.shape
    k = problem.op.c * problem.op.p * d
    return float(problem.op.shape_out[1] * n * k * k + k**3 / 3)


def dense_interior(
    problem: ConvexProblem,
    W0: torch.Tensor | None = None,
    b0: torch.Tensor | None = None,
    *,
    tol: float = 1e-9,
    max_iter: int = 200,
    sigma: float = 0.2,
) -> SolverResult:
    """Solve a small constrained program by the dense barrier method above (float64).

    Parameters
    ----------
    problem : ConvexProblem
        A ReLU program (``constrained``) with ``problem.gates`` strictly inside every
        block's cone; its operator must provide ``to_dense()``, ``outputs`` and
        ``output_coefficients`` (:class:`convexnn.operators.DirectionalOperator`, or a
        one-output :class:`convexnn.operators.PatternOperator`).
    W0, b0 : tensor, optional
        Feasible warm start (moved a little towards the interior directions).
    tol : float
        Relative duality measure at which to stop.
    max_iter : int
        Newton steps.
    sigma : float
        Factor on the barrier weight after a long step.

    Returns
    -------
    SolverResult
        In the problem's dtype; ``extra``: ``mu`` (n, 1, m) row multipliers,
        ``violation``, ``barrier_gap``, ``primal``.
    """
    op = problem.op
    if not problem.constrained:
        raise ValueError("dense_interior solves constrained (ReLU) programs")
    if problem.gates is None:
        raise ValueError("dense_interior needs interior directions (problem.gates)")
    dtype = op.X.dtype
    op = op.to(torch.float64)  # every product in float64, whatever the data's dtype
    X = op.X
    n, d = X.shape
    m = op.c * op.p
    c = op.shape_out[1]
    S = (2 * op.D - 1).double()  # (n, m)
    Y = problem.Y.double()
    lam, loss, fb = problem.lam, problem.loss, problem.fit_bias
    J = op.to_dense().reshape(c, n, m * d)  # rows (output, sample)
    G = problem.gates.double()
    G = G / torch.linalg.vector_norm(G, dim=1, keepdim=True).clamp_min(1e-300)
    if not bool(((S * (X @ G.T)) > 0).all()):
        raise ValueError("some gates are not strictly inside their cones")
    W = torch.zeros(m, d, dtype=torch.float64, device=X.device) if W0 is None else \
        W0.double().reshape(m, d).clone()
    b = torch.zeros(c, dtype=torch.float64, device=X.device)
    if fb and b0 is not None:
        b = b0.double().clone()
    wn = torch.linalg.vector_norm(W, dim=1)
    W = (1 - _PUSH) * W + 1e-3 * (1.0 + (float(wn.max()) if m else 0.0)) * G

    def outputs(W: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        P = X @ W.T  # (n, m)
        return op.outputs(P[:, None, :]) + b, S * P

    def merit(Z: torch.Tensor, W: torch.Tensor, r: torch.Tensor, nu: float) -> float:
        logs = float(torch.log(r).sum())
        if not math.isfinite(logs):
            return math.inf
        return float(loss.value(Z, Y)) + float(_smoothed_norm(W, lam, nu)[0].sum()) - nu * logs

    Z, r = outputs(W, b)
    F = float(loss.value(Z, Y)) + lam * float(torch.linalg.vector_norm(W, dim=1).sum())
    n_rows = n * m
    nu = max(abs(F), 1e-12) / (n_rows + 2 * m)
    z = nu / r
    eye = torch.eye(d, dtype=torch.float64, device=X.device)
    gram: dict = {}  # the rows' outer products, formed once
    nv = m * d + (c if fb else 0)
    it, converged, gap_est = 0, False, math.inf
    for it in range(1, max_iter + 1):
        Vg = loss.grad(Z, Y)  # (n, c)
        H = loss.hessian(Z, Y)  # (n, c, c)
        _, ts, sq = _smoothed_norm(W, lam, nu)
        coef = op.output_coefficients(Vg)[:, 0, :] - nu * S / r
        gW = coef.T @ X + lam * W / ts[:, None]
        g = torch.cat([gW.reshape(-1), Vg.sum(0)]) if fb else gW.reshape(-1)
        HJ = torch.einsum("nab,bnk->ank", H, J)  # (c, n, md)
        K = torch.zeros(nv, nv, dtype=torch.float64, device=X.device)
        K[: m * d, : m * d] = torch.einsum("ank,anl->kl", J, HJ)
        Bd = (lam / ts)[:, None, None] * eye - (lam * lam / (ts * ts * sq))[:, None, None] * (
            W[:, :, None] * W[:, None, :])
        Bd = Bd + weighted_block_grams(X, z / r, gram)
        idx = torch.arange(m * d, device=X.device).reshape(m, d)
        K[idx[:, :, None], idx[:, None, :]] += Bd
        if fb:
            Kwb = torch.einsum("ank,nab->kb", J, H)  # Jᵀ H 1
            K[: m * d, m * d:] = Kwb
            K[m * d:, : m * d] = Kwb.T
            K[m * d:, m * d:] = H.sum(0)
        K = 0.5 * (K + K.T)
        K.diagonal().add_(1e-13 * float(K.diagonal().abs().max()))
        try:
            L = torch.linalg.cholesky(K)
        except RuntimeError:
            log.debug("dense ipm %d: Newton matrix not factorable; stopping", it)
            break
        step = -torch.cholesky_solve(g[:, None], L)[:, 0]
        dec2 = float(-(g * step).sum())
        dW = step[: m * d].reshape(m, d)
        db = step[m * d:] if fb else torch.zeros_like(b)
        dP = X @ dW.T
        dr = S * dP
        dZ = op.outputs(dP[:, None, :]) + db
        alpha = 1.0
        q = float((dr / r).min())
        if q < 0:
            alpha = min(alpha, 0.99 / -q)
        dz = (nu - z * (r + dr)) / r
        qz = float((dz / z).min())
        alpha_d = 1.0 if qz >= 0 else min(1.0, 0.99 / -qz)
        M0 = merit(Z, W, r, nu)
        while alpha > 1e-12 and merit(Z + alpha * dZ, W + alpha * dW, r + alpha * dr, nu) > \
                M0 - 1e-4 * alpha * dec2:
            alpha *= 0.5
        if alpha <= 1e-12:
            log.debug("dense ipm %d: line search failed (decrement %.2e); stopping", it, dec2)
            break
        W, b, Z, r = W + alpha * dW, b + alpha * db, Z + alpha * dZ, r + alpha * dr
        zc = nu / r
        z = torch.minimum(torch.maximum(z + alpha_d * dz, zc / _KAPPA_Z), zc * _KAPPA_Z)
        F = float(loss.value(Z, Y)) + lam * float(torch.linalg.vector_norm(W, dim=1).sum())
        gap_est = float((r * z).sum()) + 2 * m * nu
        log.debug("dense ipm %d F=%.12g nu=%.2e alpha=%.3f gap=%.2e", it, F, nu, alpha,
                  gap_est)
        if gap_est <= tol * max(abs(F), 1e-12) and alpha >= 0.9 and \
                dec2 <= 1e-3 * max(abs(F), 1e-12):
            converged = True
            break
        if alpha >= 0.9:  # a long step: close enough to the path, move along it
            nu = max(sigma * min(nu, gap_est / (n_rows + 2 * m)), 1e-3 * nu)
    out = SolverResult(W.reshape(op.c, op.p, d).to(dtype), b.to(dtype), it, converged)
    out.extra.update(mu=z.reshape(n, op.c, op.p).to(dtype), violation=0.0,
                     barrier_gap=gap_est, primal=F)
    return out
