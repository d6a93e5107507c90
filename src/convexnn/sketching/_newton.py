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

__all__ = ["NewtonResult", "default_sketch_size", "logistic_objective", "newton_sketch_logistic"]

logger = logging.getLogger(__name__)

_EXACT_WORK = 1e6  # n (d+1)^2 below which the default uses the exact Hessian
_BLOCK_BYTES = 1 << 21  # bytes of X per block of the fused CPU pass (cache-resident)


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


def default_sketch_size(n: int, d: int, p: int, nnz: int) -> int:
    r"""Sketch rows that minimize the modelled time to a fixed accuracy.

    One iteration reads the data once (``n d`` words, memory-bound) and forms the sketched
    Hessian (a gather of ``m s`` rows: ``m s d`` words; a product of ``2 m p²`` flops,
    counted as ``m p² / 20`` words at ~5 flops per byte). The Newton sketch's decrement
    contracts by about ``p/m`` per iteration, so the iterations to a given accuracy scale
    as ``1 / log(m/p)``. The default minimizes

    .. math:: \frac{n d + m (s d + p^2/20)}{\log(m/p)}, \qquad m \in [8p, 40p],

    which gives ``m ≈ 10 p`` when one pass is cheap next to the sketch and up to
    ``20–30 p`` on long data (``n = 10⁶, d = 500``: ``≈ 25 p``).
    """
    best_m, best = 8 * p, math.inf
    for k in (8, 10, 12, 15, 20, 25, 30, 40):
        m = k * p
        cost = (n * d + m * (nnz * d + p * p / 20)) / math.log(k)
        if cost < best:
            best_m, best = m, cost
    return int(best_m)


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
        Rows ``m`` of the sketch; default for LESS :func:`default_sketch_size` (between
        ``8 (d+1)`` and ``40 (d+1)``, larger when ``n`` is large), else ``10 (d+1)``.
        ``m >= n`` uses the exact Hessian, and so does the default on tiny problems
        (``n (d + 1)² <= 10⁶``).
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
    s_less = nnz_per_row if nnz_per_row is not None else min(p, 8)
    if sketch_size is not None:
        m = int(sketch_size)
    else:  # the cost model is for LESS (its sketch touches m·s rows); else 10 p
        m = default_sketch_size(n, d, p, s_less) if sketch == "less" else 10 * p
    # the exact Hessian when the sketch saves nothing (m >= n) or the problem is tiny
    exact = m >= n or (sketch_size is None and n * p * p <= _EXACT_WORK)
    tol = max(float(tol), 50 * torch.finfo(dt).eps)
    gen = make_generator(random_state, "cpu")
    w = torch.zeros(d, device=dev, dtype=dt)
    c = torch.zeros((), device=dev, dtype=dt)
    pen = torch.ones(p, device=dev, dtype=dt)
    if fit_intercept:
        pen[-1] = 0.0
    ones = torch.ones((n, 1), device=dev, dtype=dt)
    # CPU: one cache-blocked pass computes z = Xw + c and Xᵀu together (the data is read
    # from memory once per iteration, not twice); GPU: one block, two large products
    block = n if dev.type != "cpu" else max(64, _BLOCK_BYTES // max(1, d * x.element_size()))

    def pass_at(ww: torch.Tensor, cc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z = X w + c`` and ``Xᵀ u`` with ``u = −C y σ(−y z)``, in one pass over X."""
        zz = torch.empty(n, device=dev, dtype=dt)
        g = torch.zeros(d, device=dev, dtype=dt)
        for i in range(0, n, block):
            xb, yb = x[i : i + block], y[i : i + block]
            zb = torch.addmv(cc.expand(xb.shape[0]), xb, ww)
            zz[i : i + block] = zb
            g.addmv_(xb.T, -C * yb * torch.sigmoid(-yb * zb))
        return zz, g

    def objective(zz: torch.Tensor, ww: torch.Tensor) -> torch.Tensor:
        return 0.5 * (ww * ww).sum() + C * tnf.softplus(-y * zz).sum()

    z, xtu = pass_at(w, c)
    f = objective(z, w)
    history: list[dict] = [{"iteration": 0, "objective": float(f)}]
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        sig = torch.sigmoid(-y * z)  # σ(−y z)
        gw = w + xtu
        grad = torch.cat([gw, (-C * y * sig).sum().reshape(1)]) if fit_intercept else gw
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
        # the full step with its gradient in one pass; z is affine in the step, so
        # shorter steps of the line search need no pass over X
        z1, xtu1 = pass_at(w + dw, c + dc)
        zd = z1 - z
        t = 1.0
        f_new = objective(z1, w + dw)
        while float(f_new) > float(f) - 0.25 * t * dec and t >= 1e-10:
            t *= 0.5
            f_new = objective(z + t * zd, w + t * dw)
        if float(f_new) > float(f):
            logger.debug("newton sketch: line search failed at iteration %d", it)
            converged = dec <= 1e3 * tol * float(f)
            it -= 1
            break
        w = w + t * dw
        c = c + t * dc
        if t == 1.0:
            z, xtu = z1, xtu1
        else:  # a shortened step: its gradient needs one more pass
            z, xtu = pass_at(w, c)
        f = f_new
        history.append({"iteration": it, "objective": float(f), "step": t})
        if not math.isfinite(float(f)):
            break
    return NewtonResult(w, float(c), float(f), it, converged, min(m, n), history)
