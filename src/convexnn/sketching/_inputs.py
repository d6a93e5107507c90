"""Input handling for the sketching module: one internal form for every accepted array.

Accepted matrices: NumPy arrays (and ``np.memmap``), torch tensors (dense, sparse COO or
CSR, any device), SciPy sparse matrices/arrays, and ``dask.array`` arrays (handled by
:mod:`convexnn.sketching._dask`). The solution comes back as the kind of array it came
in as: NumPy for NumPy/SciPy/Dask input, torch (same device) for torch input.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any

import numpy as np
import torch

from convexnn.exceptions import ValidationError
from convexnn.utils import check_finite, resolve_device, resolve_dtype

__all__ = [
    "Operand",
    "as_operand",
    "as_rhs",
    "check_int",
    "check_choice",
    "is_dask_array",
    "is_scipy_sparse",
    "is_torch_sparse",
    "numpy_to_tensor",
    "quiet_sparse",
    "to_output",
]


@contextlib.contextmanager
def quiet_sparse():
    """Silence torch's "sparse CSR/CSC support is in beta" warning inside the block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse CS[RC].*beta.*")
        yield


def numpy_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """Zero-copy view of a C-contiguous array (read-only arrays and memmaps included).

    The library never writes into its inputs, so torch's "not writable" warning is muted.
    """
    arr = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not writable.*")
        return torch.as_tensor(arr)


def is_dask_array(a: Any) -> bool:
    """True for a ``dask.array.Array`` (checked without importing dask)."""
    mod = type(a).__module__
    return mod.startswith("dask.array") and hasattr(a, "chunks") and hasattr(a, "dask")


def is_scipy_sparse(a: Any) -> bool:
    """True for a SciPy sparse matrix or array (without importing scipy.sparse eagerly)."""
    return type(a).__module__.startswith("scipy.sparse") and hasattr(a, "tocoo")


def is_torch_sparse(a: Any) -> bool:
    """True for a torch tensor with a sparse layout."""
    return isinstance(a, torch.Tensor) and a.layout != torch.strided


def check_int(value: Any, name: str, owner: str, *, low: int, low_text: str | None = None) -> int:
    """Return ``value`` as an int after checking it is an integer ``>= low``."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or int(value) < low:
        bound = low_text if low_text is not None else str(low)
        raise ValidationError(
            f"The {name!r} parameter of {owner} must be an int >= {bound}. "
            f"Got {value!r} instead."
        )
    return int(value)


def check_choice(value: Any, name: str, owner: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` after checking it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        opts = ", ".join(repr(c) for c in choices)
        raise ValidationError(
            f"The {name!r} parameter of {owner} must be one of {opts}. Got {value!r} instead."
        )
    return value


def _scipy_to_torch(a: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    coo = a.tocoo()
    idx = np.vstack([coo.row, coo.col]).astype(np.int64)
    t = torch.sparse_coo_tensor(
        torch.from_numpy(idx),
        torch.as_tensor(np.asarray(coo.data), dtype=dtype),
        size=coo.shape,
        check_invariants=False,
    )
    return t.coalesce().to(device)


class Operand:
    """A validated data matrix ``Ã = A − 1 μᵀ`` (``μ`` an optional implicit column shift).

    Dense matrices are torch tensors; sparse ones are kept in CSR form (plus the CSR of
    the transpose for fast ``Aᵀu``). The shift lets estimators center sparse data without
    densifying it: ``Ã v = A v − (μᵀ v) 1`` and ``Ãᵀ u = Aᵀ u − μ (1ᵀ u)``.

    The fused passes (:meth:`normal_pass`, :meth:`residual_pass`) stream over row blocks
    that fit in cache so that ``A`` is read once per pass on the CPU.
    """

    def __init__(self, a: torch.Tensor, shift: torch.Tensor | None = None) -> None:
        self.sparse = a.layout != torch.strided
        if self.sparse:
            coo = a.to_sparse_coo().coalesce() if a.layout != torch.sparse_coo else a.coalesce()
            self.coo = coo
            with quiet_sparse():
                self.csr = coo.to_sparse_csr()
                self.csr_t = coo.t().coalesce().to_sparse_csr()
            self.a = coo
        else:
            self.a = a
        self.shape: tuple[int, int] = (int(a.shape[0]), int(a.shape[1]))
        self.device = a.device
        self.dtype = a.dtype
        self.shift = shift
        n, d = self.shape
        self.block_rows = n if (self.device.type != "cpu" or self.sparse) else max(
            256, (1 << 17) // max(d, 1)
        )
        self.n_passes = 0

    # --- elementary products ---------------------------------------------------------
    def _shift_outer(self, s: torch.Tensor) -> torch.Tensor:
        assert self.shift is not None
        if s.ndim == 0:
            return self.shift * s
        return self.shift.unsqueeze(-1) * s.unsqueeze(0)

    def _mm(self, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if v.ndim == 1:
            return torch.mv(a, v)
        return a @ v

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """Return ``Ã v`` for ``v`` of shape ``(d,)`` or ``(d, k)``."""
        self.n_passes += 1
        if self.sparse:
            out = torch.sparse.mm(self.csr, v.reshape(v.shape[0], -1)).reshape(
                (self.shape[0],) + tuple(v.shape[1:])
            )
        else:
            out = self._mm(self.a, v)
        if self.shift is not None:
            out = out - (self.shift @ v).unsqueeze(0)
        return out

    def rmatvec(self, u: torch.Tensor) -> torch.Tensor:
        """Return ``Ãᵀ u`` for ``u`` of shape ``(n,)`` or ``(n, k)``."""
        self.n_passes += 1
        if self.sparse:
            out = torch.sparse.mm(self.csr_t, u.reshape(u.shape[0], -1)).reshape(
                (self.shape[1],) + tuple(u.shape[1:])
            )
        else:
            out = self._mm(self.a.T, u)
        if self.shift is not None:
            out = out - self._shift_outer(u.sum(0))
        return out

    def normal_pass(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(Ã w, Ãᵀ Ã w)`` reading ``A`` once (row blocks on the CPU)."""
        if self.sparse or self.block_rows >= self.shape[0]:
            q = self.matvec(w)
            self.n_passes -= 1
            return q, self.rmatvec(q)
        self.n_passes += 1
        n = self.shape[0]
        shift_w = None if self.shift is None else self.shift @ w
        q = torch.empty((n,) + tuple(w.shape[1:]), device=self.device, dtype=self.dtype)
        t = torch.zeros_like(w)
        br = self.block_rows
        for i in range(0, n, br):
            blk = self.a[i : i + br]
            qi = self._mm(blk, w)
            if shift_w is not None:
                qi = qi - shift_w
            q[i : i + br] = qi
            if w.ndim == 1:
                t.addmv_(blk.T, qi)
            else:
                t.addmm_(blk.T, qi)
        if self.shift is not None:
            t = t - self._shift_outer(q.sum(0))
        return q, t

    def residual_pass(
        self, x: torch.Tensor, b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(r, Ãᵀ r)`` with ``r = b − Ã x``, reading ``A`` once."""
        if self.sparse or self.block_rows >= self.shape[0]:
            r = b - self.matvec(x)
            self.n_passes -= 1
            return r, self.rmatvec(r)
        self.n_passes += 1
        n = self.shape[0]
        shift_x = None if self.shift is None else self.shift @ x
        r = torch.empty_like(b)
        g = torch.zeros_like(x)
        br = self.block_rows
        for i in range(0, n, br):
            blk = self.a[i : i + br]
            ri = b[i : i + br] - self._mm(blk, x)
            if shift_x is not None:
                ri = ri + shift_x
            r[i : i + br] = ri
            if x.ndim == 1:
                g.addmv_(blk.T, ri)
            else:
                g.addmm_(blk.T, ri)
        if self.shift is not None:
            g = g - self._shift_outer(r.sum(0))
        return r, g

    def gradient_pass(
        self, x: torch.Tensor, b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(Ãᵀ r, ‖r‖²)`` (per column) with ``r = b − Ã x``, one pass over ``A``."""
        r, g = self.residual_pass(x, b)
        return g, (r * r).sum(0)

    def sketch(self, sketch: Any, b: torch.Tensor | None = None) -> tuple[torch.Tensor, Any]:
        """Return ``(S Ã, S b)`` (``S b`` is None when ``b`` is None), one pass over ``A``."""
        self.n_passes += 1
        sa = sketch.apply_left(self.a)
        if self.shift is not None:
            ones = torch.ones(self.shape[0], device=self.device, dtype=self.dtype)
            s1 = sketch.apply_left(ones)
            sa = sa - torch.outer(s1, self.shift)
        sb = None if b is None else sketch.apply_left(b)
        return sa, sb

    def to_dense(self) -> torch.Tensor:
        """Return ``Ã`` as a dense tensor (for small direct solves)."""
        a = self.a.to_dense() if self.sparse else self.a
        if self.shift is not None:
            a = a - self.shift.unsqueeze(0)
        return a

    def column_norms(self) -> torch.Tensor:
        """Return the Euclidean norms of the columns of ``Ã``."""
        if self.sparse:
            sq = torch.sparse.sum(self.coo * self.coo, dim=0).to_dense()
            if self.shift is not None:
                colsum = torch.sparse.sum(self.coo, dim=0).to_dense()
                sq = sq - 2 * self.shift * colsum + self.shape[0] * self.shift**2
            return sq.clamp_min(0).sqrt()
        if self.shift is None:
            return torch.linalg.vector_norm(self.a, dim=0)
        return torch.linalg.vector_norm(self.a - self.shift, dim=0)


def as_operand(
    a: Any,
    *,
    name: str = "A",
    owner: str = "lstsq",
    device: Any = None,
    dtype: Any = None,
    check_finite_values: bool = True,
) -> tuple[Operand, str]:
    """Validate a 2-D matrix and return ``(Operand, kind)`` with kind ``'numpy'``/``'torch'``.

    Dask arrays are not handled here (see :func:`convexnn.sketching._dask.lstsq_dask`).
    """
    if is_torch_sparse(a):
        kind = "torch"
        dev = resolve_device(device, a, owner=owner)
        dt = resolve_dtype(dtype, a, owner=owner)
        t = a.to(device=dev, dtype=dt)
        if t.ndim != 2:
            raise ValidationError(
                f"Input {name} of {owner} must be 2-D. Got shape {tuple(t.shape)} instead."
            )
        vals = t.coalesce().values() if t.layout == torch.sparse_coo else t.values()
        if check_finite_values:
            check_finite(vals, name)
    elif is_scipy_sparse(a):
        kind = "numpy"
        dev = resolve_device(device, None, owner=owner)
        dt = resolve_dtype(dtype, a, owner=owner)
        if len(a.shape) != 2:
            raise ValidationError(f"Input {name} of {owner} must be 2-D.")
        t = _scipy_to_torch(a, dev, dt)
        if check_finite_values:
            check_finite(t.values(), name)
    else:
        if isinstance(a, torch.Tensor):
            kind = "torch"
            src = a
        else:
            kind = "numpy"
            src = np.asarray(a)
            if src.dtype.kind not in "fiub":
                raise ValidationError(
                    f"Input {name} of {owner} must be a numeric array. "
                    f"Got dtype {src.dtype} instead."
                )
        dev = resolve_device(device, src, owner=owner)
        dt = resolve_dtype(dtype, src, owner=owner)
        if isinstance(src, torch.Tensor):
            t = src.detach().to(device=dev, dtype=dt)
        else:
            t = numpy_to_tensor(src).to(device=dev, dtype=dt)
        if t.ndim != 2:
            raise ValidationError(
                f"Input {name} of {owner} must be a 2-D array of shape (n_samples, "
                f"n_features). Got an array with shape {tuple(t.shape)} instead."
            )
        if not t.is_contiguous():
            t = t.contiguous()
        if check_finite_values:
            check_finite(t, name)
    if t.shape[0] < 1 or t.shape[1] < 1:
        raise ValidationError(
            f"Input {name} of {owner} must have at least one row and one column. "
            f"Got shape {tuple(t.shape)} instead."
        )
    return Operand(t), kind


def as_rhs(b: Any, op: Operand, *, name: str = "b", owner: str = "lstsq") -> torch.Tensor:
    """Validate the right-hand side against ``op`` and return it as a dense tensor."""
    if is_torch_sparse(b) or is_scipy_sparse(b):
        b = b.to_dense() if isinstance(b, torch.Tensor) else b.toarray()
    if isinstance(b, torch.Tensor):
        t = b.detach().to(device=op.device, dtype=op.dtype)
    else:
        arr = np.asarray(b)
        if arr.dtype.kind not in "fiub":
            raise ValidationError(
                f"Input {name} of {owner} must be numeric. Got dtype {arr.dtype} instead."
            )
        t = numpy_to_tensor(arr).to(device=op.device, dtype=op.dtype)
    if t.ndim not in (1, 2):
        raise ValidationError(
            f"Input {name} of {owner} must be 1-D or 2-D. Got shape {tuple(t.shape)} instead."
        )
    if t.shape[0] != op.shape[0]:
        raise ValidationError(
            f"Input {name} of {owner} must have as many rows as A ({op.shape[0]}). "
            f"Got {t.shape[0]} instead."
        )
    check_finite(t, name)
    return t.contiguous()


def to_output(x: torch.Tensor, kind: str) -> Any:
    """Return ``x`` as NumPy (``kind='numpy'``) or as the torch tensor itself."""
    if kind == "numpy":
        return x.detach().cpu().numpy()
    return x


def default_tol(dtype: torch.dtype) -> float:
    """Default relative objective accuracy of the iterative solvers for ``dtype``."""
    return 1e-10 if dtype == torch.float64 else 1e-6


def safe_sqrt(v: float) -> float:
    """``sqrt(max(v, 0))``."""
    return math.sqrt(max(v, 0.0))
