r"""Augmented Lagrangian method for the ReLU program's cone constraints (SPEC §2).

.. math::

    \min_{W, b}\; L(\mathcal A W + \mathbf 1 b^\top) + \lambda \sum_j \|w_j\|_2
    \quad\text{s.t.}\quad C(W) := \big((2D_j - I) X w_{cj}\big)_{j} \ge 0 .

Each outer step minimizes the augmented Lagrangian

.. math::

    \Phi_\rho(W, b; \mu) = L(\mathcal A W + \mathbf 1 b^\top) + \lambda\sum_j\|w_j\|
    + \frac{1}{2\rho}\big(\|(\mu - \rho C(W))_+\|^2 - \|\mu\|^2\big)

by FISTA (warm started), then updates :math:`\mu \leftarrow (\mu - \rho C(W))_+` and
raises ρ when the violation did not shrink enough. It stops when the largest violation
is at most ``feas_tol`` and the relative duality gap (which uses μ to bound the cone
dual norms) is at most ``tol``. For float32 data it iterates in float64 (as FISTA and
the interior points do) and returns float32 ``W, b`` with the float64 ones in
``extra["W64"], extra["b64"]``.

The method alone is slow to reach feasibility (~1e-3 violation after 20,000 iterations
on n = 30–500 programs, session 18), so a solve that ends infeasible — its budget spent,
or Ctrl-C — is finished by :func:`restore_feasibility` (each violating block moved to the
nearest point with its violated rows at zero, or to zero), and the better of that point
and the best feasible iterate seen (the start counts when it satisfies the constraints)
is returned: the result always satisfies the cones to ``feas_tol`` (1e-8 in float64),
as the interior points' results do; ``extra["restored"]`` counts the blocks moved. Its
objective can then be far above the optimum; the certificate says by how much.
A ``KeyboardInterrupt`` sets ``interrupted``.
"""

from __future__ import annotations

import logging
import time

import torch

from convexnn.solvers._apg import SolverResult, apg
from convexnn.solvers._fista import _op_norm_sq_estimate, relative_gap
from convexnn.solvers._problem import ConvexProblem
from convexnn.utils import lstsq

__all__ = ["augmented_lagrangian"]

log = logging.getLogger(__name__)

#: a restored block may leave its zeroed rows at most this far below zero (round-off);
#: the interior points end at violations ≤ 1e-8
_RESTORE_TOL = 1e-9


class _AugmentedLagrangian:
    """Smooth part of Φ_ρ; its tracked image is the pre-activation tensor ``X w_{cj}``."""

    def __init__(self, problem: ConvexProblem, mu: torch.Tensor, rho: float) -> None:
        self.p = problem
        self.mu = mu
        self.rho = rho
        self.S = (2 * problem.op.D - 1)[:, None, :]  # (n, 1, p)

    def image(self, W: torch.Tensor) -> torch.Tensor:
        return self.p.op.preactivations(W)

    def value(self, P: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        Z = self.p.op.outputs(P) + b
        lam_plus = torch.clamp(self.mu - self.rho * P * self.S, min=0)
        al = ((lam_plus**2).sum() - (self.mu**2).sum()) / (2 * self.rho)
        return self.p.loss.value(Z, self.p.Y) + al

    def grad(self, P: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        op = self.p.op
        Z = op.outputs(P) + b
        V = self.p.loss.grad(Z, self.p.Y)
        lam_plus = torch.clamp(self.mu - self.rho * P * self.S, min=0)
        M = op.output_coefficients(V) - self.S * lam_plus
        n, c, p = M.shape
        op.n_rmatvec += 1
        gW = (M.reshape(n, c * p).T @ op.X).reshape(c, p, -1)
        return gW, V.sum(dim=0)


def augmented_lagrangian(
    problem: ConvexProblem,
    W0: torch.Tensor | None = None,
    b0: torch.Tensor | None = None,
    mu0: torch.Tensor | None = None,
    *,
    tol: float = 1e-6,
    feas_tol: float | None = None,
    max_iter: int = 10_000,
    max_outer: int = 60,
    rho0: float | None = None,
    time_limit: float | None = None,
) -> SolverResult:
    """Solve the ReLU program; returns W, b and, in ``extra``, μ, violation and gap.

    ``max_iter`` bounds the total number of inner FISTA iterations.
    """
    dt_out = problem.op.X.dtype
    if feas_tol is None:
        feas_tol = 1e-8 if dt_out == torch.float64 else 1e-5
    if dt_out != torch.float64:
        # iterate in float64, as FISTA and the interior points do for float32 data (the
        # gradient's cancelling sums lose ~eps·Σ|x v| / λ in float32)
        problem = problem.to(torch.float64)
        W0 = None if W0 is None else W0.double()
        b0 = None if b0 is None else b0.double()
        mu0 = None if mu0 is None else mu0.double()
    X = problem.op.X
    n = X.shape[0]
    Wz, bz = problem.zeros()
    W = Wz if W0 is None else W0.clone()
    b = bz if b0 is None else b0.clone()
    op = problem.op
    mu = (
        torch.zeros(n, op.c, op.p, dtype=X.dtype, device=X.device)
        if mu0 is None or mu0.shape != (n, op.c, op.p)
        else mu0.clone()
    )
    norm_sq = _op_norm_sq_estimate(problem)
    rho = float(rho0) if rho0 is not None else problem.loss.lipschitz(n)
    total = 0
    prev_viol = float("inf")
    converged = interrupted = False
    history = []
    t0 = time.perf_counter()
    primal = lb = rel = float("nan")
    viol = float("inf")
    outer = 0
    gm_scale = None
    gm_tol = 0.0

    def _violation(W_: torch.Tensor) -> float:
        C_ = op.cone_matvec(W_)
        return float(torch.clamp(-C_, min=0).max()) if C_.numel() else 0.0

    # the best feasible point so far: what an interrupted solve returns
    best: tuple[torch.Tensor, torch.Tensor, float] | None = None
    if _violation(W) <= feas_tol:
        best = (W, b, float(problem.objective(W, b)))
    try:
        for outer in range(1, max_outer + 1):
            smooth = _AugmentedLagrangian(problem, mu, rho)
            L0 = problem.loss.lipschitz(n) * norm_sq + rho * norm_sq
            budget = max(50, min(5000, max_iter - total))
            res = apg(
                smooth, problem.penalty.prox, W, b, fit_bias=problem.fit_bias, max_iter=budget,
                L0=L0, gm_tol=gm_tol, gm_rtol=1e-3 if gm_scale is None else 0.0,
                regularizer=problem.penalty.value,
            )
            if gm_scale is None:
                gm_scale = res.extra["gm0"]
            gm_tol = max(gm_scale * 1e-12, (gm_tol or gm_scale * 1e-3) * 0.2)
            W, b = res.W, res.b
            total += res.n_iter
            if res.interrupted:
                interrupted = True
                break
            C = op.cone_matvec(W)
            viol = float(torch.clamp(-C, min=0).max()) if C.numel() else 0.0
            mu = torch.clamp(mu - rho * C, min=0)
            Z = op.matvec(W)
            primal, lb, rel = relative_gap(problem, W, b, Z, mu=mu)
            if viol <= feas_tol and (best is None or primal < best[2]):
                best = (W, b, primal)
            history.append({
                "outer": outer, "inner": res.n_iter, "rho": rho, "violation": viol,
                "primal": primal, "lower_bound": lb, "rel_gap": rel,
                "time": time.perf_counter() - t0,
            })
            log.debug("AL outer %d: viol=%.2e gap=%.2e rho=%.1e", outer, viol, rel, rho)
            if viol <= feas_tol and rel <= tol:
                converged = True
                break
            if total >= max_iter:
                break
            if time_limit is not None and time.perf_counter() - t0 > time_limit:
                break
            if viol > feas_tol and viol > 0.5 * prev_viol:
                rho = min(rho * 5.0, 1e12)
            prev_viol = viol
    except KeyboardInterrupt:  # between inner solves (FISTA catches its own)
        interrupted = True
    if interrupted:
        log.info("AL outer %d: interrupted; returning the best feasible iterate", outer)
        if best is not None:
            W, b, primal = best
            viol = _violation(W)
            lb = rel = float("nan")  # the multipliers were not computed for this point
    restored = 0
    if viol > feas_tol:  # ended infeasible (budget or Ctrl-C with no feasible iterate)
        W_r, restored = restore_feasibility(problem, W)
        if best is not None and best[2] <= float(problem.objective(W_r, b)):
            W, b = best[0], best[1]  # the best feasible iterate seen is better
            restored = 0
        else:
            W = W_r
        viol = _violation(W)
        primal, lb, rel = relative_gap(problem, W, b, op.matvec(W), mu=mu)
        log.debug("AL: restored feasibility of %d blocks; viol=%.2e gap=%.2e", restored,
                  viol, rel)
    out = SolverResult(W, b, total, converged, interrupted, history)
    if dt_out != torch.float64:  # the data's dtype out, the float64 solution beside it
        out.extra.update(W64=W, b64=b)
        out.W, out.b, mu = W.to(dt_out), b.to(dt_out), mu.to(dt_out)
    out.extra.update(mu=mu, violation=viol, primal=primal, lower_bound=lb, rel_gap=rel,
                     n_outer=outer, rho=rho, feas_tol=feas_tol, restored=restored)
    return out


def restore_feasibility(problem: ConvexProblem, W: torch.Tensor) -> tuple[torch.Tensor, int]:
    r"""A feasible point near ``W``: each block that violates its cone
    :math:`A_j w \ge 0` (:math:`A_j = (2D_j - I) X`) is replaced by the nearest point on
    which its violated rows are zero, :math:`w - A_T^+ A_T w` (``T`` the violated rows;
    rows that this makes negative join ``T`` and the step is repeated; a block whose rows
    ``T`` leave no direction becomes zero, which is always feasible). Blocks that satisfy
    their cones are not touched. Returns the new ``W`` and how many blocks changed; the
    certificate of the result says how far it is from the optimum."""
    op = problem.op
    C = op.cone_matvec(W)  # (n, c, p)
    bad = (C < 0).any(dim=0)  # (c, p)
    if not bool(bad.any()):
        return W, 0
    W = W.clone()
    X = op.X.to(W.dtype)
    S = 2 * op.D.to(W.dtype) - 1  # (n, p)
    for a, j in bad.nonzero().tolist():
        A = S[:, j:j + 1] * X  # (n, d)
        w = W[a, j]
        T = C[:, a, j] < 0
        for _ in range(X.shape[1] + 1):
            At = A[T]
            u = w - lstsq(At, (At @ w)[:, None])[:, 0]
            r = A @ u
            tiny = 1e-12 * float(A.abs().amax()) * float(torch.linalg.vector_norm(w))
            new = (r < -tiny) & ~T
            if not bool(new.any()):
                break
            T = T | new
        else:
            u = torch.zeros_like(w)
        if float(torch.clamp(-(A @ u), min=0).max()) > _RESTORE_TOL:
            u = torch.zeros_like(w)  # round-off kept a row below: the zero block
        W[a, j] = u
    return W, int(bad.sum())
