r"""Dual lower bounds and certificates of optimality (SPEC §4).

For :math:`\min_W L(\mathcal A W + \mathbf 1 b^\top) + \lambda \sum_j \|w_j\|` (with the
cone constraints :math:`w_j \in K_j = \{u : (2D_j - I) X u \ge 0\}` for ReLU) every
:math:`V` with zero column sums (output bias) that satisfies

.. math:: \max_{u \in K_j, \|u\| \le 1} \langle -(\mathcal A^\top V)_j, u\rangle \le \lambda
   \quad \forall j

gives the lower bound :math:`-L^*(V)`. The cone maximum is bounded, for any
:math:`\mu \ge 0`, by :math:`\|-(\mathcal A^\top V)_j + X^\top (2D_j - I)\mu_j\|_2`
(equality at the best μ, which a few projected-gradient steps approach; the multipliers
of the augmented Lagrangian are a warm start). The candidate is :math:`V = \nabla L` at
the fitted outputs, centred, then scaled by the best :math:`s \in [0, \lambda/\nu]`.

Scope: when the patterns are every chamber of the arrangement (exact enumeration) the
bound holds for the non-convex training problem itself (``"global"``); otherwise it
bounds the program restricted to the sampled patterns (``"sampled"``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from convexnn.losses import Loss, SquaredLoss
from convexnn.operators import PatternOperator
from convexnn.penalties import block_spectral_norms

__all__ = ["Certificate", "DualBound", "dual_bound", "make_certificate"]


@dataclass
class Certificate:
    """How far a returned network is from optimal.

    Attributes
    ----------
    primal : float
        SPEC §1 objective of the returned network.
    lower_bound : float
        A dual lower bound on the optimum (never above it).
    gap : float
        ``primal - lower_bound`` (≥ 0 up to round-off).
    rel_gap : float
        ``gap / max(|primal|, 1e-12)``.
    scope : str
        ``"global"``: the bound holds for the non-convex training problem (every
        activation pattern was in the program); ``"sampled"``: it holds for the convex
        program over the patterns used.
    max_violation : float
        Largest violation of the ReLU cone constraints (0 for gated ReLU).
    n_patterns : int
        Patterns over which dual feasibility was checked.
    """

    primal: float
    lower_bound: float
    gap: float
    rel_gap: float
    scope: str
    max_violation: float = 0.0
    n_patterns: int = 0

    def to_dict(self) -> dict[str, float | str | int]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"primal={self.primal:.6g} lower_bound={self.lower_bound:.6g} "
            f"gap={self.gap:.3g} (rel {self.rel_gap:.2e}, {self.scope}), "
            f"max_violation={self.max_violation:.1e}"
        )


@dataclass
class DualBound:
    lower_bound: float
    scale: float
    dual_norm: float


def _cone_block_bounds(
    op: PatternOperator, G: torch.Tensor, mu: torch.Tensor | None, iters: int,
    enough: float = 0.0, *, residuals: bool = False, multipliers: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Upper bounds on :math:`\\max_{u\\in K_j,\\|u\\|\\le1}\\langle -G_j, u\\rangle` per block.

    Minimizes :math:`\\tfrac12\\|-G + \\mathcal G^\\top \\mu\\|^2` over μ ≥ 0 by projected
    gradient from ``mu``; every iterate gives a valid bound, the best is kept. Stops as
    soon as every block's bound is ``≤ enough`` (smaller bounds would not change the
    caller's lower bound). With ``residuals=True`` also returns, per block, the residual
    :math:`R_j = -G_j + (\\mathcal G^\\top\\mu)_j` whose norm is the bound (μ ≥ 0 for
    every block; used by the vector-output bound); with ``multipliers=True`` also the
    multipliers (n, c, p) of the kept residuals.
    """
    X = op.X
    n, d = X.shape
    c, p = op.c, op.p
    # the iterates are the signed multipliers μ̃ = (2D − 1) ∘ μ: the cone map's adjoint is
    # then one matrix product (no n × c × p sign pass), and the projection onto μ ≥ 0 is
    # one clamp between per-row, per-pattern limits — [0, ∞) where D = 1, (−∞, 0] where
    # D = 0. The updates run in place in three buffers that take turns (letter, n = 4,000,
    # 26 classes: each is 180 MB; the earlier form made ~10 new ones per iteration, and a
    # new array costs its page faults: 30 iterations over 216 blocks took 38 s, now 5)
    Db = (op.D > 0)[:, None, :]  # (n, 1, p)
    inf = torch.tensor(math.inf, dtype=X.dtype, device=X.device)
    lo = torch.where(Db, torch.zeros((), dtype=X.dtype, device=X.device), -inf)
    hi = torch.where(Db, inf, torch.zeros((), dtype=X.dtype, device=X.device))
    S = (2 * op.D - 1)[:, None, :]

    def adjoint(Mt: torch.Tensor) -> torch.Tensor:  # (n, c, p) signed → (c, p, d)
        op.n_rmatvec += 1
        # (Xᵀ M)ᵀ: 1.7× faster than Mᵀ X on the CPU for these thin products (d = 17,
        # c p = 5,616; benchmarks/results/s18_tmm_micro.log)
        return (X.T @ Mt.reshape(n, -1)).T.reshape(c, -1, d)

    def forward(H: torch.Tensor, out: torch.Tensor) -> torch.Tensor:  # X h into out
        op.n_matvec += 1
        torch.matmul(X, H.reshape(-1, d).T, out=out.view(n, -1))
        return out

    mut = torch.zeros(n, c, p, dtype=X.dtype, device=X.device) if mu is None else mu * S
    # step 1/‖X‖² (the cone map of one block has norm ‖X‖)
    step = 1.0 / max(float(torch.linalg.matrix_norm(X, ord=2)) ** 2, 1e-300)
    H = -G + adjoint(mut)
    best = torch.linalg.vector_norm(H, dim=-1)
    # a non-finite multiplier gives no bound: μ = 0 (residual -G) is always valid
    best = torch.where(torch.isfinite(best), best, torch.full_like(best, math.inf))
    R = torch.where(torch.isfinite(best)[..., None], H, -G) if residuals else None
    mu_best = torch.where(torch.isfinite(best)[None], mut, torch.zeros_like(mut)) \
        if multipliers else None
    cf = torch.contiguous_format  # (μ may come in as a strided view)
    mu_prev, t = mut.clone(memory_format=cf), 1.0
    y = mut.clone(memory_format=cf)
    spare = torch.empty_like(y, memory_format=cf) if iters > 0 else y
    # plain bounds (no residuals, no multipliers): the problem is separable by block, and
    # a pattern whose blocks are all ≤ enough is done — once at most half of the iterated
    # patterns are left, the iterations continue on those only (a fit's final certificate
    # ran its 200 iterations over every block for the few that stayed above)
    G_all, best_all, cols = G, best, None
    for _ in range(iters):
        if best.numel() == 0 or float(best.max()) <= enough:
            break
        if R is None and mu_best is None and enough > 0:
            live = (best > enough).any(dim=0)
            if 2 * int(live.sum()) <= live.numel():
                keep = live.nonzero().flatten()
                if cols is None:
                    best_all = best.clone()
                else:
                    best_all[:, cols] = best
                cols = keep if cols is None else cols[keep]
                G, best, lo, hi = G[:, keep], best[:, keep], lo[:, :, keep], hi[:, :, keep]
                y, mu_prev = y[:, :, keep].contiguous(), mu_prev[:, :, keep].contiguous()
                spare = torch.empty_like(y)
        # μ_new = Π(y − step · (2D − 1) ∘ X(−G + Aᵀy)), in signed form
        mu_new = forward(adjoint(y) - G, spare).mul_(-step).add_(y)
        torch.clamp(mu_new, lo, hi, out=mu_new)
        t_new = 0.5 * (1 + math.sqrt(1 + 4 * t * t))
        beta = (t - 1) / t_new
        # y = μ_new + β (μ_new − μ_prev), written into the buffer of y (no longer needed)
        torch.mul(mu_prev, -beta, out=y).add_(mu_new, alpha=1 + beta)
        mu_prev, spare, t = mu_new, mu_prev, t_new
        H = -G + adjoint(mu_new)
        norms = torch.linalg.vector_norm(H, dim=-1)
        better = norms < best  # False for NaN: a non-finite iterate is never kept
        best = torch.where(better, norms, best)
        if R is not None:
            R = torch.where(better[..., None], H, R)
        if mu_best is not None:
            torch.where(better[None], mu_new, mu_best, out=mu_best)
    if cols is not None:
        best_all[:, cols] = best
        best, G = best_all, G_all
    plain = torch.linalg.vector_norm(G, dim=-1)
    worse = ~(best <= plain)
    best = torch.where(worse, plain, best)
    if R is None:
        return best  # (c, p)
    R = torch.where(worse[..., None], -G, R)  # (c, p, d)
    if mu_best is None:
        return best, R
    mu_best.mul_(S)  # back to μ ≥ 0
    return best, R, torch.where(worse[None], torch.zeros_like(mu_best), mu_best)


#: most outputs for which a pattern's maximum over output directions is bounded by branch
#: and bound on the sphere (:func:`_sphere_bounds`: 2^c starting orthants). With 4 (KEEL
#: vehicle) the multiclass fit took 25.6 s instead of 9.9 s for the same certificate
_SPHERE_MAX_OUTPUTS = 3
#: the branch and bound stops when its bound is within this factor of its best value
_SPHERE_TOL = 1e-4
#: most refinement rounds of the branch and bound, and most simplices split per pattern
#: and round (those with the largest bounds)
_SPHERE_ROUNDS = 24
_SPHERE_SPLITS = 4
#: the cone support's barrier method (:func:`_cone_support`): at most this many Newton
#: steps per barrier parameter, fewer once every cone's Newton decrement (over ν) is at
#: most ``_CONE_CENTRED``; ``_CONE_OUTER`` values of ν
_CONE_INNER = 10
_CONE_CENTRED = 1e-7
_CONE_OUTER = 12
#: the line search's candidate steps (fractions of the longest feasible step, at most 1)
_CONE_STEPS = torch.tensor([0.0, 1.0, 0.7, 0.5, 0.3, 0.15, 0.05], dtype=torch.float64)


#: the split spectral bound (:func:`_split_spectral_bounds`): Schatten-p exponents of its
#: continuation, iterations per exponent, step relative to the smoothing's Lipschitz
#: estimate, most cone rows kept per pattern, and how often the exact norm is evaluated
_SPLIT_STAGES = (4, 16, 64, 256)
_SPLIT_ITERS = 100
_SPLIT_STEP = 4.0
_SPLIT_ROWS = 128
_SPLIT_CHECK = 10


def _split_spectral_bounds(X: torch.Tensor, masks: torch.Tensor, M: torch.Tensor,
                           L0: torch.Tensor, *, floor: float = -math.inf) -> torch.Tensor:
    r"""Per pattern, an upper bound on :math:`R_j = \max_{u \in K_j, \|u\| \le 1}
    \|M_j u\|_2` by the best split multipliers.

    For a unit output direction :math:`t = t^+ - t^-` and any :math:`\Lambda_\pm \ge 0`
    (one multiplier per cone row and output), on the cone
    (:math:`A_j u \ge 0`, :math:`A_j = (2D_j - I)X`) :math:`t^\top M_j u \le u^\top
    B_j (t^+; t^-)` with :math:`B_j = [M_j^\top + A_j^\top\Lambda_+,\; -M_j^\top +
    A_j^\top\Lambda_-]` (d × 2c): the added terms are nonnegative. Hence
    :math:`R_j \le \|B_j\|_2` for every such Λ, and the best Λ minimizes a convex
    function. The per-output multipliers (the cone projections of each output's
    direction, ``L0``) are the start; from there accelerated projected gradient on the
    Schatten-p norm (a smooth surrogate of the spectral norm, p raised along
    ``_SPLIT_STAGES``), with the exact spectral norm of the iterate kept every
    ``_SPLIT_CHECK`` steps: every evaluated Λ ≥ 0 gives a valid bound, the smallest is
    returned. Only the cone rows where ``L0`` is largest (at most ``_SPLIT_ROWS`` per
    pattern) carry multipliers — dropping rows (Λ = 0 there) keeps the bound valid.

    On every pattern of small 2-D arrangements (3 and 6 outputs) it is within 0.5 % of
    the largest value attained by sampled neurons, where the per-output residuals side by
    side were up to 10 % above (tests); on digits (n = 500, λ = 1e-3) the certificate's
    gap went 0.20 → 0.04 (BENCHMARKS.md). ``X`` (n, d), ``masks`` (n, k),
    ``M`` (k, c, d), ``L0`` (k, n, 2c) ≥ 0: multipliers for :math:`[\Lambda_+,
    \Lambda_-]`. Returns (k,). Stops early once every bound is at most ``floor``.
    """
    n, d = X.shape
    k, c, _ = M.shape
    m = 2 * c
    if k == 0:
        return X.new_zeros(0)
    r = min(n, _SPLIT_ROWS)
    rows = torch.argsort(L0.sum(2), dim=1, descending=True)[:, :r]  # (k, r)
    S = (2 * masks.to(X.dtype) - 1).T.gather(1, rows)  # (k, r)
    A = S[:, :, None] * X[rows]  # (k, r, d): the kept cone rows, signs folded in
    At = A.transpose(1, 2)
    Base = torch.cat([M.transpose(1, 2), -M.transpose(1, 2)], 2)  # (k, d, 2c)
    L = L0.gather(1, rows[:, :, None].expand(k, r, m)).clamp_min(0)
    best = torch.linalg.matrix_norm(Base + At @ L, ord=2)
    best = torch.where(torch.isfinite(best), best, torch.full_like(best, math.inf))
    best = torch.minimum(best, torch.linalg.matrix_norm(Base, ord=2))  # Λ = 0
    lip = (torch.linalg.matrix_norm(A, ord=2) ** 2).clamp_min(1e-300)[:, None, None]
    active = best > floor
    for pexp in _SPLIT_STAGES:
        act = torch.nonzero(active).flatten()
        if act.numel() == 0:
            break
        Aa, Ata, Ba, la = A[act], At[act], Base[act], lip[act]
        L_prev = Yk = L[act]
        ba = best[act]
        t = 1.0
        for it in range(_SPLIT_ITERS):
            B = Ba + Ata @ Yk
            # the smaller Gram: BᵀB (2c × 2c) or BBᵀ (d × d) share the nonzero eigenvalues
            # (letter, d = 17, 2c = 52: eigh of 17 × 17 instead of 52 × 52)
            small = d < m
            ev, Q = torch.linalg.eigh(B @ B.transpose(1, 2) if small else
                                      B.transpose(1, 2) @ B)
            ev = ev.clamp_min(0)
            top = ev[:, -1:].clamp_min(1e-300)
            rel = ev / top
            norm_p = (rel ** (pexp / 2)).sum(1, keepdim=True) ** (1 / pexp)  # ‖B‖_p / σ₁
            # gradient of ‖B‖_p: B (BᵀB)^{p/2-1} = (BBᵀ)^{p/2-1} B, over ‖B‖_p^{p-1}, in
            # units of σ₁ (p ≥ 4: the zero eigenvalues contribute nothing either way)
            F = (Q * (rel ** (pexp / 2 - 1))[:, None, :]) @ Q.transpose(1, 2)
            Gb = F @ B if small else B @ F
            Gb = Gb / (norm_p ** (pexp - 1) * top.sqrt())[:, :, None]
            step = _SPLIT_STEP * (top.sqrt() * norm_p)[:, :, None] / ((pexp - 1) * la)
            L_new = torch.clamp(Yk - step * (Aa @ Gb), min=0)
            if not bool(torch.isfinite(L_new).all()):
                break  # keep the bounds found so far
            t_new = 0.5 * (1 + math.sqrt(1 + 4 * t * t))
            Yk = L_new + ((t - 1) / t_new) * (L_new - L_prev)
            L_prev, t = L_new, t_new
            if (it + 1) % _SPLIT_CHECK == 0 or it == _SPLIT_ITERS - 1:
                val = torch.linalg.matrix_norm(Ba + Ata @ L_new, ord=2)
                ba = torch.where(val < ba, val, ba)  # (NaN never kept)
        L[act], best[act] = L_prev, ba
        # a pattern at or below the floor cannot matter to the caller: it stops (each
        # pattern's iterates are its own, so the bounds above the floor do not depend
        # on which patterns share the batch — unless an iterate turns non-finite, which
        # stops the whole batch with the valid bounds found so far)
        active = best > floor
    return best


def _cone_support(A: torch.Tensor, g: torch.Tensor, gate: torch.Tensor, *,
                  outer: int = _CONE_OUTER, inner: int = _CONE_INNER, sigma: float = 0.15,
                  centred: float = _CONE_CENTRED) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Bounds on :math:`f_e = \max\{g_e^\top u : A_e u \ge 0, \|u\| \le 1\}` for
    a batch of polyhedral cones :math:`K_e`: returns ``(upper, lower)``, both valid.

    By Moreau's decomposition :math:`f_e = \|\Pi_{K_e}(g_e)\| = \min_{\mu \ge 0}
    \|g_e + A_e^\top\mu\|`. The projection is computed by a barrier path-following
    method in the ``d`` unknowns: for each ν (shrunk by ``sigma``), damped Newton steps with
    a line search on :math:`\tfrac12\|u - g\|^2 - \nu\sum_i \log a_i^\top u` (strictly
    feasible throughout; at most ``inner`` per ν, fewer once every Newton decrement over ν
    is at most ``centred``). Any strictly feasible ``u`` gives the multipliers
    :math:`\mu = \nu / (A u) \ge 0`, hence the upper bound :math:`\|g + A^\top\mu\|`
    (weak duality: :math:`g^\top v \le (g + A^\top\mu)^\top v` for every feasible
    ``v``), and the lower bound :math:`g^\top u / \|u\|` (or 0: ``u = 0`` is feasible).
    At the centre of ν the two differ by :math:`\nu m / \|u\|` (``m`` active rows).
    Against the exact value (NNLS) on 40 random cones each of n = 150–300, d = 5–19 and on
    the cones of a scikit-learn contract fit: upper bounds within 1.3e-6 ‖g‖, lower within
    4e-8 ‖g‖ (the earlier barrier on the ball, six fixed steps per ν: up to 0.66 ‖g‖ off;
    ``benchmarks/results/s17_cone_support_accuracy.log``). ``A`` (E, n,
    d) with the row signs folded in (rows of zeros are ignored), ``g`` (E, d), ``gate``
    (E, d) strictly inside each cone.
    """
    E, n, d = A.shape
    act = (A.abs().sum(-1) > 0).to(A.dtype)
    m = act.sum(1)
    gn = torch.linalg.vector_norm(g, dim=1)
    scale = gn.clamp_min(1e-300)
    u = gate * (scale / torch.linalg.vector_norm(gate, dim=1).clamp_min(1e-300))[:, None]
    upper = gn.clone()  # μ = 0
    lower = torch.zeros_like(gn)
    nu = scale * scale / (m + 1.0)
    eye = torch.eye(d, dtype=A.dtype, device=A.device)
    steps = _CONE_STEPS.to(device=A.device, dtype=A.dtype)

    def rows(u: torch.Tensor) -> torch.Tensor:
        r = (A @ u[:, :, None])[:, :, 0]
        return torch.where(act > 0, r, torch.ones_like(r))

    for _ in range(outer):
        for _ in range(inner):
            r = rows(u)
            w = act / r
            grad = u - g - nu[:, None] * (A.transpose(1, 2) @ w[:, :, None])[:, :, 0]
            Aw = A * w[:, :, None]
            H = eye + nu[:, None, None] * (Aw.transpose(1, 2) @ Aw)
            sol, info = torch.linalg.solve_ex(H, grad[:, :, None])
            du = torch.where((info == 0)[:, None], -sol[:, :, 0], torch.zeros_like(u))
            du = du.nan_to_num(0.0, posinf=0.0, neginf=0.0)
            dec = -(grad * du).sum(1) / nu  # squared Newton decrement of f / ν
            if float(torch.nan_to_num(dec, nan=0.0).max()) <= centred:
                break
            dr = (A @ du[:, :, None])[:, :, 0]
            ratio = torch.where((dr < 0) & (act > 0), -r / dr.clamp_max(-1e-300),
                                torch.full_like(r, math.inf)).amin(1)
            # a line search over a grid of steps up to 0.99 of the way to the boundary
            # (the rows are linear in the step, the quadratic term quadratic); "no step"
            # is a candidate, so f never increases
            ts = torch.clamp(0.99 * ratio, max=1.0)[:, None] * steps  # (E, K)
            rk = r[:, :, None] + ts[:, None, :] * dr[:, :, None]  # (E, n, K)
            res = u - g
            fk = (ts * (res * du).sum(1, keepdim=True) + 0.5 * ts * ts * (du * du).sum(
                1, keepdim=True) - nu[:, None] * (act[:, :, None] * torch.log(
                    rk.clamp_min(1e-300))).sum(1))
            fk = torch.where(torch.isfinite(fk), fk, torch.full_like(fk, math.inf))
            step = torch.gather(ts, 1, fk.argmin(1, keepdim=True))[:, 0]
            u = u + step[:, None] * du
        r = rows(u)
        mu = nu[:, None] * act / r
        cand = torch.linalg.vector_norm(g + (A.transpose(1, 2) @ mu[:, :, None])[:, :, 0],
                                        dim=1)
        un = torch.linalg.vector_norm(u, dim=1)
        low = (g * u).sum(1) / un.clamp_min(1e-300)
        feasible = (r > 0).all(1) & torch.isfinite(cand)  # else μ may be negative: no bound
        upper = torch.where(feasible, torch.minimum(upper, cand), upper)
        lower = torch.where(feasible & torch.isfinite(low), torch.maximum(lower, low), lower)
        nu = nu * sigma
    return upper, lower


def _sphere_bounds(X: torch.Tensor, masks: torch.Tensor, gates: torch.Tensor,
                   Gu: torch.Tensor, *, floor: float, joint: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Per pattern ``j``, an upper bound on :math:`R_j = \max_{\|t\| = 1} f_j(t)`,
    :math:`f_j(t) = \max_{u \in K_j, \|u\| \le 1} \sum_k t_k G_{kj}^\top u`
    (:math:`= \max_{u \in K_j, \|u\| \le 1}\|V^\top D_j X u\|`), by branch and bound
    on the sphere of output directions.

    ``f_j`` is convex, nonnegative and positively homogeneous (a support function), so on
    the cone of a spherical simplex with unit vertices :math:`t_1 … t_c`, any unit
    :math:`t = \sum_k \alpha_k t_k` (α ≥ 0) has :math:`f_j(t) \le \sum_k\alpha_k f_j(t_k)
    \le \max_k f_j(t_k) / m`, where :math:`m = \min_k t_k^\top \hat p > 0` for the unit
    centroid direction :math:`\hat p` (a separating plane: :math:`\sum_k \alpha_k \le
    1/m`). Starting from the :math:`2^c` orthants, the simplices whose bound exceeds
    ``max(floor, best value found) · (1 + _SPHERE_TOL)`` are split at the midpoint of their
    longest edge (at most ``_SPHERE_SPLITS`` per round, the largest first), and every new
    vertex is bounded by :func:`_cone_support`. The result is
    the largest simplex bound: valid however early it stops. Near a flat maximum the bound
    falls only like θ²/2 with the simplices' size θ, so within the round budget it ends
    within ~0.1–0.3 % of a value it attains on small random programs (it is tight to
    ``_SPHERE_TOL`` only where that takes few rounds). ``masks`` (n, k), ``gates``
    (k, d) strictly inside their cones, ``Gu`` (c, k, d). ``joint``: one level for every
    pattern, the largest best value of any (only the maximum over patterns matters to a
    certificate, and it is at least that value): the other patterns stop as soon as their
    bound is below it (KEEL contraceptive: 19.1 s → 3.3 s in the branch and bound, same
    certificate; benchmarks/results/s17_sphere_budget.log). Each round's simplices cover
    the sphere, so the smallest round bound of a pattern is kept. Returns the bounds (k,),
    the best values found (k,; lower bounds on :math:`R_j`, from feasible ``u``) and
    their directions (k, c).
    """
    c, k, d = Gu.shape
    dt, dev = X.dtype, X.device
    S = 2 * masks.to(dt) - 1  # (n, k)
    eye = torch.eye(c, dtype=dt, device=dev)
    verts = [torch.cat([eye, -eye]) for _ in range(k)]
    simp = [[tuple(a + c * ((o >> a) & 1) for a in range(c)) for o in range(2**c)]
            for _ in range(k)]

    def evaluate(owner: list[int], T: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        j = torch.tensor(owner, device=dev)
        A = S.T[j][:, :, None] * X[None]  # (E, n, d)
        g = torch.einsum("ec,ced->ed", T, Gu[:, j])
        return _cone_support(A, g, gates[j])

    owner = [j for j in range(k) for _ in range(2 * c)]
    up, lo = evaluate(owner, torch.cat(verts))
    fv = list(up.split(2 * c))
    best = [float(x.max()) for x in lo.split(2 * c)]
    best_t = [verts[j][int(torch.argmax(x))] for j, x in enumerate(lo.split(2 * c))]
    bound = [math.inf] * k
    for _ in range(_SPHERE_ROUNDS + 1):
        new_owner, new_t, splits = [], [], []
        level = max([floor, *best]) if joint else floor
        for j in range(k):
            idx = torch.tensor(simp[j], device=dev)
            T = verts[j][idx]  # (S, c, c)
            p = T.sum(1)
            p = p / torch.linalg.vector_norm(p, dim=1, keepdim=True)
            m = (T @ p[:, :, None])[:, :, 0].amin(1)
            U = torch.where(m > 0, fv[j][idx].amax(1) / m.clamp_min(1e-300),
                            torch.full_like(m, math.inf))
            # every round's simplices cover the sphere: the smallest round bound holds
            bound[j] = min(bound[j], float(U.max()))
            target = max(level, best[j]) * (1 + _SPHERE_TOL)
            over = torch.nonzero(U > target).flatten()
            over = over[torch.argsort(U[over], descending=True)[:_SPHERE_SPLITS]]
            for si in over.tolist():
                s = simp[j][si]
                dots = T[si] @ T[si].T
                a, b = divmod(int(torch.argmin(dots + 3 * eye).item()), c)  # longest edge
                mid = T[si, a] + T[si, b]
                new_owner.append(j)
                new_t.append(mid / torch.linalg.vector_norm(mid))
                splits.append((j, si, a, b))
        if not splits or _ == _SPHERE_ROUNDS:
            break
        up, lo = evaluate(new_owner, torch.stack(new_t))
        drop: dict[int, set[int]] = {}
        for (j, si, a, b), t, f, low in zip(splits, new_t, up.tolist(), lo.tolist(),
                                             strict=True):
            vid = verts[j].shape[0]
            verts[j] = torch.cat([verts[j], t[None]])
            fv[j] = torch.cat([fv[j], fv[j].new_tensor([f])])
            if low > best[j]:
                best[j], best_t[j] = low, t
            s = list(simp[j][si])
            s1, s2 = list(s), list(s)
            s1[a], s2[b] = vid, vid
            simp[j] += [tuple(s1), tuple(s2)]
            drop.setdefault(j, set()).add(si)
        for j, gone in drop.items():
            simp[j] = [s for i, s in enumerate(simp[j]) if i not in gone]
    if k == 0:
        return X.new_zeros(0), X.new_zeros(0), X.new_zeros(0, c)
    return (torch.tensor(bound, dtype=dt, device=dev), torch.tensor(best, dtype=dt, device=dev),
            torch.stack(best_t))


def _vector_cone_bounds(op: PatternOperator, G: torch.Tensor, mu: torch.Tensor | None,
                        iters: int, chunk: int | None = None, *, floor: float = -math.inf,
                        gates: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    r"""Per pattern, an upper bound on :math:`\max_{u\in K_j,\|u\|\le 1}\|V^\top D_j X u\|_2`
    (ReLU blocks laid out ``[u blocks, v blocks]``, ``G = 𝒜ᵀV`` of shape (c, 2q, d)).

    The smallest of three valid bounds: the spectral norm of :math:`G_{u,j}` (the cone
    dropped); the ℓ2 norm over outputs of the per-output cone bounds; and the spectral
    norm of the u- and v-blocks' cone residuals side by side, :math:`\|[R_u\, R_v]\|_2`
    (d × 2c: for a unit ``t`` the multiplier :math:`\sum_k t_k^+ \mu_{k,u} + t_k^-
    \mu_{k,v} \ge 0` leaves the residual :math:`[R_u R_v](t^+; t^-)`). Patterns whose
    bound can still set the maximum then get the same bound with those multipliers
    optimized jointly (:func:`_split_spectral_bounds`; digits, n = 500, λ = 1e-3: the
    certificate's relative gap 0.20 → 0.04).

    Only the maximum over patterns matters to the certificate, so the cone iterations run
    lazily: patterns in decreasing order of the cheap cone-free bound, ``chunk`` at a time,
    until the next pattern's cheap bound is at most the largest refined bound so far, or
    at most ``floor`` (a level below which the caller does not care): it and every later
    one can then not raise the maximum. Above ``floor`` the maximum is the one of refining
    every pattern — the blocks' iterations are independent — at a fraction of the cost
    (iris, wine: 28–43 % of the patterns skipped). ``chunk=None``: a quarter of the
    patterns (at least 32). Returns the bounds (q,) — cheap ones where not refined — and
    how many patterns were refined.
    """
    half = op.p // 2
    cheap = block_spectral_norms(G[:, :half])
    per = cheap.clone()
    if half == 0:
        return per, 0
    size = max(32, -(-half // 4)) if chunk is None else max(1, int(chunk))
    order = torch.argsort(cheap, descending=True)
    top, refined = floor, 0
    for s in range(0, half, size):
        idx = order[s:s + size]
        if float(cheap[idx[0]]) <= top:
            break  # no pattern left can raise the maximum
        cols = torch.cat([idx, idx + half])
        sub = PatternOperator(op.X, op.D[:, cols] > 0, op.sign[cols], op.c)
        blocks, R, mus = _cone_block_bounds(
            sub, G[:, cols], None if mu is None else mu[:, :, cols], iters, residuals=True,
            multipliers=True)
        k = idx.numel()
        p = torch.minimum(torch.linalg.vector_norm(
            torch.maximum(blocks[:, :k], blocks[:, k:]), dim=0), cheap[idx])
        p = torch.minimum(p, block_spectral_norms(torch.cat([R[:, :k], R[:, k:]], dim=0)))
        todo = p > max(top, floor)
        if bool(todo.any()):
            # the per-output multipliers side by side are rarely the best split: optimize
            # them jointly (digits, λ = 1e-3: the certificate's gap 0.20 → 0.04)
            sel = torch.nonzero(todo).flatten()
            L0 = torch.cat([mus[:, :, :k], mus[:, :, k:]], dim=1)[:, :, sel].permute(2, 0, 1)
            p[sel] = torch.minimum(p[sel], _split_spectral_bounds(
                op.X, op.D[:, idx[sel]] > 0, -G[:, idx[sel]].permute(1, 0, 2), L0,
                floor=max(top, floor)))
        if gates is not None and op.c <= _SPHERE_MAX_OUTPUTS:
            # the relaxation above over-estimates the maximum over directions (iris at a
            # stationary point: 1.11 λ where the best neuron found is 1.0002 λ): bound it
            # by branch and bound where it can set the maximum
            X, Dk = op.X, op.D[:, idx] > 0
            Sk = 2 * Dk.to(X.dtype) - 1
            strict = ((Sk * (X @ gates[idx].T)) > 0).all(dim=0)
            todo = strict & (p > max(top, floor))
            if bool(todo.any()):
                sel = torch.nonzero(todo).flatten()
                p[sel] = torch.minimum(p[sel], _sphere_bounds(
                    X, Dk[:, sel], gates[idx][sel], G[:, idx][:, sel],
                    floor=max(top, floor), joint=True)[0])
        per[idx] = p
        refined += k
        top = max(top, float(p.max()))
    return per, refined


def _maximize_scale(loss: Loss, V: torch.Tensor, Y: torch.Tensor, s_max: float) -> tuple[
    float, float
]:
    """Maximize the concave :math:`s \\mapsto -L^*(sV)` over ``[0, s_max]``."""
    V, Y = V.double(), Y.double()  # the conjugate's terms cancel: evaluate in float64
    if isinstance(loss, SquaredLoss):
        n = V.shape[0]
        vy = float((V * Y).sum())
        vv = float((V * V).sum())
        s = min(max(-vy / (n * vv), 0.0), s_max) if vv > 0 else 0.0
        return s, -float(loss.conjugate(s * V, Y))
    s_max = min(s_max, 1.0)

    def phi(s: float) -> float:
        val = float(loss.conjugate(s * V, Y))
        return -val if math.isfinite(val) else -math.inf

    lo, hi = 0.0, s_max
    gr = (math.sqrt(5) - 1) / 2
    a, b = hi - gr * (hi - lo), lo + gr * (hi - lo)
    fa, fb = phi(a), phi(b)
    for _ in range(60):
        if fa < fb:
            lo, a, fa = a, b, fb
            b = lo + gr * (hi - lo)
            fb = phi(b)
        else:
            hi, b, fb = b, a, fa
            a = hi - gr * (hi - lo)
            fa = phi(a)
    cands = [(phi(s), s) for s in (0.0, s_max, a, b)]
    val, s = max(cands)
    return s, val


def dual_bound(
    loss: Loss,
    Y: torch.Tensor,
    Z: torch.Tensor,
    op: PatternOperator,
    lam: float,
    *,
    fit_bias: bool,
    constrained: bool,
    mu: torch.Tensor | None = None,
    combine_outputs: bool = False,
    cone_iters: int = 30,
    gates: torch.Tensor | None = None,
) -> DualBound:
    """Lower bound on the program's optimum from the outputs ``Z`` (n × c) of a fit.

    ``combine_outputs`` (c > 1) bounds :math:`\\|V^\\top (Xu)_+\\|_2` instead of each output
    separately, which makes the bound valid for networks whose neurons feed every output
    (SPEC §5 vector output). Gated programs (the nuclear-norm program,
    :class:`convexnn.penalties.GroupNuclear`): the spectral norm
    :math:`\\|(D_j X)^\\top V\\|_2` of each pattern. ReLU programs (blocks laid out as
    ``[u blocks, v blocks]``): per pattern, the smallest of three valid bounds on
    :math:`\\max_{u \\in K_j, \\|u\\| \\le 1} \\|V^\\top D_j X u\\|_2`
    (:func:`_vector_cone_bounds`, which refines only the patterns that can set the
    maximum); with ``gates`` (one strictly interior direction per block, ReLU layout)
    and at most ``_SPHERE_MAX_OUTPUTS`` outputs, the maximum over output directions is
    then bounded by branch and bound on the sphere (:func:`_sphere_bounds`).
    """
    with torch.no_grad():
        vector = combine_outputs and op.c > 1
        if Z.dtype != torch.float64 or op.X.dtype != torch.float64:
            # certificates are computed in float64. In float32 the vector-output ReLU bound
            # lost almost everything (wine, iris: relative gaps 0.82 / 0.86 against
            # 0.005 / 0.07 for the same networks: cone projections, split multipliers, the
            # sphere's barrier), and every bound loses ~eps·Σ|x v| / λ in the cancelling
            # sums 𝒜ᵀV (a float32 gated fit on diabetes, λ = 1e-3, stalled at a relative
            # gap of ~6e-5). It is computed once per fit.
            Z, Y, op = Z.double(), Y.double(), op.to(torch.float64)
            mu = None if mu is None else mu.double()
            gates = None if gates is None else gates.double()
        V = loss.grad(Z, Y)
        if fit_bias:
            V = loss.center(V, Y)
        G = op.rmatvec(V)  # (c, p, d)
        if constrained:
            # the bound's scale is min(λ/ν, s*) with s* the best scale without the dual
            # constraint (capped at 1 except for the squared loss): block bounds below
            # λ/s* cannot raise it, so the cone iterations stop there
            s_free, _ = _maximize_scale(loss, V, Y, math.inf if isinstance(
                loss, SquaredLoss) else 1.0)
            enough = lam / s_free if s_free > 0 else math.inf
            if vector:
                blocks = _vector_cone_bounds(
                    op, G, mu, cone_iters, floor=enough,
                    gates=None if gates is None else gates[: op.p // 2])[0]
            else:
                blocks = _cone_block_bounds(op, G, mu, cone_iters, enough)
        elif vector:
            blocks = block_spectral_norms(G)[None, :]
        else:
            blocks = torch.linalg.vector_norm(G, dim=-1)
        nu = float(blocks.max()) if blocks.numel() else 0.0
        s_max = lam / nu if nu > 0 else 1e12
        s, val = _maximize_scale(loss, V, Y, s_max)
    return DualBound(val, s, nu)


def make_certificate(
    primal: float,
    lower_bound: float,
    *,
    exact: bool,
    max_violation: float = 0.0,
    n_patterns: int = 0,
) -> Certificate:
    """Assemble a :class:`Certificate` (scope ``"global"`` iff ``exact``)."""
    gap = primal - lower_bound
    return Certificate(
        primal=float(primal),
        lower_bound=float(lower_bound),
        gap=float(gap),
        rel_gap=float(gap / max(abs(primal), 1e-12)),
        scope="global" if exact else "sampled",
        max_violation=float(max_violation),
        n_patterns=int(n_patterns),
    )
