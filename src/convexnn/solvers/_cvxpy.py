r"""Reference solver: the convex program written in CVXPY (tiny problems, oracle tests).

Needs the optional dependency ``cvxpy`` (``pip install convexnn[cvxpy]``); Clarabel is
used when installed, else ECOS or SCS.
"""

from __future__ import annotations

import numpy as np
import torch

from convexnn.exceptions import SolverError
from convexnn.solvers._apg import SolverResult
from convexnn.solvers._problem import ConvexProblem

__all__ = ["cvxpy_reference"]


def cvxpy_reference(problem: ConvexProblem, *, solver: str | None = None,
                    verbose: bool = False) -> SolverResult:
    """Solve ``problem`` with CVXPY; returns ``W`` (c, p, d), ``b`` and the optimal value."""
    try:
        import cvxpy as cp
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SolverError(
            "cvxpy_reference needs the optional dependency 'cvxpy' "
            "(pip install 'convexnn[cvxpy]')."
        ) from exc
    op = problem.op
    X = op.X.detach().cpu().double().numpy()
    D = op.D.detach().cpu().double().numpy()
    sign = op.sign.detach().cpu().double().numpy()
    Y = problem.Y.detach().cpu().double().numpy()
    n, d = X.shape
    c, p = op.c, op.p
    Ws = [cp.Variable((p, d)) for _ in range(c)]
    b = cp.Variable(c) if problem.fit_bias else None
    cols = []
    cons = []
    T = getattr(op, "T", None)  # DirectionalOperator: block j feeds the direction t_j
    if T is not None:
        T = T.detach().cpu().double().numpy()
        b = cp.Variable(T.shape[1]) if problem.fit_bias else None
        pre = X @ Ws[0].T  # (n, m)
        Zd = cp.multiply(D, pre) @ T  # (n, c_out)
        cols = [Zd[:, k] + (b[k] if b is not None else 0) for k in range(T.shape[1])]
        if problem.constrained:
            cons.append(cp.multiply(2 * D - 1, pre) >= 0)
    for k in range(c if T is None else 0):
        pre = X @ Ws[k].T  # (n, p)
        z = cp.sum(cp.multiply(D * sign, pre), axis=1)
        if b is not None:
            z = z + b[k]
        cols.append(z)
        if problem.constrained:
            cons.append(cp.multiply(2 * D - 1, pre) >= 0)
    name = problem.loss.name
    if name == "squared":
        data = sum(0.5 * cp.sum_squares(cols[k] - Y[:, k]) for k in range(len(cols))) / n
    elif name == "logistic":
        data = cp.sum(cp.logistic(-cp.multiply(Y[:, 0], cols[0]))) / n
    elif name == "softmax":
        Zm = cp.vstack(cols).T
        data = (cp.sum(cp.log_sum_exp(Zm, axis=1)) - cp.sum(cp.multiply(Y, Zm))) / n
    else:  # pragma: no cover
        raise SolverError(f"cvxpy_reference does not know the loss {name!r}.")
    if problem.penalty.couples_outputs:  # nuclear norm of each pattern's c × d matrix
        reg = problem.lam * sum(
            cp.normNuc(cp.vstack([Ws[k][j:j + 1, :] for k in range(c)])) for j in range(p))
    else:
        reg = problem.lam * sum(cp.sum(cp.norm(Ws[k], 2, axis=1)) for k in range(c))
    prob = cp.Problem(cp.Minimize(data + reg), cons)
    installed = cp.installed_solvers()
    if solver is None:
        for cand in ("CLARABEL", "ECOS", "SCS"):
            if cand in installed:
                solver = cand
                break
    kwargs = {}
    if solver == "CLARABEL":
        kwargs = dict(tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12, max_iter=500)
    prob.solve(solver=solver, verbose=verbose, **kwargs)
    if prob.status not in ("optimal", "optimal_inaccurate"):
        raise SolverError(f"CVXPY ({solver}) ended with status {prob.status!r}.")
    W = np.stack([Wk.value for Wk in Ws])
    bb = np.asarray(b.value) if b is not None else np.zeros(len(cols))
    dev, dt = op.X.device, op.X.dtype
    res = SolverResult(
        torch.as_tensor(W, dtype=dt, device=dev), torch.as_tensor(bb, dtype=dt, device=dev),
        0, prob.status == "optimal",
    )
    res.extra.update(value=float(prob.value), status=prob.status, solver=solver)
    return res
