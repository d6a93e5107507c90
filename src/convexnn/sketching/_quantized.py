r"""Quantized (one-bit) random embeddings ``f(z) = sign(S z)`` and a Hamming LSH index.

For a Gaussian ``S`` each bit is a random hyperplane test, so
:math:`P[f(z)_i \ne f(z')_i] = \angle(z, z')/\pi` and the normalized Hamming distance
is an unbiased angle estimator:

.. math::  \hat\theta(z, z') = \pi \cdot \frac1m \sum_{i=1}^m 1[f(z)_i \ne f(z')_i],
           \qquad \Bigl|\frac{d_H}{m} - \frac{\angle(z,z')}{\pi}\Bigr| \le \varepsilon
           \ \text{for all pairs of } k \text{ points when } m \gtrsim \varepsilon^{-2}\log k.

The same codes are the activation patterns ``1[Xg ≥ 0]`` of the convex network
reformulation (a locality-sensitive hash of the data). :class:`HammingLSHIndex` uses
bands of the codes as hash keys (Charikar's SimHash + banding) and ranks the candidates
by their full Hamming distance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from convexnn.exceptions import ValidationError
from convexnn.sketching._embeddings import make_sketch
from convexnn.sketching._inputs import check_int, numpy_to_tensor

__all__ = [
    "SignEmbedding",
    "sign_embedding",
    "hamming_fraction",
    "angle_estimate",
    "HammingLSHIndex",
]


def _rows_tensor(z: Any, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, bool]:
    if isinstance(z, torch.Tensor):
        t = z.detach()
        t = t if t.dtype in (torch.float32, torch.float64) else t.to(dtype)
        return (t.unsqueeze(0) if t.ndim == 1 else t), False
    arr = np.asarray(z, dtype=np.float64)
    t = numpy_to_tensor(arr)
    return (t.unsqueeze(0) if t.ndim == 1 else t), True


class SignEmbedding:
    r"""The map :math:`z \mapsto \mathrm{sign}(S z) \in \{0, 1\}^m` (bit 1 for ``Sz ≥ 0``).

    Parameters
    ----------
    n_bits : int
        ``m``, the code length.
    n_features : int
        Dimension of the points ``z``.
    sketch : str, default "gaussian"
        Distribution of ``S`` (Gaussian gives the exact angle law).
    random_state, device : optional
    """

    def __init__(self, n_bits: int, n_features: int, *, sketch: str = "gaussian",
                 random_state: Any = None, device: Any = None) -> None:
        self.n_bits = check_int(n_bits, "n_bits", "SignEmbedding", low=1)
        self.n_features = check_int(n_features, "n_features", "SignEmbedding", low=1)
        self.sketch = make_sketch(sketch, self.n_bits, self.n_features,
                                  random_state=random_state, device=device)

    def transform(self, z: Any) -> Any:
        """Codes of the rows of ``z`` (``(k, n_features)`` → bool ``(k, n_bits)``)."""
        t, numpy_out = _rows_tensor(z)
        if t.shape[1] != self.n_features:
            raise ValidationError(
                f"Input z of SignEmbedding must have {self.n_features} columns. "
                f"Got shape {tuple(t.shape)} instead."
            )
        codes = self.sketch.apply_right(t.to(self.sketch.device)) >= 0
        return codes.cpu().numpy() if numpy_out else codes


def sign_embedding(z: Any, n_bits: int, *, sketch: str = "gaussian",
                   random_state: Any = None) -> Any:
    """One-shot :class:`SignEmbedding` of the rows of ``z`` (bool codes)."""
    t, _ = _rows_tensor(z)
    emb = SignEmbedding(n_bits, t.shape[1], sketch=sketch, random_state=random_state,
                        device=t.device)
    return emb.transform(z)


def hamming_fraction(c1: Any, c2: Any) -> Any:
    r"""Normalized Hamming distance :math:`\frac1m \sum_i 1[c_{1,i} \ne c_{2,i}]`.

    ``c1`` and ``c2`` are codes of shape ``(m,)`` or ``(k, m)`` (paired rows, or one code
    against many by broadcasting).
    """
    if isinstance(c1, torch.Tensor) or isinstance(c2, torch.Tensor):
        dev = (c1 if isinstance(c1, torch.Tensor) else c2).device
        a, b = torch.as_tensor(c1, device=dev), torch.as_tensor(c2, device=dev)
        return (a != b).to(torch.float64).mean(-1)
    return np.mean(np.asarray(c1) != np.asarray(c2), axis=-1)


def angle_estimate(c1: Any, c2: Any) -> Any:
    r"""Angle estimate :math:`\pi \cdot d_H / m` between the points behind two codes."""
    return math.pi * hamming_fraction(c1, c2)


class HammingLSHIndex:
    r"""Approximate nearest neighbours by angle, with sign codes and banded hashing.

    ``fit`` encodes the points with a :class:`SignEmbedding` of ``n_bits`` bits; table
    ``t`` hashes bits ``[t·b, (t+1)·b)`` (``b = bits_per_table``). A query collects the
    points sharing a key in any table, then ranks them by the full Hamming distance
    (estimated angle ``π d_H / m``). ``exact=True`` ranks all points (brute force).

    Parameters
    ----------
    n_bits : int, default 256
    n_tables : int, default 8
    bits_per_table : int, default 12
        ``n_tables · bits_per_table <= n_bits`` and ``bits_per_table <= 62``.
    random_state, device : optional
    """

    def __init__(self, n_bits: int = 256, n_tables: int = 8, bits_per_table: int = 12, *,
                 random_state: Any = None, device: Any = None) -> None:
        self.n_bits = n_bits
        self.n_tables = n_tables
        self.bits_per_table = bits_per_table
        self.random_state = random_state
        self.device = device

    def fit(self, X: Any) -> HammingLSHIndex:
        """Index the rows of ``X`` (``(N, d)``)."""
        owner = "HammingLSHIndex"
        nb = check_int(self.n_bits, "n_bits", owner, low=1)
        nt = check_int(self.n_tables, "n_tables", owner, low=1)
        bt = check_int(self.bits_per_table, "bits_per_table", owner, low=1)
        if bt > 62 or nt * bt > nb:
            raise ValidationError(
                f"The 'bits_per_table' parameter of {owner} must be an int <= 62 with "
                f"n_tables * bits_per_table <= n_bits ({nb}). Got {bt} (n_tables={nt})."
            )
        t, _ = _rows_tensor(X)
        if not bool(torch.isfinite(t).all()):
            raise ValidationError("Input X of HammingLSHIndex contains NaN or infinity.")
        self.embedding_ = SignEmbedding(nb, t.shape[1], random_state=self.random_state,
                                        device=self.device)
        self.codes_ = self.embedding_.transform(t)
        weights = 2 ** torch.arange(bt, device=self.codes_.device, dtype=torch.int64)
        self._weights = weights
        self._tables = []
        for i in range(nt):
            keys = (self.codes_[:, i * bt : (i + 1) * bt].to(torch.int64) * weights).sum(1)
            order = torch.argsort(keys)
            self._tables.append((keys[order], order))
        return self

    def kneighbors(self, Q: Any, n_neighbors: int = 1, *, exact: bool = False):
        """Return ``(angles, indices)`` of the ``n_neighbors`` nearest indexed points.

        Angles are the estimates ``π d_H / m``; rows with fewer candidates than
        ``n_neighbors`` are padded with index ``-1`` and angle ``inf``.
        """
        if not hasattr(self, "codes_"):
            raise ValidationError("HammingLSHIndex.kneighbors called before fit().")
        k = check_int(n_neighbors, "n_neighbors", "HammingLSHIndex.kneighbors", low=1)
        q, numpy_out = _rows_tensor(Q)
        qc = self.embedding_.transform(q)
        nq = qc.shape[0]
        bt, m = int(self.bits_per_table), int(self.n_bits)
        dist = torch.full((nq, k), math.inf, dtype=torch.float64)
        idx = torch.full((nq, k), -1, dtype=torch.int64)
        for j in range(nq):
            if exact:
                cand = torch.arange(self.codes_.shape[0], device=self.codes_.device)
            else:
                found = []
                for i, (keys, order) in enumerate(self._tables):
                    key = (qc[j, i * bt : (i + 1) * bt].to(torch.int64) * self._weights).sum()
                    lo = int(torch.searchsorted(keys, key))
                    hi = int(torch.searchsorted(keys, key, right=True))
                    if hi > lo:
                        found.append(order[lo:hi])
                if not found:
                    continue
                cand = torch.unique(torch.cat(found))
            ham = (self.codes_[cand] != qc[j]).to(torch.float64).sum(1).cpu()
            top = min(k, cand.numel())
            vals, pos = torch.topk(ham, top, largest=False)
            dist[j, :top] = math.pi * vals / m
            idx[j, :top] = cand.cpu()[pos]
        if numpy_out:
            return dist.numpy(), idx.numpy()
        return dist, idx
