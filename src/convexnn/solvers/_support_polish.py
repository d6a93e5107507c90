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
(least squares). The guess is corrected like an active-set method: a row that becomes
infeasible joins :math:`T_j`, a row with a negative multiplier leaves it. The result is
used only when it is feasible, has non-negative multipliers and is not worse than the
interior point; the caller also compares dual feasibility.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from convexnn.losses import Loss

__all__ = ["PolishResult", "polish_support"]

log = logging.getLogger(__name__)

#: a face program larger than this (columns of the reduced design) is not polished
_MAX_COLUMNS = 6000
#: nor one whose reduced design has more entries than this
_MAX_ENTRIES = 60_000_000


@dataclass
class PolishResult:
    W: torch.Tensor
    b: torch.Tensor
    z: torch.Tensor
    objective: float
    violation: float
    newton_steps: int
    rounds: int


def _loss_hessian(loss: Loss, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    from convexnn.solvers._primal_dual import _loss_hessian as lh

    return lh(loss.name, Z, Y)


def _tight_rows(r: torch.Tensor, z: torch.Tensor, d: int) -> torch.Tensor:
    """Rows guessed tight: ``z/r`` above 1 and within 10⁶ of the largest, at most ``d − 1``
    (a non-zero block of generic data lies on at most ``d − 1`` of its rows' hyperplanes)."""
    ratio = z / r.clamp_min(1e-300)
    top = float(ratio.max()) if ratio.numel() else 0.0
    idx = ((ratio > 1.0) & (ratio >= 1e-6 * top)).nonzero().flatten()
    if idx.numel() > d - 1:
        idx = idx[torch.argsort(ratio[idx], descending=True)[: d - 1]]
    return idx


def _null_basis(rows: torch.Tensor, d: int) -> torch.Tensor:
    """Orthonormal basis (d × k) of the null space of ``rows`` (t × d)."""
    eye = torch.eye(d, dtype=rows.dtype, device=rows.device)
    if rows.shape[0] == 0:
        return eye
    _, s, Vh = torch.linalg.svd(rows, full_matrices=True)
    rank = int((s > 1e-10 * float(s[0])).sum()) if s.numel() and float(s[0]) > 0 else 0
    return Vh[rank:].T.contiguous()


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
    max_rounds: int = 8,
    max_newton: int = 30,
) -> PolishResult | None:
    """Polish an interior solution ``(W, b, z)`` of the ReLU program on its face.

    Parameters
    ----------
    X : (n, d) float64; SD : (n, p) ``σ_j D_j``; S : (n, p) ``2D_j − I``; Y : (n, c).
    W : (c, p, d), b : (c,), z : (n, c, p)
        Interior-point solution and cone multipliers.

    Returns
    -------
    PolishResult or None
        ``None`` when the face program is too large, or when no feasible polished point
        with non-negative multipliers was found.
    """
    n, d = X.shape
    c, p, _ = W.shape
    norms = torch.linalg.vector_norm(W, dim=-1)  # (c, p)
    if not bool((norms > 0).any()):
        return None
    active = [tuple(aj) for aj in (norms > 1e-6 * float(norms.max())).nonzero().tolist()]
    if len(active) * d > _MAX_COLUMNS or n * len(active) * d > _MAX_ENTRIES:
        return None
    r = S[:, None, :] * torch.einsum("nd,cpd->ncp", X, W)
    tight = {(a, j): _tight_rows(r[:, a, j], z[:, a, j], d) for a, j in active}
    scale = float(torch.linalg.vector_norm(X, dim=1).max())
    feas_tol = 1e-12 * scale * float(norms.max())
    for rnd in range(1, max_rounds + 1):
        out = _solve_face(loss, X, SD, Y, lam, W, b, active, tight, fit_bias=fit_bias,
                          max_newton=max_newton)
        if out is None:
            log.debug("polish: face solve failed in round %d", rnd)
            return None
        if isinstance(out[0], str):  # ("drop", blocks)
            for k in sorted(out[1], reverse=True):
                del tight[active.pop(k)]
            if not active:
                return None
            continue
        Wp, bp, F, steps = out
        log.debug("polish round %d: F=%.12g steps %d tight %d", rnd, F, steps,
                  sum(int(t.numel()) for t in tight.values()))
        # primal feasibility of every row of the active blocks
        rp = S[:, None, :] * torch.einsum("nd,cpd->ncp", X, Wp)
        changed = False
        for a, j in active:
            bad = (rp[:, a, j] < -feas_tol).nonzero().flatten()
            if bad.numel():
                tight[(a, j)] = torch.unique(torch.cat([tight[(a, j)], bad]))
                changed = True
        if changed:
            continue
        # multipliers of the tight rows from stationarity
        Zp = torch.einsum("nd,cpd->ncp", X, Wp)
        Zp = (Zp * SD[:, None, :]).sum(-1) + bp
        V = loss.grad(Zp, Y)
        if fit_bias:
            V = loss.center(V, Y)
        zp = z.clone()  # inactive blocks keep the interior multipliers
        for a, j in active:
            zp[:, a, j] = 0
        for a, j in active:
            T = tight[(a, j)]
            if T.numel() == 0:
                continue
            w = Wp[a, j]
            g = (SD[:, j] * V[:, a]) @ X + lam * w / torch.linalg.vector_norm(w)
            Ct = (S[T, j][:, None] * X[T]).T  # d × |T|
            zt = torch.linalg.lstsq(Ct, g[:, None]).solution[:, 0]
            neg = zt < -1e-10 * max(float(zt.abs().max()), 1e-300)
            if bool(neg.any()):
                tight[(a, j)] = T[~neg]
                changed = True
            zp[T, a, j] = zt.clamp_min(0)
        if changed:
            continue
        viol = max(0.0, max(float(-rp[:, a, j].min()) for a, j in active))
        return PolishResult(Wp, bp, zp, F, viol, steps, rnd)
    return None


def _solve_face(loss: Loss, X: torch.Tensor, SD: torch.Tensor, Y: torch.Tensor, lam: float,
                W: torch.Tensor, b: torch.Tensor, active: list, tight: dict, *,
                fit_bias: bool, max_newton: int) -> tuple | None:
    """Newton's method on the face program; returns ``(W, b, objective, steps)``."""
    n, d = X.shape
    c = W.shape[0]
    bases, feats, outs, y0, groups = [], [], [], [], []
    col = 0
    for a, j in active:
        N = _null_basis(X[tight[(a, j)]], d)
        if N.shape[1] == 0:
            return None  # the face forces this block to zero: leave it to the interior point
        bases.append(N)
        feats.append((SD[:, j:j + 1] * X) @ N)
        outs.append(torch.full((N.shape[1],), a, dtype=torch.long, device=X.device))
        y0.append(N.T @ W[a, j])
        groups.append((col, col + N.shape[1]))
        col += N.shape[1]
    if fit_bias:
        for a in range(c):
            feats.append(torch.ones(n, 1, dtype=X.dtype, device=X.device))
            outs.append(torch.tensor([a], device=X.device))
            y0.append(b[a:a + 1].clone())
            col += 1
    F = torch.cat(feats, 1)  # (n, M)
    out = torch.cat(outs)
    y = torch.cat(y0)
    M = y.numel()
    by_out = [(out == a).nonzero().flatten() for a in range(c)]
    # one output: every column feeds it, so no column-gathering copies of F
    cols = [F] if c == 1 else [F[:, ia] for ia in by_out]

    def outputs(y: torch.Tensor) -> torch.Tensor:
        ys = [y] if c == 1 else [y[ia] for ia in by_out]
        return torch.stack([Fa @ ya for Fa, ya in zip(cols, ys)], 1)

    def objective(y: torch.Tensor) -> float:
        pen = sum(float(torch.linalg.vector_norm(y[s:e])) for s, e in groups)
        return float(loss.value(outputs(y), Y)) + lam * pen

    def loss_hessian(Z: torch.Tensor) -> torch.Tensor:
        Hl = _loss_hessian(loss, Z, Y)  # (n, c, c)
        K = torch.zeros(M, M, dtype=X.dtype, device=X.device)
        for a in range(c):
            for a2 in range(c):
                h = Hl[:, a, a2]
                if not bool((h != 0).any()):
                    continue
                if bool((h == h[0]).all()):  # e.g. the squared loss: a constant weight
                    blk = float(h[0]) * (cols[a].T @ cols[a2])
                else:
                    blk = cols[a].T @ (h[:, None] * cols[a2])
                if c == 1:
                    K += blk
                else:
                    K[by_out[a][:, None], by_out[a2][None, :]] += blk
        return K

    const_hessian = loss.name == "squared"
    K_loss = None
    f = objective(y)
    steps = 0
    while steps < max_newton:
        steps += 1
        Z = outputs(y)
        V = loss.grad(Z, Y)  # (n, c)
        g = torch.empty(M, dtype=X.dtype, device=X.device)
        for a in range(c):
            ga = cols[a].T @ V[:, a]
            if c == 1:
                g = ga
            else:
                g[by_out[a]] = ga
        if K_loss is None or not const_hessian:
            K_loss = loss_hessian(Z)
        K = K_loss.clone()
        for s, e in groups:
            yk = y[s:e]
            nk = float(torch.linalg.vector_norm(yk))
            if nk == 0:
                return None
            u = yk / nk
            g[s:e] += lam * u
            K[s:e, s:e] += (lam / nk) * (torch.eye(e - s, dtype=X.dtype, device=X.device)
                                         - u[:, None] * u[None, :])
        K = 0.5 * (K + K.T)
        K.diagonal().add_(1e-14 * float(K.diagonal().abs().max()))
        try:
            L = torch.linalg.cholesky(K)
            step = -torch.cholesky_solve(g[:, None], L)[:, 0]
        except RuntimeError:
            step = -torch.linalg.lstsq(K, g[:, None]).solution[:, 0]
        # a block whose Newton step crosses the origin is zero at the optimum of the face
        # (the norm has no radial curvature): drop it and start again without it
        drop = [k for k, (s, e) in enumerate(groups)
                if float((y[s:e] * (y[s:e] + step[s:e])).sum()) <= 0]
        if drop:
            return "drop", drop
        dec = float(-(g * step).sum())
        if not math.isfinite(dec) or dec < 0:
            return None
        t = 1.0
        while t > 1e-10:
            yn = y + t * step
            fn = objective(yn)
            if fn <= f - 1e-4 * t * dec or (dec <= 1e-14 * max(abs(f), 1e-300)
                                            and fn <= f + 1e-15 * abs(f)):
                break
            t *= 0.5
        if t <= 1e-10:
            break
        y, f = yn, fn
        if dec <= 1e-20 * max(abs(f), 1e-300) or (t == 1.0 and dec <= 1e-16 * abs(f)):
            break
    Wp = torch.zeros_like(W)
    for (a, j), N, (s, e) in zip(active, bases, groups):
        Wp[a, j] = N @ y[s:e]
    bp = b.clone()
    if fit_bias:
        bp = y[-c:].clone()
    return Wp, bp, f, steps
