r"""Multiclass ReLU networks by the directional convex program and column generation.

The ReLU program with vector outputs is copositive (SPEC §5); what is solved here is its
restriction to a set of (pattern, output direction) pairs :math:`(D_j, t_j)`,

.. math::

    \min_{W, b}\; L\Bigl(\sum_j (D_j X w_j)\, t_j^\top + \mathbf 1 b^\top\Bigr)
    + \lambda\sum_j \|w_j\|_2 \quad\text{s.t.}\quad (2D_j - I) X w_j \ge 0,

a convex program (:class:`convexnn.operators.DirectionalOperator`) that contains every
network whose neurons have those patterns and output directions
(:func:`convexnn.reformulation.network_to_directional`), so its optimum is never above
such a network's objective. Starting from a trained network's own pairs, rounds of

1. the dense interior point (:func:`convexnn.solvers._dense_interior.dense_interior`),
2. column generation: neurons :math:`(u, t)` with
   :math:`\|V^\top (Xu)_+\| > \lambda` at the solution's dual point
   (:func:`convexnn.growth.find_violating_pairs`) add their pairs,

run until no violator is found, a round gains less than ``grow_tol``, or a Newton
step would cost more than ``max_flops``. Where the pairs are few (iris, wine) this replaces
the L-BFGS-refined network, which stalls at ReLU kinks, by a solution of a convex program
with a certified restricted gap; the certificate of the whole (sampled-pattern) vector
program is then computed by the caller.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from convexnn.growth import find_violating_pairs
from convexnn.losses import Loss
from convexnn.operators import DirectionalOperator
from convexnn.penalties import GroupL2
from convexnn.reformulation import Network, directional_to_network, network_to_directional
from convexnn.solvers._dense_interior import dense_interior, dense_newton_flops
from convexnn.solvers._problem import ConvexProblem

__all__ = ["DirectionalFit", "fit_directional"]

log = logging.getLogger(__name__)

#: most flops of one dense Newton step of a directional solve (a round takes 25–55 steps,
#: so a round stays within ~10 s on 2 cores): iris (64–73 pairs, d̃ = 5) needs 6e7, wine
#: (64–67 pairs, d̃ = 14) 4.5e8, KEEL vehicle (4 outputs, 64 pairs, d̃ = 19) 2.4e9; KEEL
#: vowel (11 outputs, d̃ = 14: 2.9e9) and digits (10 outputs, d̃ = 65: ~8e11 for its 100
#: seed neurons) keep the refined seed. With 8e9, vowel took 30.6 s instead of 4.5 s for
#: an objective 0.32 % lower (benchmarks/results/s14_multiclass_directional.log)
MAX_NEWTON_FLOPS = 2.5e9


#: a pair violates the dual constraint when its value exceeds λ (1 + _MARGIN)
_MARGIN = 1e-6


@dataclass
class DirectionalFit:
    """A network from the directional program and the pairs it was solved over."""

    network: Network
    objective: float  # the program's value at (W, b) = the network's SPEC §1 objective
    W: torch.Tensor  # (1, m, d̃)
    b: torch.Tensor  # (c,)
    gates: torch.Tensor  # (m, d̃): a strictly interior direction of each pair's cone
    masks: torch.Tensor  # (n, m) bool
    directions: torch.Tensor  # (m, c)
    n_iter: int
    rounds: int
    converged: bool  # the last restricted solve reached its tolerance
    history: list[dict[str, Any]] = field(default_factory=list)


def _strict(X: torch.Tensor, masks: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """Pairs whose gate is strictly inside the cone of their pattern."""
    S = 2 * masks.to(X.dtype) - 1
    return ((S * (X @ gates.T)) > 0).all(dim=0)


def fit_directional(
    net: Network,
    X_aug: torch.Tensor,
    Y: torch.Tensor,
    loss: Loss,
    lam: float,
    *,
    fit_intercept: bool,
    generator: torch.Generator,
    tol: float = 1e-9,
    max_rounds: int = 10,
    grow_tol: float = 1e-4,
    max_flops: float = MAX_NEWTON_FLOPS,
    callback: Callable[[dict[str, Any]], Any] | None = None,
) -> DirectionalFit | None:
    r"""Solve the directional program from ``net``'s pairs, growing them (see module doc).

    Returns None when even the first program's Newton step exceeds ``max_flops``
    (the caller keeps ``net``). ``callback`` receives ``{"phase": "directional",
    "round", "primal", "n_pairs", "added", "n_iter", "max_violation_ratio", "time"}``
    after every round; ``max_violation_ratio`` is the largest
    :math:`\|V^\top(Xu)_+\|/\lambda` the ascent found at the round's solution (≤ 1 at a
    stationary point of the vector-output program; evidence, not a bound).
    """
    t0 = time.perf_counter()
    dv = network_to_directional(net, X_aug, fit_intercept=fit_intercept)
    ok = _strict(X_aug, dv.masks, dv.gates)
    if not bool(ok.all()):
        log.debug("directional: %d neurons on a cone boundary left out", int((~ok).sum()))
    W, b = dv.W[:, ok], dv.b
    masks, T, gates = dv.masks[:, ok], dv.directions[ok], dv.gates[ok]
    history: list[dict[str, Any]] = []
    res = problem = None
    total, rounds, added = 0, 0, 0
    prev = math.inf
    while True:
        op = DirectionalOperator(X_aug, masks, T)
        cand = ConvexProblem(op, Y, loss, GroupL2(lam), fit_bias=fit_intercept,
                             constrained=True, gates=gates)
        if dense_newton_flops(cand) > max_flops:
            log.info("directional: %d pairs exceed the Newton budget; stopping", op.p)
            break
        problem = cand
        res = dense_interior(problem, W, b, tol=tol)
        W, b = res.W, res.b
        total += res.n_iter
        F = problem.objective(W, b)
        # the best neurons the ascent finds at this point: violators to add, and (their
        # largest value over λ) how far the point is from stationary for every pair
        Z = op.matvec(W) + b
        V = loss.grad(Z, Y)
        if fit_intercept:
            V = loss.center(V, Y)
        g, t, vals = find_violating_pairs(X_aug, V, 0.0, generator=generator,
                                          extra_starts=gates)
        ratio = float(vals[0]) / lam if vals.numel() else 0.0
        rec = {"phase": "directional", "round": rounds, "primal": F, "n_pairs": op.p,
               "added": added, "n_iter": res.n_iter, "max_violation_ratio": ratio,
               "time": time.perf_counter() - t0}
        history.append(rec)
        if callback is not None:
            callback(rec)
        log.info("directional round %d: %d pairs, objective %.10g (%d Newton steps), "
                 "largest dual value found %.6f λ", rounds, op.p, F, res.n_iter, ratio)
        violating = vals > lam * (1 + _MARGIN)
        g, t = g[violating], t[violating]
        added = int(g.shape[0])
        if not added or rounds >= max_rounds or prev - F <= grow_tol * abs(F):
            break
        prev = F
        masks = torch.cat([masks, (X_aug @ g.T) >= 0], dim=1)
        T = torch.cat([T, t])
        gates = torch.cat([gates, g])
        W = torch.cat([W, W.new_zeros(1, added, W.shape[2])], dim=1)
        rounds += 1
    if res is None or problem is None:
        return None
    m = problem.op.p
    W, b = res.W, res.b
    # the interior point leaves inactive pairs at the barrier's scale: drop them when
    # that does not raise the objective
    norms = torch.linalg.vector_norm(W[0], dim=1)
    F = problem.objective(W, b)
    if norms.numel() and bool((norms > 0).any()):
        W_p = torch.where((norms <= 1e-6 * float(norms.max()))[None, :, None],
                          torch.zeros_like(W), W)
        if problem.objective(W_p, b) <= F:
            W, F = W_p, problem.objective(W_p, b)
    network = directional_to_network(W, b, problem.op.T, fit_intercept=fit_intercept)
    masks = problem.op.D[:, :m] > 0
    return DirectionalFit(network, F, W, b, gates[:m], masks, problem.op.T, total, rounds,
                          res.converged, history)
