r"""Exact enumeration of every activation pattern (chamber) of ``X``.

The hyperplanes :math:`\{g : x_k^\top g = 0\}` cut :math:`\mathbb R^r` (the row space of
``X``, rank ``r``) into open polyhedral cones (chambers); every chamber's closure is a
pointed cone whose extreme rays are intersections of ``r − 1`` independent hyperplanes.
Around such a ray ``h`` (null vector of ``r − 1`` rows ``A``), the chambers that touch it
are reached by ``g = ±h + ε δ`` with ``A δ = s`` for each sign vector
``s ∈ {±1}^{r−1}`` and ε small. Collecting these for every ``(r−1)``-subset of rows gives
every chamber (for data in general position), hence every pattern that the convex
program needs. The work is :math:`O(\binom{n}{r-1} 2^{r})`: polynomial for fixed rank,
exponential in ``d`` otherwise (SPEC §2).

A hidden bias is handled by passing the bias-augmented ``[X, 1]``: the construction is
the same in one more dimension.
"""

from __future__ import annotations

import itertools
from math import comb

import torch

from convexnn.exceptions import PatternBudgetError
from convexnn.patterns._count import count_bound
from convexnn.patterns._pattern_set import PatternSet, dedup_columns

__all__ = ["enumerate_patterns"]


def _numerical_rank(X: torch.Tensor) -> tuple[int, torch.Tensor]:
    _, S, Vh = torch.linalg.svd(X, full_matrices=False)
    if S.numel() == 0 or float(S[0]) == 0.0:
        return 0, Vh[:0]
    eps = torch.finfo(X.dtype).eps
    tol = float(S[0]) * max(X.shape) * eps * 10
    r = int((S > tol).sum())
    return r, Vh[:r]


def enumerate_patterns(
    X: torch.Tensor,
    *,
    max_patterns: int = 20_000,
    batch_size: int = 2048,
) -> PatternSet:
    """Every non-empty activation pattern ``1[X g >= 0]`` of a chamber of ``X``.

    Parameters
    ----------
    X : tensor of shape (n, d)
        Data (already augmented with a constant column when a hidden bias is wanted).
    max_patterns : int
        Memory budget. When the count bound :func:`count_bound` (or the number of
        candidate gates the construction must try) exceeds it, a
        :class:`~convexnn.exceptions.PatternBudgetError` stating the count is raised
        before any work starts.

    Returns
    -------
    PatternSet
        With ``exact=True``.
    """
    n, d = X.shape
    r, V = _numerical_rank(X)
    bound = count_bound(n, max(r, 1))
    n_subsets = comb(n, max(r - 1, 0))
    n_candidates = n_subsets * 2 ** max(r, 1)
    if bound > max_patterns or n_candidates > 50 * max_patterns:
        raise PatternBudgetError(
            f"Exact enumeration of the activation patterns of X (n={n}, rank={r}) could "
            f"produce up to {bound:,} patterns from {n_candidates:,} candidate gates, more "
            f"than the budget max_patterns={max_patterns:,}. Use a number of sampled "
            "patterns instead (patterns=int), or raise max_patterns."
        )
    if r == 0:
        gates = torch.zeros(1, d, dtype=X.dtype, device=X.device)
        masks = torch.ones(n, 1, dtype=torch.bool, device=X.device)
        return PatternSet(gates, masks, True, "exact")
    Xr = X @ V.T  # (n, r) coordinates in the row space
    if r == 1:
        cand = torch.tensor([[1.0], [-1.0]], dtype=X.dtype, device=X.device)
    else:
        signs = torch.tensor(
            list(itertools.product((-1.0, 1.0), repeat=r - 1)), dtype=X.dtype, device=X.device
        )  # (2^{r-1}, r-1)
        pieces = []
        subsets = itertools.combinations(range(n), r - 1)
        while True:
            batch = list(itertools.islice(subsets, batch_size))
            if not batch:
                break
            idx = torch.tensor(batch, dtype=torch.long, device=X.device)
            A = Xr[idx]  # (B, r-1, r)
            U, S, Vh = torch.linalg.svd(A, full_matrices=True)
            eps = torch.finfo(X.dtype).eps
            ok = S[:, -1] > S[:, 0] * r * eps * 100
            if not bool(ok.any()):
                continue
            A, U, S, Vh = A[ok], U[ok], S[ok], Vh[ok]
            h = Vh[:, -1, :]  # (B, r) null direction
            # min-norm δ with A δ = s:  δ = V_{1:r-1} diag(1/S) Uᵀ s
            coef = torch.einsum("bij,sj->bsi", U.transpose(1, 2), signs) / S[:, None, :]
            delta = torch.einsum("bsi,bir->bsr", coef, Vh[:, : r - 1, :])  # (B, 2^{r-1}, r)
            a = Xr @ h.T  # (n, B)
            b = torch.einsum("nr,bsr->nbs", Xr, delta)  # (n, B, 2^{r-1})
            on = a.abs() <= (Xr.norm(dim=1, keepdim=True) * h.norm(dim=1) * 1e3 * eps)
            ratio = torch.where(on[:, :, None], torch.full_like(b, float("inf")),
                                a.abs()[:, :, None] / b.abs().clamp_min(1e-300))
            e = 0.5 * ratio.min(dim=0).values.clamp(max=1.0)  # (B, 2^{r-1})
            for sigma in (1.0, -1.0):
                g = sigma * h[:, None, :] + e[:, :, None] * delta
                pieces.append(g.reshape(-1, r))
        cand = torch.cat(pieces) if pieces else torch.zeros(0, r, dtype=X.dtype, device=X.device)
    masks = (Xr @ cand.T) >= 0
    keep = dedup_columns(masks)
    gates = cand[keep] @ V  # back to R^d
    masks = masks[:, keep]
    # recompute masks from the lifted gates (same patterns up to rounding; keep consistent)
    return PatternSet(gates.contiguous(), masks.contiguous(), True, "exact")
