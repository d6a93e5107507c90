r"""Sketched least squares and ridge regression: :func:`lstsq`.

Problem: :math:`\min_x f(x) = \|A x - b\|_2^2 + \alpha \|x\|_2^2` with ``A`` of shape
``(n, d)``, ``n >> d``, ``b`` of shape ``(n,)`` or ``(n, k)``.

Methods
-------
``"sketch_and_solve"``
    :math:`\hat x = \arg\min \|S(Ax - b)\|^2 + \alpha\|x\|^2`: one pass over the data.
    If :math:`m \ge 1 + \mathrm{rank}(A)(1 + 1/\varepsilon)` then
    :math:`f(\hat x) \le (1+\varepsilon)\,\mathrm{OPT}` w.h.p.; for a Gaussian ``S`` and
    ``α = 0``, :math:`\mathbb E[f(A\hat x)]/\mathrm{OPT} = 1 + d/(m - d - 1)` exactly.
``"ihs"``
    Iterative Hessian sketch with a fixed sketch and momentum (:mod:`._ihs`): one pass
    per iteration, error contracted by about :math:`\sqrt{d_\alpha/m}` per pass.
``"preconditioned"``
    CG on the sketch-preconditioned normal equations (CGLS form, :mod:`._preconditioned`):
    Blendenpik/LSRN style, fast and accurate whatever ``cond(A)``.
``"direct"``
    QR + SVD of the whole matrix (small problems; what ``"auto"`` uses below a size).
``"auto"``
    ``"direct"`` for small problems; ``"sketch_and_solve"`` when a loose ``tol >= 1e-3``
    is asked (``m`` from the theorem above); ``"preconditioned"`` otherwise.

All solves of small sketched systems use an SVD (rank revealing), so rank-deficient
and ill-conditioned inputs give the minimum-norm solution on CPU and CUDA alike.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from convexnn.exceptions import ConvergenceWarning, ValidationError
from convexnn.sketching._embeddings import SKETCH_KINDS, Sketch, make_sketch
from convexnn.sketching._ihs import ihs_lstsq
from convexnn.sketching._inputs import (
    Operand,
    as_operand,
    as_rhs,
    check_choice,
    default_tol,
    is_dask_array,
    to_output,
)
from convexnn.sketching._precond import build_preconditioner, svd_solve
from convexnn.sketching._preconditioned import pcg_lstsq
from convexnn.utils import make_generator, seed_from_random_state

__all__ = ["LstsqInfo", "METHODS", "lstsq", "solve_operand", "choose_sketch_size"]

logger = logging.getLogger(__name__)

METHODS = ("auto", "sketch_and_solve", "ihs", "preconditioned", "direct")
SKETCHES = ("auto",) + SKETCH_KINDS
_DIRECT_WORK = 2e7  # n d^2 below which "auto" solves directly


@dataclass
class LstsqInfo:
    """What :func:`lstsq` did (returned with ``return_info=True``).

    Attributes
    ----------
    method, sketch : str
        The method and embedding actually used (after resolving ``"auto"``).
    sketch_size : int
        Final number of rows ``m`` of the sketch (0 for ``"direct"``).
    n_iter : int
        Iterations of the iterative method (0 otherwise).
    n_passes : int
        Passes over ``A`` (sketches, products, fused products).
    converged : bool
        Whether the stopping rule was met (always True for one-shot methods).
    rank : int
        Numerical rank seen in the (sketched) matrix.
    effective_dimension : float
        ``d_α = Σ σ²/(σ² + α)`` estimated from the sketch (rank when ``α = 0``).
    objective : float
        ``‖Ax − b‖² + α‖x‖²`` at the returned solution when it was computed (else NaN).
    history : list of dict
        Per-iteration objective and excess bound.
    """

    method: str
    sketch: str
    sketch_size: int
    n_iter: int = 0
    n_passes: int = 0
    converged: bool = True
    rank: int = 0
    effective_dimension: float = float("nan")
    objective: float = float("nan")
    history: list = field(default_factory=list)


def _iterations(m: int, d_eff: float, eps: float = 1e-5) -> float:
    ratio = m / max(d_eff, 1.0)
    return max(2.0, 2.0 * math.log(1.0 / eps) / math.log(max(ratio, 1.05)))


def choose_sketch_size(n: int, d: int, d_eff: float | None = None, *, alpha: float = 0.0) -> int:
    r"""Sketch size for the iterative methods from a cost model.

    Minimizes :math:`I(m)\, n d + 0.1\, m d^2` over ``m = c · d_α``: ``I(m)`` iterations
    (contraction :math:`\sqrt{d_\alpha/m}` per pass) of cost ``n d`` against the
    ``O(m d²)`` factorization of the sketch. ``m >= d + 1`` when ``α = 0``; ``m <= n``.
    """
    de = float(d if d_eff is None else max(d_eff, 1.0))
    lo = d + 1 if alpha <= 0 else 2
    best, best_cost = None, math.inf
    for c in (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64):
        m = int(max(lo, math.ceil(c * de)))
        if m > n:
            continue
        cost = _iterations(m, de) * n * d + 0.1 * m * d * min(m, d)
        if cost < best_cost:
            best, best_cost = m, cost
    return int(best) if best is not None else int(min(n, max(lo, 2 * math.ceil(de))))


def _check_tol(tol: Any, owner: str) -> float | None:
    if tol is None:
        return None
    ok = isinstance(tol, (int, float)) and not isinstance(tol, bool)
    if not ok or not (0 < float(tol) < 1):
        raise ValidationError(
            f"The 'tol' parameter of {owner} must be None or a float in the range (0, 1). "
            f"Got {tol!r} instead."
        )
    return float(tol)


def _check_alpha(alpha: Any, owner: str) -> float:
    ok = isinstance(alpha, (int, float)) and not isinstance(alpha, bool)
    if not ok or not math.isfinite(float(alpha)) or float(alpha) < 0:
        raise ValidationError(
            f"The 'alpha' parameter of {owner} must be a float in the range [0, inf). "
            f"Got {alpha!r} instead."
        )
    return float(alpha)


def check_sketch_size(sketch_size: Any, n: int, d: int, alpha: float, owner: str) -> int | None:
    """Validate ``sketch_size`` against the problem: ``d <= m <= n`` (``m >= 1`` for ridge)."""
    if sketch_size is None:
        return None
    is_int = (
        isinstance(sketch_size, int) or type(sketch_size).__name__.startswith("int")
    ) and not isinstance(sketch_size, bool)
    lo = d if alpha <= 0 else 1
    if not is_int or int(sketch_size) < lo:
        what = f"n_features ({d})" if alpha <= 0 else "1"
        raise ValidationError(
            f"The 'sketch_size' parameter of {owner} must be an int >= {what}. "
            f"Got {sketch_size!r} instead."
        )
    if int(sketch_size) > n:
        raise ValidationError(
            f"The 'sketch_size' parameter of {owner} must be an int <= n_samples ({n}): a "
            f"sketch larger than the data saves nothing (use method='direct'). "
            f"Got {sketch_size!r} instead."
        )
    return int(sketch_size)


def _check_max_iter(max_iter: Any, owner: str) -> int | None:
    if max_iter is None:
        return None
    ok = isinstance(max_iter, int) and not isinstance(max_iter, bool) and max_iter >= 1
    if not ok:
        raise ValidationError(
            f"The 'max_iter' parameter of {owner} must be None or an int >= 1. "
            f"Got {max_iter!r} instead."
        )
    return int(max_iter)


class _SeedStream:
    """Independent seeds for successive sketches, all from one ``random_state``."""

    def __init__(self, random_state: Any) -> None:
        self.gen = make_generator(random_state, "cpu")

    def __call__(self) -> int:
        return seed_from_random_state(self.gen)


def leverage_less_sketch(
    op: Operand, m: int, seeds: _SeedStream, alpha: float, *, n_probe: int = 16
) -> Sketch:
    r"""A LESS sketch whose sampling follows leverage scores estimated by a sketch.

    Pilot sparse-sign sketch ``S₀Ã`` → preconditioner ``P`` (``ÃP`` has orthonormal-like
    columns) → leverage scores :math:`\ell_i \approx \|e_i^\top \tilde A P G\|^2` with a
    Gaussian ``G`` of ``n_probe`` columns (JL), mixed with 10% of the uniform law.
    """
    n, d = op.shape
    m0 = min(n, max(2 * d, d + 8))
    pilot = make_sketch("sparse_sign", m0, n, random_state=seeds(), device=op.device,
                        dtype=op.dtype)
    sa0, _ = op.sketch(pilot)
    pre0 = build_preconditioner(sa0, alpha)
    g = torch.Generator(device=op.device)
    g.manual_seed(seeds())
    probe = torch.randn((pre0.dim, n_probe), generator=g, device=op.device, dtype=op.dtype)
    z = op.matvec(pre0.apply(probe)) / math.sqrt(n_probe)
    lev = (z * z).sum(1).double()
    lev = 0.9 * lev / lev.sum() + 0.1 / n
    return make_sketch("less", m, n, random_state=seeds(), device=op.device, dtype=op.dtype,
                       nnz_per_row=min(d, 64), leverage_scores=lev)


def _make(kind: str, m: int, op: Operand, seeds: _SeedStream, alpha: float) -> Sketch:
    if kind == "less":
        return leverage_less_sketch(op, m, seeds, alpha)
    return make_sketch(kind, m, op.shape[0], random_state=seeds(), device=op.device,
                       dtype=op.dtype)


def solve_operand(
    op: Operand,
    b: torch.Tensor,
    *,
    method: str = "auto",
    sketch: str = "auto",
    sketch_size: int | None = None,
    tol: float | None = None,
    alpha: float = 0.0,
    max_iter: int | None = None,
    random_state: Any = None,
    owner: str = "lstsq",
) -> tuple[torch.Tensor, LstsqInfo]:
    """Solve with validated inputs (``b`` 2-D); shared by :func:`lstsq` and the estimators."""
    n, d = op.shape
    seeds = _SeedStream(random_state)
    tol_it = tol if tol is not None else default_tol(op.dtype)
    if method == "auto":
        if n * d * d <= _DIRECT_WORK or n < 4 * d:
            method = "direct"
        elif tol is not None and tol >= 1e-3:
            m_ss = sketch_size or math.ceil(1 + d * (1 + 1 / tol))
            method = "sketch_and_solve" if m_ss <= n // 2 else "preconditioned"
        else:
            method = "preconditioned"
    if sketch == "auto":
        sketch = "sparse_sign" if method == "sketch_and_solve" else "countsketch"
    if method == "direct":
        x, rank = svd_solve(op.to_dense(), b, alpha)
        return x, LstsqInfo("direct", "none", 0, rank=rank, n_passes=1,
                            effective_dimension=float(rank))

    if method == "sketch_and_solve":
        if sketch_size is not None:
            m = sketch_size
        elif tol is not None:
            m = math.ceil(1 + d * (1 + 1 / tol))
        else:
            m = 8 * d
        m = min(m, n)
        if alpha <= 0 and m < d:
            m = d
        s = _make(sketch, m, op, seeds, alpha)
        sa, sb = op.sketch(s, b)
        x, rank = svd_solve(sa, sb, alpha)
        pre_sigma = torch.linalg.svdvals(sa)
        from convexnn.sketching._precond import effective_dimension

        return x, LstsqInfo("sketch_and_solve", sketch, m, n_passes=op.n_passes, rank=rank,
                            effective_dimension=effective_dimension(pre_sigma, alpha))

    # iterative methods ---------------------------------------------------------------
    max_it = max_iter if max_iter is not None else 100
    if sketch_size is not None:
        m = sketch_size
    elif alpha > 0:
        # adaptive: a pilot sketch estimates the effective dimension d_alpha
        m0 = min(n, max(32, 2 * d))
        pilot = make_sketch("sparse_sign", m0, n, random_state=seeds(), device=op.device,
                            dtype=op.dtype)
        sa0, _ = op.sketch(pilot)
        from convexnn.sketching._precond import effective_dimension

        d_eff = effective_dimension(torch.linalg.svdvals(sa0), alpha)
        m = choose_sketch_size(n, d, d_eff, alpha=alpha)
        logger.debug("lstsq: estimated effective dimension %.1f -> sketch size %d", d_eff, m)
    else:
        m = choose_sketch_size(n, d)
    s = _make(sketch, m, op, seeds, alpha)
    sa, sb = op.sketch(s, b)
    pre = build_preconditioner(sa, alpha)
    x0 = pre.solve(sa.T @ sb)
    rho_factor = 1.0 if sketch in ("gaussian", "srht", "rademacher") else 1.5
    if method == "ihs":
        def grow(m_cur: int) -> torch.Tensor:
            extra = _make(sketch, m_cur, op, seeds, alpha)
            return op.sketch(extra)[0]

        res, pre = ihs_lstsq(op, b, sa, x0, alpha=alpha, tol=tol_it, max_iter=max_it,
                             grow_sketch=grow if sketch_size is None else None,
                             max_sketch_size=n, rho_factor=rho_factor)
    else:
        rho = rho_factor * pre.effective_dimension() / pre.m
        res = pcg_lstsq(op, b, pre, x0, alpha=alpha, tol=tol_it, max_iter=max_it, rho=rho)
    if not res.converged:
        warnings.warn(
            f"{owner} ({method}) did not reach tol={tol_it:g} in {res.n_iter} iterations "
            f"(max_iter={max_it}); increase max_iter or sketch_size.",
            ConvergenceWarning,
            stacklevel=3,
        )
    info = LstsqInfo(method, sketch, pre.m, n_iter=res.n_iter, n_passes=op.n_passes,
                     converged=res.converged, rank=pre.rank,
                     effective_dimension=pre.effective_dimension(),
                     objective=res.history[-1]["objective"] if res.history else float("nan"),
                     history=res.history)
    return res.x, info


def lstsq(
    A: Any,
    b: Any,
    *,
    method: str = "auto",
    sketch: str = "auto",
    sketch_size: int | None = None,
    tol: float | None = None,
    alpha: float = 0.0,
    max_iter: int | None = None,
    random_state: Any = None,
    return_info: bool = False,
) -> Any:
    r"""Least squares (or ridge) by randomized sketching.

    Solves :math:`\min_x \|A x - b\|_2^2 + \alpha \|x\|_2^2` (minimum-norm solution when
    ``A`` is rank deficient and ``α = 0``).

    Parameters
    ----------
    A : array-like of shape (n, d)
        NumPy array or memmap, torch tensor (dense or sparse, CPU or CUDA), SciPy sparse
        matrix, or ``dask.array`` (sketched chunk by chunk in one pass, on the local
        scheduler or on the ``distributed`` client in use).
    b : array-like of shape (n,) or (n, k)
        Right-hand side(s).
    method : {"auto", "sketch_and_solve", "ihs", "preconditioned", "direct"}
        See the module documentation.
    sketch : {"auto", "gaussian", "rademacher", "srht", "countsketch", "sparse_sign", "less"}
        The embedding. ``"auto"``: sparse sign (8 per column) for sketch-and-solve,
        CountSketch for the iterative methods (one cheap pass). ``"less"`` samples rows by
        leverage scores estimated with a pilot sketch (LESS-uniform on Dask input).
    sketch_size : int, optional
        Rows ``m`` of the sketch; ``d <= m <= n`` (``1 <= m`` for ridge). Default: from
        ``tol`` for sketch-and-solve (``m = 1 + d(1 + 1/tol)``, else ``8d``); a cost model
        over the (sketch-estimated) effective dimension for the iterative methods, which
        also double it adaptively (``"ihs"``) when convergence is slow.
    tol : float in (0, 1), optional
        Target relative accuracy of the objective, :math:`f(x) \le (1 + tol)\,\mathrm{OPT}`.
        Iterative methods stop on a certified bound of the excess (default ``1e-10`` in
        float64, ``1e-6`` in float32). For sketch-and-solve it sets ``m``.
    alpha : float, default 0
        Ridge parameter ``α >= 0``.
    max_iter : int, optional
        Iteration cap for the iterative methods (default 100); a
        :class:`~convexnn.exceptions.ConvergenceWarning` is raised when it is hit.
    random_state : int, RandomState, torch.Generator or None
        Seeds every sketch.
    return_info : bool, default False
        Also return a :class:`LstsqInfo`.

    Returns
    -------
    x : same kind as ``A``
        Shape ``(d,)`` or ``(d, k)``. NumPy for NumPy/SciPy/Dask input; a torch tensor on
        ``A``'s device for torch input.
    info : LstsqInfo
        Only with ``return_info=True``.

    Raises
    ------
    ValidationError
        Unknown method/sketch, ``sketch_size`` outside ``[d, n]``, NaN/inf, shapes that
        do not match.

    Examples
    --------
    >>> import numpy as np
    >>> from convexnn.sketching import lstsq
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((20000, 10)); b = A @ np.ones(10) + rng.standard_normal(20000)
    >>> x = lstsq(A, b, method="preconditioned", random_state=0)
    >>> bool(np.allclose(x, np.linalg.lstsq(A, b, rcond=None)[0], atol=1e-6))
    True
    """
    owner = "lstsq"
    method = check_choice(method, "method", owner, METHODS)
    sketch = check_choice(sketch, "sketch", owner, SKETCHES)
    tol = _check_tol(tol, owner)
    alpha = _check_alpha(alpha, owner)
    max_iter = _check_max_iter(max_iter, owner)
    if is_dask_array(A):
        from convexnn.sketching._dask import lstsq_dask

        x, info = lstsq_dask(A, b, method=method, sketch=sketch, sketch_size=sketch_size,
                             tol=tol, alpha=alpha, max_iter=max_iter,
                             random_state=random_state)
        return (x, info) if return_info else x
    op, kind = as_operand(A, name="A", owner=owner)
    bt = as_rhs(b, op, owner=owner)
    n, d = op.shape
    sketch_size = check_sketch_size(sketch_size, n, d, alpha, owner)
    vec = bt.ndim == 1
    x, info = solve_operand(op, bt.unsqueeze(1) if vec else bt, method=method, sketch=sketch,
                            sketch_size=sketch_size, tol=tol, alpha=alpha, max_iter=max_iter,
                            random_state=random_state, owner=owner)
    x = x[:, 0] if vec else x
    out = to_output(x, kind)
    return (out, info) if return_info else out
