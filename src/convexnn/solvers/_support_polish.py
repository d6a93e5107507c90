r"""Support polishing: finish an interior-point solution by Newton on its active face.

An interior point ends near the optimum but strictly inside every constraint, with a
barrier weight ν > 0; the dual point :math:`V = \nabla L(Z)` it yields is then only as
accurate as its outputs ``Z``, and with a small λ the dual constraint
:math:`\|(\mathcal A^\top V)_j - C_j^\top \mu_j\|_2 \le \lambda` magnifies that error
(the certificate's gap then stalls near ``1e-5`` on programs with many tight cone rows).

Polishing guesses the face of the optimum from the interior point — the active blocks
:math:`J = \{j : w_j \ne 0\}` and, per active block, the tight cone rows
:math:`T_j = \{i : z_{ij} > r_{ij}\}` (at the end of the path :math:`z_{ij} r_{ij} \approx
\nu`, so the two sides differ by many orders of magnitude) — and solves the program
restricted to that face exactly. With :math:`N_j` an orthonormal basis of the null space
of the tight rows :math:`X_{T_j}`, :math:`w_j = N_j y_j` and the face program is

.. math:: \min_{y, b}\; L\Big(\sum_{j \in J} \sigma_j D_j X N_j y_j + \mathbf 1 b^\top\Big)
   + \lambda \sum_{j\in J} \|y_j\|_2,

smooth near a solution with every :math:`y_j \ne 0`: a few Newton steps solve it to
machine precision. The cone multipliers of the tight rows follow from stationarity,
:math:`X_{T_j}^\top (s \circ z_{T_j}) = (\mathcal A^\top V)_j + \lambda w_j/\|w_j\|`
(least squares). The guess is corrected as in a primal active-set method: Newton steps
stay feasible, a row that stops a step joins :math:`T_j`, a row with a negative multiplier
leaves it, a block shrinking to nothing leaves :math:`J`. The result is used only when it
is feasible, has non-negative multipliers and is not worse than the interior point; the
interior point stays a second dual candidate for the certificate.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from convexnn.losses import Loss
from convexnn.utils import lstsq

__all__ = ["PolishResult", "polish_support"]

log = logging.getLogger(__name__)

#: a face program larger than this (columns of the reduced design) is not polished
_MAX_COLUMNS = 6000
#: nor one whose reduced design has more entries than this
_MAX_ENTRIES = 60_000_000
#: a block whose full Newton step on the face passes through the origin, and whose norm
#: is at most this fraction of the largest, leaves the face at once (it is zero at the
#: face's optimum); larger ones shrink step by step (≤ 90 % per step), as a wrongly dropped
#: block would make the polished point worse than the interior point. Dropping only the
#: negligible ones (< 1e-9) spent the Newton budget shrinking weakly active blocks: on every
#: 7th KEEL profile problem the polish succeeded on 8 of 21 (median certified gap 8.7e-9)
#: and with this rule (and the caller's retry without it, primal_dual.finish) on 14 of 21
#: (3.3e-13), 42.0 → 35.6 s in all, no objective worse
#: (benchmarks/results/s9_scripts/drop_probe.py.txt 0.0 7 / 1e-3 7)
_DROP_SMALL = 1e-3


@dataclass
class PolishResult:
    W: torch.Tensor
    b: torch.Tensor
    z: torch.Tensor
    objective: float
    violation: float
    newton_steps: int  # in all rounds
    rounds: int


def _tight_rows(r: torch.Tensor, z: torch.Tensor, d: int) -> torch.Tensor:
    """Rows guessed tight: ``z/r`` above 1 and within 10⁶ of the largest, at most ``d − 1``
    (a non-zero block of generic data lies on at most ``d − 1`` of its rows' hyperplanes)."""
    ratio = z / r.clamp_min(1e-300)
    top = float(ratio.max()) if ratio.numel() else 0.0
    idx = ((ratio > 1.0) & (ratio >= 1e-6 * top)).nonzero().flatten()
    if idx.numel() > d - 1:
        idx = idx[torch.argsort(ratio[idx], descending=True)[: d - 1]]
    return idx


def _null_bases(rows: list[torch.Tensor], d: int) -> list[torch.Tensor]:
    """Orthonormal bases (d × k) of the null spaces of the matrices ``rows`` (t × d each),
    with one batched SVD per row count (a polish round has one small matrix per live
    block: one SVD call each was a third of the polish's time on n = 120 problems)."""
    out: list[torch.Tensor | None] = [None] * len(rows)
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(int(r.shape[0]), []).append(i)
    for t, idx in groups.items():
        if t == 0:
            for i in idx:
                out[i] = torch.eye(d, dtype=rows[i].dtype, device=rows[i].device)
            continue
        _, s, Vh = torch.linalg.svd(torch.stack([rows[i] for i in idx]), full_matrices=True)
        top = s[:, 0]
        ranks = torch.where(top > 0, (s > 1e-10 * top[:, None]).sum(dim=1),
                            torch.zeros_like(top, dtype=torch.long)).tolist()
        for k, i in enumerate(idx):
            out[i] = Vh[k, int(ranks[k]):].T.contiguous()
    return out  # type: ignore[return-value]


def polish_support(
    loss: Loss,
    X: torch.Tensor,
    SD: torch.Tensor,
    S: torch.Tensor,
    Y: torch.Tensor,
    lam: float,
    W: torch.Tensor,
    b: torch.Tensor,
    z: torch.Tensor,
    *,
    fit_bias: bool,
    max_rounds: int = 64,
    max_newton: int = 60,
    max_total_newton: int = 150,
    work_budget: float = math.inf,
    drop_small: float | None = None,
) -> PolishResult | None:
    """Polish an interior solution ``(W, b, z)`` of the ReLU program on its face.

    Parameters
    ----------
    X : (n, d) float64; SD : (n, p) ``σ_j D_j``; S : (n, p) ``2D_j − I``; Y : (n, c).
    W : (c, p, d), b : (c,), z : (n, c, p)
        Interior-point solution and cone multipliers.
    max_rounds, max_newton, max_total_newton : int
        Active-set rounds, Newton steps per round, Newton steps in all (at most 25 when
        the loss Hessian is not constant).
    work_budget : float
        Flops (counted as ``m³/3 + n m²`` per Newton step on a face of ``m`` columns): no
        new round starts after this (the polish gives up, returning None). Each round
        re-solves the whole face; when rows join one at a time (many features, many
        near-tight rows) the rounds can cost many times the interior point itself. A
        count of work, not seconds, so that the result does not depend on the machine.
    drop_small : float, optional
        A block whose Newton step passes the origin leaves the face at once when its norm
        is at most this fraction of the largest (default ``_DROP_SMALL``); ``0`` keeps
        only the negligible ones leaving (the caller's retry when a drop went wrong).

    Returns
    -------
    PolishResult or None
        ``None`` when the face program is too large, or when no feasible polished point
        with non-negative multipliers was found.
    """
    n, d = X.shape
    drop_small = _DROP_SMALL if drop_small is None else drop_small
    norms = torch.linalg.vector_norm(W, dim=-1)  # (c, p)
    if not bool((norms > 0).any()):
        return None
    active = [tuple(aj) for aj in (norms > 1e-6 * float(norms.max())).nonzero().tolist()]
    if len(active) * d > _MAX_COLUMNS or n * len(active) * d > _MAX_ENTRIES:
        return None
    r = S[:, None, :] * torch.einsum("nd,cpd->ncp", X, W)
    tight = {(a, j): _tight_rows(r[:, a, j], z[:, a, j], d) for a, j in active}
    w_start = {aj: W[aj] for aj in active}
    b_cur = b.clone()
    scale = float(torch.linalg.vector_norm(X, dim=1).max())
    feas_tol = 1e-12 * scale * float(norms.max())
    total_steps = 0
    # one Newton step on the guessed face (at least d − |T_j| columns per block) costing
    # more than the whole budget: the polish cannot finish within it (KEEL
    # movement_libras, d = 91, at 0.01·λ_max: 5,013 columns, 4.5e10 flops a step against
    # 2e10; the one round it ran cost 5.9 s of a 12.2 s fit and failed;
    # benchmarks/results/s23_polish_replay.log)
    m0 = sum(max(0, d - int(t.numel())) for t in tight.values()) + (Y.shape[1] if fit_bias
                                                                     else 0)
    if m0**3 / 3 + n * m0 * m0 > work_budget:
        log.debug("polish: one Newton step on the face (%d columns) exceeds the work budget "
                  "(%.2g flops)", m0, work_budget)
        return None
    face = _Face(loss, X, SD, S, Y, lam, active, tuple(W.shape), fit_bias=fit_bias)
    if face.K_const is None:
        # every Newton step re-forms the loss Hessian over the active columns (n (|J| d)²
        # flops): a few rounds only, the polish must stay cheap next to the interior point
        max_total_newton = min(max_total_newton, 25)
    work = 0.0
    for rnd in range(1, max_rounds + 1):
        alive = [aj for aj in active if aj in tight]
        if not alive or total_steps >= max_total_newton:
            return None
        if work > work_budget:
            log.debug("polish: work budget (%.2g flops) spent after %d rounds", work_budget,
                      rnd - 1)
            return None
        out = face.solve(alive, tight, w_start, b_cur, max_newton=max_newton,
                         drop_small=drop_small)
        total_steps += face.last_steps
        m = len(alive) * d
        work += max(1, face.last_steps) * (m**3 / 3 + n * m * m)
        if out is None:
            log.debug("polish: the face program failed in round %d", rnd)
            return None
        if isinstance(out, list):  # blocks that are zero on this face: drop them
            for aj in out:
                del tight[aj]
            continue
        if isinstance(out[0], str):  # ("row", ...): rows stopped the step, they join the face
            (Wr, br), joins = out[1], out[2]
            w_start = {a: Wr[a] for a in alive}
            b_cur = br
            for aj, i in joins:
                tight[aj] = torch.unique(torch.cat([tight[aj], tight[aj].new_tensor([i])]))
            continue
        Wp, bp, F, steps = out
        log.debug("polish round %d: F=%.12g steps %d blocks %d tight %d", rnd, F, steps,
                  len(alive), sum(int(t.numel()) for t in tight.values()))
        w_start = {aj: Wp[aj] for aj in alive}
        b_cur = bp
        # primal feasibility: the most violated row of each block joins its face
        al_a = torch.tensor([a for a, _ in alive], device=X.device)
        al_j = torch.tensor([j for _, j in alive], device=X.device)
        Wa = Wp[al_a, al_j]  # (A, d)
        R = S[:, al_j] * (X @ Wa.T)  # (n, A): the alive blocks' cone rows
        mins, argmins = R.min(0)
        bad = (mins < -feas_tol).nonzero().flatten().tolist()
        for k in bad:
            aj = alive[k]
            tight[aj] = torch.unique(torch.cat([tight[aj], argmins[k:k + 1]]))
        if bad:
            continue
        # multipliers of the tight rows from stationarity, X_Tᵀ (s ∘ z_T) = (𝒜ᵀV)_j +
        # λ w_j/‖w_j‖, one batched least-squares solve per number of tight rows; a
        # negative one leaves the face
        Zp = (torch.einsum("nd,cpd->ncp", X, Wp) * SD[:, None, :]).sum(-1) + bp
        V = loss.grad(Zp, Y)
        if fit_bias:
            V = loss.center(V, Y)
        G = (SD[:, al_j] * V[:, al_a]).T @ X + lam * Wa / torch.linalg.vector_norm(
            Wa, dim=1, keepdim=True)  # (A, d)
        zp = z.clone()  # blocks at zero keep the interior multipliers
        zp[:, al_a, al_j] = 0
        by_count: dict[int, list[int]] = {}
        for k, aj in enumerate(alive):
            if tight[aj].numel():
                by_count.setdefault(int(tight[aj].numel()), []).append(k)
        changed = False
        for ks in by_count.values():
            kt = torch.tensor(ks, device=X.device)
            T = torch.stack([tight[alive[k]] for k in ks])  # (B, t)
            aa, jj = al_a[kt][:, None], al_j[kt][:, None]
            Ct = (S[T, jj][..., None] * X[T]).transpose(1, 2)  # (B, d, t)
            zt = lstsq(Ct, G[kt][..., None])[..., 0]  # (B, t)
            kmin = zt.argmin(1)
            neg = zt.gather(1, kmin[:, None])[:, 0] < -1e-10 * zt.abs().amax(1).clamp_min(1e-300)
            for b in neg.nonzero().flatten().tolist():
                aj = alive[ks[b]]
                keep = torch.ones_like(tight[aj], dtype=torch.bool)
                keep[int(kmin[b])] = False
                tight[aj] = tight[aj][keep]
                changed = True
            zp[T, aa, jj] = zt.clamp_min(0)
        if changed:
            continue
        viol = max(0.0, float(-mins.min()))
        return PolishResult(Wp, bp, zp, F, viol, total_steps, rnd)
    return None


def _face_design(Jf: torch.Tensor, Npad: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``J Tm``: the design ``Jf`` (n × (A d [+ c])) of ``A`` blocks in the face's
    coordinates, ``Tm`` block diagonal with the null-space bases ``N_k`` (``Npad[k]``, zero
    padded to ``d × d``) and the identity on the bias columns; ``keep`` selects the
    columns that are not padding."""
    A, d, _ = Npad.shape
    nb = A * d
    JT = torch.einsum("nkd,kdj->nkj", Jf[:, :nb].reshape(-1, A, d), Npad).reshape(-1, nb)
    if Jf.shape[1] > nb:
        JT = torch.cat([JT, Jf[:, nb:]], 1)
    return JT[:, keep]


class _Face:
    """The face program's pieces that do not change between active-set rounds.

    The design of the active blocks in full coordinates, ``J = [σ_j D_j X]_{j∈J}`` (plus a
    column of ones per output when the output bias is fitted), and — for a loss with a
    constant Hessian (squared) — ``Jᵀ H J`` once: a face with null-space bases ``N_j``
    then has Hessian ``Nᵀ (Jᵀ H J) N`` (small products), not a new ``n``-row product.
    """

    def __init__(self, loss: Loss, X: torch.Tensor, SD: torch.Tensor, S: torch.Tensor,
                 Y: torch.Tensor, lam: float, active: list, shape: tuple, *,
                 fit_bias: bool) -> None:
        n, d = X.shape
        self.S = S
        self.shape = shape
        self.loss, self.X, self.Y, self.lam, self.fit_bias = loss, X, Y, lam, fit_bias
        self.c = c = Y.shape[1]
        self.d = d
        self.col = {aj: i * d for i, aj in enumerate(active)}
        outs = [a for a, _ in active for _ in range(d)]
        if fit_bias:
            outs += list(range(c))
        # (n, |J| d [+ c]), filled in place (no list of copies to concatenate)
        self.J = torch.ones(n, len(outs), dtype=X.dtype, device=X.device)
        for k, (_, j) in enumerate(active):
            torch.mul(SD[:, j:j + 1], X, out=self.J[:, k * d:(k + 1) * d])
        self.out = torch.tensor(outs, device=X.device)
        self.by_out = [(self.out == a).nonzero().flatten() for a in range(c)]
        self.K_const = self._loss_hessian(None) if loss.name == "squared" else None
        self.row_norms = torch.linalg.vector_norm(X, dim=1).clamp_min(1e-300)
        self._bcache: dict = {}  # block → (its tight rows, padded null-space basis, rank)

    def _loss_hessian(self, Z: torch.Tensor | None) -> torch.Tensor:
        J, c = self.J, self.c
        if Z is None:
            Z = torch.zeros(J.shape[0], c, dtype=J.dtype, device=J.device)
        Hl = self.loss.hessian(Z, self.Y)  # (n, c, c)
        M = J.shape[1]
        K = torch.zeros(M, M, dtype=J.dtype, device=J.device)
        for a in range(c):
            Ja = J if c == 1 else J[:, self.by_out[a]]
            for a2 in range(c):
                h = Hl[:, a, a2]
                if not bool((h != 0).any()):
                    continue
                Jb = Ja if a2 == a else J[:, self.by_out[a2]]
                if bool((h == h[0]).all()):  # a constant weight (the squared loss)
                    blk = float(h[0]) * (Ja.T @ Jb)
                else:
                    blk = Ja.T @ (h[:, None] * Jb)
                if c == 1:
                    K += blk
                else:
                    K[self.by_out[a][:, None], self.by_out[a2][None, :]] += blk
        return K

    def _face_bases(self, alive: list, tight: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Null-space bases of the alive blocks' tight rows, zero padded to ``d × d``
        (``(A, d, d)``), and their column counts ``(A,)``. Bases are cached per block and
        recomputed only for blocks whose tight rows changed (a round changes a few blocks'
        rows; recomputing every basis in every round took 5.4 of the polish's 99 s on KEEL
        banana, n = 120, d = 3, working sets of up to ~800 blocks:
        ``benchmarks/results/s23_banana_profile.log``)."""
        d, X = self.d, self.X
        cache = self._bcache
        todo = [aj for aj in alive if (e := cache.get(aj)) is None or e[0] is not tight[aj]]
        if todo:
            for aj, N in zip(todo, _null_bases([X[tight[aj]] for aj in todo], d)):
                pad = N.new_zeros(d, d)
                pad[:, : N.shape[1]] = N
                cache[aj] = (tight[aj], pad, N.shape[1])
        Npad = torch.stack([cache[aj][1] for aj in alive])
        sizes = torch.tensor([cache[aj][2] for aj in alive], device=X.device)
        return Npad, sizes

    def solve(self, alive: list, tight: dict, w0: dict, b0: torch.Tensor, *,
              max_newton: int, drop_small: float) -> tuple | list | None:
        """Newton on the face from the feasible ``(w0, b0)``. Returns
        ``(W, b, objective, steps)`` at the face's optimum; ``("row", (W, b), joins)``
        when rows stopped a step (at the feasible point reached), ``joins`` a list of
        ``(block, row)`` (one row, or one per block for rows already on their boundary); the
        blocks that are zero on the face (their tight rows span every direction, or they
        shrank to nothing); or ``None`` when Newton's method breaks down.
        ``last_steps`` counts the Newton steps taken.

        The face variables ``y`` stack the blocks' coordinates ``y_k`` (``k_k`` each, in
        the bases ``N_k``) and then the output biases; every per-block operation (norms,
        the penalty's gradient and Hessian, the map ``w_k = N_k y_k``) is one batched
        call over the blocks, not a Python loop (on KEEL banana's faces of hundreds of
        blocks the face solve spent 39 of its 92 s in its own Python lines:
        ``benchmarks/results/s23_banana_profile.log``)."""
        self.last_steps = 0
        X, d, c, lam = self.X, self.d, self.c, self.lam
        dev, dt = X.device, X.dtype
        A = len(alive)
        Npad, sizes = self._face_bases(alive, tight)
        zero = (sizes == 0).nonzero().flatten().tolist()
        if zero:
            return [alive[k] for k in zero]
        ar = torch.arange(d, device=dev)
        cols = torch.tensor([self.col[aj] for aj in alive], device=dev)
        idx = (cols[:, None] + ar).reshape(-1)
        nb = A * d
        if self.fit_bias:
            nb0 = len(self.col) * d
            idx = torch.cat([idx, torch.arange(nb0, nb0 + c, device=dev)])
        # (n, m_full); every column in order (the usual first round): no copy
        Jf = self.J if idx.numel() == self.J.shape[1] else self.J[:, idx]
        js = torch.tensor([j for _, j in alive], device=dev)
        Sa = self.S[:, js]  # (n, |alive|)
        rows = [tight[aj] for aj in alive]
        counts = torch.tensor([int(t.numel()) for t in rows], device=dev)
        free_mask = torch.zeros(X.shape[0], A, dtype=torch.bool, device=dev)
        if int(counts.sum()):  # rows of the face: not limited
            free_mask[torch.cat(rows), torch.repeat_interleave(
                torch.arange(A, device=dev), counts)] = True
        out = self.out[idx]
        # the face's block coordinates in the padded (A, d) layout, and their blocks
        kb = (ar[None, :] < sizes[:, None]).reshape(-1).nonzero().flatten()
        nyb = int(kb.numel())
        gid = kb // d
        keep = torch.cat([kb, torch.arange(nb, nb + c, device=dev)]) if self.fit_bias else kb
        # pairs of coordinates of one block: where the penalty's Hessian lives
        first = torch.cumsum(sizes, 0) - sizes
        pair_ok = ar[None, :] < sizes[gid][:, None]  # (nyb, d)
        pi = torch.arange(nyb, device=dev)[:, None].expand(-1, d)[pair_ok]
        pj = (first[gid][:, None] + ar[None, :])[pair_ok]
        same = (pi == pj).to(dt)

        def to_full(v: torch.Tensor) -> torch.Tensor:  # w_k = N_k y_k (and the biases)
            vp = v.new_zeros(nb)
            vp[kb] = v[:nyb]
            w = torch.bmm(Npad, vp.view(A, d, 1)).reshape(-1)
            return torch.cat([w, v[nyb:]]) if self.fit_bias else w

        def to_face(g: torch.Tensor) -> torch.Tensor:  # the adjoint: N_kᵀ g_k
            gy = torch.bmm(Npad.transpose(1, 2), g[:nb].reshape(A, d, 1)).reshape(-1)[kb]
            return torch.cat([gy, g[nb:]]) if self.fit_bias else gy

        def block_sums(v: torch.Tensor) -> torch.Tensor:  # Σ over each block's coordinates
            return torch.zeros(A, dtype=dt, device=dev).index_add_(0, gid, v[:nyb])

        def outputs(y: torch.Tensor) -> torch.Tensor:
            if c == 1:
                return (Jf @ to_full(y))[:, None]
            Z = torch.zeros(Jf.shape[0], c, dtype=dt, device=dev)
            return Z.index_add_(1, out, Jf * to_full(y)[None, :])

        def objective(y: torch.Tensor) -> float:
            pen = float(block_sums(y * y).sqrt().sum())
            return float(self.loss.value(outputs(y), self.Y)) + lam * pen

        def project(Kf: torch.Tensor) -> torch.Tensor:
            """``Tmᵀ Kf Tm`` block by block (``Tm`` is block diagonal): A² d³ flops."""
            K4 = Kf[:nb, :nb].reshape(A, d, A, d)
            P = torch.einsum("kai,kalb,lbj->kilj", Npad, K4, Npad).reshape(nb, nb)
            if self.fit_bias:
                cross = torch.einsum("kai,kab->kib", Npad,
                                     Kf[:nb, nb:].reshape(A, d, -1)).reshape(nb, -1)
                P = torch.cat([torch.cat([P, cross], 1),
                               torch.cat([cross.T, Kf[nb:, nb:]], 1)], 0)
            return P[keep[:, None], keep[None, :]]

        y = to_face(torch.cat([w0[aj] for aj in alive] + ([b0] if self.fit_bias else [])))
        K_face = None  # the loss part, fixed for a constant loss Hessian
        if self.K_const is not None:
            K_face = self._projected_const(alive, Npad, keep)
        JT = None  # one output, a loss Hessian that changes: the face's own design J Tm
        if K_face is None and c == 1:
            JT = _face_design(Jf, Npad, keep)
        f = objective(y)
        steps = 0
        while steps < max_newton:
            steps += 1
            self.last_steps = steps
            Z = outputs(y)
            V = self.loss.grad(Z, self.Y)  # (n, c)
            gfull = (Jf * V[:, out]).sum(0) if c > 1 else Jf.T @ V[:, 0]
            g = to_face(gfull)
            if K_face is not None:
                K = K_face.clone()
            elif JT is not None:  # (J Tm)ᵀ H (J Tm): n m² flops on the face's m columns
                # (forming Jᵀ H J on every active column and projecting it was 81 % of
                # the polish on 3,000 rows of magic)
                Jh = JT * self.loss.hessian(Z, self.Y)[:, 0, 0].clamp_min(0).sqrt()[:, None]
                K = Jh.T @ Jh
            else:
                K = project(self._loss_hessian(Z)[idx[:, None], idx[None, :]])
            # the penalty λ‖y_k‖: gradient λ u_k, Hessian (λ/‖y_k‖)(I − u_k u_kᵀ)
            ny = block_sums(y * y).sqrt()
            nz = (ny == 0).nonzero().flatten()
            if nz.numel():
                return [alive[int(nz[0])]]
            u = y[:nyb] / ny[gid]
            g[:nyb] += lam * u
            # (I − u uᵀ) before the weight λ/‖y_k‖: on a nearly vanished block the weight is
            # huge and u_i² ≈ 1, so adding the weight first and its u u part after cancels
            K[pi, pj] += (lam / ny)[gid[pi]] * (same - u[pi] * u[pj])
            K.diagonal().add_(1e-14 * float(K.diagonal().abs().max()))
            try:  # symmetric up to rounding: the factorization reads the lower triangle
                L = torch.linalg.cholesky(K)
                step = -torch.cholesky_solve(g[:, None], L)[:, 0]
            except RuntimeError:
                step = -lstsq(0.5 * (K + K.T), g[:, None])[:, 0]
            ys = block_sums(y * step)
            # the norm has no radial curvature: a step may overshoot through zero. Blocks
            # already negligible, or small (drop_small) with a step through the origin,
            # leave the face; otherwise the step is shortened so that no block loses more
            # than 90 % of its radial extent (a block that is zero at the face's optimum
            # then shrinks geometrically until it leaves)
            crossing = (ys < 0) & (-ys >= ny * ny)  # the full step passes the origin
            top = float(ny.max())
            tiny = ((ny <= 1e-9 * top) | (crossing & (ny <= drop_small * top))
                    ).nonzero().flatten().tolist()
            if tiny:
                return [alive[k] for k in tiny]
            shrink = ys < 0
            t_max = 1.0
            if bool(shrink.any()):
                t_max = min(1.0, 0.9 * float((ny[shrink] ** 2 / -ys[shrink]).min()))
            dec = float(-(g * step).sum())
            if not math.isfinite(dec) or dec < 0:
                return None
            # stay feasible (a primal active-set method): the first row of an active
            # block that the step would cross stops it and joins the face
            Wc = to_full(y)[:nb].reshape(A, d)
            dWc = to_full(step)[:nb].reshape(A, d)
            R, dR = Sa * (X @ Wc.T), Sa * (X @ dWc.T)  # (n, |alive|)
            dR = dR.masked_fill(free_mask, 0.0).clamp(max=0.0)
            ratio = torch.where(dR < 0, R.clamp_min(0) / -dR, torch.full_like(R, math.inf))
            t_feas = float(ratio.min())
            if t_feas <= 1e-12:  # rows of the start already on their boundary: in each
                # block, the one the step crosses most steeply joins the face at once (one
                # row per round cost a Newton step each: a logistic polish restarted from a
                # polished point met 18 such rows, in 18 blocks, and ran out of its steps)
                at = ratio <= 1e-12
                steep = torch.where(at, dR / self.row_norms[:, None], math.inf)
                ks = at.any(0).nonzero().flatten()
                rows_i = steep[:, ks].argmin(0)
                return "row", self._network(to_full(y), alive, b0), [
                    (alive[k], i) for k, i in zip(ks.tolist(), rows_i.tolist())]
            t = min(t_max, t_feas)
            blocked = t_feas <= t_max
            while t > 1e-10:
                yn = y + t * step
                fn = objective(yn)
                if fn <= f - 1e-4 * t * dec or (dec <= 1e-14 * max(abs(f), 1e-300)
                                                and fn <= f + 1e-15 * abs(f)):
                    break
                t *= 0.5
                blocked = False
            if t <= 1e-10:
                break
            y, f = yn, fn
            if blocked:
                i, k = divmod(int(torch.argmin(ratio)), ratio.shape[1])
                return "row", self._network(to_full(y), alive, b0), [(alive[k], i)]
            if dec <= 1e-20 * max(abs(f), 1e-300) or (t == 1.0 and dec <= 1e-16 * abs(f)):
                break
        return (*self._network(to_full(y), alive, b0), f, steps)

    def _projected_const(self, alive: list, Npad: torch.Tensor, keep: torch.Tensor
                         ) -> torch.Tensor:
        """``Tmᵀ K_const Tm`` on the face (squared loss), from a cache of the projected
        blocks ``N_kᵀ K_kl N_l`` over every active block: a round whose faces changed for
        a few blocks recomputes only their rows and columns (a round adds one row to one
        block; recomputing all ``|J|² d³`` was a third of the polish's time)."""
        d, X = self.d, self.X
        A0 = len(self.col)
        nb0 = A0 * d
        pos = torch.tensor([self.col[aj] // d for aj in alive], device=X.device)
        cache = getattr(self, "_pcache", None)
        if cache is None:
            K4 = self.K_const[:nb0, :nb0].reshape(A0, d, A0, d)
            N0 = torch.zeros(A0, d, d, dtype=X.dtype, device=X.device)
            P4 = torch.zeros(A0, d, A0, d, dtype=X.dtype, device=X.device)
            cache = self._pcache = {"K4": K4, "N": N0, "P4": P4}
        K4, N0, P4 = cache["K4"], cache["N"], cache["P4"]
        moved = (N0[pos] != Npad).flatten(1).any(1).nonzero().flatten()
        if moved.numel():
            ch = pos[moved]
            N0[ch] = Npad[moved]
            # rows of the changed blocks against every block, N_kᵀ K_kl N_l, as two batched
            # products (one three-operand einsum took 1.7× as long, advanced-index assignment
            # of the columns 1.7× index_copy_: s23_face_hessian_micro.log), then the columns by
            # symmetry
            k = int(ch.numel())
            rows = torch.bmm(N0[ch].transpose(1, 2), K4[ch].reshape(k, d, A0 * d))
            rows = torch.bmm(rows.reshape(k * d, A0, d).transpose(0, 1), N0)  # (A0, k d, d)
            rows = rows.transpose(0, 1).reshape(k, d, A0, d)
            P4.index_copy_(0, ch, rows)
            P4.index_copy_(2, ch, rows.permute(2, 3, 0, 1))
        A = len(alive)
        # the face's columns in the cache's coordinates: one gather per axis
        cols = (pos[:, None] * d + torch.arange(d, device=X.device)).reshape(-1)
        kw = keep[keep < A * d]
        fk = cols[kw]
        P = P4.reshape(nb0, nb0).index_select(0, fk).index_select(1, fk)
        if self.fit_bias:
            Kb = self.K_const[:nb0, nb0:].reshape(A0, d, -1)[pos]
            cross = torch.einsum("kai,kab->kib", Npad, Kb).reshape(A * d, -1)[kw]
            P = torch.cat([torch.cat([P, cross], 1),
                           torch.cat([cross.T, self.K_const[nb0:, nb0:]], 1)], 0)
        return P

    def _network(self, wfull: torch.Tensor, alive: list, b0: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """The network ``(W, b)`` from the face's full columns ``wfull`` (blocks, biases)."""
        d = self.d
        Wp = torch.zeros(self.shape, dtype=wfull.dtype, device=wfull.device)
        a_idx = torch.tensor([a for a, _ in alive], device=wfull.device)
        j_idx = torch.tensor([j for _, j in alive], device=wfull.device)
        Wp[a_idx, j_idx] = wfull[: len(alive) * d].reshape(len(alive), d)
        bp = wfull[len(alive) * d:].clone() if self.fit_bias else b0.clone()
        return Wp, bp
