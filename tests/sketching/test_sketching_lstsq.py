"""lstsq: accuracy of every method and sketch, rank deficiency, the cost-ratio law, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from convexnn.exceptions import ConvergenceWarning, ValidationError
from convexnn.sketching import SKETCH_KINDS, lstsq, make_sketch


def _problem(n=3000, d=12, cond=1e6, noise=1e-2, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, d))
    v = np.linalg.qr(rng.standard_normal((d, d)))[0]
    a = (g * np.logspace(0, -np.log10(cond), d)) @ v.T
    b = a @ rng.standard_normal(d) + noise * rng.standard_normal(n)
    return a, b


def _f(a, b, x, alpha=0.0):
    return float(np.sum((a @ x - b) ** 2) + alpha * np.sum(x**2))


@pytest.mark.parametrize("kind", SKETCH_KINDS)
@pytest.mark.parametrize("method", ["ihs", "preconditioned"])
def test_iterative_methods_reach_numpy_objective(method, kind, seed):
    a, b = _problem(seed=seed)
    x_ref = np.linalg.lstsq(a, b, rcond=None)[0]
    x, info = lstsq(a, b, method=method, sketch=kind, random_state=seed, return_info=True)
    assert isinstance(x, np.ndarray) and x.shape == (12,)
    assert info.converged and info.method == method and info.sketch == kind
    f, f_ref = _f(a, b, x), _f(a, b, x_ref)
    assert (f - f_ref) / f_ref <= 1e-9
    # the prediction matches numpy's, whatever the conditioning
    assert np.linalg.norm(a @ (x - x_ref)) <= 1e-4 * np.linalg.norm(a @ x_ref)


@pytest.mark.parametrize("kind", SKETCH_KINDS)
def test_sketch_and_solve_meets_the_epsilon_guarantee(kind):
    """m = 1 + d (1 + 1/ε) gives E f(x̂) = (1 + ε) OPT for Gaussians; others come close."""
    a, b = _problem(n=4000, d=8, noise=1.0)
    eps = 0.5
    m = int(np.ceil(1 + 8 * (1 + 1 / eps)))
    f_ref = _f(a, b, np.linalg.lstsq(a, b, rcond=None)[0])
    ratios = [_f(a, b, lstsq(a, b, method="sketch_and_solve", sketch=kind, sketch_size=m,
                             random_state=s)) / f_ref for s in range(12)]
    assert min(ratios) >= 1 - 1e-12
    assert np.mean(ratios) <= 1 + 1.5 * eps


def test_gaussian_cost_ratio_law():
    """E[f(Ax̂)]/OPT = 1 + d/(m − d − 1) for Gaussian sketch-and-solve (exact law)."""
    n, d, m, trials = 150, 4, 14, 400
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, d)) * [1, 10, 0.1, 1]
    b = rng.standard_normal(n)
    opt = _f(a, b, np.linalg.lstsq(a, b, rcond=None)[0])
    ab = np.column_stack([a, b])
    ratios = []
    for t in range(trials):
        sab = make_sketch("gaussian", m, n, random_state=t).apply_left(ab)
        x = np.linalg.lstsq(sab[:, :d], sab[:, d], rcond=None)[0]
        ratios.append(_f(a, b, x) / opt)
    ratios = np.asarray(ratios)
    theory = 1 + d / (m - d - 1)
    se = ratios.std() / np.sqrt(trials)
    assert abs(ratios.mean() - theory) <= 5 * se, (ratios.mean(), theory, se)
    # the same law through the public function
    x = lstsq(a, b, method="sketch_and_solve", sketch="gaussian", sketch_size=m, random_state=0)
    assert _f(a, b, x) >= opt * (1 - 1e-12)


@pytest.mark.parametrize("method", ["ihs", "preconditioned", "direct", "sketch_and_solve"])
def test_rank_deficient_gives_minimum_norm_solution(method):
    rng = np.random.default_rng(1)
    n, d, r = 2000, 10, 6
    a = rng.standard_normal((n, r)) @ rng.standard_normal((r, d))  # rank 6
    b = rng.standard_normal(n)
    x_ref = np.linalg.pinv(a) @ b
    x, info = lstsq(a, b, method=method, random_state=0, return_info=True, tol=1e-14,
                    sketch_size=200 if method == "sketch_and_solve" else None)
    assert info.rank == r
    # x lies in row(A): the minimum-norm member of its solution set
    proj = np.linalg.pinv(a) @ a
    np.testing.assert_allclose(proj @ x, x, atol=1e-8 * np.linalg.norm(x))
    if method != "sketch_and_solve":
        np.testing.assert_allclose(x, x_ref, rtol=0, atol=1e-6 * np.linalg.norm(x_ref))


def test_torch_in_torch_out_and_dtypes(dtype, device):
    a, b = _problem(n=2500, d=8, cond=1e2)
    at = torch.tensor(a, dtype=dtype, device=device)
    bt = torch.tensor(b, dtype=dtype, device=device)
    x = lstsq(at, bt, method="preconditioned", random_state=0)
    assert isinstance(x, torch.Tensor) and x.device.type == device.type and x.dtype == dtype
    x_ref = np.linalg.lstsq(a, b, rcond=None)[0]
    rel = (_f(a, b, x.double().cpu().numpy()) - _f(a, b, x_ref)) / _f(a, b, x_ref)
    assert rel <= (1e-9 if dtype == torch.float64 else 1e-4)


def test_multiple_right_hand_sides_and_ridge():
    a, b = _problem(n=2500, d=10, cond=1e3)
    bb = np.column_stack([b, 2 * b + 1])
    for alpha in (0.0, 5.0):
        ref = np.linalg.solve(a.T @ a + alpha * np.eye(10), a.T @ bb)
        for method in ("ihs", "preconditioned", "direct"):
            x = lstsq(a, bb, method=method, alpha=alpha, random_state=0)
            assert x.shape == (10, 2)
            for j in range(2):
                f, fr = _f(a, bb[:, j], x[:, j], alpha), _f(a, bb[:, j], ref[:, j], alpha)
                assert (f - fr) / fr <= 1e-9


def test_ridge_sketch_smaller_than_d_from_effective_dimension():
    rng = np.random.default_rng(0)
    n, d = 3000, 200
    a = rng.standard_normal((n, d)) * np.logspace(0, -3, d)
    b = rng.standard_normal(n)
    alpha = 50.0
    ref = np.linalg.solve(a.T @ a + alpha * np.eye(d), a.T @ b)
    x, info = lstsq(a, b, method="preconditioned", alpha=alpha, random_state=0,
                    return_info=True)
    assert info.effective_dimension < d / 2
    assert (_f(a, b, x, alpha) - _f(a, b, ref, alpha)) / _f(a, b, ref, alpha) <= 1e-9
    x2 = lstsq(a, b, method="ihs", alpha=alpha, sketch_size=150, random_state=0)
    assert (_f(a, b, x2, alpha) - _f(a, b, ref, alpha)) / _f(a, b, ref, alpha) <= 1e-9


@pytest.mark.parametrize("fmt", ["scipy_csr", "torch_coo", "torch_csr"])
def test_sparse_inputs(fmt):
    rng = np.random.default_rng(0)
    a = sp.random(3000, 15, density=0.1, random_state=0, format="csr") + sp.eye(3000, 15)
    b = rng.standard_normal(3000)
    ref = np.linalg.lstsq(a.toarray(), b, rcond=None)[0]
    if fmt == "scipy_csr":
        inp = a
    else:
        coo = a.tocoo()
        t = torch.sparse_coo_tensor(np.vstack([coo.row, coo.col]), coo.data, coo.shape,
                                    check_invariants=False)
        inp = t if fmt == "torch_coo" else t.to_sparse_csr()
    for method in ("preconditioned", "ihs"):
        for kind in ("countsketch", "gaussian", "less"):
            x = lstsq(inp, b, method=method, sketch=kind, random_state=0)
            x = x.numpy() if isinstance(x, torch.Tensor) else x
            dense = a.toarray()
            assert (_f(dense, b, x) - _f(dense, b, ref)) / _f(dense, b, ref) <= 1e-9


def test_auto_method_choices():
    a, b = _problem(n=300, d=5)
    assert lstsq(a, b, return_info=True)[1].method == "direct"
    a, b = _problem(n=40000, d=30)
    assert lstsq(a, b, tol=0.1, random_state=0, return_info=True)[1].method == "sketch_and_solve"
    info = lstsq(a, b, random_state=0, return_info=True)[1]
    assert info.method == "preconditioned" and info.converged


def test_max_iter_warns():
    a, b = _problem(n=6000, d=20, cond=1e8)
    with pytest.warns(ConvergenceWarning, match="did not reach tol"):
        lstsq(a, b, method="ihs", max_iter=1, sketch_size=25, random_state=0)


def test_bad_input_errors():
    a, b = _problem(n=500, d=10)
    with pytest.raises(ValidationError, match=r"'sketch_size' parameter of lstsq must be an int "
                       r">= n_features \(10\). Got 5 instead."):
        lstsq(a, b, method="sketch_and_solve", sketch_size=5)
    with pytest.raises(ValidationError, match=r"must be an int <= n_samples \(500\)"):
        lstsq(a, b, sketch_size=501)
    with pytest.raises(ValidationError, match="'method' parameter of lstsq"):
        lstsq(a, b, method="qr")
    with pytest.raises(ValidationError, match="'sketch' parameter of lstsq"):
        lstsq(a, b, sketch="fjlt")
    with pytest.raises(ValidationError, match=r"must have as many rows as A \(500\). Got 499"):
        lstsq(a, b[:-1])
    bad = a.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValidationError, match="contains NaN"):
        lstsq(bad, b)
    with pytest.raises(ValidationError, match="contains infinity"):
        lstsq(a, np.r_[b[:-1], np.inf])
    with pytest.raises(ValidationError, match="2-D"):
        lstsq(a[:, 0], b)
    with pytest.raises(ValidationError, match="'tol' parameter"):
        lstsq(a, b, tol=2.0)
    with pytest.raises(ValidationError, match="'alpha' parameter"):
        lstsq(a, b, alpha=-1.0)
    with pytest.raises(ValidationError, match="'max_iter' parameter"):
        lstsq(a, b, max_iter=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lstsq(a, b, method="ihs", random_state=0)
