r"""Fitting a two-layer network through its convex program, end to end.

``fit_convex_network`` is what every estimator calls. It

1. builds the activation patterns (sampled, exact, or user gates) of ``[X, 1]``;
2. solves the convex program (ReLU: cone-constrained; gated: group lasso) with working
   sets, using an interior-point method on small restricted programs and FISTA /
   augmented Lagrangian on large ones;
3. grows the pattern set by column generation until no neuron violating the dual
   constraint is found (unless the patterns are exact);
4. recovers the network (:mod:`convexnn.reformulation`) and certifies it
   (:mod:`convexnn.certificates`).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch

from convexnn.certificates import (
    _SPHERE_MAX_OUTPUTS,
    Certificate,
    dual_bound,
    make_certificate,
)
from convexnn.directional import fit_directional
from convexnn.exceptions import ConvergenceWarning
from convexnn.growth import find_violating_gates
from convexnn.losses import Loss
from convexnn.nonconvex import polish_network, train_network, train_networks
from convexnn.objective import network_forward
from convexnn.operators import PatternOperator
from convexnn.patterns import (
    PatternSet,
    enumerate_patterns,
    patterns_from_gates,
    sample_patterns,
)
from convexnn.patterns._pattern_set import _column_hash
from convexnn.penalties import GroupL2, penalty_for
from convexnn.reformulation import Network, convex_to_network, network_to_convex
from convexnn.solvers import (
    ConvexProblem,
    SolverResult,
    augmented_lagrangian,
    fista,
)
from convexnn.solvers._primal_dual import _refit_bias, newton_cost, primal_dual
from convexnn.solvers._soc_interior import soc_primal_dual
from convexnn.solvers._working_set import working_set_solve
from convexnn.utils import to_tensor

__all__ = ["FitResult", "auto_seed_width", "build_patterns", "fit_convex_network",
           "network_outputs"]

log = logging.getLogger(__name__)

#: restricted programs whose Newton step costs at most this many flops use the
#: primal-dual interior-point method (:func:`convexnn.solvers._primal_dual.newton_cost`).
#: Every working-set round re-runs ~50–100 Newton steps, so a budget that takes a whole
#: seeded program at once pays: breast cancer (squared, λ = 1e-3, 584 blocks) ran three
#: rounds of 370–401 blocks (222 steps, 67 s) under 6e9 and one round of 584 (87 steps,
#: 40 s) under 8e9 (2-core CPU, session 8)
IPM_MAX_FLOPS = 8e9
#: a ReLU program within that budget is solved over all its blocks at once when its
#: active blocks and violators at the start are at least this fraction of them (else its
#: working set grows from them). A round costs about (its blocks) × (~50–140 Newton steps)
#: and growing took 2–3 rounds on diabetes and breast cancer, so all blocks at once are
#: cheaper once the starting set holds more than about a third of them
_ALL_BLOCKS_FRACTION = 0.35
#: the same for gated programs: without cones the method (``soc_primal_dual``) takes
#: ~10–25 steps from a cold start (ReLU: ~100), so a costlier step still beats
#: first-order methods to a 1e-6 gap (barrier method, n = 10⁴, 400 gates, d = 11: 41 s
#: certified to 1e-8, against 278 s and a 3 % gap with the ReLU budget, where the
#: working set hit its cap and FISTA took over)
IPM_MAX_FLOPS_GATED = 3e10


def _ipm_budget(gated: bool) -> float:
    return IPM_MAX_FLOPS_GATED if gated else IPM_MAX_FLOPS

#: the certificate tries its dual candidates in turn and stops once the relative gap
#: is at most this (each candidate costs up to 200 cone-bound iterations: on diabetes,
#: 1,526 blocks, 0.8 s each)
_CERT_ENOUGH = 1e-10

#: L-BFGS iterations that refine the best seeding network when it is returned without a
#: convex solve (ReLU with several outputs; digits: 300 iterations 1.2 s, objective −0.62 %,
#: benchmarks/results/s10_scripts/digits_lbfgs_polish.py.txt)
_POLISH_LBFGS_ITERS = 300

#: growth stops when a round lowers the objective by less than this (relative)
_GROW_TOL = 1e-3
#: random starts of the pricing (and as many data points): _PRICING_STARTS_MIN; with
#: ``grow="thorough"`` (the monotone ascent, ReLU) _PRICING_STARTS_MAX while one
#: evaluation of all starts, ``n d`` multiply-adds each, stays within _PRICING_MACS,
#: fewer (down to _PRICING_STARTS_MIN) on large data. On the KEEL profile
#: pool (141 problems, n = 120) the ascent from 1,024 starts left 5 fits more than 1e-3
#: above the best of three pricings, from 256 starts 29, the fixed point 50; median fit
#: time 2.29 / 2.13 / 1.35 s (benchmarks/results/s21_pricing_ab.log)
_PRICING_STARTS_MAX = 1024
_PRICING_STARTS_MIN = 256
_PRICING_MACS = 5e7

#: relative gap to which growth rounds solved by first-order methods are taken (the last
#: solve then goes to ``tol``): an order below _GROW_TOL, so a round's gain is measured
_GROW_ROUND_TOL = 1e-4


def _pricing_starts(n: int, d: int) -> int:
    return int(min(_PRICING_STARTS_MAX,
                   max(_PRICING_STARTS_MIN, _PRICING_MACS // max(1, n * d))))


@dataclass
class FitResult:
    network: Network
    W: torch.Tensor
    b: torch.Tensor
    patterns: PatternSet
    certificate: Certificate
    objective: float
    n_iter: int
    converged: bool
    interrupted: bool
    history: list[dict[str, Any]] = field(default_factory=list)


def build_patterns(
    X_aug: torch.Tensor,
    patterns: Any,
    *,
    fit_intercept: bool,
    generator: torch.Generator,
    max_patterns: int,
) -> PatternSet:
    """Patterns of ``X_aug`` from the estimator's ``patterns`` parameter (validated)."""
    if isinstance(patterns, str):  # "exact"
        return enumerate_patterns(X_aug, max_patterns=max_patterns)
    if isinstance(patterns, int):
        return sample_patterns(X_aug, patterns, generator=generator)
    G = to_tensor(patterns, dtype=X_aug.dtype, device=X_aug.device)
    if fit_intercept and G.shape[1] == X_aug.shape[1] - 1:
        G = torch.cat([G, torch.zeros(G.shape[0], 1, dtype=G.dtype, device=G.device)], 1)
    return patterns_from_gates(X_aug, G, source="user")


def _problem(
    X_aug: torch.Tensor, ps: PatternSet, Y: torch.Tensor, loss: Loss, lam: float,
    *, relu: bool, fit_bias: bool,
) -> ConvexProblem:
    p = ps.n_patterns
    if relu:
        masks = torch.cat([ps.masks, ps.masks], dim=1)
        one = torch.ones(p, dtype=X_aug.dtype, device=X_aug.device)
        signs = torch.cat([one, -one])
        gates = torch.cat([ps.gates, ps.gates])
    else:
        masks, signs, gates = ps.masks, None, ps.gates
    op = PatternOperator(X_aug, masks, signs, n_outputs=Y.shape[1])
    # gated with several outputs: the exact vector-output program (nuclear norm); ReLU
    # keeps the separable program (its vector-output program is copositive, SPEC §5)
    penalty = penalty_for(lam, n_outputs=Y.shape[1], vector_outputs=not relu)
    return ConvexProblem(op, Y, loss, penalty, fit_bias=fit_bias, constrained=relu,
                         gates=gates)


def _inner(sub: ConvexProblem, W0: torch.Tensor, b0: torch.Tensor, mu0: torch.Tensor | None,
           *, tol: float, max_iter: int,
           step_callback: Callable[[dict], Any] | None = None,
           polish_if: Callable[..., bool] | None = None,
           gap0: float | None = None,
           start: tuple[torch.Tensor, torch.Tensor, torch.Tensor, float] | None = None,
           ) -> SolverResult:
    n, d = sub.op.X.shape
    cost, _ = newton_cost(n, sub.op.c, sub.op.p, d, gated=not sub.constrained)
    if isinstance(sub.penalty, GroupL2) and cost <= _ipm_budget(not sub.constrained) and (
            sub.gates is not None or not sub.constrained):
        if not sub.constrained:
            res = soc_primal_dual(sub, W0, b0, tol=min(tol, 1e-7), max_iter=100,
                                  step_callback=step_callback)
            if res.converged or res.interrupted or res.extra["certified_gap"] <= tol:
                return res  # 1e-7 asked for margin; what the caller needs is tol
            # stalled above tol (round-off near the cones' boundary, typically past 1e-8, or
            # a degenerate program): the barrier method, which centres more, from the start
            log.debug("soc interior point stalled after %d steps; barrier method", res.n_iter)
            try:
                alt = primal_dual(sub, W0, b0, None, tol=min(tol, 1e-7),
                                  max_iter=max(200, max_iter), step_callback=step_callback)
            except (ValueError, RuntimeError):
                return res
            return _better_of(sub, res, alt)
        try:
            res = primal_dual(sub, W0, b0, mu0, tol=min(tol, 1e-7), max_iter=max(200, max_iter),
                              step_callback=step_callback, polish_if=polish_if, gap0=gap0,
                              start=start)
            if start is None or res.converged or res.interrupted:
                return res
            # a restart from a path point that did not converge (a 2-D fit, grow="thorough":
            # the new blocks' first step was cut to 0.001 and the line search then failed,
            # ending the fit at a 1.2 % gap): solve again as without it, keep the better
            log.debug("interior point from a path point stopped after %d steps; cold restart",
                      res.n_iter)
            return _better_of(sub, res, primal_dual(
                sub, W0, b0, mu0, tol=min(tol, 1e-7), max_iter=max(200, max_iter),
                step_callback=step_callback, polish_if=polish_if, gap0=gap0))
        except ValueError:  # a gate not strictly inside its cone: use the first-order path
            pass
    if sub.constrained:
        if mu0 is None or not bool((W0 != 0).any()):
            try:
                W0 = _feasible_start(sub, W0, b0, tol=tol, max_iter=max_iter // 2)
            except KeyboardInterrupt:  # the start as given (the caller's feasible point)
                return SolverResult(W0, b0, 0, False, True)
        return augmented_lagrangian(sub, W0, b0, mu0, tol=tol, max_iter=max_iter)
    return fista(sub, W0, b0, tol=tol, max_iter=max_iter, progress=step_callback)


def _better_of(sub: ConvexProblem, res: SolverResult, alt: SolverResult) -> SolverResult:
    """A second solve ``alt`` after an unconverged ``res``: ``alt`` if it converged or
    ends no higher, else ``res``; its step count includes the first solve's."""
    alt.n_iter += res.n_iter
    better = sub.objective(alt.W, alt.b) <= sub.objective(res.W, res.b)
    return alt if alt.converged or better else res


def _feasible_start(sub: ConvexProblem, W0: torch.Tensor, b0: torch.Tensor, *, tol: float,
                    max_iter: int) -> torch.Tensor:
    """A feasible ReLU point from the gated program: solve it, then split each block
    ``w = u − v`` with ``u = w + α g``, ``v = α g`` (``g`` the block's strictly interior
    gate, α the smallest value making both feasible)."""
    op = sub.op
    p = op.p // 2
    if sub.gates is None:
        return W0
    gated = ConvexProblem(
        PatternOperator(op.X, op.D[:, :p] > 0, None, op.c), sub.Y, sub.loss, sub.penalty,
        sub.fit_bias, False, sub.gates[:p],
    )
    res = fista(gated, None, b0, tol=tol, max_iter=max(50, max_iter))
    if res.interrupted:  # Ctrl-C caught by FISTA: pass it on to the caller
        raise KeyboardInterrupt
    w = res.W  # (c, p, d)
    g = sub.gates[:p]
    S = 2 * op.D[:, :p] - 1  # (n, p)
    r_w = S[:, None, :] * (op.X @ w.reshape(-1, w.shape[-1]).T).reshape(-1, op.c, p)
    r_g = (S * (op.X @ g.T))[:, None, :]  # (n, 1, p)
    ok = r_g > 0
    alpha = torch.where(ok, torch.clamp(-r_w / r_g.clamp_min(1e-300), min=0),
                        torch.zeros_like(r_w)).amax(dim=0)  # (c, p)
    v = alpha[:, :, None] * g[None]
    W = torch.cat([w + v, v], dim=1)
    bad = ~ok.all(dim=0).expand(op.c, p)  # gates not strictly inside: drop those blocks
    W[:, :p][bad] = 0
    W[:, p:][bad] = 0
    return W


def _max_ipm_blocks(n: int, c: int, d: int, budget: float | None = None, *,
                    gated: bool = False) -> int:
    """Largest number of blocks per output whose Newton step fits ``budget`` flops
    (default: ``IPM_MAX_FLOPS``, or ``IPM_MAX_FLOPS_GATED`` for gated programs)."""
    budget = _ipm_budget(gated) if budget is None else budget
    lo, hi = 0, 1
    while newton_cost(n, c, hi, d, gated=gated)[0] <= budget and hi < 10**7:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if newton_cost(n, c, mid, d, gated=gated)[0] <= budget:
            lo = mid
        else:
            hi = mid
    return lo


#: seeding width of ReLU networks with several outputs, whose fit returns the refined best
#: seeding network: ``n c / _MULTI_RELU_ROWS_PER_NEURON`` neurons, at least ``lo`` and at
#: most _MULTI_RELU_WIDTH. Wider seeds paid on large data only: letter (n c = 104,000,
#: λ = 1e-4) held-out accuracy 90.67 % at 64, 91.86 % at 128 (Adam at 100: 91.44 %), 1.8×
#: the time; on nine sets with n c ≤ 3,300 (iris … digits, 300 rows at most) 128 gave no
#: better test accuracy in 1.1–1.9× the time (BENCHMARKS.md, target 6)
_MULTI_RELU_WIDTH = 128
_MULTI_RELU_ROWS_PER_NEURON = 64


def auto_seed_width(n: int, c: int, d: int, n_sampled: int, runs: int, *, relu: bool,
                    lo: int = 64, hi: int = 256) -> int:
    """Widest seeding run (in ``[lo, hi]``) whose union of patterns still fits one Newton
    solve: ``runs · width + n_sampled`` patterns (two blocks each for ReLU) within the
    interior-point budget, and at most ``n c / 2`` (an optimal network has at most
    ``n c + 1`` neurons, and wider seeds only add near-duplicate patterns: on KEEL sonar,
    n = 120, d = 61, width 64 instead of 256 took 15 s instead of 56 s for an objective
    0.01 % lower)."""
    if relu and c > 1:  # no Newton solve follows: the refined best seed is returned
        width = min(_MULTI_RELU_WIDTH, n * c // _MULTI_RELU_ROWS_PER_NEURON)
        return int(min(hi, max(1, n * c // 2), max(lo, width)))
    cap = _max_ipm_blocks(n, c, d, _ipm_budget(not relu) / 2, gated=not relu) // (
        2 if relu else 1)
    width = (cap - n_sampled) // max(1, runs)
    return int(min(hi, max(1, n * c // 2), max(lo, width)))


def _grown_blocks(ws: torch.Tensor | None, p_old: int, p_new: int, relu: bool
                  ) -> torch.Tensor | None:
    """A working-set mask over ``p_old`` patterns' blocks, laid out over ``p_new`` patterns
    (ReLU: ``u`` blocks, then ``v`` blocks), with every new pattern's blocks set."""
    if ws is None:
        return None
    out = torch.ones(2 * p_new if relu else p_new, dtype=torch.bool, device=ws.device)
    out[:p_old] = ws[:p_old]
    if relu:
        out[p_new : p_new + p_old] = ws[p_old:]
    return out


def _relayout(W: torch.Tensor, p_old: int, p_new: int, relu: bool) -> torch.Tensor:
    """Pad a solution over ``p_old`` patterns with zero blocks for ``p_new`` patterns."""
    c, _, d = W.shape
    if not relu:
        out = W.new_zeros(c, p_new, d)
        out[:, :p_old] = W
        return out
    out = W.new_zeros(c, 2 * p_new, d)
    out[:, :p_old] = W[:, :p_old]
    out[:, p_new : p_new + p_old] = W[:, p_old:]
    return out


_SEED_BYTES = 1 << 30  # activations of the seeding runs advanced together
#: the seeding runs stop early once none gains more than this (relative) in 250 epochs:
#: on every 7th problem of the KEEL pool, seeding 22.8 s → 18.8 s in all with the same
#: problems solved (benchmarks/results/s8_scripts/stall_probe.py.txt); on diabetes and
#: breast cancer it never triggers. 1e-3 (session 22, the whole pool): fit time 221 → 208 s,
#: 3 objectives 0.16–0.47 % higher, none lower (benchmarks/results/s22_stall_ab.log): 1e-4 kept
_SEED_STALL_TOL: float | None = 1e-4
#: Adam's step in the seeding runs: ``_SEED_LR + (_SEED_LR_START - _SEED_LR) e^{-t/τ}`` at
#: epoch t (τ = _SEED_LR_TAU), a larger step early that decays to the constant one. Over
#: the KEEL profile pool (141 problems, n = 120) the runs reach 1e-3 of the best objective
#: sooner: 14.2 % of the problems by 0.05 s (constant 1e-2: 5.0 %), with as many solved at
#: 0.3 s and more at 1–10 s (benchmarks/results/s21_scripts/lr_ab.py.txt, s21_lr_ab.log)
_SEED_LR = 1e-2
_SEED_LR_START: float | None = 3e-2
_SEED_LR_TAU = 200.0
#: float64 fits run their (Adam) seeding runs in this dtype: they only propose patterns and
#: a warm start, whose objective is then re-evaluated in the fit's dtype. With the fused
#: Adam step, 3 runs × 60 neurons, n = 120: 0.54–0.75× the float64 epoch of session 21
#: (d = 61…6; float64 now 0.77–0.94×; benchmarks/results/s22_epoch_ab.log); over the KEEL
#: profile pool a network within 1e-3 of the best by 0.03 s on 11.3 % of the problems
#: (4.3 % before), final objectives as good on average (s22_seed_ab.log). ``None``: the
#: fit's dtype
_SEED_DTYPE: torch.dtype | None = torch.float32


def _seed_from_nonconvex(
    X: torch.Tensor, X_aug: torch.Tensor, Y: torch.Tensor, loss: Loss, lam: float,
    ps: PatternSet, *, relu: bool, fit_intercept: bool, epochs: int, width: int,
    generator: torch.Generator, runs: int = 1, optimizer: str = "adam",
    progress: Callable[[float], Any] | None = None,
) -> tuple[PatternSet, torch.Tensor, torch.Tensor, float, Network, bool]:
    """Patterns and a feasible warm start from short Adam runs on the same objective.

    Every neuron of a trained network lies in the cone of its own pattern, so its convex
    image (:func:`network_to_convex`) is feasible with ``P_c ≤ P_nc``. The patterns of
    all ``runs`` networks are added: the convex program over their union contains each
    run as a feasible point, so its optimum is at most the best run's objective (and
    usually well below it: it combines the runs' neurons with optimal weights). The warm
    start is the best run; it is returned too, with its SPEC §1 objective.

    With several outputs the convex program is the separable one (each neuron feeds one
    output), whose image of a network pays ``‖w̃‖‖α‖₁`` instead of the network's
    ``½(‖w̃‖² + ‖α‖₂²)``: there the program's optimum can be *above* the best run.

    The last value says whether Ctrl-C stopped the seeding: the runs finished so far (each
    at its best iterate) are then all there is, and no further run is started.
    ``progress(objective)`` (Adam only) receives the best objective the runs have reached,
    at epochs 1, 2, 4, … and every 16 (see :func:`convexnn.nonconvex.train_networks`).
    """
    dev, dt = X.device, X.dtype
    n_runs = max(1, runs)
    seeds = [int(torch.randint(0, 2**31 - 1, (1,), generator=generator,
                               device=generator.device).item()) for _ in range(n_runs)]
    low = False  # seeding runs in _SEED_DTYPE
    if optimizer == "adam":
        # the runs advance together (the same steps as one by one), as many at a time as
        # keep their activations (about 4 arrays of n × width each) within _SEED_BYTES
        low = _SEED_DTYPE is not None and dt == torch.float64
        Xs, Ys = (X.to(_SEED_DTYPE), Y.to(_SEED_DTYPE)) if low else (X, Y)
        if low and not bool(torch.isfinite(Xs).all() and torch.isfinite(Ys).all()):
            low, Xs, Ys = False, X, Y  # values beyond float32's range: seed in float64
        per_run = 4 * X.shape[0] * width * Xs.element_size()
        group = max(1, min(n_runs, _SEED_BYTES // max(1, per_run)))
        results = []
        for g in range(0, n_runs, group):
            done = min((r.objective for r in results), default=math.inf)
            report = None if progress is None else (
                lambda _epoch, obj, done=done: progress(min(obj, done)))
            results += train_networks(Xs, Ys, seeds=seeds[g : g + group], n_neurons=width,
                                      lam=lam, loss=loss.name, fit_intercept=fit_intercept,
                                      lr=_SEED_LR, lr_start=_SEED_LR_START,
                                      lr_tau=_SEED_LR_TAU, max_epochs=epochs,
                                      stall_tol=_SEED_STALL_TOL, progress=report)
            if results[-1].interrupted:
                break
    else:
        y = Y.argmax(dim=1) if loss.name == "softmax" else (
            Y[:, 0] if loss.name == "logistic" else Y)
        results = []
        for seed in seeds:
            results.append(train_network(
                X, y, n_neurons=width, lam=lam, loss=loss.name, fit_intercept=fit_intercept,
                optimizer=optimizer, lr=1e-2, max_epochs=epochs, random_state=seed,
                device=dev, dtype=dt))
            if results[-1].interrupted:
                break
    interrupted = results[-1].interrupted
    best: tuple[float, Any, Any] | None = None  # (objective, convex image, network)
    for run, nc in enumerate(results):
        net = Network(*(to_tensor(a, dtype=dt, device=dev) for a in
                        (nc.coefs[0], nc.intercepts[0], nc.coefs[1], nc.intercepts[1])))
        cv = network_to_convex(net, X_aug, fit_intercept=fit_intercept)
        ps, _ = ps.extend(cv.gates, cv.masks)
        # the run's objective, of its weights in the fit's dtype (a float32 run's own value
        # carries its round-off)
        obj = _score(net, X, Y, loss, lam, fit_intercept)[1] if low else nc.objective
        log.info("seeding run %d/%d: objective %.6g, %d patterns in the union", run + 1,
                 n_runs, obj, ps.n_patterns)
        if best is None or obj < best[0]:
            best = (float(obj), cv, net)
    assert best is not None
    obj, cv, best_net = best
    return ps, _blocks_in(cv, ps, relu), cv.b.to(dt), obj, best_net, interrupted


def _blocks_in(cv: Any, ps: PatternSet, relu: bool) -> torch.Tensor:
    """A network's convex image laid out over the pattern set ``ps`` (which holds its
    patterns): each neuron's block goes to its pattern's index (ReLU: ``u`` blocks for
    positive output signs, ``v`` blocks for negative ones)."""
    cW, cmasks, csigns = cv.W, cv.masks, cv.signs
    keys = {tuple(h): j for j, h in enumerate(_column_hash(ps.masks).cpu().tolist())}
    idx = [keys.get(tuple(h), -1) for h in _column_hash(cmasks).cpu().tolist()]
    p = ps.n_patterns
    c, _, d = cW.shape
    W = torch.zeros(c, 2 * p if relu else p, d, dtype=cW.dtype, device=cW.device)
    for q, j in enumerate(idx):
        if j < 0:  # an empty pattern (a dead neuron): it contributes nothing
            continue
        s = float(csigns[q])
        if relu:
            W[:, j if s > 0 else p + j] += cW[:, q]
        else:
            W[:, j] += s * cW[:, q]
    return W


def _polish_seed(net: Network, X: torch.Tensor, X_aug: torch.Tensor, Y: torch.Tensor,
                 loss: Loss, lam: float, ps: PatternSet, *, fit_intercept: bool,
                 ) -> tuple[PatternSet, torch.Tensor, torch.Tensor, float, Network,
                            torch.Tensor | None]:
    """Refine a seeding network by full-batch L-BFGS (a local method: the network is
    never worse), re-fit its output bias exactly, and lay it out over ``ps`` extended by
    its patterns. Also returns the outputs before the bias re-fit (None if unchanged): a
    second dual candidate for the certificate."""
    res = polish_network(net.W1, net.b1, net.W2, net.b2, X, Y, loss, lam,
                         fit_intercept=fit_intercept, max_iter=_POLISH_LBFGS_ITERS)
    dt, dev = X.dtype, X.device
    polished = Network(*(to_tensor(a, dtype=dt, device=dev) for a in
                         (res.coefs[0], res.intercepts[0], res.coefs[1], res.intercepts[1])))
    obj = float(res.objective)
    Z_before = None
    if fit_intercept:
        # L-BFGS leaves the unregularized output bias short of its optimum (iris: loss
        # gradient column sums ~2e-4 at λ = 1e-3), and the certificate's dual point, which
        # must have zero column sums, is then centred far from ∇L: minimize over b exactly
        Z0 = network_outputs(Network(polished.W1, polished.b1, polished.W2,
                                     torch.zeros_like(polished.b2)), X, True)
        b2 = _refit_bias(loss, Z0.double(), Y.double(), polished.b2.double()).to(dt)
        refit = Network(polished.W1, polished.b1, polished.W2, b2)
        _, obj_refit = _score(refit, X, Y, loss, lam, True)
        if obj_refit <= obj:
            Z_before = Z0 + polished.b2
            polished, obj = refit, obj_refit
    cv = network_to_convex(polished, X_aug, fit_intercept=fit_intercept)
    ps, _ = ps.extend(cv.gates, cv.masks)
    return ps, _blocks_in(cv, ps, True), cv.b.to(dt), obj, polished, Z_before


def _directional(net: Network, X: torch.Tensor, X_aug: torch.Tensor, Y: torch.Tensor,
                 loss: Loss, lam: float, ps: PatternSet, *, fit_intercept: bool,
                 generator: torch.Generator, max_rounds: int,
                 report: Callable[[dict[str, Any]], None],
                 ) -> tuple[PatternSet, torch.Tensor, torch.Tensor, float, Network, int] | None:
    """The directional program from ``net``'s (pattern, direction) pairs, with column
    generation (:func:`convexnn.directional.fit_directional`); its network laid out over
    ``ps`` extended by its patterns, as :func:`_polish_seed` returns a network. None when
    the program is too large for its dense Newton matrix."""
    fit = fit_directional(net, X_aug, Y, loss, lam, fit_intercept=fit_intercept,
                          generator=generator, max_rounds=max_rounds, callback=report)
    if fit is None:
        return None
    _, obj = _score(fit.network, X, Y, loss, lam, fit_intercept)
    cv = network_to_convex(fit.network, X_aug, fit_intercept=fit_intercept)
    ps, _ = ps.extend(fit.gates, fit.masks)  # every pair's pattern: the certificate's scope
    ps, _ = ps.extend(cv.gates, cv.masks)
    return ps, _blocks_in(cv, ps, True), cv.b.to(X.dtype), obj, fit.network, fit.n_iter


def _score(net: Network, X: torch.Tensor, Y: torch.Tensor, loss: Loss, lam: float,
           fit_intercept: bool) -> tuple[torch.Tensor, float]:
    """Outputs and SPEC §1 objective of a recovered network, both in float64 (of the
    network as it is, in its own dtype: a float32 fit's objective and certificate are
    those of its float32 weights, evaluated without float32 round-off)."""
    net = _float64(net)
    Z = network_outputs(net, X.double(), fit_intercept)
    reg = (net.W1**2).sum() + (net.W2**2).sum()
    if fit_intercept:
        reg = reg + (net.b1**2).sum()
    return Z, float(loss.value(Z, Y.double()) + 0.5 * lam * reg)


def _float64(net: Network) -> Network:
    return Network(net.W1.double(), net.b1.double(), net.W2.double(), net.b2.double(),
                   None if net.gates is None else net.gates.double())


def network_outputs(net: Network, X: torch.Tensor, fit_intercept: bool) -> torch.Tensor:
    """Outputs of a recovered network on the (non-augmented) data ``X``."""
    if net.gates is None:
        return network_forward(X, net.W1, net.b1, net.W2, net.b2)
    X_aug = torch.cat([X, torch.ones_like(X[:, :1])], 1) if fit_intercept else X
    gate = (X_aug @ net.gates.T >= 0).to(X.dtype)
    return (gate * (X @ net.W1 + net.b1)) @ net.W2 + net.b2


def fit_convex_network(
    X: torch.Tensor,
    Y: torch.Tensor,
    loss: Loss,
    lam: float,
    *,
    fit_intercept: bool,
    warm_start: tuple[torch.Tensor, torch.Tensor, PatternSet] | None = None,
    callback: Callable[[dict[str, Any]], Any] | None = None,
    **kwargs: Any,
) -> FitResult:
    r"""Fit a two-layer (gated) ReLU network by its convex program; see the module doc.

    Rows of ``X`` that are entirely zero without an intercept (an empty document, say)
    reach every network as zero pre-activations: their outputs are 0 whatever the weights,
    and their cone constraints read :math:`0 \ge 0`, which no interior point can hold
    strictly. They are set aside: with ``n₀`` such rows of ``n`` and ``a = (n − n₀)/n``,

    .. math:: F(\theta) = a\,\big[L_{\text{rest}}(\theta) + (\lambda/a) R(\theta)\big]
       + \frac1n \sum_{\text{zero rows}} \ell(0, y_i),

    so the program on the other rows with ``λ / a`` has the same solutions; objective,
    bound, history and progress are reported on all rows. (One zero row in 200 of
    diabetes took the fit to ``max_iter`` with a relative gap of 0.45.)
    """
    if fit_intercept or X.shape[0] == 0:
        return _fit_rows(X, Y, loss, lam, fit_intercept=fit_intercept, warm_start=warm_start,
                         callback=callback, **kwargs)
    live = (X != 0).any(dim=1)
    n, n_live = X.shape[0], int(live.sum())
    if n_live in (0, n):
        return _fit_rows(X, Y, loss, lam, fit_intercept=fit_intercept, warm_start=warm_start,
                         callback=callback, **kwargs)
    a = n_live / n
    dead = ~live
    const = float(loss.row_values(torch.zeros_like(Y[dead]), Y[dead]).sum()) / n

    def full(v: Any) -> Any:  # a value of the program on the other rows → on all rows
        try:
            v = float(v)
        except (TypeError, ValueError):
            return v
        return a * v + const if math.isfinite(v) else v

    def on_progress(info: dict[str, Any]) -> Any:
        assert callback is not None
        info = dict(info, objective=full(info["objective"]),
                    lower_bound=full(info["lower_bound"]))
        info["gap"] = info["objective"] - info["lower_bound"]
        return callback(info)

    if warm_start is not None:
        W0, b0, ps0 = warm_start
        warm_start = (W0, b0, PatternSet(ps0.gates, ps0.masks[live], ps0.exact, ps0.source))
    log.info("%d of %d rows are zero (no intercept): solving on the other %d with "
             "lam / %.6g", n - n_live, n, n_live, a)
    res = _fit_rows(X[live], Y[live], loss, lam / a, fit_intercept=False,
                    warm_start=warm_start, callback=None if callback is None else on_progress,
                    **kwargs)
    cert = res.certificate
    res.certificate = make_certificate(
        full(cert.primal), full(cert.lower_bound), exact=cert.scope == "global",
        max_violation=cert.max_violation, n_patterns=cert.n_patterns)
    res.objective = full(float(res.objective))
    for rec in res.history:
        for key in ("primal", "lower_bound"):
            if key in rec:
                rec[key] = full(float(rec[key]))
    ps = res.patterns
    masks = torch.ones(n, ps.n_patterns, dtype=ps.masks.dtype, device=ps.masks.device)
    masks[live] = ps.masks  # a zero row is on every gate's closed side, as patterns_from_gates
    res.patterns = PatternSet(ps.gates, masks, ps.exact, ps.source)
    return res


def _fit_rows(
    X: torch.Tensor,
    Y: torch.Tensor,
    loss: Loss,
    lam: float,
    *,
    relu: bool,
    patterns: Any,
    fit_intercept: bool,
    tol: float,
    max_iter: int,
    generator: torch.Generator,
    grow: bool | str,
    max_grow_rounds: int = 20,
    grow_tol: float | None = None,
    max_patterns: int = 20_000,
    warm_start: tuple[torch.Tensor, torch.Tensor, PatternSet] | None = None,
    seed_epochs: int = 0,
    seed_width: int | str = 64,
    seed_runs: int = 1,
    seed_optimizer: str = "adam",
    callback: Callable[[dict[str, Any]], Any] | None = None,
) -> FitResult:
    """:func:`fit_convex_network` on rows that are not all zero (or with an intercept)."""
    t0 = time.perf_counter()
    grow_tol = _GROW_TOL if grow_tol is None else grow_tol
    n = X.shape[0]
    X_aug = torch.cat([X, torch.ones(n, 1, dtype=X.dtype, device=X.device)], 1) \
        if fit_intercept else X
    if warm_start is not None:
        W, b, ps = warm_start
        W, b = W.clone(), b.clone()
    else:
        ps = build_patterns(X_aug, patterns, fit_intercept=fit_intercept, generator=generator,
                            max_patterns=max_patterns)
        W = b = None
    exact = ps.exact
    history: list[dict[str, Any]] = []
    seed_W: torch.Tensor | None = None
    seed_net: Network | None = None
    Z_unrefit: torch.Tensor | None = None  # a polished seed's outputs before its bias re-fit
    if seed_width == "auto":
        seed_width = auto_seed_width(n, Y.shape[1], X_aug.shape[1], ps.n_patterns,
                                     max(1, seed_runs), relu=relu)
    seed_cut = False  # Ctrl-C during the seeding runs: the best of them is returned

    def seeding(obj: float) -> None:
        # progress of the seeding runs: each value is the objective of a network the fit
        # holds (Ctrl-C returns it), so it is kept in the history as the others are; only
        # improvements are recorded (the runs report every few epochs)
        last = history[-1]["primal"] if history and history[-1].get("phase") == "seeding" \
            else math.inf
        if not math.isfinite(obj) or obj >= last:
            return
        rec = {"phase": "seeding", "primal": obj, "n_patterns": ps.n_patterns,
               "time": time.perf_counter() - t0}
        history.append(rec)
        if callback is not None:
            callback({"phase": "seeding", "iteration": len(history), "objective": obj,
                      "lower_bound": math.nan, "gap": math.nan, "n_patterns": ps.n_patterns,
                      "time": rec["time"]})

    if seed_epochs > 0 and warm_start is None and not exact:
        ps, W, b, seed_obj, seed_net, seed_cut = _seed_from_nonconvex(
            X, X_aug, Y, loss, lam, ps, relu=relu, fit_intercept=fit_intercept,
            epochs=seed_epochs, width=seed_width, generator=generator, runs=seed_runs,
            optimizer=seed_optimizer, progress=seeding)
        seed_W, b_seed = W.clone(), b.clone()
        history.append({"phase": "seed", "primal": seed_obj,
                        "n_patterns": ps.n_patterns, "time": time.perf_counter() - t0})
        if callback is not None:
            callback({"phase": "seed", "iteration": 0, "objective": seed_obj,
                      "lower_bound": math.nan, "gap": math.nan, "n_patterns": ps.n_patterns,
                      "time": time.perf_counter() - t0})
        if seed_cut:
            warnings.warn("Fit interrupted during the seeding runs: returning the best "
                          "seeding network so far (no convex solve).", RuntimeWarning,
                          stacklevel=3)
    total_iter = 0
    mu_prev: torch.Tensor | None = None
    converged = False
    interrupted = seed_cut
    res: SolverResult | None = None
    sol64: tuple[torch.Tensor, torch.Tensor] | None = None  # float32 fits: see below
    problem: ConvexProblem | None = None

    def report(rec: dict[str, Any]) -> None:
        rec = dict(rec, time=time.perf_counter() - t0)
        history.append(rec)
        if callback is not None:
            info = {
                "phase": rec.get("phase", "solve"),
                "iteration": len(history),
                "objective": rec.get("primal", math.nan),
                "lower_bound": rec.get("lower_bound", math.nan),
                "gap": rec.get("primal", math.nan) - rec.get("lower_bound", math.nan),
                "n_patterns": ps.n_patterns,
                "time": rec["time"],
            }
            callback(info)

    def on_newton_step(rec: dict[str, Any]) -> None:
        # progress inside a long solve (not kept in history); a restricted (working-set)
        # program gives no valid bound for the full one, so none is reported
        assert callback is not None
        callback({"phase": rec.get("phase", "newton"), "iteration": rec["newton_step"],
                  "objective": rec["primal"], "lower_bound": math.nan, "gap": math.nan,
                  "n_patterns": ps.n_patterns, "time": time.perf_counter() - t0})

    inner = _inner if callback is None else partial(_inner, step_callback=on_newton_step)

    # several outputs, ReLU: the program this version solves is the separable one (each
    # neuron feeds one output), whose image of a network pays ‖α‖₁ instead of ‖α‖₂. It
    # ended above its own seed on every multiclass set measured (iris, wine, hayes-roth,
    # tae: 7–20 % above, in 28 s to 24 min against 5–22 s for the refined seed;
    # benchmarks/results/s10_multiclass_probe.log), and on digits its augmented Lagrangian
    # ran > 25 min to end 2.2× above (session 3). With a seed, the fit returns the best
    # seed refined by L-BFGS, certified by the vector-output dual bound, and says so;
    # without one (seed_runs=0) the separable program is solved
    skip_convex = (relu and Y.shape[1] > 1 and seed_net is not None and warm_start is None)
    # several outputs, ReLU: "solved" (the returned network solves the directional
    # program), "no gain" (it found nothing better than the refined seed), "too large"
    directional = ""
    if skip_convex or seed_cut:
        if not seed_cut:
            assert seed_net is not None
            # the best seed is what is returned: a few hundred L-BFGS steps bring it closer to
            # a stationary point (digits: objective −0.62 %, ~2 s), which the dual bound needs
            try:
                ps, W, b, seed_obj, seed_net, Z_unrefit = _polish_seed(
                    seed_net, X, X_aug, Y, loss, lam, ps, fit_intercept=fit_intercept)
            except KeyboardInterrupt:  # the seed as it was (W, b, ps are still its own)
                interrupted = True
                warnings.warn("Fit interrupted: returning the best seeding network, unrefined.",
                              ConvergenceWarning, stacklevel=3)
            else:
                history.append({"phase": "seed_polished", "primal": seed_obj,
                                "n_patterns": ps.n_patterns, "time": time.perf_counter() - t0})
                if callback is not None:
                    callback({"phase": "seed_polished", "iteration": 0, "objective": seed_obj,
                              "lower_bound": math.nan, "gap": math.nan,
                              "n_patterns": ps.n_patterns, "time": time.perf_counter() - t0})
                try:
                    found = _directional(seed_net, X, X_aug, Y, loss, lam, ps,
                                         fit_intercept=fit_intercept, generator=generator,
                                         max_rounds=max_grow_rounds if grow else 0,
                                         report=report)
                except KeyboardInterrupt:  # the refined seed stands
                    interrupted = True
                    warnings.warn("Fit interrupted: returning the refined seeding network.",
                                  ConvergenceWarning, stacklevel=3)
                    found = None
                directional = "no gain" if found is not None else "too large"
                if found is not None and found[3] < seed_obj:
                    # the refined seed's outputs stay a dual candidate: the relaxation behind
                    # the vector bound can be looser at the better network (wine, λ = 1e-3:
                    # 0.0135 there against 0.0136 at the refined seed)
                    Z_unrefit = network_outputs(seed_net, X, fit_intercept)
                    ps, W, b, seed_obj, seed_net, total_iter = found
                    directional = "solved"
        problem = _problem(X_aug, ps, Y, loss, lam, relu=relu, fit_bias=fit_intercept)
        res = SolverResult(W, b, 0, False, seed_cut)
        history.append({"phase": "convex_skipped", "n_patterns": ps.n_patterns,
                        "time": time.perf_counter() - t0})
        if callback is not None:  # progress: the certificate still follows
            callback({"phase": "convex_skipped", "iteration": 0, "objective": seed_obj,
                      "lower_bound": math.nan, "gap": math.nan, "n_patterns": ps.n_patterns,
                      "time": time.perf_counter() - t0})

    carry: torch.Tensor | None = None  # blocks the next working set starts with
    path_carry: dict[float, tuple] | None = None  # and points it may start from
    try:
        n_rounds = 0 if skip_convex or seed_cut else max_grow_rounds + 1
        grow_round = 0
        final = False  # the last solve, at tol, after growth rounds solved loosely
        while grow_round < n_rounds:
            problem = _problem(X_aug, ps, Y, loss, lam, relu=relu, fit_bias=fit_intercept)
            cap: int | None = _max_ipm_blocks(n, Y.shape[1], X_aug.shape[1], gated=not relu)
            if cap is not None and (cap < 16 or problem.penalty.couples_outputs):
                cap = None  # too large for Newton, or nuclear norm: first-order, no cap
            # growth rounds solved by a first-order method stop at a loose gap: they only
            # rank the violators and measure the round's gain (against grow_tol); one last
            # solve at tol follows. Solving each to tol spent most of a fit's iterations
            # (digits, gated, λ = 1e-3: 1,300–2,200 FISTA iterations per round). A quarter
            # of max_iter is kept for that last solve: a growth round cut by the budget
            # would otherwise end the fit at its loose gap (letter, tol = 1e-4,
            # max_iter = 3,000: gap 3.6e-3)
            loose = cap is None and grow and not exact and not final and max_grow_rounds > 0
            round_tol = max(tol, _GROW_ROUND_TOL) if loose else tol
            reserve = max_iter // 4 if loose else 0
            P_all = problem.op.p
            # the first solve, if small enough for one Newton solve over every block, takes
            # them all (ReLU: only when the active blocks and violators are already 35 %
            # of them — breast cancer, logistic loss: 154 of 574 blocks grown in two
            # rounds, 14 s, against 38 s for all 574 at once; squared loss: 370 of 584 in
            # three rounds, 63 s, against 38 s at once; diabetes: 604 of 1,526 in three
            # rounds, 36 s, against 33 s at once); later (growth) rounds start from the
            # active blocks and violators
            first = cap is not None and P_all <= cap and grow_round == 0
            init = P_all if first and not relu else 16
            frac = _ALL_BLOCKS_FRACTION if first and relu else None
            res = working_set_solve(
                problem, inner, W, b, tol=round_tol,
                max_iter=max(1, max_iter - total_iter - reserve),
                max_size=cap, initial_size=init, mu0=mu_prev, defer_polish=relu,
                all_if_fraction=frac, initial_blocks=carry, path_points=path_carry,
                callback=lambda r, g=grow_round: report(dict(r, phase="solve", grow_round=g)),
            )
            carry = path_carry = None
            W, b = res.W, res.b
            sol64 = (res.extra["W64"], res.extra["b64"]) if "W64" in res.extra else None
            mu_prev = res.extra.get("mu")
            total_iter += res.n_iter
            converged = res.converged
            if res.interrupted:  # Ctrl-C inside a solver, which kept its last iterate
                interrupted = True
                warnings.warn("Fit interrupted: returning the best iterate found so far.",
                              RuntimeWarning, stacklevel=3)
                break
            if final:
                break
            again = loose and total_iter < max_iter and (round_tol > tol or not res.converged)
            # a loose round is not started unless one like the last still fits the budget
            if exact or not grow or grow_round == max_grow_rounds or \
                    total_iter + (res.n_iter if loose else 0) > max_iter - reserve:
                if again:
                    final = True
                    continue
                break
            solved = [r.get("primal") for r in history if r.get("phase") == "grow"]
            now = float(res.extra.get("primal", math.nan))
            if solved and solved[-1] - now <= grow_tol * abs(now):
                # growth has stalled: the last round gained less than grow_tol
                if again:
                    final = True
                    continue
                break
            # the pricing runs in float64 (for float32 data too: the dual values 𝒜ᵀV
            # cancel to the size of λ), at the float64 solution where there is one
            W64, b64 = sol64 if sol64 is not None else (W.double(), b.double())
            X64 = X_aug.double()
            Z = problem.op.to(torch.float64).matvec(W64) + b64
            V = loss.grad(Z, Y.double())
            if fit_intercept:
                V = loss.center(V, Y.double())
            active = torch.linalg.vector_norm(W, dim=-1).amax(dim=0) > 0
            starts = problem.gates[active].double() if problem.gates is not None else None
            thorough = grow == "thorough" and relu
            new_g, vals = find_violating_gates(
                X64, V, lam, gated=not relu, vector=problem.penalty.couples_outputs,
                generator=generator, extra_starts=starts, ascent=thorough,
                n_starts=_pricing_starts(*X64.shape) if thorough else _PRICING_STARTS_MIN)
            new_g = new_g.to(X_aug.dtype)
            added = 0
            if new_g.shape[0]:
                new_ps = patterns_from_gates(X_aug, new_g, source="grown", dedup=False)
                p_old = ps.n_patterns
                ps, added = ps.extend(new_ps.gates, new_ps.masks)
                W = _relayout(W, p_old, ps.n_patterns, relu)
                # the next round starts from the last working set and the new blocks
                # (breast cancer, grow="thorough": each growth round otherwise regrew its set
                # from the ~60 active blocks in three interior-point solves)
                carry = _grown_blocks(res.extra.get("ws"), p_old, ps.n_patterns, relu)
                # and from the last solve's interior-point path (ReLU blocks: the v half
                # moves up by the number of new patterns)
                shift = ps.n_patterns - p_old
                path_carry = {lv: (*pp[:4], torch.where(pp[4] < p_old, pp[4], pp[4] + shift))
                              for lv, pp in (res.extra.get("path_points") or {}).items()}
                if mu_prev is not None:
                    mu_prev = _relayout(mu_prev.permute(1, 2, 0), p_old, ps.n_patterns,
                                        relu).permute(2, 0, 1)
            report({"phase": "grow", "grow_round": grow_round, "added": added,
                    "max_violation_ratio": float(vals.max() / lam) if vals.numel() else 0.0,
                    "primal": res.extra.get("primal", math.nan),
                    "lower_bound": res.extra.get("lower_bound", math.nan)})
            if added == 0:
                if again:
                    final = True
                    continue
                break
            grow_round += 1
    except KeyboardInterrupt:
        interrupted = True
        warnings.warn("Fit interrupted: returning the best iterate found so far.",
                      RuntimeWarning, stacklevel=3)
        if res is None:
            if W is None or b is None:
                raise  # nothing to return yet (no seed, no finished round)
            # interrupted in the first round: the seed's image over the current patterns
            problem = _problem(X_aug, ps, Y, loss, lam, relu=relu, fit_bias=fit_intercept)
            res = SolverResult(W, b, 0, False, True)
    assert res is not None and problem is not None and W is not None and b is not None
    mu_fit = res.extra.get("mu")
    if problem.op.p != W.shape[1]:  # stopped right after growing: new blocks are zero
        p_old = problem.op.p // 2 if relu else problem.op.p
        problem = _problem(X_aug, ps, Y, loss, lam, relu=relu, fit_bias=fit_intercept)
        if mu_fit is not None:
            p_new = problem.op.p // 2 if relu else problem.op.p
            mu_fit = _relayout(mu_fit.permute(1, 2, 0), p_old, p_new, relu).permute(2, 0, 1)
    if seed_W is not None and seed_W.shape[1] <= W.shape[1]:
        # never return worse than the (feasible) non-convex seed: compare P_c values
        p_seed = seed_W.shape[1] // 2 if relu else seed_W.shape[1]
        Ws = _relayout(seed_W, p_seed, problem.op.p // 2 if relu else problem.op.p, relu)
        if problem.objective(Ws, b_seed) < problem.objective(W, b) - 1e-12 or (
                relu and problem.max_violation(W) > 1e-6):
            W, b = Ws, b_seed.clone()
    signs = problem.op.sign
    vector = problem.penalty.couples_outputs
    net = convex_to_network(W, b, signs, fit_intercept=fit_intercept, vector=vector,
                            gates=None if relu else problem.gates)
    Z_net, objective = _score(net, X, Y, loss, lam, fit_intercept)
    # every dual point gives a valid lower bound; the best one is kept
    Z_dual: list[tuple[torch.Tensor, torch.Tensor | None]] = [(Z_net, mu_fit)]
    if sol64 is not None and sol64[0].shape == W.shape:
        # a float32 fit: the float64 solution its weights were rounded from. Its dual point
        # is the accurate one (a float32 gated fit of diabetes, λ = 1e-3: rounding the
        # weights moved the bound from its own gradient by ~1e-5 relative, the objective
        # by ~1e-14)
        Z_dual.append((problem.op.to(torch.float64).matvec(sol64[0]) + sol64[1], mu_fit))
    ipm_point = res.extra.get("ipm_point")
    if ipm_point is not None and ipm_point[1].shape[2] == problem.op.p:
        # the interior point before support polishing
        Z_dual.append((ipm_point[0].to(Z_net.dtype), ipm_point[1].to(Z_net.dtype)))
    # interior points leave inactive neurons at the barrier's scale: prune them when that
    # does not raise the objective (the certificate is computed on what is returned)
    norms = torch.linalg.vector_norm(W, dim=-1)
    if vector:  # a block is the whole c × d matrix of its pattern
        norms = torch.linalg.vector_norm(norms, dim=0, keepdim=True).expand_as(norms)
    if norms.numel() and bool((norms > 0).any()):
        thr = 1e-6 * max(1.0, float(norms.max()))
        W_p = torch.where((norms <= thr)[:, :, None], torch.zeros_like(W), W)
        b_p = b
        if fit_intercept:  # the output bias is unconstrained: re-fit it to the pruned W
            b_p = _refit_bias(loss, problem.op.matvec(W_p.to(X.dtype)).double(), Y.double(),
                              b.double()).to(b.dtype)
        net_p = convex_to_network(W_p, b_p, signs, fit_intercept=fit_intercept, vector=vector,
                                  gates=None if relu else problem.gates)
        Z_p, obj_p = _score(net_p, X, Y, loss, lam, fit_intercept)
        if net_p.n_neurons < net.n_neurons and obj_p <= objective:
            W, b, net, Z_net, objective = W_p, b_p, net_p, Z_p, obj_p
            Z_dual.append((Z_p, mu_fit))
    big = problem.op.X.shape[0] * problem.op.p * problem.op.c
    if seed_net is not None:
        # an unconverged solve can end above its seed: never return a network worse than
        # the best seeding run (several outputs: the seed is what is returned)
        Z_seed, obj_seed = _score(seed_net, X, Y, loss, lam, fit_intercept)
        if skip_convex:  # no convex solution: only the seed's dual point is worth its cost
            Z_dual = []  # (digits: 3 candidates took 25 s, the seed's alone ~10 s)
        Z_dual.append((Z_seed, mu_fit))
        sphere = directional == "solved" and Y.shape[1] <= _SPHERE_MAX_OUTPUTS
        if skip_convex and Z_unrefit is not None and big < 2_000_000 and not sphere:
            # (with the sphere bound the directional solution's dual point is the tight
            # one: iris, wine, tae gave no better bound at the refined seed's)
            # before its bias re-fit (or before the directional program) the network's
            # gradient, centred, is another valid dual point. (Session 11 found the first
            # the better one on iris, 0.04708 against 0.04631, but only because the softmax
            # centring then left column sums ~7e-5 there — no bound at all; with the exact
            # centring it gives 0.0361 at a bias moved by 0.5,
            # benchmarks/results/s13_center_relu_probe.log)
            Z_dual.append((Z_unrefit, mu_fit))
        if obj_seed < objective - 1e-12 * abs(objective):
            if not skip_convex:  # (skipped: W is the seed's own separable image)
                log.info("the best seeding run (%.6g) is better than the convex solution "
                         "(%.6g): returning it", obj_seed, objective)
                history.append({"phase": "seed_kept", "primal": obj_seed,
                                "convex_primal": objective, "time": time.perf_counter() - t0})
            net, objective, Z_net = seed_net, obj_seed, Z_seed
    # progress: the bound can take a while (multiclass ReLU: seconds to a minute)
    report({"phase": "certificate", "primal": objective, "dual_points": len(Z_dual)})
    lower = -math.inf
    try:
        for Z, mu in Z_dual:  # the convex solution's dual point first (usually the tightest)
            lower = max(lower, dual_bound(
                loss, Y, Z, problem.op, lam, fit_bias=fit_intercept, constrained=relu, mu=mu,
                combine_outputs=Y.shape[1] > 1, cone_iters=200 if big < 2_000_000 else 30,
                gates=problem.gates if relu else None,
            ).lower_bound)
            if objective - lower <= _CERT_ENOUGH * abs(objective):
                break  # the other candidates cannot tighten it in any way that matters
    except KeyboardInterrupt:  # Ctrl-C: the network stands; the bound is what was reached
        interrupted = True
        warnings.warn("Fit interrupted during the certificate: returning the network with "
                      f"the best lower bound computed so far ({lower:.6g}).", RuntimeWarning,
                      stacklevel=3)
    viol = problem.max_violation(W) if relu else 0.0
    cert = make_certificate(objective, lower, exact=exact, max_violation=viol,
                            n_patterns=ps.n_patterns)
    report({"phase": "certified", "primal": objective, "lower_bound": lower})
    converged = converged or cert.rel_gap <= tol  # the returned network meets tol
    if not converged and skip_convex and not interrupted:
        how = {
            "solved": "the solution of the directional convex program over the refined "
                      "seed's (pattern, output direction) pairs, grown by column generation "
                      "(the exact vector-output ReLU program is copositive, SPEC §5)",
            "no gain": "the best seeding network refined by L-BFGS (the directional convex "
                       "program over its pairs, with column generation, found nothing better)",
        }.get(directional, "the best seeding network refined by L-BFGS (its directional "
              "convex program was too large for the dense interior point)")
        warnings.warn(
            f"{Y.shape[1]}-output ReLU: returning {how}. Certified relative gap "
            f"{cert.rel_gap:.2e} ({cert.scope}), above tol={tol:g}. The gated estimators "
            "solve their exact vector-output program.", ConvergenceWarning, stacklevel=3)
    elif not converged and not interrupted:
        hint = "raise max_iter or tol."
        if relu and total_iter < max_iter:
            # the interior point and its working set stopped on their own (nothing left to
            # add, a polished face optimum): KEEL magic ended at 4.3e-6 this way in 271
            # Newton steps, and a third round re-solving the same blocks changed nothing
            hint = ("the solve ended before max_iter with nothing left to improve, so what "
                    "remains is most likely the looseness of the lower bound (the ReLU cone "
                    "multipliers), which more iterations do not remove; raise tol to accept "
                    "it.")
        elif X.dtype != torch.float64:
            # every convex solver iterates in float64 (FISTA in float32 crawled at gaps of
            # 2e-5 – 3e-4 on iris / wine, λ = 1e-3, before it moved), but the seeding runs
            # and the returned weights are in the data's dtype
            hint = ("raise max_iter or tol, or fit float64 data (dtype='float64'): the "
                    "solvers iterate in float64, but the seeding runs and the returned "
                    f"weights are {str(X.dtype).replace('torch.', '')}.")
        warnings.warn(
            f"The solver stopped after {total_iter} iterations (max_iter={max_iter}) with a "
            f"relative duality gap of {cert.rel_gap:.2e} above tol={tol:g}; {hint}",
            ConvergenceWarning, stacklevel=3)
    return FitResult(net, W, b, ps, cert, objective, total_iter, converged, interrupted,
                     history)
