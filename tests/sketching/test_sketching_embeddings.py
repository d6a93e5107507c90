"""Embeddings: exact operator algebra, unbiasedness, subspace embedding, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
import torch

from convexnn.exceptions import ValidationError
from convexnn.sketching import SKETCH_KINDS, fwht, make_sketch

KINDS = list(SKETCH_KINDS)


def _tol(dtype):
    return 1e-10 if dtype == torch.float64 else 2e-4


def test_fwht_matches_hadamard_matrix(dtype, device):
    for n in (1, 2, 32, 512):
        x = torch.randn(n, 3, dtype=dtype, device=device)
        h = torch.tensor(scipy.linalg.hadamard(n), dtype=dtype, device=device)
        assert torch.allclose(fwht(x), h @ x, atol=_tol(dtype) * n, rtol=0)
    with pytest.raises(ValueError):
        fwht(torch.zeros(6))


@pytest.mark.parametrize("kind", KINDS)
def test_operator_algebra_matches_dense_matrix(kind, dtype, device, seed):
    n, m = 300, 40
    s = make_sketch(kind, m, n, random_state=seed, device=device, dtype=dtype)
    assert s.shape == (m, n) and s.T.shape == (n, m)
    dense = s.to_dense()
    a = torch.randn(n, 5, dtype=dtype, device=device)
    tol = _tol(dtype) * 10
    assert torch.allclose(s.apply_left(a), dense @ a, atol=tol)
    assert torch.allclose(s @ a[:, 0], dense @ a[:, 0], atol=tol)
    # right application A Sᵀ and the adjoint's two applications
    assert torch.allclose(s.apply_right(a.T), a.T @ dense.T, atol=tol)
    bm = torch.randn(m, 4, dtype=dtype, device=device)
    assert torch.allclose(s.T.apply_left(bm), dense.T @ bm, atol=tol)
    assert torch.allclose(s.T.apply_right(bm.T), bm.T @ dense, atol=tol)
    assert s.T.T is s
    # row blocks add up to the whole sketch (streaming / Dask contract)
    cuts = [0, 7, 130, 131, 300]
    parts = sum(s.apply_left_block(a[i:j], i) for i, j in zip(cuts[:-1], cuts[1:]))
    assert torch.allclose(parts, dense @ a, atol=tol)


@pytest.mark.parametrize("kind", KINDS)
def test_adjoint_identity(kind, device):
    """<S x, y> = <x, Sᵀ y> without materializing S (dot test)."""
    s = make_sketch(kind, 50, 777, random_state=3, device=device)
    x = torch.randn(777, dtype=torch.float64, device=device)
    y = torch.randn(50, dtype=torch.float64, device=device)
    lhs = torch.dot(s.apply_left(x), y)
    rhs = torch.dot(x, s.T.apply_left(y))
    assert abs(float(lhs - rhs)) <= 1e-10 * (1 + abs(float(lhs)))


@pytest.mark.parametrize("kind", KINDS)
def test_sparse_and_numpy_inputs(kind):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 6)) * (rng.random((200, 6)) < 0.2)
    s = make_sketch(kind, 30, 200, random_state=1)
    ref = s.apply_left(a)
    assert isinstance(ref, np.ndarray)
    np.testing.assert_allclose(ref, s.to_dense().numpy() @ a, atol=1e-12)
    np.testing.assert_allclose(s.apply_left(sp.csr_matrix(a)), ref, atol=1e-12)
    t = torch.tensor(a).to_sparse()
    np.testing.assert_allclose(s.apply_left(t).numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(s.apply_left(torch.tensor(a).to_sparse_csr()).numpy(), ref,
                               atol=1e-12)
    np.testing.assert_allclose(s.apply_right(sp.csr_matrix(a.T)), ref.T, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_unbiased_gram(kind):
    """E[SᵀS] = I: the mean of SᵀS over independent sketches is within 6 standard errors."""
    n, m, trials = 16, 8, 600
    mats = torch.stack([make_sketch(kind, m, n, random_state=t).to_dense() for t in range(trials)])
    grams = mats.transpose(1, 2) @ mats
    mean, se = grams.mean(0), grams.std(0) / trials**0.5
    err = (mean - torch.eye(n, dtype=mean.dtype)).abs()
    assert bool((err <= 6 * se + 1e-12).all()), float((err / (se + 1e-12)).max())


@pytest.mark.parametrize("kind", KINDS)
def test_subspace_embedding_distortion(kind, seed):
    """‖S U x‖ ∈ [1 − ε, 1 + ε]‖x‖ on a random 8-dim subspace of R^2048 with m = 400."""
    n, d, m = 2048, 8, 400
    g = torch.Generator().manual_seed(100 + seed)
    u = torch.linalg.qr(torch.randn(n, d, generator=g, dtype=torch.float64)).Q
    s = make_sketch(kind, m, n, random_state=seed)
    sv = torch.linalg.svdvals(s.apply_left(u))
    # Gaussian theory: 1 ± sqrt(d/m) ± small; allow a margin for the sparse sketches
    assert 0.6 <= float(sv.min()) and float(sv.max()) <= 1.4, sv


def test_jl_distances_preserved():
    """k = 50 points in R^4096: pairwise squared distances within 1 ± 0.35 at m = 300."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((50, 4096))
    for kind in ("gaussian", "srht", "sparse_sign"):
        s = make_sketch(kind, 300, 4096, random_state=0)
        fz = s.apply_right(z)
        i, j = np.triu_indices(50, 1)
        ratio = ((fz[i] - fz[j]) ** 2).sum(1) / ((z[i] - z[j]) ** 2).sum(1)
        assert ratio.min() > 0.65 and ratio.max() < 1.35


def test_same_seed_same_matrix_and_explicit_generator():
    a = make_sketch("gaussian", 10, 100, random_state=5).to_dense()
    b = make_sketch("gaussian", 10, 100, random_state=5).to_dense()
    c = make_sketch("gaussian", 10, 100, random_state=6).to_dense()
    assert torch.equal(a, b) and not torch.equal(a, c)
    g = torch.Generator().manual_seed(0)
    assert make_sketch("srht", 8, 20, random_state=g).shape == (8, 20)


def test_less_with_leverage_scores_is_unbiased_on_support():
    p = np.r_[np.full(10, 5.0), np.full(20, 1.0)]
    s = make_sketch("less", 12, 30, random_state=0, nnz_per_row=4, leverage_scores=p)
    assert s.to_dense().shape == (12, 30)
    with pytest.raises(ValidationError, match="leverage_scores"):
        make_sketch("less", 12, 30, leverage_scores=-p)


def test_bad_input_errors():
    with pytest.raises(ValidationError, match="'kind' parameter of make_sketch"):
        make_sketch("fourier", 10, 100)
    with pytest.raises(ValidationError, match="'m' parameter of make_sketch must be an int >= 1"):
        make_sketch("gaussian", 0, 100)
    with pytest.raises(ValidationError, match="must be an int <= 128"):
        make_sketch("srht", 200, 100)
    s = make_sketch("countsketch", 10, 100)
    with pytest.raises(ValidationError, match="must have 100 rows"):
        s.apply_left(np.ones((99, 2)))
    with pytest.raises(ValidationError, match="does not fit"):
        s.apply_left_block(np.ones((20, 2)), 90)
    with pytest.raises(ValidationError, match="numeric"):
        s.apply_left(np.array([["a"]] * 100))
