r"""FISTA for the gated-ReLU program (SPEC §3), an unconstrained group lasso.

.. math:: \min_{W, b} L(\mathcal A W + \mathbf 1 b^\top) + \lambda \sum_j \|w_j\|_2

Stops when the relative duality gap of :func:`convexnn.certificates.dual_bound`
(evaluated every ``check_every`` iterations) is at most ``tol``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from convexnn.certificates import dual_bound
from convexnn.solvers._apg import SolverResult, apg
from convexnn.solvers._problem import ConvexProblem

__all__ = ["fista"]


class _LossOfOperator:
    def __init__(self, problem: ConvexProblem) -> None:
        self.p = problem

    def image(self, W: torch.Tensor) -> torch.Tensor:
        return self.p.op.matvec(W)

    def value(self, Z: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.p.loss.value(Z + b, self.p.Y)

    def grad(self, Z: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        V = self.p.loss.grad(Z + b, self.p.Y)
        return self.p.op.rmatvec(V), V.sum(dim=0)


def relative_gap(problem: ConvexProblem, W: torch.Tensor, b: torch.Tensor, Z: torch.Tensor,
                 mu: torch.Tensor | None = None) -> tuple[float, float, float]:
    """(primal, lower bound, relative gap) of the program at ``(W, b)`` with image ``Z``."""
    primal = float(problem.loss.value(Z + b, problem.Y) + problem.penalty.value(W))
    lb = dual_bound(
        problem.loss, problem.Y, Z + b, problem.op, problem.lam,
        fit_bias=problem.fit_bias, constrained=problem.constrained, mu=mu,
        combine_outputs=problem.penalty.couples_outputs,
    ).lower_bound
    return primal, lb, (primal - lb) / max(abs(primal), 1e-12)


def fista(
    problem: ConvexProblem,
    W0: torch.Tensor | None = None,
    b0: torch.Tensor | None = None,
    *,
    tol: float = 1e-6,
    max_iter: int = 10_000,
    check_every: int = 10,
    progress: Callable[[dict], Any] | None = None,
    progress_every: int = 100,
) -> SolverResult:
    """Solve the gated program to relative duality gap ``tol`` (warm start from ``W0``).

    ``progress`` (optional) is called every ``progress_every`` iterations with
    ``{"newton_step", "primal", "gap_estimate", "phase": "fista"}`` (the gap of *this*
    program, which for a working set is not a bound on the full one).
    """
    Wz, bz = problem.zeros()
    W0 = Wz if W0 is None else W0
    b0 = bz if b0 is None else b0
    dt_out = problem.op.X.dtype
    if dt_out != torch.float64:
        # iterate in float64, as the interior points do. In float32 the gradient's
        # cancelling sums 𝒜ᵀV lose ~eps·Σ|x v| / λ: FISTA crawled (wine, gated, 3 classes,
        # λ = 1e-3: 7,500 iterations to a gap of 6e-5, growth never ran, objective 15 %
        # above the float64 fit's) and its gap test ran on round-off
        problem = problem.to(torch.float64)
        W0, b0 = W0.double(), b0.double()
    smooth = _LossOfOperator(problem)
    n = problem.op.X.shape[0]
    L0 = problem.loss.lipschitz(n) * _op_norm_sq_estimate(problem)
    last: dict[str, float] = {}

    def stop(k: int, W: torch.Tensor, b: torch.Tensor, Z: torch.Tensor) -> bool:
        primal, lb, rel = relative_gap(problem, W, b, Z)
        last.update(primal=primal, lower_bound=lb, rel_gap=rel, iteration=k)
        if progress is not None and k % progress_every == 0:
            progress({"newton_step": k, "primal": primal, "gap_estimate": primal - lb,
                      "phase": "fista"})
        return rel <= tol

    res = apg(
        smooth, problem.penalty.prox, W0, b0, fit_bias=problem.fit_bias, max_iter=max_iter,
        L0=L0, stop=stop, check_every=check_every, regularizer=problem.penalty.value,
        prox_value=problem.penalty.prox_value,
    )
    res.extra.update(last)
    if dt_out != torch.float64:  # the data's dtype out, the float64 solution beside it
        res.extra.update(W64=res.W, b64=res.b)
        res.W, res.b = res.W.to(dt_out), res.b.to(dt_out)
    return res


def _op_norm_sq_estimate(problem: ConvexProblem, iters: int = 8) -> float:
    """A few power iterations for ‖A‖² (a starting step; backtracking corrects it)."""
    op = problem.op
    X = op.X
    gen = torch.Generator(device=X.device)
    gen.manual_seed(0)
    W = torch.randn(op.shape_in, generator=gen, dtype=X.dtype, device=X.device)
    est = 1.0
    for _ in range(iters):
        W = W / torch.linalg.vector_norm(W).clamp_min(1e-300)
        W = op.rmatvec(op.matvec(W))
        est = float(torch.linalg.vector_norm(W))
    op.n_matvec -= iters
    op.n_rmatvec -= iters
    return max(est, 1e-12) * 0.5
