r"""Newton sketch and Newton-LESS for L2-regularized logistic regression.

Objective (scikit-learn's ``LogisticRegression`` with an L2 penalty, labels
:math:`y_i \in \{-1, +1\}`, unpenalized intercept ``c``):

.. math::  F(w, c) = \tfrac12 \|w\|^2
           + C \sum_{i=1}^n \log\bigl(1 + e^{-y_i (x_i^\top w + c)}\bigr).

With :math:`\tilde X = [X, 1]`, :math:`z = \tilde X\theta`, :math:`D = C\,\sigma(z)(1-\sigma(z))`,
the Hessian is :math:`\nabla^2 F = \tilde X^\top D \tilde X + \mathrm{diag}(1, \dots, 1, 0)`.
The Newton sketch (Pilanci & Wainwright, 2017) replaces :math:`D^{1/2}\tilde X` by its
sketch :math:`S D^{1/2} \tilde X` (``m × (d+1)``, a fresh ``S`` per iteration):

.. math::  \Delta = -\bigl((S D^{1/2}\tilde X)^\top S D^{1/2}\tilde X
           + \mathrm{diag}(1,\dots,1,0)\bigr)^{-1} \nabla F .

Newton-LESS (Dereziński, Lacotte, Pilanci & Mahoney, 2021) uses a LESS embedding: each
row of ``S`` mixes ``s`` randomly sampled rows, so forming the sketched Hessian touches
only ``m · s`` rows of ``X`` (``O(m s d)`` work, independent of ``n``), while giving
nearly the convergence of a Gaussian sketch. A backtracking line search keeps every
step a descent step; iterations stop when the sketched Newton decrement
:math:`\lambda^2 = -\nabla F^\top \Delta` is ``<= tol · F`` (a relative bound on the
objective gap, up to the sketch's spectral factor).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as tnf

from convexnn.sketching._embeddings import make_sketch
from convexnn.utils import make_generator, seed_from_random_state

__all__ = ["NewtonResult", "newton_sketch_logistic", "logistic_objective"]

logger = logging.getLogger(__name__)

_EXACT_WORK = 1e6  # n (d+1)^2 below which the default uses the exact Hessian


@dataclass
class NewtonResult:
    """Solution and trace of :func:`newton_sketch_logistic`."""

    coef: torch.Tensor
    intercept: float
    objective: float
    n_iter: int
    converged: bool
    sketch_size: int
    history: list = field(default_factory=list)


def logistic_objective(
    x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, c: float, C: float
) -> float:
    """``½‖w‖² + C Σ log(1 + exp(−y (Xw + c)))`` (labels ±1)."""
    z = x @ w + c
    return float(0.5 * (w * w).sum() + C * tnf.softplus(-y * z).sum())


def newton_sketch_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    C: float = 1.0,
    fit_intercept: bool = True,
    sketch: str = "less",
    sketch_size: int | None = None,
    nnz_per_row: int | None = None,
    tol: float = 1e-8,
    max_iter: int = 100,
    random_state: Any = None,
) -> NewtonResult:
    """Minimize the L2 logistic objective by the Newton sketch (see the module notes).

    Parameters
    ----------
    x : torch.Tensor of shape (n, d)
        Dense data (its device and dtype are used).
    y : torch.Tensor of shape (n,)
        Labels in ``{-1, +1}``.
    C : float
        Inverse regularization strength (scikit-learn's convention).
    fit_intercept : bool
        Fit an unpenalized intercept.
    sketch : str
        Embedding for the Hessian square root; ``"less"`` is Newton-LESS (LESS-uniform).
    sketch_size : int, optional
        Rows ``m`` of the sketch; default ``10 (d + 1)``. ``m >= n`` uses the exact Hessian,
        and so does the default on tiny problems (``n (d + 1)² <= 10⁶``).
    nnz_per_row : int, optional
        Non-zeros per row of the LESS sketch (default ``min(d + 1, 8)``).
    tol : float
        Stop when the Newton decrement ``λ² <= tol · F`` (floored at ``50 eps`` of the dtype).
    max_iter : int
        Maximum Newton iterations.
    random_state : int, RandomState, torch.Generator or None
        Seeds the sketches.

    Returns
    -------
    NewtonResult
    """
    n, d = x.shape
    dev, dt = x.device, x.dtype
    p = d + 1 if fit_intercept else d
    m = int(sketch_size) if sketch_size is not None else 10 * p
    # the exact Hessian when the sketch saves nothing (m >= n) or the problem is tiny
    exact = m >= n or (sketch_size is None and n * p * p <= _EXACT_WORK)
    tol = max(float(tol), 50 * torch.finfo(dt).eps)
    s_less = nnz_per_row if nnz_per_row is not None else min(p, 8)
    gen = make_generator(random_state, "cpu")
    w = torch.zeros(d, device=dev, dtype=dt)
    c = torch.zeros((), device=dev, dtype=dt)
    z = torch.zeros(n, device=dev, dtype=dt)
    pen = torch.ones(p, device=dev, dtype=dt)
    if fit_intercept:
        pen[-1] = 0.0
    ones = torch.ones((n, 1), device=dev, dtype=dt)

    def objective(zz: torch.Tensor, ww: torch.Tensor) -> torch.Tensor:
        return 0.5 * (ww * ww).sum() + C * tnf.softplus(-y * zz).sum()

    f = objective(z, w)
    history: list[dict] = [{"iteration": 0, "objective": float(f)}]
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        sig = torch.sigmoid(-y * z)  # σ(−y z)
        u = -C * y * sig
        gw = w + x.T @ u
        grad = torch.cat([gw, u.sum().reshape(1)]) if fit_intercept else gw
        dvec = C * sig * (1 - sig)
        sq = dvec.sqrt()
        if exact:
            mtx = x * sq.unsqueeze(1)
            if fit_intercept:
                mtx = torch.cat([mtx, sq.unsqueeze(1)], dim=1)
        else:
            extra = {"nnz_per_row": s_less} if sketch == "less" else {}
            s = make_sketch(sketch, m, n, random_state=seed_from_random_state(gen), device=dev,
                            dtype=dt, **extra)
            mtx = s.apply_left_weighted(x, sq)
            if fit_intercept:
                mtx = torch.cat([mtx, s.apply_left_weighted(ones, sq)], dim=1)
        hess = mtx.T @ mtx + torch.diag(pen)
        if fit_intercept and float(hess[-1, -1]) <= 0:
            hess[-1, -1] = 1e-12
        chol, info = torch.linalg.cholesky_ex(hess)
        if int(info) == 0:
            step = -torch.cholesky_solve(grad.unsqueeze(1), chol)[:, 0]
        else:
            step = -torch.linalg.lstsq(hess.cpu(), grad.cpu().unsqueeze(1)).solution[:, 0].to(dev)
        dec = float(-(grad @ step))
        history[-1]["decrement"] = dec
        if dec <= tol * float(f) or dec <= 0:
            converged = True
            it -= 1
            break
        dw = step[:d]
        dc = step[d] if fit_intercept else torch.zeros((), device=dev, dtype=dt)
        zd = x @ dw + dc
        t = 1.0
        while True:
            f_new = objective(z + t * zd, w + t * dw)
            if float(f_new) <= float(f) - 0.25 * t * dec or t < 1e-10:
                break
            t *= 0.5
        if float(f_new) > float(f):
            logger.debug("newton sketch: line search failed at iteration %d", it)
            converged = dec <= 1e3 * tol * float(f)
            it -= 1
            break
        w = w + t * dw
        c = c + t * dc
        z = z + t * zd
        f = f_new
        history.append({"iteration": it, "objective": float(f), "step": t})
        if not math.isfinite(float(f)):
            break
    return NewtonResult(w, float(c), float(f), it, converged, min(m, n), history)
