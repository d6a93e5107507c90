r"""Accelerated proximal gradient (FISTA) with adaptive restarts and backtracking.

Minimizes :math:`F(W, b) = f(\mathcal M W, b) + R(W)` where ``f`` is smooth, ``M`` is
linear (its image ``Z = M W`` is tracked so that each iteration costs one forward and
one adjoint product: the extrapolated image is a linear combination of known images),
and ``R`` has a cheap prox. ``b`` is an unregularized block (output bias).

Restart (O'Donoghue & Candès): momentum is reset when the step opposes the momentum
direction, or when the objective increases. The step ``1/L`` is found by backtracking
and allowed to grow again by a factor each iteration.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

__all__ = ["SmoothPart", "SolverResult", "apg"]


class SmoothPart(Protocol):
    def image(self, W: torch.Tensor) -> torch.Tensor: ...

    def value(self, Z: torch.Tensor, b: torch.Tensor) -> torch.Tensor: ...

    def grad(self, Z: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass
class SolverResult:
    W: torch.Tensor
    b: torch.Tensor
    n_iter: int
    converged: bool
    interrupted: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum()


def apg(
    smooth: SmoothPart,
    prox: Callable[[torch.Tensor, float], torch.Tensor],
    W0: torch.Tensor,
    b0: torch.Tensor,
    *,
    fit_bias: bool,
    max_iter: int,
    L0: float,
    stop: Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], bool] | None = None,
    check_every: int = 10,
    step_tol: float = 0.0,
    gm_tol: float = 0.0,
    gm_rtol: float = 0.0,
    regularizer: Callable[[torch.Tensor], torch.Tensor] | None = None,
    prox_value: Callable[[torch.Tensor, float], tuple[torch.Tensor, torch.Tensor]]
    | None = None,
) -> SolverResult:
    """Run FISTA from ``(W0, b0)``.

    ``stop(k, W, b, Z)`` is called every ``check_every`` iterations and ends the run when
    it returns True (e.g. a duality-gap test). ``step_tol`` ends the run when the relative
    change of ``W`` falls below it (a fallback when no ``stop`` is given).
    ``prox_value(V, step)``, when given, replaces ``prox`` and ``regularizer`` in the loop:
    it returns the prox and the regularizer's value there in one call.
    A ``KeyboardInterrupt`` ends the run and returns the last iterate.
    """
    x, bx = W0.clone(), b0.clone()
    Zx = smooth.image(x)
    y, by, Zy = x.clone(), bx.clone(), Zx.clone()
    t = 1.0
    L = max(float(L0), 1e-12)
    fx_prev = math.inf
    converged = False
    interrupted = False
    k = 0
    t0 = time.perf_counter()
    history: list[dict[str, Any]] = []
    gm0 = gm = math.inf
    # the sufficient-decrease test's slack: f_new and its quadratic model carry round-off
    # of ~eps·|f| each. With 1e-12 in float32 the test failed on round-off alone, L grew to
    # 1e30 and FISTA stalled at its start (iris, gated, 3 classes: objective 12 % above
    # float64's after 10,000 iterations)
    slack = max(1e-12, 16 * torch.finfo(W0.dtype).eps)
    try:
        for k in range(1, max_iter + 1):
            fy = smooth.value(Zy, by)
            gW, gb = smooth.grad(Zy, by)
            while True:
                if prox_value is not None:
                    x_new, r_new = prox_value(y - gW / L, 1.0 / L)
                else:
                    x_new, r_new = prox(y - gW / L, 1.0 / L), None
                b_new = by - gb / L if fit_bias else by
                Z_new = smooth.image(x_new)
                f_new = smooth.value(Z_new, b_new)
                dW = x_new - y
                db = b_new - by
                quad = fy + _dot(gW, dW) + _dot(gb, db) + 0.5 * L * (_dot(dW, dW) + _dot(db, db))
                if bool(f_new <= quad + slack * abs(float(fy))) or L > 1e30:
                    break
                L *= 2.0
            gm = L * math.sqrt(float(_dot(x_new - y, x_new - y) + _dot(b_new - by, b_new - by)))
            if k == 1:
                gm0 = gm
            # adaptive restart on the gradient-mapping direction or objective increase
            if r_new is None and regularizer is not None:
                r_new = regularizer(x_new)
            F_new = float(f_new) + (float(r_new) if r_new is not None else 0.0)
            restart = bool(_dot(y - x_new, x_new - x) + _dot(by - b_new, b_new - bx) > 0)
            if F_new > fx_prev + slack * abs(fx_prev):  # (an increase beyond round-off)
                restart = True
            fx_prev = F_new
            if restart:
                t = 1.0
            t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
            beta = (t - 1.0) / t_new
            rel = float(torch.linalg.vector_norm(x_new - x)) / max(
                float(torch.linalg.vector_norm(x_new)), 1e-300
            )
            y = x_new + beta * (x_new - x)
            by = b_new + beta * (b_new - bx)
            Zy = Z_new + beta * (Z_new - Zx)
            x, bx, Zx = x_new, b_new, Z_new
            t = t_new
            L *= 0.9
            if k % 50 == 0:  # refresh the tracked image against round-off drift
                Zy = smooth.image(y)
            if stop is not None and k % check_every == 0:
                if stop(k, x, bx, Zx):
                    converged = True
                    break
            if step_tol > 0 and rel < step_tol and k > 1:
                converged = True
                break
            if (gm_tol > 0 and gm <= gm_tol) or (gm_rtol > 0 and gm <= gm_rtol * gm0):
                converged = True
                break
            if k % check_every == 0:
                history.append({"iteration": k, "time": time.perf_counter() - t0, "F": F_new})
    except KeyboardInterrupt:
        interrupted = True
    return SolverResult(x, bx, k, converged, interrupted, history,
                        {"L": L, "gm0": gm0, "gm": gm})
