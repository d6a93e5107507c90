"""One-bit embeddings: Hamming fraction tracks angle/π; the LSH index finds neighbours."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from convexnn.exceptions import ValidationError
from convexnn.sketching import (
    HammingLSHIndex,
    SignEmbedding,
    angle_estimate,
    hamming_fraction,
    sign_embedding,
)


@pytest.mark.parametrize("eps", [0.1, 0.05])
def test_hamming_fraction_tracks_angle_over_pi(eps, seed):
    """For m = 2 ε⁻² log k, every pair of k points has |d_H/m − θ/π| <= ε."""
    k, n = 30, 64
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((k, n))
    m = int(math.ceil(2 * math.log(k) / eps**2))
    codes = sign_embedding(z, m, random_state=seed)
    assert codes.shape == (k, m) and codes.dtype == bool
    i, j = np.triu_indices(k, 1)
    cos = np.sum(z[i] * z[j], 1) / np.linalg.norm(z[i], axis=1) / np.linalg.norm(z[j], axis=1)
    theta = np.arccos(np.clip(cos, -1, 1))
    err = np.abs(hamming_fraction(codes[i], codes[j]) - theta / math.pi)
    assert err.max() <= eps
    np.testing.assert_allclose(angle_estimate(codes[i], codes[j]),
                               math.pi * hamming_fraction(codes[i], codes[j]))


def test_sign_embedding_torch_and_scale_invariance(device):
    emb = SignEmbedding(128, 10, random_state=0, device=device)
    z = torch.randn(5, 10, dtype=torch.float64, device=device)
    c = emb.transform(z)
    assert isinstance(c, torch.Tensor) and c.device.type == device.type
    assert torch.equal(c, emb.transform(3.0 * z))  # sign(S z) ignores the norm
    assert float(hamming_fraction(c, emb.transform(-z)).min()) > 0.99


def test_lsh_index_finds_near_duplicates():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((400, 16))
    index = HammingLSHIndex(n_bits=128, n_tables=8, bits_per_table=10, random_state=0).fit(base)
    queries = base[:20] + 0.05 * rng.standard_normal((20, 16))
    angles, idx = index.kneighbors(queries, n_neighbors=3)
    assert (idx[:, 0] == np.arange(20)).mean() >= 0.95
    assert np.all(np.diff(angles, axis=1) >= 0)
    ex_angles, ex_idx = index.kneighbors(queries, n_neighbors=1, exact=True)
    assert (ex_idx[:, 0] == np.arange(20)).all()


def test_quantized_bad_input():
    with pytest.raises(ValidationError, match="'bits_per_table'"):
        HammingLSHIndex(n_bits=16, n_tables=4, bits_per_table=8).fit(np.ones((3, 2)))
    with pytest.raises(ValidationError, match="NaN"):
        HammingLSHIndex().fit(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValidationError, match="must have 10 columns"):
        SignEmbedding(8, 10).transform(np.ones((2, 3)))
    with pytest.raises(ValidationError, match="before fit"):
        HammingLSHIndex().kneighbors(np.ones((1, 2)))
