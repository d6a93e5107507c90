r"""Working sets: solve over the few neuron blocks that matter, then check all of them.

Optimal networks are sparse (few neurons), while the program has one block per pattern
(and sign). Restricting the solver to a working set of blocks makes each iteration
cheaper and the subproblem far better conditioned (near-duplicate patterns are left
out). After each restricted solve the dual bound is evaluated on *every* block: blocks
whose dual constraint is violated join the working set (the largest violations first);
when none is violated, the restricted solution is optimal for the whole program and the
duality gap over all blocks certifies it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from functools import partial

import torch

from convexnn.certificates import _cone_block_bounds, _maximize_scale
from convexnn.operators import PatternOperator
from convexnn.solvers._apg import SolverResult
from convexnn.solvers._problem import ConvexProblem

__all__ = ["block_scores", "path_level", "restrict", "working_set_solve"]

log = logging.getLogger(__name__)


def restrict(problem: ConvexProblem, blocks: torch.Tensor) -> ConvexProblem:
    """The same program over the neuron blocks ``blocks`` only."""
    op = problem.op
    sub = PatternOperator(op.X, op.D[:, blocks] > 0, op.sign[blocks], op.c)
    gates = problem.gates[blocks] if problem.gates is not None else None
    return ConvexProblem(sub, problem.Y, problem.loss, problem.penalty, problem.fit_bias,
                         problem.constrained, gates)


def block_scores(
    problem: ConvexProblem, Z: torch.Tensor, mu: torch.Tensor | None, cone_iters: int = 30,
    tol: float | None = None,
) -> tuple[torch.Tensor, float]:
    """Per-block dual-constraint values at outputs ``Z`` (c, p) and the lower bound.

    With ``tol`` (ReLU programs), the cone bounds stop improving once no block exceeds
    ``λ(1 + 0.1 tol)`` (the violation test of :func:`_violating`) nor ``λ/s*`` (``s*``:
    the dual scale that the bound would take without the constraint), since smaller
    scores change neither the violators nor the bound.
    """
    loss, Y, op = problem.loss, problem.Y, problem.op
    V = loss.grad(Z, Y)
    if problem.fit_bias:
        V = loss.center(V, Y)
    G = op.rmatvec(V)
    if problem.constrained:
        enough = 0.0
        if tol is not None:
            s_free, _ = _maximize_scale(loss, V, Y, math.inf if loss.name == "squared"
                                        else 1.0)
            enough = problem.lam * min(1.0 + 0.1 * tol, 1.0 / s_free if s_free > 0
                                       else math.inf)
        blocks = _cone_block_bounds(op, G, mu, cone_iters, enough)
    else:
        blocks = problem.penalty.block_dual_norms(G)  # (c, p), or (1, p) for vector outputs
    nu = float(blocks.max()) if blocks.numel() else 0.0
    s_max = problem.lam / nu if nu > 0 else 1e12
    _, lb = _maximize_scale(loss, V, Y, s_max)
    return blocks, lb


def _violating(problem: ConvexProblem, per_block: torch.Tensor, in_ws: torch.Tensor,
               tol: float) -> torch.Tensor:
    """Blocks outside the working set whose dual constraint is violated."""
    return (per_block > problem.lam * (1 + 0.1 * tol)) & ~in_ws


def _final_round(problem: ConvexProblem, ws: torch.Tensor, tol: float, W_ws: torch.Tensor,
                 b: torch.Tensor, z_ws: torch.Tensor) -> bool:
    """Whether a restricted solution (blocks ``ws``, multipliers ``z_ws``) leaves no block
    outside ``ws`` violating its dual constraint — the test of the loop below."""
    op = problem.op
    dt = op.X.dtype
    W = torch.zeros(op.c, op.p, op.X.shape[1], dtype=dt, device=op.X.device)
    W[:, ws] = W_ws.to(dt)
    mu = torch.zeros(op.X.shape[0], op.c, op.p, dtype=dt, device=op.X.device)
    mu[:, :, ws] = z_ws.reshape(op.X.shape[0], op.c, -1).to(dt)
    scores, _ = block_scores(problem, op.matvec(W) + b.to(dt), mu, tol=tol)
    in_ws = torch.zeros(op.p, dtype=torch.bool, device=op.X.device)
    in_ws[ws] = True
    return not bool(_violating(problem, scores.max(dim=0).values, in_ws, tol).any())


def _path_start(pp: tuple, ws: torch.Tensor, P: int) -> tuple:
    """The start ``(W, b, z, ν)`` over the blocks ``ws`` (indices out of ``P``) from a path
    point ``(W, b, z, ν, blocks)`` over the blocks ``blocks``: shared blocks keep their
    values, the others start at zero (``primal_dual`` moves them inside their cones)."""
    W, b, z, nu, blocks = pp
    c, _, d = W.shape
    n = z.shape[0]
    where = torch.full((P,), -1, dtype=torch.long, device=W.device)
    where[blocks] = torch.arange(blocks.numel(), device=W.device)
    idx = where[ws]
    have = idx >= 0
    Ws = torch.zeros(c, ws.numel(), d, dtype=W.dtype, device=W.device)
    Ws[:, have] = W[:, idx[have]]
    zs = torch.zeros(n, c, ws.numel(), dtype=z.dtype, device=z.device)
    zs[:, :, have] = z.reshape(n, c, -1)[:, :, idx[have]]
    return Ws, b, zs, float(nu)


def _f64(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.double()


#: rounds without a lower objective (by more than ``tol``, relative) after which the
#: working set stops: on KEEL banana (n = 120, d = 3, λ = 0.001·λ_max, 319 patterns) the
#: rounds cycled at a gap of ~1e-5 — objective 0.0481239, 0.048128, 0.0481239,
#: 0.0481289, … — for minutes once column generation found its patterns (session 21)
_STALL_ROUNDS = 3
#: the point then returned is the lowest-objective feasible round whose gap is at most
#: this (loose early rounds can score lower with a far weaker certificate: banana's
#: first round after a growth step, gap 0.036)
_BEST_GAP = 1e-3
#: a round restarts from the path point of the previous solve with the smallest barrier
#: gap (relative) at least the current gap over all blocks divided by this, else from the
#: one of the largest. Breast cancer, grow="thorough", Newton steps of the four solves of
#: a fit (restarting from polished points: 51+38+47+45 on split 0, 49+35+39+36 on split
#: 3): factor 10 → 51+27+45+35 and 49+30+29+14; factor 1e3 → 51+26+88+57 and 49+35+49+12
#: (the growth rounds' new blocks violate strongly: from a point late on the path they
#: took steps of 0.001–0.05); the largest level always → 51+27+45+35 and 49+30+29+23
#: (benchmarks/results/s22_bc_path_steps.log)
_PATH_GAP_FACTOR = 10.0


def path_level(path_points: dict[float, tuple], gap: float) -> float | None:
    """The level (relative barrier gap) of the path point to restart from at ``gap`` (see
    _PATH_GAP_FACTOR), or None without path points."""
    if not path_points:
        return None
    fits = [lv for lv in path_points if lv * _PATH_GAP_FACTOR >= gap]
    return min(fits) if fits else max(path_points)


def working_set_solve(
    problem: ConvexProblem,
    inner: Callable[..., SolverResult],
    W0: torch.Tensor | None = None,
    b0: torch.Tensor | None = None,
    *,
    tol: float = 1e-6,
    max_rounds: int = 50,
    initial_size: int = 16,
    max_iter: int = 10_000,
    max_size: int | None = None,
    callback: Callable[[dict], None] | None = None,
    mu0: torch.Tensor | None = None,
    defer_polish: bool = False,
    all_if_fraction: float | None = None,
    initial_blocks: torch.Tensor | None = None,
    path_points: dict[float, tuple] | None = None,
) -> SolverResult:
    """Solve ``problem`` with ``inner`` on growing working sets of blocks.

    ``inner(sub_problem, W0, b0, mu0, tol=..., max_iter=...)`` solves a restricted program
    and may return multipliers ``extra["mu"]`` (ReLU). ``max_size`` caps the working set
    (blocks with zero weight leave it to make room for violators). Returns a result on all
    blocks with
    ``extra`` holding ``lower_bound``, ``primal``, ``rel_gap``, ``mu`` (full) and the
    working-set history. ``defer_polish``: ``inner`` accepts ``polish_if`` (see
    :func:`convexnn.solvers._primal_dual.finish`) and is told to skip the ReLU support
    polish when blocks outside the working set violate their dual constraint at its
    interior point (the round will be followed by another one).
    ``all_if_fraction``: when the starting set (active blocks and violators) already holds
    at least this fraction of all blocks and all of them fit ``max_size``, the first round
    takes every block — each round re-runs a whole interior-point solve, so a set that
    would grow by many rounds is cheaper taken whole, and a small one cheaper grown.
    ``initial_blocks``: a boolean mask of blocks that join the first working set too (the
    last set of a previous solve of a smaller program, with its new blocks: a growth round
    then re-solves once instead of regrowing the set that the previous one found). The
    returned ``extra["ws"]`` is the mask of the last set solved.
    ``path_points``: ``{level: (W, b, z, ν, blocks)}``, points of the interior-point path
    of an earlier solve over the blocks ``blocks`` (indices into this program's blocks; the
    returned ``extra["path_points"]``): the first round starts from one of them
    (``inner(..., start=)``), as every later round starts from one of the previous round's
    (:func:`path_level`: by the current gap over all blocks). A restart from a polished
    solution re-centres for ~15 Newton steps.
    """
    op = problem.op
    X = op.X
    n, P = X.shape[0], op.p
    # the rounds' gaps and violators are evaluated in float64: in float32 the cancelling
    # sums 𝒜ᵀV lose ~eps·Σ|x v| / λ, and a float32 gated fit of diabetes (λ = 1e-3) never
    # saw its gap below ~5e-5 — it re-solved until max_iter (the interior points solve in
    # float64 already)
    check = problem.to(torch.float64)
    Wz, bz = problem.zeros()
    W = Wz if W0 is None else W0.clone()
    b = bz if b0 is None else b0.clone()
    mu_full = (
        torch.zeros(n, op.c, P, dtype=X.dtype, device=X.device) if problem.constrained else None
    )
    if mu_full is not None and mu0 is not None and tuple(mu0.shape) == tuple(mu_full.shape):
        mu_full = mu0.to(X.dtype).clone()
    W64, b64 = W.double(), b.double()  # (the float64 solutions of float32 programs)
    Z = check.op.matvec(W64) + b64
    scores, lb0 = block_scores(check, Z, _f64(mu_full), tol=tol)
    primal0 = float(check.loss.value(Z, check.Y) + check.penalty.value(W64))
    rel0 = (primal0 - lb0) / max(abs(primal0), 1e-12)
    per_block = scores.max(dim=0).values  # (P,)
    # a warm start without multipliers (a seed): its gap bounds the restricted program's
    # too (the restricted optimum is at least the full one), which sets the interior
    # point's starting barrier weight (see primal_dual's ``gap0``)
    gap0 = None
    if W0 is not None and mu0 is None and problem.constrained and bool((W != 0).any()):
        gap0 = primal0 - lb0
    norms = torch.linalg.vector_norm(W, dim=-1)
    # interior-point solutions leave inactive blocks at the barrier's scale
    active = (norms > 1e-6 * float(norms.max()) if norms.numel() else norms > 0).any(dim=0)
    cap = P if max_size is None else max(1, min(P, int(max_size)))
    n_act = int(active.sum())
    k0 = min(cap, max(initial_size, n_act + max(initial_size, n_act // 4)))
    # start from the active blocks and every block that violates its dual constraint
    in_ws = active | (per_block > problem.lam)
    if initial_blocks is not None:
        in_ws |= initial_blocks.to(in_ws.device)
    if int(in_ws.sum()) > cap:
        keep = torch.argsort(torch.where(active, torch.full_like(per_block, float('inf')),
                                         per_block), descending=True)[:cap]
        in_ws = torch.zeros_like(in_ws)
        in_ws[keep] = True
    if all_if_fraction is not None and P <= cap and int(in_ws.sum()) >= all_if_fraction * P:
        k0 = P
    order = torch.argsort(torch.where(in_ws, torch.full_like(per_block, -1.0), per_block),
                          descending=True)
    need = max(0, k0 - int(in_ws.sum()))
    in_ws[order[:need]] = True
    total_iter = 0
    history = []
    converged = interrupted = False
    t0 = time.perf_counter()
    primal = lb = rel = float("nan")
    violation = 0.0
    res: SolverResult | None = None
    ipm: tuple[torch.Tensor, torch.Tensor] | None = None
    # the inner solves' tolerance floor: lowered when a round ends above ``tol`` with
    # nothing to add; ``tol`` itself (the target of the whole solve) never moves
    inner_floor = tol
    best: tuple | None = None  # the feasible round with the lowest objective (see _BEST_GAP)
    tightest: tuple | None = None  # and the feasible round with the smallest gap
    for rnd in range(1, max_rounds + 1):
        ws = torch.nonzero(in_ws).flatten()
        sub = restrict(problem, ws)
        mu0 = mu_full[:, :, ws] if mu_full is not None else None
        # inexact early rounds: a loose inner tolerance while the working set still grows
        inner_tol = max(inner_floor * 0.5, 1e-3 * 0.1 ** (rnd - 1))
        kw = {}
        if rnd == 1 and gap0 is not None:
            kw["gap0"] = gap0
        if defer_polish and problem.constrained:
            kw["polish_if"] = partial(_final_round, problem, ws, tol)
        level = path_level(path_points or {}, rel0 if rnd == 1 else rel)
        if level is not None and problem.constrained:
            kw["start"] = _path_start(path_points[level], ws, P)  # type: ignore[index]
        res = inner(sub, W[:, ws], b, mu0, tol=inner_tol,
                    max_iter=max(100, min(max_iter - total_iter, 500 * 2**rnd)), **kw)
        total_iter += res.n_iter
        W = torch.zeros_like(W)
        W[:, ws] = res.W
        b = res.b
        W64 = torch.zeros_like(W, dtype=torch.float64)
        W64[:, ws] = res.extra["W64"] if "W64" in res.extra else res.W.double()
        b64 = res.extra["b64"] if "b64" in res.extra else b.double()
        if mu_full is not None and "mu" in res.extra:
            mu_full = torch.zeros_like(mu_full)
            mu_full[:, :, ws] = res.extra["mu"]
        ipm = None
        if mu_full is not None and "ipm_mu" in res.extra:  # the unpolished interior point
            ipm_mu = torch.zeros_like(mu_full)
            ipm_mu[:, :, ws] = res.extra["ipm_mu"]
            ipm = (res.extra["ipm_Z"], ipm_mu)
        if res.extra.get("path_points"):  # with their blocks, for the next round
            path_points = {lv: (*pp, ws) for lv, pp in res.extra["path_points"].items()}
        violation = float(res.extra.get("violation", 0.0))
        Z = check.op.matvec(W64) + b64
        scores, lb = block_scores(check, Z, _f64(mu_full), tol=tol)
        primal = float(check.loss.value(Z, check.Y) + check.penalty.value(W64))
        rel = (primal - lb) / max(abs(primal), 1e-12)
        per_block = scores.max(dim=0).values
        viol_blocks = _violating(problem, per_block, in_ws, tol)
        rec = {"round": rnd, "ws_size": int(ws.numel()), "inner_iter": res.n_iter,
               "primal": primal, "lower_bound": lb, "rel_gap": rel,
               "violation": violation, "n_violating": int(viol_blocks.sum()),
               "time": time.perf_counter() - t0}
        history.append(rec)
        log.debug("working set round %s", rec)
        if callback is not None:
            callback(rec)
        if res.interrupted:
            interrupted = True
            break
        feasible = violation <= float(res.extra.get("feas_tol", float("inf")))
        state = (W, b, W64, b64, mu_full, ipm, primal, lb, rel, violation, res)
        if feasible and rel <= _BEST_GAP and (best is None or primal < best[6]):
            best = state
        if feasible and (tightest is None or rel < tightest[8]):
            tightest = state
        if rel <= tol and feasible:
            converged = True
            break
        if total_iter >= max_iter:
            break
        if len(history) > _STALL_ROUNDS and min(h["primal"] for h in history[-_STALL_ROUNDS:]) \
                >= min(h["primal"] for h in history[:-_STALL_ROUNDS]) - tol * abs(primal):
            # no lower objective in _STALL_ROUNDS rounds: the set cycles (blocks dropped
            # to make room come back as violators) while the cone bound stays loose
            log.info("working set: no progress in %d rounds (gap %.2e); stopping",
                     _STALL_ROUNDS, rel)
            if best is not None and best[6] < primal:  # return the best round's point
                W, b, W64, b64, mu_full, ipm, primal, lb, rel, violation, res = best
            elif best is None and tightest is not None and tightest[8] < rel:
                # no round certified to _BEST_GAP: the one with the smallest gap (KEEL
                # banana, grow="thorough", a growth round's 742 blocks: interior points
                # that stopped early gave gaps 2.5e-3, 5.7e-3, 5.7e-3, then 0.57 — the
                # fit ended with the last and a certificate of 0.23;
                # benchmarks/results/s23_banana_history.log)
                W, b, W64, b64, mu_full, ipm, primal, lb, rel, violation, res = tightest
            break
        if not bool(viol_blocks.any()):
            # nothing to add: the restricted solve was not accurate enough; tighten it
            if problem.constrained and res.converged and (
                    rel <= 100 * tol or res.extra.get("polished")):
                # the inner solve is converged and nothing violates: what is left is the
                # looseness of the cone bounds, which a tighter solve does not remove — nor
                # can it move a solution polished to the exact optimum of its face (all of
                # KEEL magic: a third round re-solved the same 176 blocks in 170 s to the
                # same objective and bound; s20_magic_full_dbg_intermediate.log)
                converged = rel <= tol
                break
            if problem.constrained and len(history) >= 2 and \
                    abs(history[-2]["primal"] - primal) <= 1e-7 * abs(primal):
                break  # a tighter solve no longer moves: the cone bound, not the solve, is loose
            inner_floor *= 0.3
            continue
        k = max(initial_size, int(ws.numel()))
        cand = torch.where(viol_blocks, per_block, torch.full_like(per_block, -1.0))
        n_add = min(k, int(viol_blocks.sum()))
        if int(in_ws.sum()) + n_add > cap:  # make room: drop blocks that ended at zero
            wn = torch.linalg.vector_norm(W, dim=-1)
            zero = in_ws & ~(wn > 1e-6 * float(wn.max())).any(dim=0)
            in_ws[zero] = False
            n_add = min(n_add, cap - int(in_ws.sum()))
            if n_add <= 0:  # full of active blocks: lift the cap (first-order inner solves)
                log.info("working set is full (%d blocks) with violations left", cap)
                cap = P
                n_add = min(k, int(viol_blocks.sum()))
        add = torch.argsort(cand, descending=True)[:n_add]
        in_ws[add] = True
        if total_iter >= max_iter:
            break
    out = SolverResult(W, b, total_iter, converged, interrupted, history)
    last_ws = torch.zeros(P, dtype=torch.bool, device=X.device)
    if res is not None:
        last_ws[ws] = True
    out.extra.update(primal=primal, lower_bound=lb, rel_gap=rel, mu=mu_full,
                     violation=violation, rounds=len(history), ws=last_ws,
                     path_points=path_points)
    if check is not problem:
        out.extra.update(W64=W64, b64=b64)
    if res is not None and ipm is not None:
        out.extra["ipm_point"] = ipm  # (outputs, multipliers): another dual candidate
    return out
