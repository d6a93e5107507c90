"""Streaming accumulation, randomized SVD, Nyström and Nyström-preconditioned CG."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convexnn.exceptions import ValidationError
from convexnn.sketching import (
    StreamingSketch,
    make_sketch,
    nystrom,
    nystrom_pcg,
    randomized_svd,
)


@pytest.mark.parametrize("kind", ["gaussian", "srht", "countsketch", "sparse_sign", "less"])
def test_streaming_equals_batch(kind):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1000, 4))
    acc = StreamingSketch(kind, m=60, n=1000, random_state=1)
    for i in range(0, 1000, 137):
        acc.update(a[i : i + 137])
    assert acc.rows_seen == 1000
    np.testing.assert_allclose(acc.result(), acc.sketch.apply_left(a), atol=1e-10)
    # additive change of rows already seen: S(A + Δ) = SA + SΔ
    delta = np.zeros_like(a)
    delta[200:260] = rng.standard_normal((60, 4))
    acc.update(delta[200:260], offset=200)
    np.testing.assert_allclose(acc.result(), acc.sketch.apply_left(a + delta), atol=1e-10)


def test_streaming_solve_is_sketch_and_solve():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2000, 3))
    b = a @ [1.0, -2.0, 0.5] + 0.01 * rng.standard_normal(2000)
    s = make_sketch("sparse_sign", 100, 2000, random_state=0)
    acc = StreamingSketch(s)
    for i in range(0, 2000, 500):
        acc.update(np.column_stack([a[i : i + 500], b[i : i + 500]]))
    np.testing.assert_allclose(acc.solve(), [1.0, -2.0, 0.5], atol=5e-3)
    with pytest.raises(ValidationError, match="does not fit"):
        acc.update(a[:10])
    with pytest.raises(ValidationError, match="needs 'm' and 'n'"):
        StreamingSketch("gaussian")


def test_randomized_svd_recovers_top_singular_values(dtype):
    rng = np.random.default_rng(0)
    u = np.linalg.qr(rng.standard_normal((300, 30)))[0]
    v = np.linalg.qr(rng.standard_normal((80, 30)))[0]
    s = np.logspace(0, -6, 30)
    a = torch.tensor((u * s) @ v.T, dtype=dtype)
    uu, ss, vh = randomized_svd(a, 8, random_state=0)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(ss.double().numpy(), s[:8], rtol=tol * 100, atol=tol)
    err = torch.linalg.matrix_norm(a - (uu * ss) @ vh, ord=2)
    assert float(err) <= s[8] * 1.5 + tol
    with pytest.raises(ValidationError, match="'rank' parameter"):
        randomized_svd(a, 100)


def test_nystrom_pcg_solves_ridge_system_from_matvec(device):
    g = torch.Generator(device="cpu").manual_seed(0)
    n, d = 2000, 150
    a = (torch.randn(n, d, generator=g, dtype=torch.float64)
         * torch.logspace(0, -4, d, dtype=torch.float64)).to(device)
    b = torch.randn(d, dtype=torch.float64, device=device)
    mu = 1e-3

    def matvec(v):
        return a.T @ (a @ v)

    x_ref = torch.linalg.solve(a.T @ a + mu * torch.eye(d, dtype=torch.float64, device=device),
                               b)
    res = nystrom_pcg(matvec, b, mu, rank=60, tol=1e-10, random_state=0)
    assert res.converged
    assert float(torch.linalg.vector_norm(res.x - x_ref) / torch.linalg.vector_norm(x_ref)) < 1e-6
    plain = nystrom_pcg(matvec, b, mu, rank=1, tol=1e-10, max_iter=res.n_iter, random_state=0)
    assert not plain.converged  # the rank-60 preconditioner is what makes it converge
    approx = nystrom(matvec, 60, n=d, random_state=0, device=device)
    assert approx.U.shape == (d, 60) and bool((approx.lam >= 0).all())
    with pytest.raises(ValidationError, match="'mu' parameter"):
        nystrom_pcg(matvec, b, 0.0)


def test_nystrom_of_explicit_psd_matrix():
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.standard_normal((100, 100)))[0]
    k = (q * np.r_[np.logspace(2, 0, 10), np.full(90, 1e-8)]) @ q.T
    approx = nystrom(k, 15, random_state=0)
    kt = torch.tensor(k)
    err = torch.linalg.matrix_norm(kt - approx.matvec(torch.eye(100, dtype=torch.float64)))
    assert float(err) < 1e-5
