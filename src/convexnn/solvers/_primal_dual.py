r"""A primal-dual interior-point method for the restricted convex programs.

The program over ``B = c p`` neuron blocks, in epigraph form,

.. math::

    \min_{W, t, b}\; F = L(\mathcal A W + \mathbf 1 b^\top) + \lambda \sum_j t_j
    \quad\text{s.t.}\quad \|w_j\|_2 \le t_j,\qquad r_j = (2D_j - I) X w_j \ge 0
    \text{ (ReLU only)},

is solved along the central path of the barrier
:math:`-\nu\sum_j\log(t_j^2-\|w_j\|^2) - \nu\sum\log r`. Two choices make it fast:

* the epigraph variables are minimized out in closed form: for each block,
  :math:`\psi_\nu(w) = \min_t \lambda t - \nu\log(t^2 - \|w\|^2)` is a smooth strictly
  convex stand-in for :math:`\lambda\|w\|` (:func:`_smoothed_norm`), so no step is ever
  cut short by a second-order cone, and the unknowns are ``W`` (and ``b``) only;
* the ``n B`` linear cone constraints are handled primal-dual (multipliers ``z``,
  perturbed complementarity :math:`r\circ z = \nu`). Eliminating ``dz`` leaves
  :math:`K\,dx = -\nabla M_\nu`, with

  .. math:: K = \nabla^2 L + \nabla^2\psi_\nu + A^\top \mathrm{diag}(z/r) A

  and :math:`M_\nu = L + \sum_j \psi_\nu(w_j) - \nu\sum\log r` the primal merit, so
  ``dx`` is a descent direction and an Armijo search on :math:`M_\nu` is well defined
  for any smooth loss. Primal and dual take separate steps (fraction to the boundary
  0.99 each; the primal's then cut by the Armijo search; ``z`` kept within a factor
  ``1e10`` of the centre ``ν/r``); ν shrinks by ``sigma`` after every long primal step.

``K`` is block diagonal (one ``d×d`` block per neuron) plus the loss part
:math:`J^\top H J` of rank ``≤ n c``. It is factored densely when the blocks are few
(cost :math:`(B d)^3/3`), and through the Woodbury identity otherwise (one output:
:math:`n^2 B d + n^3/3`): a step costs the smaller of the two. The multipliers ``z``
are the cone multipliers μ that the certificate uses. The gap measure is
:math:`r^\top z + 2B\nu` (each smoothed norm is a barrier of degree 2). ReLU solutions
are finished on their active face by :func:`convexnn.solvers._support_polish.polish_support`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import torch

from convexnn.certificates import _cone_block_bounds
from convexnn.operators import PatternOperator
from convexnn.solvers._apg import SolverResult
from convexnn.solvers._problem import ConvexProblem
from convexnn.solvers._support_polish import polish_support
from convexnn.utils import lstsq

__all__ = ["finish", "newton_cost", "primal_dual"]

log = logging.getLogger(__name__)

#: largest number of entries of the per-block Woodbury factors kept at once
_WOODBURY_MAX_ENTRIES = 60_000_000
#: fraction of a warm start moved towards the cones' interior directions
_PUSH = 0.05
#: factor on the starting barrier weight for warm starts that carry multipliers
_WARM_NU = 1e-2
#: the cone multipliers z step separately from the primal (fraction to the boundary of
#: z alone) and are then kept within a factor _KAPPA_Z of the centre ν / r. With one
#: common step, z's boundary cut the primal steps to α ≈ 0.1–0.3 while the method centred
#: from a seed: breast cancer squared 87 → 69 Newton steps, logistic 119 → 97, diabetes
#: 111 → 92, same optima (2-core CPU, session 9)
_KAPPA_Z = 1e10
#: the support polish may spend this multiple of the interior point's Newton flops (at
#: least _POLISH_MIN_FLOPS): KEEL movement_libras (n = 120, d = 91) spent 132 s in 64
#: polish rounds, one row joining the face per round, after a 7 s interior point, and
#: then gave up
_POLISH_WORK_FACTOR = 2.0
_POLISH_MIN_FLOPS = 2e10
#: a polished point whose dual point exceeds the dual constraints by more than this
#: (relative to λ) is polished again without dropping small blocks early
_POLISH_EXCESS = 1e-8
#: before that second polish, the multipliers of the exceeding patterns get this many
#: cone iterations (as the certificate's): on breast cancer, squared loss, the first
#: polish's point exceeded by 2.7e-5 with the interior point's multipliers of blocks at
#: zero, and the retry (6 s of a 31 s fit) found the same objective to 1e-16
_EXCESS_REFINE_ITERS = 200
#: a warm start without multipliers whose gap is known (``gap0``: a seed with its dual
#: bound) starts with the barrier weight at that gap (at least this fraction of its
#: objective) instead of its whole objective. The bound at a seed is loose, which is as
#: well: starting lower, nearer the seed's true gap, cut the first steps short. Newton
#: steps with gap0 dropped / as passed / × 0.1 / × 0.01: diabetes 92 / 91 / 141 / 275,
#: breast cancer logistic 97 / 93 / 95 / 103, squared 69 / 64 / 77 / 118
#: (benchmarks/results/s20_gap0_probe.log)
_GAP0_FLOOR = 1e-4
#: most extra centring steps spent making the dual point feasible after convergence
_MAX_POLISH = 8
#: path points kept for a later solve of a larger program (``extra["path_points"]``, one
#: of them passed back as ``start``): for each level, the first centred iterate whose
#: barrier gap is at most that fraction of the objective. A restart from the polished
#: solution (pushed inside the cones) spent ~15–19 of its ~35–50 Newton steps re-centring
#: at its first barrier weight (breast cancer, grow="thorough":
#: benchmarks/results/s22_pd_trace_base.log)
PATH_POINT_LEVELS = (1e-2, 1e-3, 1e-4)
#: largest number of entries of the cached row outer products ``x_i x_iᵀ`` (upper triangle)
_OUTER_MAX_ENTRIES = 25_000_000
#: rows per chunk when the outer products are formed on the fly
_OUTER_CHUNK_ENTRIES = 4_000_000


#: the Woodbury capacitance ``I + V Vᵀ`` (ReLU, one output) — and, in the dense form with
#: a non-constant loss Hessian (logistic), ``Jᵀ H J`` — is formed in single precision, its
#: solves refined in float64 against the exact Newton matrix, where that product has at
#: least this many flops (``n² q d`` / ``n k²``; it is then most of an interior-point
#: step: breast cancer 2.8e9, 3,000 rows of magic ~1.7e10). Below, the refinement's extra
#: small products cost more than they save (KEEL sets of 120 rows, ~5e7: interior point
#: 1.2–1.5× slower)
_SINGLE_CAPACITANCE_FLOPS = 5e8
#: refinement (conjugate gradients since session 20): at most _REFINE_MAX rounds (Woodbury
#: form), done at a relative residual of _REFINE_TOL (or after three rounds without a lower
#: residual: round-off of the exact product, ~1e-10 on breast cancer); a residual above
#: _REFINE_ACCEPT then means the capacitance is rebuilt in float64
#: for the rest of the solve (on breast cancer, squared, its condition number grows from
#: ~5e4 to 1e6–1e8 late in the path; switching back and forth took 130 Newton steps instead
#: of 69: benchmarks/results/s19_capacitance_refine_probe.log)
_REFINE_MAX = 10
_REFINE_TOL = 1e-12
_REFINE_ACCEPT = 1e-8
#: a solve from an exact float64 factor that is still checked (general Woodbury form) is
#: refined only when its relative residual is above this
_CHECK_TOL = 1e-9
#: dense mode with a single-precision ``Jᵀ H J``: the one formed at an earlier step is kept
#: (only the rest of the Newton matrix, exact, is formed and factored again) while
#: conjugate gradients against the exact matrix need at most _STALE_ROUNDS rounds; a solve
#: with it may take up to _STALE_MAX_ROUNDS before it is formed afresh
_STALE_ROUNDS = 12
_STALE_MAX_ROUNDS = 40
#: rows of the diagonal tiles of :func:`symmetric_gram`
_GRAM_LEAF = 128


def symmetric_gram(V: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``V Vᵀ`` by tiles: the diagonal tiles recursively, each off-diagonal tile once and
    mirrored (about 3/4 of the flops of one ``V @ V.T`` at each level)."""
    m = V.shape[0]
    if out is None:
        out = torch.empty(m, m, dtype=V.dtype, device=V.device)
    if m <= _GRAM_LEAF:
        out.copy_(V @ V.T)
        return out
    h = m // 2
    symmetric_gram(V[:h], out[:h, :h])
    symmetric_gram(V[h:], out[h:, h:])
    out[h:, :h] = V[h:] @ V[:h].T
    out[:h, h:] = out[h:, :h].T
    return out


def weighted_block_grams(X: torch.Tensor, wgt: torch.Tensor, cache: dict) -> torch.Tensor:
    r"""``G_b = Σ_i wgt[i, b] x_i x_iᵀ`` for every column ``b`` of ``wgt``: shape (B, d, d).

    One matrix product :math:`\mathrm{wgt}^\top O` with the rows' outer products
    :math:`O_{i,(k,l)} = x_{ik} x_{il}` over the upper triangle ``k ≤ l`` (``d(d+1)/2``
    columns): half the flops of ``B`` separate ``XᵀDX`` products and no ``B × d × n``
    temporary. ``O`` is cached in ``cache`` when small enough, else formed by row chunks.
    """
    n, d = X.shape
    B = wgt.shape[1]
    iu = cache.get("triu")
    if iu is None:
        iu = cache["triu"] = torch.triu_indices(d, d, device=X.device)
    T = iu.shape[1]
    if n * T <= _OUTER_MAX_ENTRIES:
        O = cache.get("outer")
        if O is None:
            O = cache["outer"] = X[:, iu[0]] * X[:, iu[1]]
        tri = wgt.T @ O
    else:
        step = max(1, _OUTER_CHUNK_ENTRIES // T)
        tri = torch.zeros(B, T, dtype=X.dtype, device=X.device)
        for s in range(0, n, step):
            Xc = X[s:s + step]
            tri += wgt[s:s + step].T @ (Xc[:, iu[0]] * Xc[:, iu[1]])
    G = torch.zeros(B, d, d, dtype=X.dtype, device=X.device)
    G[:, iu[0], iu[1]] = tri
    G[:, iu[1], iu[0]] = tri
    return G


def _design_gram(X: torch.Tensor, SD: torch.Tensor, h: torch.Tensor | None = None
                 ) -> torch.Tensor:
    r"""``Jᵀ diag(h) J`` for the design ``J = [σ_1 D_1 X … σ_p D_p X]`` (n × p d), by row
    chunks of at most ``_OUTER_CHUNK_ENTRIES`` entries of ``J`` (never all of ``J``:
    at n = 10⁵ with 100 blocks of 11 features it alone is 880 MB)."""
    n, d = X.shape
    p = SD.shape[1]
    G = torch.zeros(p * d, p * d, dtype=X.dtype, device=X.device)
    step = max(1, _OUTER_CHUNK_ENTRIES // max(1, p * d))
    nonneg = h is None or bool((h >= 0).all())
    for s in range(0, n, step):
        Jc = (SD[s:s + step, :, None] * X[s:s + step, None, :]).reshape(-1, p * d)
        if nonneg:  # Jᵀ diag(h) J = (√h ∘ J)ᵀ (√h ∘ J): the symmetric product
            Jh = Jc if h is None else Jc * h[s:s + step, None].sqrt()
            G += symmetric_gram(Jh.T.contiguous())
        else:
            G += (Jc * h[s:s + step, None]).T @ Jc
    return G


def _add_square(K: torch.Tensor, idx: torch.Tensor, G: torch.Tensor) -> None:
    """``K[idx, idx] += G`` in place; a slice when ``idx`` is a contiguous range."""
    a = int(idx[0])
    if bool((idx == torch.arange(a, a + idx.numel(), device=idx.device)).all()):
        K[a:a + idx.numel(), a:a + idx.numel()] += G
    else:
        K[idx[:, None], idx[None, :]] += G


def newton_cost(n: int, c: int, p: int, d: int, *, gated: bool = False) -> tuple[float, str]:
    """Flops of one Newton step and the factorization used (``"dense"``/``"woodbury"``).

    ``gated``: no cone constraints, so every block's Hessian is a multiple of the identity
    plus a rank-one term and the Woodbury capacitance costs ``2 n² p`` instead of
    ``n² p d`` (:meth:`_Newton._init_woodbury_gated`).
    """
    k = c * p * d
    dense = (n * (c * p * d) ** 2 if c > 1 else 0.0) + k**3 / 3 + c * p * n * d * d
    if c == 1:
        wood = (2 * n * n * p if gated else n * n * k + p * n * d * d) + n**3 / 3
        if wood < dense:
            return wood, "woodbury"
    return dense, "dense"


class _Newton:
    """Solves ``K dx = g`` for the structure above (one factorization per step)."""

    def __init__(self, problem: ConvexProblem, X: torch.Tensor, SD: torch.Tensor,
                 Hl: torch.Tensor, Bd: torch.Tensor, gram: dict,
                 iso: tuple[torch.Tensor, torch.Tensor, float] | None = None) -> None:
        self.n, self.d = X.shape
        self.c, self.p = problem.op.c, problem.op.p
        self.fb = problem.fit_bias
        self.X, self.SD, self.Hl = X, SD, Hl
        B, e = Bd.shape[0], Bd.shape[1]
        self.B, self.e = B, e
        _, self.mode = newton_cost(self.n, self.c, self.p, self.d, gated=iso is not None)
        if self.mode == "woodbury" and iso is None and B * e * self.n > _WOODBURY_MAX_ENTRIES:
            self.mode = "dense"
        self.iso = iso
        self.single = False  # a single-precision factor (see _init_woodbury, _init_dense)
        # solves from an exact float64 factor that are still checked against the exact
        # matrix and refined (the general Woodbury form: see _init_woodbury)
        self.check = False
        self.stale = False  # dense: an earlier step's Jᵀ H J in the factor (_loss_gram)
        self.refine_rounds = 0
        self.gram = gram
        if self.mode == "woodbury" and iso is not None:
            self._init_woodbury_gated(iso, gram)
        elif self.mode == "woodbury":
            self._init_woodbury(Bd, gram)
        else:
            self._init_dense(problem, Bd, gram)

    # ------------------------------------------------------------------ dense
    def _init_dense(self, problem: ConvexProblem, Bd: torch.Tensor, gram: dict) -> None:
        n, d, c, p, B, e = self.n, self.d, self.c, self.p, self.B, self.e
        X, SD, Hl = self.X, self.SD, self.Hl
        nv = B * e + (c if self.fb else 0)
        K = torch.zeros(nv, nv, dtype=X.dtype, device=X.device)
        wi = (torch.arange(B, device=X.device)[:, None] * e
              + torch.arange(d, device=X.device)[None, :])  # (B, d) w-indices
        single_parts = None
        if problem.loss.name == "squared":
            G = gram.get("G")
            if G is None:
                G = _design_gram(X, SD) / n
                gram["G"] = G
            for a in range(c):
                idx = wi[a * p:(a + 1) * p].reshape(-1)
                K[idx[:, None], idx[None, :]] += G
        else:
            k = p * d
            single = (c == 1 and X.dtype == torch.float64
                      and n * k * k >= _SINGLE_CAPACITANCE_FLOPS)
            for a in range(c):
                ia = wi[a * p:(a + 1) * p].reshape(-1)
                for a2 in range(c):
                    h = Hl[:, a, a2]
                    if not bool((h != 0).any()):
                        continue
                    ib = wi[a2 * p:(a2 + 1) * p].reshape(-1)
                    if single:  # Jᵀ H J (n k² flops, most of the step): split mode
                        single_parts = (ia, h)
                        continue  # added once the exact rest of K is kept
                    K[ia[:, None], ib[None, :]] += _design_gram(X, SD, h)
        ar = torch.arange(B, device=X.device)
        blk = (ar[:, None] * e + torch.arange(e, device=X.device)[None, :])
        K[blk[:, :, None], blk[:, None, :]] += Bd
        if self.fb and single_parts is None:
            # Jᵀ Hl with J = [σ_j D_j X]_j: block j is Xᵀ (σ_j D_j ∘ Hl)
            Hf = Hl.reshape(n, c * c)
            Hwb = torch.stack([((SD * Hf[:, k:k + 1]).T @ X).reshape(p * d)
                               for k in range(c * c)], 1).reshape(p * d, c, c)
            for a in range(c):
                idx = wi[a * p:(a + 1) * p].reshape(-1)
                K[idx, B * e:] = Hwb[:, a, :]
                K[B * e:, idx] = Hwb[:, a, :].T
            K[B * e:, B * e:] = Hl.sum(0)
        K = 0.5 * (K + K.T)
        if single_parts is not None:
            # split mode, K = Kr + [J 1]ᵀ H [J 1]: the rest Kr exact; the loss part in the
            # factor from single precision and/or an earlier step's H (_loss_gram), applied
            # exactly by the refinement (_kdense)
            ia, h = single_parts
            ridge = 1e-13 * float(K.diagonal().abs().max())
            K.diagonal().add_(ridge)
            self._dense_parts = (K, ia, h)
            if not self._factor_split(gram):
                self._rebuild_dense()  # lost definiteness in single precision: exact at once
            return
        ridge = 1e-13 * float(K.diagonal().abs().max())
        K.diagonal().add_(ridge)
        self._factor_dense(K)

    def _loss_gram(self, h: torch.Tensor, gram: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h̃, Jᵀ diag(h̃) J)`` for the factor of the split dense mode: those of an
        earlier step (``gram["loss_gram"]``) while its solves took at most
        ``_STALE_ROUNDS`` refinement rounds, else ``h̃ = h`` and the product formed afresh:
        in single precision, or in float64 once single precision has failed in this solve
        (``gram["dense64"]``). ``self.stale`` says whether it is an earlier step's."""
        kept = gram.get("loss_gram")
        self.stale = kept is not None and not gram.get("loss_gram_refresh")
        if self.stale:
            return kept
        if gram.get("dense64"):
            G = _design_gram(self.X, self.SD, h)
        else:
            if "X32" not in gram:
                gram["X32"], gram["SD32"] = self.X.float(), self.SD.float()
            G = _design_gram(gram["X32"], gram["SD32"], h.float())
        gram["loss_gram"] = (h, 0.5 * (G + G.T).to(self.X.dtype))
        gram["loss_gram_refresh"] = False
        return gram["loss_gram"]

    def _factor_split(self, gram: dict) -> bool:
        """Factor ``Kr + [J 1]ᵀ H̃ [J 1]`` (:meth:`_loss_gram`); an earlier step's ``H̃``
        that leaves it indefinite is replaced by this step's. ``self.single`` (refine the
        solves) unless the factor is exact: this step's ``H`` in float64. False when it
        is not positive definite."""
        h = self._dense_parts[2]
        L, info = torch.linalg.cholesky_ex(self._with_loss(*self._loss_gram(h, gram)))
        if int(info) != 0 and self.stale:  # formed afresh at this step's h
            gram["loss_gram_refresh"] = True
            L, info = torch.linalg.cholesky_ex(self._with_loss(*self._loss_gram(h, gram)))
        if int(info) != 0:
            return False
        self.L, self.K = L, None
        self.single = self.stale or not gram.get("dense64")
        return True

    def _with_loss(self, h: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        """``Kr + [J 1]ᵀ diag(h) [J 1]`` with ``G = Jᵀ diag(h) J`` (one output)."""
        Kr, ia, _ = self._dense_parts
        K = Kr.clone()
        _add_square(K, ia, G)
        if self.fb:
            hwb = ((self.SD * h[:, None]).T @ self.X).reshape(-1)
            K[ia, -1] += hwb
            K[-1, ia] += hwb
            K[-1, -1] += h.sum()
        return K

    def _factor_dense(self, K: torch.Tensor) -> None:
        """Cholesky of the dense Newton matrix; kept whole for least squares when round-off
        has cost it its definiteness."""
        try:
            self.L, self.K = torch.linalg.cholesky(K), None
        except RuntimeError:
            self.L, self.K = None, K

    def _kdense(self, x: torch.Tensor) -> torch.Tensor:
        """The exact dense Newton matrix times ``x`` (single-precision mode): the kept rest
        plus ``[J 1]ᵀ (h ∘ [J 1] x)``."""
        Kr, ia, h = self._dense_parts
        y = Kr @ x
        xw = x[ia].reshape(self.p, self.d)
        Jx = ((self.X @ xw.T) * self.SD).sum(1)
        if self.fb:
            Jx = Jx + x[-1]
        t = h * Jx
        y[ia] += ((self.SD * t[:, None]).T @ self.X).reshape(-1)
        if self.fb:
            y[-1] += t.sum()
        return y

    def _rebuild_dense(self) -> None:
        """The dense Newton matrix exactly, with ``Jᵀ H J`` formed in float64 — for this
        step, and as the (possibly stale) loss part of every later step's factor."""
        self.gram["dense64"] = True
        self.gram["loss_gram_refresh"] = True
        if not self._factor_split(self.gram):  # round-off: least squares on the matrix
            h = self._dense_parts[2]
            self._factor_dense(self._with_loss(h, self.gram["loss_gram"][1]))
            self.single = False

    def _solve_dense_once(self, g: torch.Tensor) -> torch.Tensor:
        if self.L is not None:
            return torch.cholesky_solve(g[:, None], self.L)[:, 0]
        return lstsq(self.K, g[:, None])[:, 0]

    def _solve_dense(self, g: torch.Tensor) -> torch.Tensor:
        """``K⁻¹ g``. Split mode: conjugate gradients on the exact matrix, preconditioned by
        the factor (a round costs ~2 n k flops, forming ``Jᵀ H J`` n k²: many are allowed).
        When they cannot reach the residual, ``Jᵀ H J`` is formed afresh at this step's
        ``H`` (if the factor held an earlier step's), then in float64 (if it was single
        precision, for the rest of the solve)."""
        x = self._refined(g, self._solve_dense_once, self._kdense, _STALE_MAX_ROUNDS)
        if self.stale:  # refresh for the next step once it costs more rounds than it saves
            self.gram["loss_gram_refresh"] = self.refine_rounds > _STALE_ROUNDS
        if x is not None:
            return x
        if self.stale:
            log.debug("stale loss Hessian not accurate enough; formed afresh")
            self.gram["loss_gram_refresh"] = True
            if self._factor_split(self.gram):
                x = self._refined(g, self._solve_dense_once, self._kdense, _STALE_MAX_ROUNDS)
                if x is not None:
                    return x
        log.debug("single-precision Newton matrix not accurate enough; float64 from here")
        self._rebuild_dense()
        x = self._refined(g, self._solve_dense_once, self._kdense, _STALE_MAX_ROUNDS)
        return x if x is not None else self._solve_dense_once(g)

    def _refined(self, r: torch.Tensor, once: Callable[[torch.Tensor], torch.Tensor],
                 matvec: Callable[[torch.Tensor], torch.Tensor],
                 max_iter: int = _REFINE_MAX) -> torch.Tensor | None:
        r"""``once(r)``, refined in float64 when the factor is approximate (single precision,
        or a stale loss Hessian): conjugate gradients on the exact matrix (``matvec``)
        preconditioned by the factor (``once``), from ``once(r)``, up to ``max_iter``
        rounds or down to a relative residual of ``_REFINE_TOL`` (or until three rounds
        in a row no longer lower it: round-off of the exact product, ~1e-10 on breast
        cancer). ``None`` when the best residual is then above ``_REFINE_ACCEPT``: the
        factor is too far from the matrix. The rounds taken are kept in
        ``self.refine_rounds``, the best solve in ``self.best``.

        An exact factor whose solves are checked (``self.check``, the general Woodbury
        form) is refined the same way, but only when its residual is above
        ``_CHECK_TOL``."""
        x = once(r)
        self.refine_rounds = 0
        self.best = x
        if not (self.single or self.check):
            return x
        rn = max(float(torch.linalg.vector_norm(r)), 1e-300)
        res = r - matvec(x)
        best = float(torch.linalg.vector_norm(res)) / rn
        best_x, since = x, 0
        if best <= (_REFINE_TOL if self.single else _CHECK_TOL):
            return x
        zr = once(res)
        direction = zr
        rz = float((res * zr).sum())
        for k in range(1, max_iter + 1):
            Kd = matvec(direction)
            curv = float((direction * Kd).sum())
            if not curv > 0:  # round-off: the exact matrix is positive definite
                break
            step = rz / curv
            x = x + step * direction
            res = res - step * Kd
            e = float(torch.linalg.vector_norm(res)) / rn
            self.refine_rounds = k
            if e < best:
                best, best_x, since = e, x, 0
            else:
                since += 1
            if e <= _REFINE_TOL or since >= 3:
                break
            zr = once(res)
            rz_new = float((res * zr).sum())
            direction = zr + (rz_new / rz) * direction
            rz = rz_new
        if self.refine_rounds:  # the recursive residual drifts: check the true one
            best = float(torch.linalg.vector_norm(r - matvec(best_x))) / rn
        self.best = best_x
        return best_x if best <= _REFINE_ACCEPT else None

    # --------------------------------------------------------------- woodbury
    def _init_woodbury(self, Bd: torch.Tensor, gram: dict) -> None:
        r"""Woodbury with general blocks: ``K_ww = blkdiag(Bd) + Uᵀ diag(h) U``.

        The capacitance is :math:`C = I + \sum_j a_j\circ(X M_j X^\top)\circ a_j^\top`
        with :math:`M_j = [Bd_j^{-1}]_{dd}` and :math:`a_j = \sqrt h\circ D_j`: the sign
        :math:`\sigma_j` cancels, so blocks on the same pattern (the ``u`` and ``v``
        blocks of a ReLU program) share one term with :math:`M = M_u + M_v`. With
        :math:`M = L L^\top` (Cholesky, ``q`` small ``d × d`` factors) it is
        :math:`C = I + V V^\top`, :math:`V = [a_1\circ X L_1, …, a_q\circ X L_q]`
        (``n × q d``) over the ``q`` distinct patterns: one symmetric product of
        ``n² q d`` flops (:func:`symmetric_gram`), in single precision with float64
        refinement of the solves (:meth:`_solve_ww`).

        In float64 too the solves are checked against the exact matrix and refined: the
        blocks' curvatures spread over ~20 orders of magnitude late in a path with many
        more blocks than rows (the smoothed norm's along ``w_j``, the rows' ``z/r``), and
        ``y − Bd⁻¹ Vᵀ u`` then cancels. Unchecked, 850 of the 975 solves of a KEEL banana
        fit (n = 120, d = 3, grow="thorough") had relative residuals above 1e-6, some
        non-finite; its line searches failed and most interior points stopped after a
        few steps (benchmarks/results/s24_woodbury_residuals.log).
        """
        X, SD = self.X, self.SD
        n, d = X.shape
        self.check = True
        h = self.Hl[:, 0, 0].clamp_min(0)
        self.h = h
        Bd = 0.5 * (Bd + Bd.transpose(1, 2))
        ridge = 1e-13 * Bd.diagonal(dim1=1, dim2=2).abs().amax(dim=1)
        Bd = Bd + ridge[:, None, None] * torch.eye(self.e, dtype=X.dtype, device=X.device)
        self.Lb = torch.linalg.cholesky(Bd)  # (B, e, e)
        sq = h.sqrt()
        groups = gram.get("pattern_groups")
        if groups is None:  # blocks with the same pattern (columns of |SD|): computed once
            uniq, inv = torch.unique((SD != 0).T.to(torch.uint8), dim=0, return_inverse=True)
            groups = gram["pattern_groups"] = (uniq.T.to(X.dtype), inv)
        Dq, inv = groups  # (n, q) distinct patterns, block → pattern
        q = Dq.shape[1]
        Mb = torch.cholesky_inverse(self.Lb)[:, :d, :d]  # (B, d, d)
        M = torch.zeros(q, d, d, dtype=X.dtype, device=X.device).index_add_(0, inv, Mb)
        A = Dq * sq[:, None]  # (n, q)
        self.sq = sq
        self.Bd = Bd
        Lm, info = torch.linalg.cholesky_ex(M)  # M_j = L_j L_jᵀ (positive definite)
        if bool((info != 0).any()):  # round-off: the general product T Uᵀ, exact
            T = (X @ M).transpose(0, 1) * A[:, :, None]  # (n, q, d): a_j ∘ X M_j
            U = A[:, :, None] * X[:, None, :]  # (n, q, d): a_j ∘ X
            self._V_parts = None
            self._factor_capacitance(T.reshape(n, q * d) @ U.reshape(n, q * d).T, False)
        else:  # C − I = V Vᵀ with V = [a_j ∘ X L_j]_j, one (n, q d) matrix
            Lcat = Lm.permute(1, 0, 2).reshape(d, q * d)  # [L_1 … L_q]
            single = (X.dtype == torch.float64 and n * n * q * d >= _SINGLE_CAPACITANCE_FLOPS
                      and not gram.get("capacitance64"))
            self._V_parts = (Lcat, A)
            if single:  # V itself in single precision (its rounding is refined away too)
                X32 = gram.get("X32")
                if X32 is None:
                    X32 = gram["X32"] = X.float()
                V = (X32 @ Lcat.float()).view(n, q, d).mul_(A.float()[:, :, None])
            else:
                V = (X @ Lcat).view(n, q, d).mul_(A[:, :, None])
            self._factor_capacitance(symmetric_gram(V.view(n, q * d)), single)
        if self.fb:  # K_wb = Uᵀ h, K_bb = Σ h: Schur complement on the bias
            kwb = torch.zeros(self.B, self.e, dtype=X.dtype, device=X.device)
            kwb[:, : self.d] = (SD * h[:, None]).T @ X
            self.kwb = kwb
            self._bias_schur()

    def _init_woodbury_gated(self, iso: tuple[torch.Tensor, torch.Tensor, float],
                             gram: dict) -> None:
        r"""Woodbury without cones: each block's Hessian is that of :math:`\psi_\nu`,

        .. math:: \nabla^2\psi_\nu(w)^{-1} = (t^*/\lambda) I + w w^\top/\nu

        (Sherman–Morrison), so with :math:`a_j = \sqrt h \circ \sigma_j D_j` the
        capacitance is :math:`I + (X X^\top)\circ(A\,\mathrm{diag}(t^*/\lambda)A^\top)
        + \nu^{-1}\hat W\hat W^\top`, :math:`\hat w_j = a_j\circ X w_j`: ``2 n² p``
        flops instead of ``n² p d``.
        """
        X, SD = self.X, self.SD
        tl, Wf, nu = iso  # t*/λ (B,), blocks (B, d), ν
        self.tl, self.Wf, self.inv_nu = tl, Wf, 1.0 / nu
        h = self.Hl[:, 0, 0].clamp_min(0)
        self.h = h
        self.sq = sq = h.sqrt()
        xx = gram.get("XXt")
        if xx is None:
            xx = gram["XXt"] = X @ X.T
        A = SD * sq[:, None]  # (n, B)
        What = A * (X @ Wf.T)  # (n, B)
        C = xx * ((A * tl) @ A.T) + (What * self.inv_nu) @ What.T
        C.diagonal().add_(1.0)
        self.Lc = torch.linalg.cholesky(0.5 * (C + C.T))
        if self.fb:
            kwb = (SD * h[:, None]).T @ X  # (B, d)
            self.kwb = kwb
            self._bias_schur()

    def _V(self, y: torch.Tensor) -> torch.Tensor:
        """V y for y (B, e): Σ_j sq ∘ σ_j D_j X y_j, shape (n,)."""
        return self.sq * ((self.X @ y[:, : self.d].T) * self.SD).sum(1)

    def _Vt(self, u: torch.Tensor) -> torch.Tensor:
        """Vᵀ u for u (n,): shape (B, e)."""
        out = torch.zeros(self.B, self.e, dtype=u.dtype, device=u.device)
        out[:, : self.d] = (self.SD * (self.sq * u)[:, None]).T @ self.X
        return out

    def _bd_solve(self, r: torch.Tensor) -> torch.Tensor:
        if self.iso is not None:
            return self.tl[:, None] * r + self.Wf * ((self.Wf * r).sum(1) * self.inv_nu)[:, None]
        return torch.cholesky_solve(r[:, :, None], self.Lb)[:, :, 0]

    def _factor_capacitance(self, VVt: torch.Tensor, single: bool) -> None:
        """Factor ``C = I + V Vᵀ`` (``VVt`` in single precision when ``single``: its
        solves are then refined against the exact matrix, see :meth:`_solve_ww`)."""
        C = VVt.to(self.X.dtype)
        C = 0.5 * (C + C.T)
        C.diagonal().add_(1.0)
        self.Lc = torch.linalg.cholesky(C)
        self.single = single

    def _kww(self, x: torch.Tensor) -> torch.Tensor:
        """``K_ww x = blkdiag(Bd) x + Vᵀ V x`` for x (B, e), exact (no factor)."""
        return (self.Bd @ x[:, :, None])[:, :, 0] + self._Vt(self._V(x))

    def _solve_ww_once(self, r: torch.Tensor) -> torch.Tensor:
        y = self._bd_solve(r)
        u = torch.cholesky_solve(self._V(y)[:, None], self.Lc)[:, 0]
        return y - self._bd_solve(self._Vt(u))

    def _bias_schur(self) -> None:
        r"""The bias's Schur complement :math:`\sum h - k_{wb}^\top K_{ww}^{-1}k_{wb}`,
        kept at least ``1e-12 Σh`` (it is positive, but it cancels when the blocks can all
        but absorb a constant: computed, it came out negative at the end of a degenerate
        path, and the bias step then overflowed; the bordered solves are refined against
        the exact matrix, see :meth:`solve`)."""
        hs = float(self.h.sum())
        self.kinv_kwb = self._solve_ww(self.kwb)
        self.schur = max(hs - float((self.kwb * self.kinv_kwb).sum()), 1e-12 * hs, 1e-300)

    def _solve_ww(self, r: torch.Tensor) -> torch.Tensor:
        """``K_ww⁻¹ r``; with a single-precision capacitance refined (:meth:`_refined`),
        and where refinement fails the capacitance is rebuilt in float64, for this and
        every later step of the solve."""
        x = self._refined(r, self._solve_ww_once, self._kww)
        if x is not None:
            return x
        if not self.single:  # the factor is already float64: the best refined solve
            return self.best
        self._rebuild_capacitance()
        x = self._refined(r, self._solve_ww_once, self._kww)
        return x if x is not None else self.best

    def _rebuild_capacitance(self) -> None:
        """The capacitance in float64 (single precision could not be refined to the
        residual), for this and every later step of the solve."""
        log.debug("single-precision capacitance not accurate enough; float64 from here")
        self.gram["capacitance64"] = True
        assert self._V_parts is not None
        Lcat, A = self._V_parts
        n, q = A.shape
        V = (self.X @ Lcat).view(n, q, self.d).mul_(A[:, :, None]).view(n, q * self.d)
        self._factor_capacitance(symmetric_gram(V), False)

    def _bordered_once(self, g: torch.Tensor) -> torch.Tensor:
        """One solve of the system with the bias (block elimination on its Schur
        complement), from the factor."""
        gw = g[: self.B * self.e].reshape(self.B, self.e)
        y = self._solve_ww_once(gw)
        xb = (float(g[-1]) - float((self.kwb * y).sum())) / self.schur
        return torch.cat([(y - xb * self.kinv_kwb).reshape(-1), g.new_tensor([xb])])

    def _k_bordered(self, x: torch.Tensor) -> torch.Tensor:
        """The exact Newton matrix with the bias times ``x``."""
        xw = x[: self.B * self.e].reshape(self.B, self.e)
        xb = float(x[-1])
        top = self._kww(xw) + xb * self.kwb
        bot = float((self.kwb * xw).sum()) + float(self.h.sum()) * xb
        return torch.cat([top.reshape(-1), x.new_tensor([bot])])

    def solve(self, g: torch.Tensor) -> torch.Tensor:
        if self.mode == "dense":
            return self._solve_dense(g)
        if not self.fb:
            return self._solve_ww(g[: self.B * self.e].reshape(self.B, self.e)).reshape(-1)
        if not (self.single or self.check):  # gated: the exact elimination
            return self._bordered_once(g)
        # refined as a whole (the Schur complement's own error is corrected too)
        x = self._refined(g, self._bordered_once, self._k_bordered)
        if x is None and self.single:
            self._rebuild_capacitance()
            self._bias_schur()
            x = self._refined(g, self._bordered_once, self._k_bordered)
        return x if x is not None else self.best


def _smoothed_norm(W: torch.Tensor, lam: float, nu: float) -> tuple[
        torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The SOC barrier with ``t`` minimized out, per block.

    :math:`\psi_\nu(w) = \min_t \lambda t - \nu\log(t^2 - \|w\|^2)`, attained at
    :math:`t^* = (\nu + s)/\lambda`, :math:`s = \sqrt{\nu^2 + \lambda^2\|w\|^2}`:
    value :math:`\lambda t^* - \nu\log(2\nu t^*/\lambda)`, gradient
    :math:`\lambda w / t^*`, Hessian :math:`(\lambda/t^*) I - \lambda^2 w w^\top/(t^{*2} s)`.
    Returns ``(value (…,), t* (…,), s (…,))``.
    """
    w2 = (W**2).sum(-1)
    s = torch.sqrt(nu * nu + lam * lam * w2)
    ts = (nu + s) / lam
    val = lam * ts - nu * torch.log(2 * nu * ts / lam)
    return val, ts, s


def primal_dual(
    problem: ConvexProblem,
    W0: torch.Tensor | None = None,
    b0: torch.Tensor | None = None,
    mu0: torch.Tensor | None = None,
    *,
    tol: float = 1e-8,
    max_iter: int = 200,
    sigma: float = 0.15,
    interior: torch.Tensor | None = None,
    step_callback: Callable[[dict], Any] | None = None,
    polish_if: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], bool] | None = None,
    gap0: float | None = None,
    start: tuple[torch.Tensor, torch.Tensor, torch.Tensor, float] | None = None,
) -> SolverResult:
    """Solve a restricted program by the primal-dual interior-point method (float64).

    The SOC barrier of each block is minimized over its epigraph variable in closed form
    (:func:`_smoothed_norm`), so a Newton step is limited only by the linear cone
    constraints; those are handled primal-dual.

    Parameters
    ----------
    problem : ConvexProblem
        The program (``problem.gates`` are strictly interior directions of the ReLU
        cones and are required when ``problem.constrained``).
    W0, b0 : tensor, optional
        Warm start (moved strictly inside the cones).
    mu0 : tensor, optional
        Multipliers of a previous solution: the barrier weight then starts smaller.
    tol : float
        Relative accuracy: stop when the barrier's duality measure is below
        ``tol · |F|`` after a near-full Newton step.
    max_iter : int
        Newton steps.
    sigma : float
        Factor on the barrier weight ν after a long step.
    step_callback : callable, optional
        Called after every Newton step with ``{"newton_step", "primal", "gap_estimate",
        "barrier"}`` (``primal``: the objective of the current interior, feasible point),
        and once more after a successful support polish (``"phase": "polish"``).
    polish_if : callable, optional
        ``polish_if(W, b, z) -> bool`` on the unpolished interior point (float64): the
        support polish runs only when it returns True (a working set that will grow
        anyway skips it; see :func:`finish`).
    gap0 : float, optional
        An upper bound on the suboptimality of the warm start ``W0`` (without ``mu0``):
        the barrier weight then starts at ``gap0 / m`` (``m`` barrier terms) rather than
        ``|F0| / m`` (see ``_GAP0_FLOOR``).
    start : (W, b, z, ν), optional
        ReLU: a point of the central path of a smaller program over some of these blocks
        (one of its ``extra["path_points"]``, laid out over these blocks, zero on the others): the
        method starts there, at barrier weight ν, instead of from ``W0`` (blocks that are
        not strictly inside their cones — the new ones — start at a small multiple of
        their interior direction, with multipliers ``ν / r``).

    Returns
    -------
    SolverResult
        ``extra``: ``mu`` (n, c, p) cone multipliers (ReLU), ``violation``,
        ``barrier_gap``, ``mode`` (``"dense"`` or ``"woodbury"``), ``path_points`` (ReLU:
        ``{level: (W, b, z, ν)}``, the first centred iterate with a barrier gap of at most
        ``level`` relative, for the levels of ``PATH_POINT_LEVELS`` the path passed).
    """
    if interior is None:
        interior = problem.gates
    op = problem.op
    X = op.X.double()
    n, d = X.shape
    c, p = op.c, op.p
    B = c * p
    SD = op.SD.double()  # σ_j D_j  (n, p)
    S = 2 * op.D.double() - 1  # (n, p)
    Y = problem.Y.double()
    lam = problem.lam
    loss = problem.loss
    fb = problem.fit_bias
    cons = problem.constrained
    dev = X.device
    f64 = torch.float64
    eye = torch.eye(d, dtype=f64, device=dev)

    W = torch.zeros(c, p, d, dtype=f64, device=dev) if W0 is None else W0.double().clone()
    b = torch.zeros(c, dtype=f64, device=dev) if b0 is None else b0.double().clone()
    if not fb:
        b = torch.zeros(c, dtype=f64, device=dev)
    if cons:
        if interior is None:
            raise ValueError("primal_dual needs interior directions for the ReLU cones")
        G = interior.double()
        G = G / torch.linalg.vector_norm(G, dim=1, keepdim=True).clamp_min(1e-300)
        if not bool(((S * (X @ G.T)) > 0).all()):
            raise ValueError("some gates are not strictly inside their cones")
        if start is not None:
            W, b = start[0].double().clone(), start[1].double().clone()
            if not fb:
                b = torch.zeros(c, dtype=f64, device=dev)
        wn = torch.linalg.vector_norm(W, dim=-1)
        scale = 1e-3 * (1.0 + (float(wn.max()) if W.numel() else 0.0))
        if start is None:
            W = (1 - _PUSH) * W + scale * G[None]
        else:  # only the blocks not strictly inside (new ones) move in
            inside = (S[:, None, :] * torch.einsum("nd,cpd->ncp", X, W) > 0).all(dim=0)
            W = torch.where(inside[:, :, None], W, W + scale * G[None])

    def outputs(W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        pre = torch.einsum("nd,cpd->ncp", X, W)
        return (pre * SD[:, None, :]).sum(-1) + b

    def cone(W: torch.Tensor) -> torch.Tensor:  # (n, c, p)
        return S[:, None, :] * torch.einsum("nd,cpd->ncp", X, W)

    m_lin = n * B if cons else 0
    m = m_lin + 2 * B
    Z = outputs(W, b)
    F0 = float(loss.value(Z, Y)) + lam * float(torch.linalg.vector_norm(W, dim=-1).sum())
    nu = max(abs(F0), 1e-8) / m
    warm = mu0 is not None and W0 is not None and bool((mu0 > 0).any())
    if start is not None and cons:
        nu = float(start[3])
    elif warm:  # from a previous interior-point solution: start closer to the end of the path
        nu *= _WARM_NU
    elif gap0 is not None and W0 is not None and math.isfinite(gap0):
        # a start whose suboptimality is known to be at most gap0 (a seed and its dual
        # bound): the barrier's total weight m ν starts there rather than at |F0|
        nu = min(nu, max(gap0, _GAP0_FLOOR * abs(F0), 1e-300) / m)
    r = cone(W) if cons else None
    z = nu / r if r is not None else None
    if start is not None and z is not None:
        z0 = start[2].double().reshape(z.shape)
        z = torch.where(z0 > 0, z0, z)
    elif warm and z is not None and mu0 is not None:
        z = torch.maximum(z, mu0.double().reshape(z.shape))
    path_points: dict[float, tuple] = {}
    def dual_excess(W: torch.Tensor, b: torch.Tensor, z: torch.Tensor | None) -> float:
        return _dual_excess(problem, X, SD, S, W, b, z)

    gram: dict = {}
    polish, last_excess = 0, math.inf
    best: tuple = ()
    it = 0
    converged = False
    mode = "dense"
    alpha = 0.0
    def line_merit(Z: torch.Tensor, Wt: torch.Tensor, rt: torch.Tensor | None,
                   nu: float) -> float:
        val = float(loss.value(Z, Y)) + float(_smoothed_norm(Wt, lam, nu)[0].sum())
        if rt is not None:
            logs = float(torch.log(rt).sum())  # nan or -inf outside the cones
            if not math.isfinite(logs):
                return math.inf
            val -= nu * logs
        return val

    SDc = SD[:, None, :]
    Sc = S[:, None, :]
    interrupted = False
    try:
        while it < max_iter:
            it += 1
            # preactivations X w_j are linear in W: the outputs, the cone values and their
            # changes along the Newton direction all come from two products per step
            P = torch.einsum("nd,cpd->ncp", X, W)
            Z = (P * SDc).sum(-1) + b
            if cons:
                r = Sc * P
            Vg = loss.grad(Z, Y)  # (n, c)
            Hl = loss.hessian(Z, Y)
            _, ts, sq = _smoothed_norm(W, lam, nu)
            coef = Vg[:, :, None] * SDc  # (n, c, p)
            if cons:
                assert r is not None and z is not None
                coef = coef - nu * Sc / r
            gW = (coef.reshape(n, B).T @ X).reshape(c, p, d) + lam * W / ts[:, :, None]
            gb = Vg.sum(0)
            Wf, tf, sf = W.reshape(B, d), ts.reshape(B), sq.reshape(B)
            Bd = (lam / tf)[:, None, None] * eye - (lam * lam / (tf * tf * sf))[:, None, None] * (
                Wf[:, :, None] * Wf[:, None, :])
            dr = None
            if cons:
                assert r is not None and z is not None
                wgt = (z / r).reshape(n, B)
                Bd = Bd + weighted_block_grams(X, wgt, gram)
            g = gW.reshape(-1)
            if fb:
                g = torch.cat([g, gb])
            try:
                newton = _Newton(problem, X, SD, Hl, Bd, gram,
                                 None if cons else (tf / lam, Wf, nu))
                mode = newton.mode
                step = -newton.solve(g)
            except RuntimeError as err:  # torch.linalg.LinAlgError: a factor lost definiteness
                # (round-off near the end of the path); the iterate is strictly feasible and
                # its objective is known: stop here, unconverged, and let the caller judge it
                log.debug("pd %d: Newton system not factorable (%s); stopping", it, err)
                break
            dec2 = float(-(g * step).sum())
            dW = step[: B * d].reshape(c, p, d)
            db = step[B * d:] if fb else torch.zeros_like(b)
            dP = torch.einsum("nd,cpd->ncp", X, dW)
            dZ = (dP * SDc).sum(-1) + db
            alpha = 1.0
            dz = None
            if cons:
                assert r is not None and z is not None
                dr = Sc * dP
                q = float((dr / r).min())  # fraction to the boundary, r > 0
                if q < 0:
                    alpha = min(alpha, 0.99 / -q)
                alpha_b = alpha
                dz = (nu - z * (r + dr)) / r  # from z r + z dr + r dz = ν
                qz = float((dz / z).min())
                # the multipliers take their own step: they only scale the Newton matrix (any
                # z > 0 keeps it positive definite, so dx stays a descent direction of M_ν)
                alpha_d = 1.0 if qz >= 0 else min(1.0, 0.99 / -qz)
            M0 = line_merit(Z, W, r if cons else None, nu)
            while alpha > 1e-12:
                Wn = W + alpha * dW
                rn = r + alpha * dr if cons and r is not None and dr is not None else None
                if line_merit(Z + alpha * dZ, Wn, rn, nu) <= M0 - 1e-4 * alpha * dec2:
                    break
                alpha *= 0.5
            if alpha <= 1e-12:  # no decrease along the direction (round-off, or a poor solve)
                log.debug("pd %d: line search failed (decrement %.2e, mode %s); stopping", it,
                          dec2, mode)
                break
            W, b = Wn, b + alpha * db
            Zn = Z + alpha * dZ
            if cons:
                assert dz is not None and z is not None
                assert rn is not None
                # safeguard: each z r within a factor _KAPPA_Z of ν (as IPOPT's κ_Σ)
                zc = nu / rn
                z = torch.minimum(torch.maximum(z + alpha_d * dz, zc / _KAPPA_Z), zc * _KAPPA_Z)
                r = rn
            F = float(loss.value(Zn, Y)) + lam * float(
                torch.linalg.vector_norm(W, dim=-1).sum())
            comp = float((r * z).sum()) if cons and r is not None and z is not None else 0.0
            gap_est = comp + 2 * B * nu
            log.debug("pd %d F=%.10g nu=%.2e alpha=%.3f dec2=%.2e comp=%.2e %s%s rounds %d "
                      "boundary %.3f", it,
                      F, nu, alpha, dec2, comp, mode, " (stale)" if newton.stale else "",
                      newton.refine_rounds, alpha_b if cons else 1.0)
            if step_callback is not None:
                step_callback({"newton_step": it, "primal": F, "gap_estimate": gap_est,
                               "barrier": nu})
            if gap_est <= tol * max(abs(F), 1e-8) and alpha >= 0.9 and dec2 <= 1e-3 * max(
                    abs(F), 1e-8):
                # the primal is accurate; the dual point ∇L(Z) is only as accurate as the
                # square root of that: centre further (ν fixed) until it is dual feasible
                excess = dual_excess(W, b, z)
                log.debug("pd %d dual excess %.2e", it, excess)
                if excess < last_excess:
                    best = (W, b, z, r)
                if excess <= 0.5 * tol or polish >= _MAX_POLISH or excess >= 0.7 * last_excess:
                    W, b, z, r = best  # the most dual-feasible of the centred iterates
                    converged = True
                    break
                polish += 1
                last_excess = min(excess, last_excess)
                continue
            if alpha >= 0.9:  # a long step: close enough to the path, move along it
                for level in PATH_POINT_LEVELS if cons else ():
                    if level not in path_points and gap_est <= level * abs(F):
                        path_points[level] = (W, b, z, nu)
                nu = max(sigma * min(nu, gap_est / m), 1e-3 * nu)
    except KeyboardInterrupt:  # Ctrl-C: the last iterate is strictly feasible; keep it
        interrupted = True
        log.info("pd %d: interrupted; returning the current feasible iterate", it)
    if interrupted:  # no support polish: the user asked to stop
        res = finish(problem, X, SD, S, W, b, z if cons else None, it, False, step_callback,
                     mode=mode, barrier_gap=2 * B * nu, polish_if=lambda *a: False)
        res.interrupted = True
        return res
    return finish(problem, X, SD, S, W, b, z if cons else None, it, converged,
                  step_callback, ipm_flops=it * newton_cost(n, c, p, d)[0], mode=mode,
                  barrier_gap=2 * B * nu, polish_if=polish_if, path_points=path_points)


def _dual_excess(problem: ConvexProblem, X: torch.Tensor, SD: torch.Tensor,
                 S: torch.Tensor | None, W: torch.Tensor, b: torch.Tensor,
                 z: torch.Tensor | None, *, refine_iters: int = 0) -> float:
    """``max_j ‖(Aᵀ∇L)_j − (2D_j − I) X z_j‖ / λ − 1`` (float64 inputs): the dual
    infeasibility of the point ``(∇L(Z), z)`` that the certificate uses.

    With ``refine_iters`` (ReLU), the multipliers of the patterns that exceed the bound
    are first improved by that many cone iterations, as the certificate does
    (:func:`convexnn.certificates._cone_block_bounds`): the support polish leaves the
    blocks at zero with the interior point's multipliers, which can violate the bound by
    far more than the best multipliers for the polished point do.
    """
    loss, Y = problem.loss, problem.Y.double()
    Z = (torch.einsum("nd,cpd->ncp", X, W) * SD[:, None, :]).sum(-1) + b
    V = loss.grad(Z, Y)
    if problem.fit_bias:
        V = loss.center(V, Y)
    G = torch.einsum("nc,np,nd->cpd", V, SD, X)
    Gd = G if z is None or S is None else G - torch.einsum("ncp,np,nd->cpd", z, S, X)
    nrm = torch.linalg.vector_norm(Gd, dim=-1)
    if not nrm.numel():
        return 0.0
    excess = float(nrm.max()) / problem.lam - 1.0
    if refine_iters > 0 and z is not None and S is not None and excess > _POLISH_EXCESS:
        js = (nrm > problem.lam * (1 + _POLISH_EXCESS)).any(dim=0).nonzero().flatten()
        sub = PatternOperator(X, S[:, js] > 0, problem.op.sign[js].to(X.dtype), problem.op.c)
        bounds = _cone_block_bounds(sub, G[:, js], z[:, :, js], refine_iters)
        nrm[:, js] = torch.minimum(nrm[:, js], bounds)
        excess = float(nrm.max()) / problem.lam - 1.0
    return excess


def finish(problem: ConvexProblem, X: torch.Tensor, SD: torch.Tensor, S: torch.Tensor | None,
           W: torch.Tensor, b: torch.Tensor, z: torch.Tensor | None, it: int,
           converged: bool, step_callback: Callable[[dict], Any] | None, *,
           ipm_flops: float = math.inf,
           polish_if: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], bool] | None = None,
           **extra: Any) -> SolverResult:
    """Package an interior-point solution (float64 inputs): ReLU solutions are first
    polished on the face the interior point has found (support and tight rows), whose
    exact optimum gives an accurate dual point, hence a tight certificate; the unpolished
    point is kept as a second dual candidate (``extra["ipm_Z"]``, ``extra["ipm_mu"]``).
    ``z``: the cone multipliers (None for gated programs). The polish may spend
    ``_POLISH_WORK_FACTOR × ipm_flops`` (at least ``_POLISH_MIN_FLOPS``); past that the
    interior point is returned as it is (its certificate is then ~``tol``). ``polish_if``
    (optional predicate on ``W, b, z``) skips the polish when it returns False: a
    working-set round whose interior point already shows violating blocks outside the
    set will be solved again, so polishing it is wasted."""
    loss, Y, lam, fb = problem.loss, problem.Y.double(), problem.lam, problem.fit_bias
    dt_out = problem.op.X.dtype

    def outputs(W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (torch.einsum("nd,cpd->ncp", X, W) * SD[:, None, :]).sum(-1) + b

    polished = None
    ipm_point = None
    interrupted = False
    try:
        if z is not None and S is not None and W.numel() and (
                polish_if is None or polish_if(W, b, z)):
            F_ipm = float(loss.value(outputs(W, b), Y)) + lam * float(
                torch.linalg.vector_norm(W, dim=-1).sum())
            budget = max(_POLISH_MIN_FLOPS, _POLISH_WORK_FACTOR * ipm_flops)
            pol = polish_support(loss, X, SD, S, Y, lam, W, b, z, fit_bias=fb, work_budget=budget)
            if pol is not None and pol.objective <= F_ipm + 1e-10 * abs(F_ipm) and _dual_excess(
                    problem, X, SD, S, pol.W, pol.b, pol.z,
                    refine_iters=_EXCESS_REFINE_ITERS) > _POLISH_EXCESS:
                # a small block left the face that its optimum needs (its dual constraint is
                # violated at the polished point: KEEL page-blocks0 at 0.001·λ_max certified
                # 8.8e-6 instead of 4.5e-13): once more, only negligible blocks leaving
                retry = polish_support(loss, X, SD, S, Y, lam, W, b, z, fit_bias=fb,
                                       work_budget=budget, drop_small=0.0)
                if retry is not None and retry.objective <= F_ipm + 1e-10 * abs(F_ipm):
                    pol = retry
            if pol is not None and pol.objective <= F_ipm + 1e-10 * abs(F_ipm):
                log.debug("polish: F %.12g -> %.12g in %d rounds, %d Newton steps", F_ipm,
                          pol.objective, pol.rounds, pol.newton_steps)
                ipm_point = (outputs(W, b), z)
                W, b, z = pol.W, pol.b, pol.z
                polished = pol
                if step_callback is not None:
                    step_callback({"newton_step": it + pol.newton_steps, "primal": pol.objective,
                                   "gap_estimate": math.nan, "barrier": 0.0, "phase": "polish"})
    except KeyboardInterrupt:  # Ctrl-C during the polish: the interior point as it is
        interrupted = True
    # blocks at zero are left at the barrier's scale: with a small λ their summed effect
    # on the outputs still matters to the dual point, so pruning is left to the caller
    # (which compares objectives and keeps the dual point of the unpruned solution)
    res = SolverResult(W.to(dt_out), b.to(dt_out), it, converged, interrupted)
    if dt_out != W.dtype:  # the float64 solution too: its dual point is the accurate one
        res.extra.update(W64=W, b64=b)
    viol = 0.0
    if z is not None and S is not None:
        rr = S[:, None, :] * torch.einsum("nd,cpd->ncp", X, W)
        viol = float(torch.clamp(-rr, min=0).max()) if rr.numel() else 0.0
        res.extra["mu"] = z.to(dt_out)
    res.extra.update(violation=viol, feas_tol=1e-8, polished=polished is not None, **extra)
    if ipm_point is not None:
        res.extra["ipm_Z"] = ipm_point[0].to(dt_out)
        res.extra["ipm_mu"] = ipm_point[1].to(dt_out)
    return res


def _refit_bias(loss, Z0: torch.Tensor, Y: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Minimize ``L(Z0 + 1 bᵀ)`` over ``b`` by Newton's method (a ``c``-dim problem)."""
    if loss.name == "squared":
        return (Y - Z0).mean(0)
    for _ in range(50):
        Z = Z0 + b
        g = loss.grad(Z, Y).sum(0)
        H = loss.hessian(Z, Y).sum(0)
        H = H + 1e-12 * torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
        step = lstsq(H, g[:, None])[:, 0]
        b = b - step
        if float(step.abs().max()) <= 1e-13 * (1 + float(b.abs().max())):
            break
    return b
