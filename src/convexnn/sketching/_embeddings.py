r"""Random embeddings ``S ∈ R^{m×n}`` with ``E[SᵀS] = I`` behind one small interface.

Every embedding is an operator of shape ``(m, n)`` with

* ``apply_left(A)``  = :math:`S A` for ``A`` of shape ``(n,)`` or ``(n, k)`` (sketch the rows);
* ``apply_right(A)`` = :math:`A S^\top` for ``A`` of shape ``(k, n)`` (sketch the features:
  ``A → A Sᵀ`` is the left sketch of the transposed problem, ``(S Aᵀ)ᵀ``);
* ``T`` the adjoint operator :math:`S^\top` of shape ``(n, m)``, with the same two methods
  (``S.T.apply_left(B) = Sᵀ B``, ``S.T.apply_right(B) = B S``);
* ``apply_left_block(A_J, offset)`` = :math:`S_{:, J} A_J` for the row block
  ``J = [offset, offset + len(A_J))``: what streaming and Dask use, so that the sketch of
  a matrix is the sum of the sketches of its row blocks, ``S A = Σ_J S_{:,J} A_J``.

``S`` is never formed unless it is cheap: Gaussian and Rademacher columns are generated
in fixed blocks from counter-based seeds (memory ``O(m · block)``), SRHT runs a fast
Walsh–Hadamard transform, CountSketch and sparse sign use index/scatter operations and
LESS a list of ``m · s`` non-zeros. All randomness comes from a seed drawn once from
``random_state``; the same object always represents the same matrix, whatever the row
blocks it is applied to. Inputs may be NumPy arrays, dense or sparse torch tensors, or
SciPy sparse matrices; NumPy/SciPy in gives NumPy out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from convexnn.exceptions import ValidationError
from convexnn.sketching._hadamard import fwht, hadamard_parity, next_power_of_two
from convexnn.sketching._inputs import (
    check_choice,
    check_int,
    is_scipy_sparse,
    numpy_to_tensor,
    quiet_sparse,
)
from convexnn.utils import resolve_device, resolve_dtype, seed_from_random_state

__all__ = [
    "SKETCH_KINDS",
    "Sketch",
    "GaussianSketch",
    "RademacherSketch",
    "SRHTSketch",
    "CountSketch",
    "SparseSignSketch",
    "LESSSketch",
    "TransposedSketch",
    "make_sketch",
]

SKETCH_KINDS = ("gaussian", "rademacher", "srht", "countsketch", "sparse_sign", "less")

_BLOCK = 1 << 16  # columns of S per independent random block (per-column randomness)
_MASK63 = (1 << 63) - 1


def _block_generator(seed: int, tag: int, j: int, device: torch.device) -> torch.Generator:
    """A generator for random block ``j`` (counter-based: any block, any order)."""
    s = (seed * 0x5851F42D4C957F2D + (j + 1) * 0x9E3779B97F4A7C15 + tag * 0xD1B54A32D192ED03)
    g = torch.Generator(device=device)
    g.manual_seed(s & _MASK63)
    return g


def _as_2d(a: torch.Tensor) -> tuple[torch.Tensor, bool]:
    return (a.unsqueeze(1), True) if a.ndim == 1 else (a, False)


class Sketch:
    """Base class of the random embeddings ``S`` of shape ``(m, n)``.

    Subclasses implement ``_left_dense(A, offset)``, ``_left_sparse(A, offset)`` (row
    block of a 2-D input starting at row ``offset``) and ``_adjoint(B)`` (``Sᵀ B``).
    """

    kind = "base"

    def __init__(
        self, m: int, n: int, *, seed: int, device: torch.device, dtype: torch.dtype
    ) -> None:
        self.m = int(m)
        self.n = int(n)
        self.seed = int(seed)
        self.device = device
        self.dtype = dtype
        # columns per independent random block: a function of n only, so the matrix is
        # the same whatever row blocks it is later applied to
        self._cb = min(_BLOCK, next_power_of_two(self.n))

    # --- public interface ------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """``(m, n)``: ``S`` maps ``R^n`` to ``R^m``."""
        return (self.m, self.n)

    @property
    def T(self) -> TransposedSketch:  # noqa: N802 - the mathematical name
        """The adjoint operator ``Sᵀ`` of shape ``(n, m)``."""
        return TransposedSketch(self)

    def transpose(self) -> TransposedSketch:
        """Same as :attr:`T`."""
        return self.T

    def __matmul__(self, a: Any) -> Any:
        return self.apply_left(a)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(m={self.m}, n={self.n}, device={self.device})"

    def apply_left(self, a: Any) -> Any:
        """Return ``S A`` for ``A`` of shape ``(n,)`` or ``(n, k)`` (dense or sparse)."""
        return self.apply_left_block(a, 0, _full=True)

    def apply_right(self, a: Any) -> Any:
        """Return ``A Sᵀ`` for ``A`` of shape ``(k, n)``, i.e. ``(S Aᵀ)ᵀ``."""
        t, back = self._prepare(a, axis=1, expected=self.n, what="columns")
        t = t.t().coalesce() if t.layout == torch.sparse_coo else t.T
        out = self._left(t, 0).T
        return back(out)

    def apply_left_block(self, a: Any, offset: int, *, _full: bool = False) -> Any:
        """Return ``S[:, offset:offset+b] A_block`` for a row block ``A_block`` with b rows.

        ``S A`` equals the sum over row blocks of ``apply_left_block(A_J, start(J))``.
        """
        if _full:
            t, back = self._prepare(a, axis=0, expected=self.n, what="rows")
        else:
            t, back = self._prepare(a, axis=0, expected=None, what="rows")
            if offset < 0 or offset + t.shape[0] > self.n:
                raise ValidationError(
                    f"The row block [{offset}, {offset + t.shape[0]}) does not fit in the "
                    f"{self.n} columns of the sketch."
                )
        vec = t.ndim == 1
        if vec:
            t = t.unsqueeze(1)
        out = self._left(t, int(offset))
        return back(out[:, 0] if vec else out)

    def apply_left_weighted(self, a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Return ``S diag(w) A`` for a dense tensor ``A`` (``n × k``), ``w`` of length ``n``.

        Used by the Newton sketch (``S D^{1/2} A``); row blocks keep the scaled copy small,
        and LESS only touches the rows it samples.
        """
        out = torch.zeros((self.m, a.shape[1]), device=a.device, dtype=a.dtype)
        step = 1 << 16
        for i in range(0, a.shape[0], step):
            blk = a[i : i + step] * w[i : i + step].unsqueeze(1)
            out += self._left(blk, i)
        return out

    def adjoint(self, b: Any) -> Any:
        """Return ``Sᵀ B`` for ``B`` of shape ``(m,)`` or ``(m, k)``."""
        t, back = self._prepare(b, axis=0, expected=self.m, what="rows")
        if t.layout != torch.strided:
            t = t.to_dense()
        t2, vec = _as_2d(t)
        out = self._adjoint(t2)
        return back(out[:, 0] if vec else out)

    def to_dense(self) -> torch.Tensor:
        """Materialize ``S`` (for tests and small sizes only)."""
        eye = torch.eye(self.n, device=self.device, dtype=self.dtype)
        return self._left(eye, 0)

    # --- internals -------------------------------------------------------------------
    def _prepare(self, a: Any, *, axis: int, expected: int | None, what: str):
        """Convert ``a`` to a torch tensor on the sketch's device; return it and a converter."""
        numpy_out = False
        if is_scipy_sparse(a):
            from convexnn.sketching._inputs import _scipy_to_torch

            t = _scipy_to_torch(a, self.device, self.dtype)
            numpy_out = True
            out_dtype = self.dtype
        elif isinstance(a, torch.Tensor):
            if a.device.type != self.device.type or (
                a.device.index is not None
                and self.device.index is not None
                and a.device.index != self.device.index
            ):
                raise ValidationError(
                    f"The input of {type(self).__name__} is on device {a.device} but the "
                    f"sketch lives on {self.device}; create the sketch with device={a.device}."
                )
            out_dtype = a.dtype if a.dtype in (torch.float32, torch.float64) else self.dtype
            t = a.to(dtype=out_dtype)
        else:
            arr = np.asarray(a)
            if arr.dtype.kind not in "fiub":
                raise ValidationError(
                    f"The input of {type(self).__name__} must be numeric. "
                    f"Got dtype {arr.dtype} instead."
                )
            out_dtype = torch.float32 if arr.dtype == np.float32 else self.dtype
            t = numpy_to_tensor(arr).to(device=self.device, dtype=out_dtype)
            numpy_out = True
        if t.layout not in (torch.strided, torch.sparse_coo):
            t = t.to_sparse_coo()
        if t.layout == torch.sparse_coo:
            t = t.coalesce()
        if t.ndim not in (1, 2) or (t.ndim == 1 and axis == 1):
            raise ValidationError(
                f"The input of {type(self).__name__} must be a 2-D array"
                f"{' or a vector' if axis == 0 else ''}. Got shape {tuple(t.shape)} instead."
            )
        if expected is not None and t.shape[axis] != expected:
            raise ValidationError(
                f"The input of {type(self).__name__} of shape {self.shape} must have "
                f"{expected} {what}. Got shape {tuple(t.shape)} instead."
            )

        def back(out: torch.Tensor) -> Any:
            out = out.to(out_dtype)
            return out.cpu().numpy() if numpy_out else out

        return t, back

    def _left(self, a: torch.Tensor, offset: int) -> torch.Tensor:
        if a.layout == torch.sparse_coo:
            return self._left_sparse(a, offset)
        return self._left_dense(a, offset)

    def _left_dense(self, a: torch.Tensor, offset: int) -> torch.Tensor:
        raise NotImplementedError

    def _left_sparse(self, a: torch.Tensor, offset: int) -> torch.Tensor:
        return self._left_dense(a.to_dense(), offset)

    def _adjoint(self, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class TransposedSketch:
    """The adjoint ``Sᵀ`` (shape ``(n, m)``) of a :class:`Sketch`.

    ``apply_left(B) = Sᵀ B``, ``apply_right(B) = B S`` (``B`` of shape ``(k, m)``),
    ``T`` gives back ``S``.
    """

    def __init__(self, parent: Sketch) -> None:
        self.parent = parent

    @property
    def shape(self) -> tuple[int, int]:
        """``(n, m)``."""
        return (self.parent.n, self.parent.m)

    @property
    def T(self) -> Sketch:  # noqa: N802
        """The original sketch ``S``."""
        return self.parent

    def transpose(self) -> Sketch:
        """Same as :attr:`T`."""
        return self.parent

    def apply_left(self, b: Any) -> Any:
        """Return ``Sᵀ B``."""
        return self.parent.adjoint(b)

    def apply_right(self, b: Any) -> Any:
        """Return ``B S`` for ``B`` of shape ``(k, m)``, i.e. ``(Sᵀ Bᵀ)ᵀ``."""
        if isinstance(b, torch.Tensor):
            return self.parent.adjoint(b.T).T
        return self.parent.adjoint(np.asarray(b).T).T

    def __matmul__(self, b: Any) -> Any:
        return self.apply_left(b)

    def to_dense(self) -> torch.Tensor:
        """Materialize ``Sᵀ`` (small sizes only)."""
        return self.parent.to_dense().T


# ----------------------------------------------------------------------------------------
# Dense random matrices: Gaussian N(0, 1/m) and Rademacher ±1/√m, generated in blocks.
# ----------------------------------------------------------------------------------------
class _DenseBlockSketch(Sketch):
    _tag = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.block = int(min(self._cb, max(64, min(_BLOCK, (1 << 22) // max(self.m, 1)))))

    def _generate(self, j: int) -> torch.Tensor:
        raise NotImplementedError

    def _blocks(self, c0: int, c1: int):
        """Yield ``(lo, hi, S[:, lo:hi])`` covering the columns ``[c0, c1)``."""
        bs = self.block
        for j in range(c0 // bs, (c1 - 1) // bs + 1):
            lo, hi = max(c0, j * bs), min(c1, (j + 1) * bs)
            blk = self._generate(j)
            yield lo, hi, blk[:, lo - j * bs : hi - j * bs]

    def _left_dense(self, a: torch.Tensor, offset: int) -> torch.Tensor:
        out = torch.zeros((self.m, a.shape[1]), device=a.device, dtype=a.dtype)
        for lo, hi, s in self._blocks(offset, offset + a.shape[0]):
            out.addmm_(s.to(a.dtype), a[lo - offset : hi - offset])
        return out

    def _left_sparse(self, a: torch.Tensor, offset: int) -> torch.Tensor:
        idx, val = a.indices(), a.values()
        k = a.shape[1]
        out = torch.zeros((self.m, k), device=a.device, dtype=a.dtype)
        rows = idx[0] + offset
        for lo, hi, s in self._blocks(offset, offset + a.shape[0]):
            sel = (rows >= lo) & (rows < hi)
            if not bool(sel.any()):
                continue
            at = torch.sparse_coo_tensor(
                torch.stack([idx[1][sel], rows[sel] - lo]),
                val[sel],
                (k, hi - lo),
                check_invariants=False,
            )
            out += torch.sparse.mm(at, s.to(a.dtype).T).T
        return out

    def _adjoint(self, b: torch.Tensor) -> torch.Tensor:
        parts = [s.to(b.dtype).T @ b for _, _, s in self._blocks(0, self.n)]
        return torch.cat(parts, dim=0)


class GaussianSketch(_DenseBlockSketch):
    r"""Gaussian embedding, :math:`S_{ij} \sim \mathcal N(0, 1/m)` i.i.d.

    The only sketch with the exact cost law ``E[f(Ax̂)]/OPT = 1 + d/(m − d − 1)``.
    Cost ``O(m n k)`` to apply to an ``n × k`` matrix.
    """

    kind = "gaussian"
    _tag = 1

    def _generate(self, j: int) -> torch.Tensor:
        g = _block_generator(self.seed, self._tag, j, self.device)
        s = torch.randn((self.m, self.block), generator=g, device=self.device, dtype=self.dtype)
        return s.mul_(1.0 / math.sqrt(self.m))


class RademacherSketch(_DenseBlockSketch):
    r"""Rademacher embedding, :math:`S_{ij} = \pm 1/\sqrt m` with equal probability."""

    kind = "rademacher"
    _tag = 2

    def _generate(self, j: int) -> torch.Tensor:
        g = _block_generator(self.seed, self._tag, j, self.device)
        bits = torch.randint(0, 2, (self.m, self.block), generator=g, device=self.device)
        return bits.to(self.dtype).mul_(2.0 / math.sqrt(self.m)).sub_(1.0 / math.sqrt(self.m))


# ----------------------------------------------------------------------------------------
# Hashing sketches: CountSketch (s = 1) and sparse sign / SJLT (s non-zeros per column).
# ----------------------------------------------------------------------------------------
class _HashedSketch(Sketch):
    _tag = 3

    def __init__(self, m: int, n: int, *, s: int, **kwargs: Any) -> None:
        super().__init__(m, n, **kwargs)
        self.s = int(s)

    def _hashes(self, c0: int, c1: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(rows, sign_bits)`` of shape ``(s, c1 − c0)`` for columns ``[c0, c1)``."""
        hs, bs = [], []
        cb = self._cb
        for j in range(c0 // cb, (c1 - 1) // cb + 1):
            g = _block_generator(self.seed, self._tag, j, self.device)
            h = torch.randint(0, self.m, (self.s, cb), generator=g, device=self.device)
            b = torch.randint(0, 2, (self.s, cb), generator=g, device=self.device)
            lo, hi = max(c0, j * cb) - j * cb, min(c1, (j + 1) * cb) - j * cb
            hs.append(h[:, lo:hi])
            bs.append(b[:, lo:hi])
        return torch.cat(hs, dim=1), torch.cat(bs, dim=1)

    def _left_dense(self, a: torch.Tensor, offset: int) -> torch.Tensor:
        h, bits = self._hashes(offset, offset + a.shape[0])
        length, k = a.shape
        if self.s > 1 and k >= 256:
            # wide inputs: one sparse (CSC) product beats s scatter passes
            vals = (1 - 2 * bits.T).to(a.dtype).reshape(-1) / math.sqrt(self.s)
            ccol = torch.arange(0, length * self.s + 1, self.s, device=a.device)
            with quiet_sparse():
                s_csc = torch.sparse_csc_tensor(
                    ccol, h.T.reshape(-1), vals, size=(self.m, length), check_invariants=False
                )
                return s_csc @ a
        out = torch.zeros((self.m, k), device=a.device, dtype=a.dtype)
        for t in range(self.s):
            # rows with sign +1 go to even bins, -1 to odd bins: no scaled copy of A.
            acc = torch.zeros((2 * self.m, k), device=a.device, dtype=a.dtype)
            acc.index_add_(0, 2 * h[t] + bits[t], a)
            out += acc[0::2] - acc[1::2]
        if self.s > 1:
            out /= math.sqrt(self.s)
        return out

    def _left_sparse(self, a: torch.Tensor, offset: int) -> torch.Tensor:
        idx, val = a.indices(), a.values()
        h, bits = self._hashes(offset, offset + a.shape[0])
        out = torch.zeros((self.m, a.shape[1]), device=a.device, dtype=a.dtype)
        scale = 1.0 / math.sqrt(self.s)
        for t in range(self.s):
            sgn = (1 - 2 * bits[t][idx[0]]).to(a.dtype) * scale
            out.index_put_((h[t][idx[0]], idx[1]), sgn * val, accumulate=True)
        return out

    def _adjoint(self, b: torch.Tensor) -> torch.Tensor:
        h, bits = self._hashes(0, self.n)
        out = torch.zeros((self.n, b.shape[1]), device=b.device, dtype=b.dtype)
        for t in range(self.s):
            out += (1 - 2 * bits[t]).to(b.dtype).unsqueeze(1) * b[h[t]]
        if self.s > 1:
            out /= math.sqrt(self.s)
        return out


class CountSketch(_HashedSketch):
    r"""CountSketch: column ``j`` of ``S`` has one entry ``±1`` in a random row ``h(j)``.

    ``S A`` costs one pass over ``A`` (``O(nnz(A))``); a subspace embedding for
    ``m = O(d²)`` in theory, and in practice a good preconditioner from ``m ≈ 4d``.
    """

    kind = "countsketch"
    _tag = 3

    def __init__(self, m: int, n: int, **kwargs: Any) -> None:
        super().__init__(m, n, s=1, **kwargs)


class SparseSignSketch(_HashedSketch):
    r"""Sparse sign embedding (SJLT / OSNAP): ``s`` entries ``±1/√s`` per column.

    The ``s`` rows of each column are drawn by independent hash functions (rows may
    repeat within a column; ``E[SᵀS] = I`` holds exactly). Cost ``O(s · nnz(A))``.
    """

    kind = "sparse_sign"
    _tag = 4


# ----------------------------------------------------------------------------------------
# SRHT: S = (1/√m) R H D on the zero-padded length N = 2^ceil(log2 n).
# ----------------------------------------------------------------------------------------
class SRHTSketch(Sketch):
    r"""Subsampled randomized Hadamard transform :math:`S = \sqrt{N/m}\, R\, (H/\sqrt N)\, D`.

    ``D`` random signs, ``H`` the Walsh–Hadamard matrix of order ``N = 2^⌈log₂ n⌉`` (the
    input is zero padded), ``R`` samples ``m`` of the ``N`` rows (without replacement up
    to ``N = 2^24``, with replacement beyond). ``S A`` costs ``O(N log N · k)`` through
    :func:`~convexnn.sketching._hadamard.fwht`. A row block ``A_J`` is transformed
    inside the aligned power-of-two blocks that hold it, using
    ``H_N[r, j] = H_{N/b}[r // b, j // b] · H_b[r % b, j % b]``, so streaming and Dask
    give exactly the same ``S A``.
    """

    kind = "srht"
    _tag = 5

    def __init__(self, m: int, n: int, **kwargs: Any) -> None:
        super().__init__(m, n, **kwargs)
        self.n_pad = next_power_of_two(self.n)
        g = _block_generator(self.seed, self._tag, -1, self.device)
        if self.n_pad <= (1 << 24):
            perm = torch.randperm(self.n_pad, generator=g, device=self.device)
            self.rows = perm[: self.m].clone()
        else:
            self.rows = torch.randint(0, self.n_pad, (self.m,), generator=g, device=self.device)

    def _signs(self, c0: int, c1: int, dtype: torch.dtype) -> torch.Tensor:
        parts = []
        cb = self._cb
        for j in range(c0 // cb, (c1 - 1) // cb + 1):
            g = _block_generator(self.seed, self._tag, j, self.device)
            bits = torch.randint(0, 2, (cb,), generator=g, device=self.device)
            lo, hi = max(c0, j * cb) - j * cb, min(c1, (j + 1) * cb) - j * cb
            parts.append(bits[lo:hi])
        return (1 - 2 * torch.cat(parts)).to(dtype)

    def _left_dense(self, a: torch.Tensor, offset: int) -> torch.Tensor:
        length, k = a.shape
        c0, c1 = offset, offset + length
        b = min(self.n_pad, next_power_of_two(length))
        da = a * self._signs(c0, c1, a.dtype).unsqueeze(1)
        out = torch.zeros((self.m, k), device=a.device, dtype=a.dtype)
        rlo = self.rows % b
        rhi = self.rows // b
        for hi in range(c0 // b, (c1 - 1) // b + 1):
            lo_col, hi_col = max(c0, hi * b), min(c1, (hi + 1) * b)
            z = torch.zeros((b, k), device=a.device, dtype=a.dtype)
            z[lo_col - hi * b : hi_col - hi * b] = da[lo_col - c0 : hi_col - c0]
            y = fwht(z)
            sign = (1 - 2 * hadamard_parity(rhi & hi)).to(a.dtype)
            out += sign.unsqueeze(1) * y[rlo]
        return out / math.sqrt(self.m)

    def _adjoint(self, b: torch.Tensor) -> torch.Tensor:
        z = torch.zeros((self.n_pad, b.shape[1]), device=b.device, dtype=b.dtype)
        z.index_add_(0, self.rows, b)
        y = fwht(z)[: self.n]
        return y * self._signs(0, self.n, b.dtype).unsqueeze(1) / math.sqrt(self.m)


# ----------------------------------------------------------------------------------------
# LESS: leverage-score sparsified embeddings (Dereziński et al.).
# ----------------------------------------------------------------------------------------
class LESSSketch(Sketch):
    r"""LESS embedding: each row of ``S`` has ``s`` non-zeros at indices ``i ~ p``.

    Row ``k`` is :math:`\frac{1}{\sqrt m}\sum_{t=1}^{s} \frac{\xi_{kt}}{\sqrt{s\,p_{i_{kt}}}}
    e_{i_{kt}}^\top` with Rademacher :math:`\xi` and indices drawn i.i.d. from the
    probabilities ``p`` (leverage scores of the data, or uniform: "LESS-uniform"), so
    ``E[SᵀS] = Σ_i p_i e_i e_iᵀ / p_i = I``. Applying ``S`` touches only ``m · s`` rows of
    ``A``: cost ``O(m s k)``, independent of ``n``.
    """

    kind = "less"
    _tag = 6

    def __init__(
        self,
        m: int,
        n: int,
        *,
        s: int,
        probabilities: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(m, n, **kwargs)
        self.s = int(s)
        g = _block_generator(self.seed, self._tag, -1, self.device)
        total = self.m * self.s
        if probabilities is None:
            cols = torch.randint(0, self.n, (total,), generator=g, device=self.device)
            pi = torch.full((total,), 1.0 / self.n, device=self.device, dtype=torch.float64)
        else:
            p = probabilities.to(device=self.device, dtype=torch.float64)
            cdf = torch.cumsum(p, 0)
            cdf = cdf / cdf[-1]
            u = torch.rand((total,), generator=g, device=self.device, dtype=torch.float64)
            cols = torch.searchsorted(cdf, u).clamp_max(self.n - 1)
            pi = p[cols] / p.sum()
        signs = 1 - 2 * torch.randint(0, 2, (total,), generator=g, device=self.device)
        vals = signs.to(torch.float64) / torch.sqrt(self.m * self.s * pi)
        rows = torch.arange(self.m, device=self.device).repeat_interleave(self.s)
        # row-major copy (row k of S = entries k*s .. k*s+s-1): gather-and-sum, no scatter
        self._rm_cols = cols
        self._rm_vals = vals.to(self.dtype)
        self._rows_rm = rows
        self._sorted: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def _by_column(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # (rows, cols, vals) sorted by column, built on first use (row blocks, adjoint)
        if self._sorted is None:
            order = torch.argsort(self._rm_cols)
            self._sorted = (self._rows_rm[order], self._rm_cols[order], self._rm_vals[order])
        return self._sorted

    @property
    def rows(self) -> torch.Tensor:
        return self._by_column()[0]

    @property
    def cols(self) -> torch.Tensor:
        return self._by_column()[1]

    @property
    def vals(self) -> torch.Tensor:
        return self._by_column()[2]

    def _range(self, c0: int, c1: int) -> slice:
        lo = int(torch.searchsorted(self.cols, torch.tensor(c0, device=self.device)))
        hi = int(torch.searchsorted(self.cols, torch.tensor(c1, device=self.device)))
        return slice(lo, hi)

    def _gather_sum(self, a: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        k = a.shape[1]
        out = torch.empty((self.m, k), device=a.device, dtype=a.dtype)
        # small chunks (~2 MB gathered at a time, cache-resident) and one batched product
        # per chunk: row r of the output is coefᵣᵀ A[colsᵣ] (s × k)
        rows_per = max(1, (1 << 18) // max(self.s * k, 1))
        vals = self._rm_vals.to(a.dtype)
        for r0 in range(0, self.m, rows_per):
            r1 = min(self.m, r0 + rows_per)
            c = self._rm_cols[r0 * self.s : r1 * self.s]
            coef = vals[r0 * self.s : r1 * self.s]
            if w is not None:
                coef = coef * w[c]
            torch.bmm(coef.view(r1 - r0, 1, self.s), a[c].view(r1 - r0, self.s, k),
                      out=out[r0:r1].unsqueeze(1))
        return out

    def _left_dense(self, a: torch.Tensor, offset: int) -> torch.Tensor:
        if offset == 0 and a.shape[0] == self.n:
            return self._gather_sum(a, None)
        sl = self._range(offset, offset + a.shape[0])
        rows, cols, vals = self.rows[sl], self.cols[sl] - offset, self.vals[sl].to(a.dtype)
        k = a.shape[1]
        out = torch.zeros((self.m, k), device=a.device, dtype=a.dtype)
        step = max(1, (1 << 22) // max(k, 1))
        for i in range(0, rows.shape[0], step):
            r, c, v = rows[i : i + step], cols[i : i + step], vals[i : i + step]
            out.index_add_(0, r, a[c] * v.unsqueeze(1))
        return out

    def _left_sparse(self, a: torch.Tensor, offset: int) -> torch.Tensor:
        sl = self._range(offset, offset + a.shape[0])
        s_sub = torch.sparse_coo_tensor(
            torch.stack([self.rows[sl], self.cols[sl] - offset]),
            self.vals[sl].to(a.dtype),
            (self.m, a.shape[0]),
            check_invariants=False,
        )
        return torch.sparse.mm(s_sub.coalesce(), a).to_dense()

    def _adjoint(self, b: torch.Tensor) -> torch.Tensor:
        out = torch.zeros((self.n, b.shape[1]), device=b.device, dtype=b.dtype)
        out.index_add_(0, self.cols, b[self.rows] * self.vals.to(b.dtype).unsqueeze(1))
        return out

    def apply_left_weighted(self, a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``S diag(w) A`` touching only the ``m · s`` sampled rows of ``A``."""
        if a.shape[0] == self.n:
            return self._gather_sum(a, w)
        k = a.shape[1]
        out = torch.zeros((self.m, k), device=a.device, dtype=a.dtype)
        step = max(1, (1 << 22) // max(k, 1))
        vals = self.vals.to(a.dtype)
        for i in range(0, self.rows.shape[0], step):
            c = self.cols[i : i + step]
            coef = (vals[i : i + step] * w[c]).unsqueeze(1)
            out.index_add_(0, self.rows[i : i + step], a[c] * coef)
        return out


def make_sketch(
    kind: str,
    m: int,
    n: int,
    *,
    random_state: Any = None,
    device: Any = None,
    dtype: Any = None,
    nnz_per_column: int = 8,
    nnz_per_row: int | None = None,
    leverage_scores: Any = None,
) -> Sketch:
    r"""Create a random embedding ``S ∈ R^{m×n}`` with ``E[SᵀS] = I``.

    Parameters
    ----------
    kind : {"gaussian", "rademacher", "srht", "countsketch", "sparse_sign", "less"}
        The distribution of ``S`` (see the classes of this module).
    m : int
        Embedding dimension (rows of ``S``), ``m >= 1``; ``m <= 2^⌈log₂ n⌉`` for SRHT.
    n : int
        Ambient dimension (columns of ``S``): the number of rows of the matrices it sketches.
    random_state : int, numpy.random.RandomState, torch.Generator or None
        Seeds the sketch. The same seed gives the same ``S`` on a given device.
    device, dtype : optional
        Where and in which precision the random entries are generated (default CPU,
        float64). Inputs must live on the same device; they keep their own float dtype.
    nnz_per_column : int, default 8
        ``s`` for ``"sparse_sign"`` (ignored otherwise).
    nnz_per_row : int, optional
        ``s`` for ``"less"`` (non-zeros per row of ``S``); default ``min(n, 32)``.
    leverage_scores : array-like of shape (n,), optional
        Sampling probabilities (up to scale) for ``"less"``; uniform when omitted.

    Returns
    -------
    Sketch
        An operator with ``apply_left`` (``S A``), ``apply_right`` (``A Sᵀ``), ``T``,
        ``shape`` and ``apply_left_block``.

    Notes
    -----
    Newton-LESS and the leverage-score variant used by :func:`~convexnn.sketching.lstsq`
    pass ``s = d`` (the density analysed by Dereziński et al.).

    Examples
    --------
    >>> import numpy as np
    >>> from convexnn.sketching import make_sketch
    >>> S = make_sketch("srht", 64, 1000, random_state=0)
    >>> A = np.random.default_rng(0).standard_normal((1000, 5))
    >>> S.apply_left(A).shape
    (64, 5)
    """
    owner = "make_sketch"
    kind = check_choice(kind, "kind", owner, SKETCH_KINDS)
    m = check_int(m, "m", owner, low=1)
    n = check_int(n, "n", owner, low=1)
    dev = resolve_device(device, None, owner=owner)
    dt = resolve_dtype(dtype if dtype is not None else torch.float64, None, owner=owner)
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if int(random_state) < 0:
            raise ValidationError(
                f"The 'random_state' parameter of make_sketch must be a non-negative int, a "
                f"RandomState, a torch.Generator or None. Got {random_state!r} instead."
            )
        seed = int(random_state) & _MASK63
    else:
        seed = seed_from_random_state(random_state)
    common = {"seed": seed, "device": dev, "dtype": dt}
    if kind == "gaussian":
        return GaussianSketch(m, n, **common)
    if kind == "rademacher":
        return RademacherSketch(m, n, **common)
    if kind == "srht":
        n_pad = next_power_of_two(n)
        if m > n_pad:
            raise ValidationError(
                f"The 'm' parameter of make_sketch must be an int <= {n_pad} (the padded "
                f"length 2^ceil(log2 n) for an SRHT of n={n}). Got {m} instead."
            )
        return SRHTSketch(m, n, **common)
    if kind == "countsketch":
        return CountSketch(m, n, **common)
    if kind == "sparse_sign":
        s = check_int(nnz_per_column, "nnz_per_column", owner, low=1)
        return SparseSignSketch(m, n, s=min(s, m), **common)
    s = min(n, 32) if nnz_per_row is None else check_int(nnz_per_row, "nnz_per_row", owner, low=1)
    probs = None
    if leverage_scores is not None:
        probs = torch.as_tensor(
            leverage_scores.detach().cpu().numpy()
            if isinstance(leverage_scores, torch.Tensor)
            else np.asarray(leverage_scores, dtype=np.float64),
            dtype=torch.float64,
        )
        if probs.shape != (n,) or not bool(torch.isfinite(probs).all()) or bool(
            (probs < 0).any()
        ) or float(probs.sum()) <= 0:
            raise ValidationError(
                f"The 'leverage_scores' parameter of make_sketch must be a finite "
                f"non-negative vector of length n={n} with a positive sum. Got shape "
                f"{tuple(probs.shape)} instead."
            )
    return LESSSketch(m, n, s=s, probabilities=probs, **common)
