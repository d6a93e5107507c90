r"""CVXPY + Clarabel on the convex programs of SPEC §2 (ReLU) and §3 (gated), written here.

Gated:  :math:`\min_W \frac1n\sum_k \ell([\sum_i D_i X w_i]_k, y_k) + \lambda\sum_i\|w_i\|_2`.
ReLU:   :math:`\min_{U,V} \frac1n\sum_k \ell([\sum_i D_i X (u_i - v_i)]_k, y_k)
        + \lambda\sum_i(\|u_i\|_2 + \|v_i\|_2)`
        s.t. :math:`(2D_i - I)Xu_i \ge 0,\ (2D_i-I)Xv_i\ge0`.

The wall time includes CVXPY's compilation (what a user pays); Clarabel's own solve
time is kept in ``extra["solve_time"]``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.suite.problem import Problem
from benchmarks.suite.solvers.base import Solver, SolverOutput, SolverSkipped

__all__ = ["CvxpySolver", "convex_program_value", "recover_network"]


def recover_network(
    blocks: list[tuple[np.ndarray, float]], d: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """SPEC §2 recovery: ``w = u/√‖u‖, α = ±√‖u‖`` for each non-zero block ``(u, sign)``."""
    cols, alphas, idx = [], [], []
    for j, (u, sign) in enumerate(blocks):
        r = float(np.linalg.norm(u))
        if r > 0:
            cols.append(u / np.sqrt(r))
            alphas.append(sign * np.sqrt(r))
            idx.append(j)
    if not cols:
        return [np.zeros((d, 1)), np.zeros((1, 1))], np.zeros(1, dtype=int)
    return [np.stack(cols, axis=1), np.array(alphas)[:, None]], np.array(idx)


class CvxpySolver(Solver):
    name = "cvxpy_clarabel"
    kinds = ("relu", "gated")
    losses = ("squared", "logistic")

    def __init__(self, max_size: int = 400_000, **options: Any) -> None:
        super().__init__(**options)
        self.max_size = max_size

    def supports(self, problem: Problem, device: str) -> str | None:
        why = super().supports(problem, device)
        if why:
            return why
        try:
            import cvxpy  # noqa: F401
        except ImportError:
            return "cvxpy is not installed"
        size = problem.n * problem.n_patterns * (2 if problem.kind == "relu" else 1)
        if size > self.max_size:
            return f"too large for an interior-point solve (n·p = {size} > {self.max_size})"
        return None

    def run(self, problem: Problem, *, seed: int, device: str, context: dict) -> SolverOutput:
        import cvxpy as cp

        X, y, lam = problem.X, problem.y, problem.lam
        n, d = X.shape
        D = problem.masks()
        p = D.shape[1]
        t0 = time.perf_counter()
        constraints = []
        if problem.kind == "gated":
            W = cp.Variable((d, p))
            out = cp.sum(cp.multiply(D, X @ W), axis=1)
            reg = cp.sum(cp.norm(W, 2, axis=0))
        else:
            U = cp.Variable((d, p))
            V = cp.Variable((d, p))
            S = 2 * D - 1
            out = cp.sum(cp.multiply(D, X @ (U - V)), axis=1)
            reg = cp.sum(cp.norm(U, 2, axis=0)) + cp.sum(cp.norm(V, 2, axis=0))
            constraints = [cp.multiply(S, X @ U) >= 0, cp.multiply(S, X @ V) >= 0]
        if problem.loss == "squared":
            data = cp.sum_squares(out - y) / (2 * n)
        else:
            data = cp.sum(cp.logistic(-cp.multiply(y, out))) / n
        prob = cp.Problem(cp.Minimize(data + lam * reg), constraints)
        try:
            prob.solve(solver=cp.CLARABEL)
        except cp.error.SolverError as exc:  # pragma: no cover - numerical failure
            raise SolverSkipped(f"Clarabel failed: {exc}") from exc
        elapsed = time.perf_counter() - t0
        if problem.kind == "gated":
            Wv = np.asarray(W.value)
            coefs, idx = recover_network([(Wv[:, i], 1.0) for i in range(p)], d)
            gates = problem.gates[:, idx]
        else:
            Uv, Vv = np.asarray(U.value), np.asarray(V.value)
            blocks = [(Uv[:, i], 1.0) for i in range(p)] + [(Vv[:, i], -1.0) for i in range(p)]
            coefs, _ = recover_network(blocks, d)
            gates = None
        stats = prob.solver_stats
        return SolverOutput(
            coefs=coefs,
            intercepts=None,
            gates=gates,
            time=elapsed,
            n_iter=float(stats.num_iters or np.nan),
            scope="solver tolerance",
            note=str(prob.status),
            extra={"solve_time": stats.solve_time, "reported_objective": float(prob.value)},
        )


def convex_program_value(problem: Problem, W: np.ndarray) -> float:
    """Gated program value at ``W (d, p)`` (used by tests to check the recovery)."""
    D = problem.masks()
    out = (D * (problem.X @ W)).sum(axis=1)
    n = problem.n
    if problem.loss == "squared":
        data = 0.5 * ((out - problem.y) ** 2).sum() / n
    else:
        data = np.logaddexp(0.0, -problem.y * out).sum() / n
    return float(data + problem.lam * np.linalg.norm(W, axis=0).sum())
