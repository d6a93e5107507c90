r"""Least squares on ``dask.array`` data larger than memory: sketch chunk by chunk.

The matrix is read in row chunks ``A_J`` (columns are merged into one chunk); each task
computes ``S_{:,J} [A_J, b_J]`` with :meth:`Sketch.apply_left_block` and the partial
sketches are summed in a tree, so ``S [A, b]`` costs **one pass** over the data and
``O(m d)`` memory per task. Tasks run on dask's default scheduler (local threads) or on
the ``distributed`` client in use (``dask.compute`` picks it up); the sketch object is
small and picklable (seeds, not matrices).

Methods on Dask input:

* ``"sketch_and_solve"``: one pass.
* ``"preconditioned"``: one sketch pass, then one pass that forms the exact
  preconditioned Gram matrix :math:`G = P^\top(\tilde A^\top \tilde A + \alpha I)P`
  (well conditioned because ``P`` comes from the sketch: no squaring of ``cond(A)``) and
  solves for the correction from the sketch-and-solve start, then passes of iterative
  refinement :math:`x \leftarrow x + P G^{-1} P^\top g` until the exact excess
  :math:`(P^\top g)^\top G^{-1} P^\top g \le tol \cdot f(x)`. Typically 3–4 passes.
* ``"ihs"``: one pass per iteration (:mod:`._ihs`).

Dask is imported lazily: the rest of the package works without it.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
import torch

from convexnn.exceptions import ConvergenceWarning, SolverError, ValidationError
from convexnn.sketching._embeddings import Sketch, make_sketch
from convexnn.sketching._ihs import ihs_lstsq
from convexnn.sketching._inputs import default_tol
from convexnn.sketching._precond import build_preconditioner, effective_dimension, svd_solve

__all__ = ["DaskOperand", "lstsq_dask", "sketch_dask"]

logger = logging.getLogger(__name__)


def _import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - dask is a dependency
        raise SolverError(
            "Dask input needs the 'dask[array]' package: pip install 'dask[array]'."
        ) from exc
    return dask, da


def _to_tensor(block: Any, dtype: torch.dtype) -> torch.Tensor:
    arr = np.asarray(block)
    t = torch.from_numpy(np.ascontiguousarray(arr)).to(dtype)
    return t.unsqueeze(1) if t.ndim == 1 else t


def _check_block(t: torch.Tensor, name: str, offset: int) -> None:
    if not bool(torch.isfinite(t).all()):
        bad = "NaN" if bool(torch.isnan(t).any()) else "infinity"
        raise ValidationError(
            f"Input {name} contains {bad} (in the chunk starting at row {offset}); "
            "expected only finite values."
        )


# --- chunk tasks (module level: picklable for distributed workers) ----------------------
def _task_sketch(a: Any, b: Any, offset: int, sketch: Sketch, dtype: torch.dtype) -> np.ndarray:
    at = _to_tensor(a, dtype)
    _check_block(at, "A", offset)
    if b is None:
        return sketch.apply_left_block(at, offset).numpy()
    bt = _to_tensor(b, dtype)
    _check_block(bt, "b", offset)
    return sketch.apply_left_block(torch.cat([at, bt], dim=1), offset).numpy()


def _task_gradient(a: Any, b: Any, offset: int, x: torch.Tensor) -> np.ndarray:
    at = _to_tensor(a, x.dtype)
    r = _to_tensor(b, x.dtype) - at @ x
    return np.concatenate([(at.T @ r).numpy().ravel(), (r * r).sum(0).numpy()])


def _task_gram(a: Any, b: Any, offset: int, p: torch.Tensor, x0: torch.Tensor) -> np.ndarray:
    at = _to_tensor(a, p.dtype)
    bp = at @ p
    r = _to_tensor(b, p.dtype) - at @ x0
    return np.concatenate(
        [(bp.T @ bp).numpy().ravel(), (bp.T @ r).numpy().ravel(), (r * r).sum(0).numpy()]
    )


def _task_norm2(b: Any, dtype: torch.dtype) -> np.ndarray:
    bt = _to_tensor(b, dtype)
    return (bt * bt).sum(0).numpy()


def _add(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return x + y


class DaskOperand:
    """Row-chunked view of a ``dask.array`` ``A`` (and its right-hand side ``b``).

    Every method is one pass over the chunks, reduced by a binary tree of additions.
    """

    def __init__(self, a: Any, b: Any = None, *, dtype: torch.dtype | None = None) -> None:
        dask, da = _import_dask()
        self._dask = dask
        if a.ndim != 2:
            raise ValidationError(
                f"Input A of lstsq must be a 2-D array of shape (n_samples, n_features). "
                f"Got a dask array with shape {a.shape} instead."
            )
        if a.dtype.kind not in "fiub":
            raise ValidationError(f"Input A of lstsq must be numeric. Got dtype {a.dtype}.")
        if a.numblocks[1] > 1:
            a = a.rechunk({1: -1})
        self.shape = (int(a.shape[0]), int(a.shape[1]))
        self.dtype = dtype or (torch.float32 if a.dtype == np.float32 else torch.float64)
        self.device = torch.device("cpu")
        self.row_chunks = tuple(int(c) for c in a.chunks[0])
        self.offsets = [0, *np.cumsum(self.row_chunks)[:-1].tolist()]
        self.a_blocks = list(a.to_delayed().ravel())
        self.b_blocks = None
        self.k = 0
        if b is not None:
            bd = b if hasattr(b, "dask") else da.from_array(np.asarray(b), chunks=-1)
            if bd.ndim not in (1, 2) or bd.shape[0] != self.shape[0]:
                raise ValidationError(
                    f"Input b of lstsq must have shape (n,) or (n, k) with n = {self.shape[0]}"
                    f" rows like A. Got shape {bd.shape} instead."
                )
            chunks = {0: self.row_chunks} if bd.ndim == 1 else {0: self.row_chunks, 1: -1}
            bd = bd.rechunk(chunks)
            self.k = 1 if bd.ndim == 1 else int(bd.shape[1])
            self.b_blocks = list(bd.to_delayed().ravel())
        self.n_passes = 0

    def _reduce(self, parts: list) -> np.ndarray:
        delayed = self._dask.delayed
        while len(parts) > 1:
            nxt = [delayed(_add)(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
            if len(parts) % 2:
                nxt.append(parts[-1])
            parts = nxt
        self.n_passes += 1
        (out,) = self._dask.compute(parts[0])
        return np.asarray(out)

    def sketch_ab(self, sketch: Sketch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(S A, S b)`` in one pass (``S b`` None without ``b``)."""
        delayed = self._dask.delayed
        bb = self.b_blocks or [None] * len(self.a_blocks)
        parts = [
            delayed(_task_sketch)(a, b, off, sketch, self.dtype)
            for a, b, off in zip(self.a_blocks, bb, self.offsets)
        ]
        out = torch.from_numpy(self._reduce(parts))
        d = self.shape[1]
        return out[:, :d].contiguous(), (out[:, d:].contiguous() if self.b_blocks else None)

    def gradient_pass(self, x: torch.Tensor, b: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(Aᵀ(b − Ax), ‖b − Ax‖²)`` for ``x`` of shape ``(d, k)``, one pass."""
        delayed = self._dask.delayed
        xc = x.detach().cpu()
        parts = [
            delayed(_task_gradient)(a, bb, off, xc)
            for a, bb, off in zip(self.a_blocks, self.b_blocks, self.offsets)
        ]
        out = torch.from_numpy(self._reduce(parts))
        d, k = x.shape
        return out[: d * k].reshape(d, k).to(x.device), out[d * k :].to(x.device)

    def gram_pass(
        self, p: torch.Tensor, x0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``((AP)ᵀAP, (AP)ᵀ r₀, ‖r₀‖²)`` with ``r₀ = b − A x₀``, one pass."""
        delayed = self._dask.delayed
        parts = [
            delayed(_task_gram)(a, bb, off, p, x0)
            for a, bb, off in zip(self.a_blocks, self.b_blocks, self.offsets)
        ]
        out = torch.from_numpy(self._reduce(parts))
        r, k = p.shape[1], x0.shape[1]
        return (
            out[: r * r].reshape(r, r),
            out[r * r : r * r + r * k].reshape(r, k),
            out[r * r + r * k :],
        )

    def rhs_norm2(self) -> torch.Tensor:
        """``‖b‖²`` per column (one pass over ``b`` only)."""
        delayed = self._dask.delayed
        parts = [delayed(_task_norm2)(bb, self.dtype) for bb in self.b_blocks]
        out = self._reduce(parts)
        self.n_passes -= 1  # b only
        return torch.from_numpy(out)


def sketch_dask(a: Any, sketch: Sketch) -> torch.Tensor:
    """Return ``S A`` for a ``dask.array`` ``A`` in one chunked pass (a CPU tensor)."""
    op = DaskOperand(a)
    if sketch.n != op.shape[0]:
        raise ValidationError(
            f"The sketch of shape {sketch.shape} cannot be applied to a dask array with "
            f"{op.shape[0]} rows."
        )
    return op.sketch_ab(sketch)[0]


def _dense_p(pre: Any) -> torch.Tensor:
    eye = torch.eye(pre.dim, dtype=pre.v.dtype)
    return pre.apply(eye)


def lstsq_dask(
    a: Any,
    b: Any,
    *,
    method: str,
    sketch: str,
    sketch_size: int | None,
    tol: float | None,
    alpha: float,
    max_iter: int | None,
    random_state: Any,
) -> tuple[np.ndarray, Any]:
    """:func:`convexnn.sketching.lstsq` for a ``dask.array`` ``A`` (see the module notes)."""
    from convexnn.sketching._lstsq import (
        LstsqInfo,
        _SeedStream,
        check_sketch_size,
        choose_sketch_size,
    )

    op = DaskOperand(a, b)
    n, d = op.shape
    vec = (b.ndim if hasattr(b, "ndim") else np.ndim(b)) == 1
    sketch_size = check_sketch_size(sketch_size, n, d, alpha, "lstsq")
    seeds = _SeedStream(random_state)
    tol_it = tol if tol is not None else default_tol(op.dtype)
    if method in ("auto", "direct"):
        if method == "auto" and tol is not None and tol >= 1e-3:
            method = "sketch_and_solve"
        else:
            method = "preconditioned"
    if sketch == "auto":
        sketch = "sparse_sign" if method == "sketch_and_solve" else "countsketch"
    if sketch_size is not None:
        m = sketch_size
    elif method == "sketch_and_solve":
        m = math.ceil(1 + d * (1 + 1 / tol)) if tol is not None else 8 * d
    else:
        m = choose_sketch_size(n, d)
    m = min(max(m, d if alpha <= 0 else 1), n)

    def new_sketch(size: int) -> Sketch:
        extra = {"nnz_per_row": min(d, 64)} if sketch == "less" else {}
        return make_sketch(sketch, size, n, random_state=seeds(), dtype=op.dtype, **extra)

    sa, sb = op.sketch_ab(new_sketch(m))
    pre = build_preconditioner(sa, alpha)
    x = pre.solve(sa.T @ sb)
    info = LstsqInfo(method, sketch, m, n_passes=1, rank=pre.rank,
                     effective_dimension=effective_dimension(pre.sigma, alpha))
    if method == "sketch_and_solve":
        x, info.rank = svd_solve(sa, sb, alpha)
    elif method == "ihs":
        res, pre = ihs_lstsq(op, None, sa, x, alpha=alpha, tol=tol_it,
                             max_iter=max_iter or 100,
                             grow_sketch=(lambda size: op.sketch_ab(new_sketch(size))[0])
                             if sketch_size is None else None,
                             rho_factor=1.0 if sketch in ("gaussian", "srht") else 1.5)
        x = res.x
        info.n_iter, info.converged, info.history = res.n_iter, res.converged, res.history
        info.sketch_size = pre.m
        info.objective = res.history[-1]["objective"]
    else:
        p = _dense_p(pre)
        gram, h, rr = op.gram_pass(p, x)
        gram = gram + alpha * (p.T @ p)
        h = h - alpha * (p.T @ x)
        evals, evecs = torch.linalg.eigh(gram)
        keep = evals > evals.max() * gram.shape[0] * torch.finfo(gram.dtype).eps
        ginv = (evecs[:, keep] / evals[keep]) @ evecs[:, keep].T
        x = x + p @ (ginv @ h)
        bnorm2 = op.rhs_norm2()
        converged = False
        it = 0
        for it in range(1, (max_iter or 20) + 1):
            g, rr = op.gradient_pass(x)
            g = g - alpha * x
            f = rr + alpha * (x * x).sum(0)
            pg = p.T @ g
            excess = (pg * (ginv @ pg)).sum(0)
            info.history.append({"iteration": it, "objective": float(f.sum()),
                                 "excess_bound": float(excess.max())})
            floor = max(tol_it, 100 * torch.finfo(op.dtype).eps) ** 2
            if bool((excess <= torch.maximum(tol_it * f, floor * bnorm2)).all()):
                converged = True
                break
            x = x + p @ (ginv @ pg)
        info.n_iter, info.converged = it, converged
        info.objective = info.history[-1]["objective"]
        if not converged:
            warnings.warn(
                f"lstsq (preconditioned, dask) did not reach tol={tol_it:g} in {it} "
                "refinement passes.", ConvergenceWarning, stacklevel=3)
    info.n_passes = op.n_passes
    x = x[:, 0] if vec else x
    logger.debug("lstsq_dask: %s", info)
    return x.numpy(), info
