r"""Pattern growth: find neurons that violate the dual constraint (column generation).

At a solution of the program over some patterns, :math:`V = \nabla L` is dual optimal
for that program. For the full (all-pattern) problem it stays feasible only if

.. math:: |v^\top (X u)_+| \le \lambda \quad \text{for every unit } u

(SPEC §4; ``‖X^⊤ D(u) v‖ ≤ λ`` for gated ReLU; :math:`\|V^\top (Xu)_+\| \le \lambda`
for ReLU with vector outputs, where a violator is a (pattern, output direction) pair:
:func:`find_violating_pairs`). A neuron that breaks it brings a
pattern ``1[Xu ≥ 0]`` that lowers the optimum when added. The maximization is not
convex. For gated ReLU a fixed-point iteration :math:`u \leftarrow X^\top D(u)\, v /
\|\cdot\|` from many starts (random gates, data points, existing gates) finds violators
fast. The same iteration is the default for ReLU, but there, with the value
:math:`f(u) = v^\top (Xu)_+` piecewise linear in ``u``, its jump to the maximizer of the
current piece's linearization over the whole sphere lands in unrelated pieces (on KEEL
pima, from neurons 0–8 % above λ, one jump fell to −0.3…0.6 λ) and misses violators;
``ascent=True`` (the estimators' ``grow="thorough"``) climbs monotonically instead
(:func:`_relu_ascent`). It is not the default because the growth rounds it enables cost
time (session 21: breast cancer fits took twice as long for a 0.1–0.4 % lower objective;
for the pairs of vector outputs, a 3-class fit of 80 rows grew to its Newton budget, 219 s
instead of a few). Finding none is evidence, not
proof, of global optimality: the certificate's scope stays ``"sampled"`` unless the
patterns were enumerated exactly.
"""

from __future__ import annotations

import math

import torch

from convexnn.patterns._pattern_set import dedup_columns

__all__ = ["find_violating_gates", "find_violating_pairs"]

#: the ascent's trial moves along the tangent supergradient (unit length): ``u + t ĝ`` for
#: these ``t`` (angles of 45°, 14°, 3.6°, 0.9°), and ``ĝ`` itself (the fixed-point jump)
_ASCENT_MOVES = (math.inf, 1.0, 0.25, 0.0625, 0.015625)


def _unit_rows(U: torch.Tensor) -> torch.Tensor:
    return U / torch.linalg.vector_norm(U, dim=1, keepdim=True).clamp_min(1e-300)


def _relu_ascent(X: torch.Tensor, U: torch.Tensor, Q: torch.Tensor,
                 n_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Monotone ascent of :math:`f_b(u) = q_b^\top (X u)_+` on the unit sphere, from each
    row ``u_b`` of ``U`` (``Q``: ``(n, 1)`` for one weight vector, ``(n, B)`` for one per row).

    :math:`f_b` is linear on each piece :math:`\{u : 1[Xu > 0] = D\}` with gradient
    :math:`g = X^\top D q_b`. Each step tries ``u + t ĝ`` (normalized; ``ĝ`` the unit tangent
    part of ``g``) for ``t`` in ``_ASCENT_MOVES`` and keeps the best value of these and
    of ``u`` itself, so no row's value decreases; it stops when no row improves.

    Returns the end points and their values ``(B,)``.
    """
    def value(C: torch.Tensor) -> torch.Tensor:
        return (torch.clamp(X @ C.T, min=0) * Q).sum(dim=0)

    f = value(U)
    for _ in range(n_steps):
        G = ((X @ U.T > 0).to(X.dtype) * Q).T @ X  # (B, d)
        G = _unit_rows(G - (G * U).sum(dim=1, keepdim=True) * U)
        best_U, best_f = U, f
        for t in _ASCENT_MOVES:
            C = _unit_rows(G if math.isinf(t) else U + t * G)
            fc = value(C)
            better = fc > best_f
            best_U = torch.where(better[:, None], C, best_U)
            best_f = torch.where(better, fc, best_f)
        if not bool((best_f > f).any()):
            break
        U, f = best_U, best_f
    return U, f


def _spectral_values(X: torch.Tensor, M: torch.Tensor, V: torch.Tensor,
                     max_entries: int = 2**24) -> torch.Tensor:
    """:math:`\\|X^\\top \\operatorname{diag}(m_b) V\\|_2` for every column ``m_b`` of ``M``."""
    n, c = V.shape
    step = max(1, max_entries // max(1, n * c))
    out = []
    for s in range(0, M.shape[1], step):
        DV = M[:, s:s + step].T[:, :, None] * V[None]  # (B, n, c)
        out.append(torch.linalg.matrix_norm(DV.transpose(1, 2) @ X, ord=2))
    return torch.cat(out) if out else X.new_zeros(0)


def find_violating_gates(
    X: torch.Tensor,
    V: torch.Tensor,
    lam: float,
    *,
    gated: bool,
    generator: torch.Generator,
    vector: bool = False,
    n_starts: int = 256,
    n_steps: int = 25,
    extra_starts: torch.Tensor | None = None,
    max_new: int = 32,
    margin: float = 1e-6,
    ascent: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gates (k, d) of neurons with dual value above ``λ(1 + margin)`` and their values.

    ``ascent`` (ReLU): search by :func:`_relu_ascent` instead of the fixed-point iteration
    (slower, and it finds violators the iteration misses).

    Each returned gate lies strictly inside its chamber (a tiny random perturbation of
    the ascent's end point), so it can seed interior-point solvers. ``vector`` (gated,
    nuclear-norm program): the dual value of a gate is the spectral norm
    :math:`\\|(D X)^\\top V\\|_2`; the ascent runs along each output and along the top
    right singular vectors of ``V``.
    """
    n, d = X.shape
    starts = [torch.randn(n_starts, d, generator=generator, dtype=X.dtype, device=X.device)]
    k_data = min(n, n_starts)
    idx = torch.randperm(n, generator=generator, device=X.device)[:k_data]
    starts.append(X[idx])
    if extra_starts is not None and extra_starts.numel():
        starts.append(extra_starts.to(X.dtype))
    U0 = _unit_rows(torch.cat(starts))
    found_g, found_v = [], []
    dirs = [V[:, k] for k in range(V.shape[1])]
    if vector and V.shape[1] > 1:
        _, _, Vh = torch.linalg.svd(V, full_matrices=False)
        dirs += [V @ Vh[k] for k in range(min(3, Vh.shape[0]))]
    for v0 in dirs:
        for s in (1.0, -1.0):
            v = s * v0
            if ascent and not gated:
                U, _ = _relu_ascent(X, U0, v[:, None], n_steps)
            else:
                U = U0
                for _ in range(n_steps):
                    M = (X @ U.T >= 0).to(X.dtype)  # (n, B)
                    U = _unit_rows((M * v[:, None]).T @ X)  # (B, d)
            # perturb into the interior of a chamber, then evaluate
            eps = 1e-7 if X.dtype == torch.float64 else 1e-4
            U = _unit_rows(U + eps * torch.randn(U.shape, generator=generator, dtype=X.dtype,
                                                 device=X.device))
            M = (X @ U.T >= 0).to(X.dtype)
            if gated and vector:
                val = _spectral_values(X, M, V)
            elif gated:
                val = torch.linalg.vector_norm((M * v[:, None]).T @ X, dim=1)
            else:
                val = (M * (X @ U.T) * v[:, None]).sum(dim=0)
            ok = val > lam * (1 + margin)
            found_g.append(U[ok])
            found_v.append(val[ok])
    if not found_g:
        return X.new_zeros(0, d), X.new_zeros(0)
    G = torch.cat(found_g)
    vals = torch.cat(found_v)
    order = torch.argsort(vals, descending=True)
    G, vals = G[order], vals[order]
    # distinct patterns only
    P = (X @ G.T) >= 0
    keep = dedup_columns(P)[:max_new]
    return G[keep], vals[keep]


def find_violating_pairs(
    X: torch.Tensor,
    V: torch.Tensor,
    lam: float,
    *,
    generator: torch.Generator,
    n_starts: int = 256,
    n_steps: int = 25,
    extra_starts: torch.Tensor | None = None,
    max_new: int = 32,
    margin: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""ReLU neurons with vector outputs that violate the dual constraint.

    Maximizes :math:`\varphi(u, t) = -t^\top V^\top (Xu)_+` over unit ``u`` and ``t``
    by alternating ascent: for fixed ``t`` the fixed point
    :math:`u \leftarrow X^\top D(u)(-Vt)/\|\cdot\|`, for fixed ``u`` the exact
    :math:`t = -V^\top (Xu)_+/\|\cdot\|`, so that :math:`\varphi = \|V^\top(Xu)_+\|`.
    A neuron with :math:`\varphi > \lambda(1 + \text{margin})` gives the pair
    :math:`(1[Xu \ge 0], t)`, whose block lowers the directional program's optimum when
    added (its derivative along :math:`(Xu)_+ t^\top` is :math:`-\varphi < -\lambda`).
    Starts: random gates, data points and ``extra_starts`` (the current neurons).

    Returns ``(gates (k, d), directions (k, c), values (k,))``, in decreasing value, at
    most ``max_new`` with distinct patterns; each gate is strictly inside its chamber.
    """
    n, d = X.shape
    c = V.shape[1]
    starts = [torch.randn(n_starts, d, generator=generator, dtype=X.dtype, device=X.device)]
    idx = torch.randperm(n, generator=generator, device=X.device)[:min(n, n_starts)]
    starts.append(X[idx])
    if extra_starts is not None and extra_starts.numel():
        starts.append(extra_starts.to(X.dtype))
    U = _unit_rows(torch.cat(starts))

    def directions(U: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        A = -(torch.clamp(X @ U.T, min=0).T @ V)  # (B, c): -Vᵀ(Xu)₊
        val = torch.linalg.vector_norm(A, dim=1)
        return A / val[:, None].clamp_min(1e-300), val

    T, _ = directions(U)
    for _ in range(n_steps):
        Q = -(V @ T.T)  # (n, B)
        G = ((X @ U.T >= 0).to(X.dtype) * Q).T @ X  # (B, d)
        U = _unit_rows(G)
        T, _ = directions(U)
    eps = 1e-7 if X.dtype == torch.float64 else 1e-4
    U = _unit_rows(U + eps * torch.randn(U.shape, generator=generator, dtype=X.dtype,
                                         device=X.device))
    T, val = directions(U)
    ok = (val > lam * (1 + margin)) & ((X @ U.T) != 0).all(dim=0)
    U, T, val = U[ok], T[ok], val[ok]
    if not U.shape[0]:
        return X.new_zeros(0, d), X.new_zeros(0, c), X.new_zeros(0)
    order = torch.argsort(val, descending=True)
    U, T, val = U[order], T[order], val[order]
    keep = dedup_columns((X @ U.T) >= 0)[:max_new]
    return U[keep], T[keep], val[keep]
