r"""Iterative Hessian sketch (IHS) with a fixed sketch, heavy-ball momentum and an
adaptive sketch size.

For :math:`f(x) = \|\tilde A x - b\|^2 + \alpha\|x\|^2`, IHS replaces the Hessian
:math:`H = \tilde A^\top\tilde A + \alpha I` by its sketch
:math:`H_S = (S\tilde A)^\top S\tilde A + \alpha I` and iterates (Pilanci & Wainwright;
Lacotte & Pilanci's optimal fixed-sketch variant)

.. math::  x_{t+1} = x_t + \mu\, H_S^{-1} g_t + \beta (x_t - x_{t-1}),
           \qquad g_t = \tilde A^\top (b - \tilde A x_t) - \alpha x_t .

For a Gaussian sketch the spectrum of :math:`H_S^{-1}H` fills
:math:`[(1+\sqrt\rho)^{-2}, (1-\sqrt\rho)^{-2}]`, ``ρ = d_α/m``, and the optimal
heavy-ball parameters are :math:`\mu = (1-\rho)^2`, :math:`\beta = \rho`, giving the
rate :math:`\sqrt\rho` per iteration. Each iteration is one fused pass over ``A``
(``r = b − Ãx`` and ``Ãᵀr`` on cache-sized blocks) — the method of choice when passes
are expensive (Dask, out of core).

Adaptivity (Lacotte & Pilanci, "adaptive IHS"): the sketch size starts from the
effective dimension and is doubled (stacking a fresh independent sketch,
:math:`[S; S']/\sqrt2`) when the observed contraction is much worse than ``√ρ``; a rise
of the objective restarts from the best iterate without momentum.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import torch

from convexnn.sketching._precond import SketchPreconditioner, build_preconditioner
from convexnn.sketching._preconditioned import (
    IterationResult,
    excess_threshold,
    lower_spectrum_bound,
)

__all__ = ["ihs_lstsq"]

logger = logging.getLogger(__name__)


def ihs_lstsq(
    op: Any,
    b: torch.Tensor | None,
    sa: torch.Tensor,
    x0: torch.Tensor,
    *,
    alpha: float = 0.0,
    tol: float = 1e-10,
    max_iter: int = 100,
    grow_sketch: Callable[[int], torch.Tensor] | None = None,
    max_sketch_size: int | None = None,
    rho_factor: float = 1.0,
) -> tuple[IterationResult, SketchPreconditioner]:
    """Run IHS from ``x0`` with the sketch ``sa = S Ã`` (``b``, ``x0`` 2-D).

    Parameters
    ----------
    op : Operand or DaskOperand
        Anything with ``shape`` and ``gradient_pass(x, b) -> (Ãᵀr, ‖r‖²)``.
    b : torch.Tensor of shape (n, k), or None when ``op`` holds it (Dask)
    sa : torch.Tensor of shape (m, d)
    x0 : torch.Tensor of shape (d, k)
    alpha, tol, max_iter : see :func:`convexnn.sketching.lstsq`
    grow_sketch : callable, optional
        ``grow_sketch(m_new) -> S' Ã`` with a fresh independent sketch of ``m_new`` rows;
        when given, the sketch is doubled while convergence is slow.
    max_sketch_size : int, optional
        Upper bound for the adaptive growth (default ``n``).
    rho_factor : float
        Inflation of ``ρ = d_α/m`` for non-Gaussian sketches (safer step sizes).

    Returns
    -------
    (IterationResult, SketchPreconditioner)
    """
    n = op.shape[0]
    max_m = n if max_sketch_size is None else max_sketch_size
    pre = build_preconditioner(sa, alpha)
    bnorm2 = op.rhs_norm2() if b is None else (b * b).sum(0)

    def params(p: SketchPreconditioner) -> tuple[float, float, float]:
        rho = min(0.95, rho_factor * max(p.effective_dimension(), 1.0) / p.m)
        return rho, (1.0 - rho) ** 2, rho

    rho, mu, beta = params(pre)
    x = x0.clone()
    x_prev = x.clone()
    best_x, best_f = x.clone(), None
    history: list[dict] = []
    prev_crit = None
    slow = 0
    for it in range(max_iter + 1):
        at_r, rr = op.gradient_pass(x, b)
        g = at_r - alpha * x
        f = rr + alpha * (x * x).sum(0)
        hg = pre.solve(g)
        crit = (g * hg).sum(0)  # ‖Pᵀg‖², the preconditioned gradient norm
        est = crit / lower_spectrum_bound(rho)
        history.append({"iteration": it, "objective": f.sum().item(),
                        "excess_bound": est.max().item(), "sketch_size": pre.m})
        if bool((est <= excess_threshold(f, bnorm2, tol, x.dtype)).all()):
            return IterationResult(x, it, True, history), pre
        if it == max_iter:
            break
        fsum = float(f.sum())
        if best_f is None or fsum <= best_f:
            best_f, best_x = fsum, x.clone()
        elif fsum > best_f * (1 + 1e-12) + 1e-300:
            # divergence guard: restart from the best point without momentum, safer step
            logger.debug("ihs: objective rose at iteration %d; restarting", it)
            x = best_x.clone()
            x_prev = x.clone()
            rho = min(0.95, rho + 0.5 * (1 - rho))
            mu, beta = (1.0 - rho) ** 2, rho
            prev_crit = None
            continue
        # adaptive sketch size: contraction per step should be about sqrt(rho)
        if prev_crit is not None and grow_sketch is not None and pre.m * 2 <= max_m:
            ratio = math.sqrt(float((crit.max() / prev_crit.max()).clamp_min(0)))
            slow = slow + 1 if ratio > max(0.7, 2.0 * math.sqrt(rho)) else 0
            if slow >= 3:
                extra = grow_sketch(pre.m)
                sa = torch.cat([sa, extra], dim=0) / math.sqrt(2.0)
                pre = build_preconditioner(sa, alpha)
                rho, mu, beta = params(pre)
                logger.debug("ihs: sketch size doubled to %d", pre.m)
                slow = 0
                x_prev = x.clone()
                prev_crit = None
                continue
        prev_crit = crit
        x_new = x + mu * hg + beta * (x - x_prev)
        x_prev, x = x, x_new
    return IterationResult(x, max_iter, False, history), pre
