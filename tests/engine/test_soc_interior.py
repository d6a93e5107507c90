"""The primal-dual method on the norm cones (gated programs): Nesterov–Todd scaling and
Jordan-algebra identities, oracle checks against CVXPY, both factorizations, step count."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_primal_dual import _program as _shared_program  # tests/engine is on sys.path

from convexnn.patterns import sample_patterns
from convexnn.solvers import _primal_dual as pd_mod
from convexnn.solvers import cvxpy_reference
from convexnn.solvers._soc_interior import (
    _jordan,
    _jordan_solve,
    _max_step,
    _Scaling,
    soc_primal_dual,
)
from convexnn.solvers._working_set import block_scores
from convexnn.training import _problem

F64 = torch.float64


def _interior(gen: torch.Generator, B: int, d: int, scale: float = 1.0):
    """Random points strictly inside the second-order cone, spread over magnitudes."""
    u1 = torch.randn(B, d, generator=gen, dtype=F64) * scale
    margin = torch.rand(B, generator=gen, dtype=F64) * 2 + 1e-3
    return torch.linalg.vector_norm(u1, dim=1) + margin, u1


def _J(d: int) -> torch.Tensor:
    return torch.diag(torch.tensor([1.0] + [-1.0] * d, dtype=F64))


def _explicit_W(sc: _Scaling, k: int) -> torch.Tensor:
    """Block k of the scaling as a matrix, built from its action on the unit vectors."""
    d = sc.w1.shape[1]
    cols = []
    for i in range(d + 1):
        e = torch.zeros(sc.w1.shape[0], d + 1, dtype=F64)
        e[:, i] = 1.0
        r0, r1 = sc.apply(e[:, 0], e[:, 1:])
        cols.append(torch.cat([r0[k:k + 1], r1[k]]))
    return torch.stack(cols, 1)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 6),
       scale=st.sampled_from([1e-3, 1.0, 1e3]))
def test_nesterov_todd_scaling_identities(seed, d, scale):
    gen = torch.Generator().manual_seed(seed)
    B = 5
    t, w = _interior(gen, B, d, scale)
    s0, v = _interior(gen, B, d)
    sc = _Scaling(t, w, s0, v)
    # W x = W⁻¹ s = ℓ
    lx0, lx1 = sc.apply(t, w)
    ls0, ls1 = sc.apply_inv(s0, v)
    tol = 1e-9 * (1 + float(lx0.abs().max()))
    assert torch.allclose(lx0, ls0, atol=tol) and torch.allclose(lx1, ls1, atol=tol)
    # W⁻¹ W = I
    u0, u1 = torch.randn(B, generator=gen, dtype=F64), torch.randn(B, d, generator=gen,
                                                                      dtype=F64)
    a0, a1 = sc.apply_inv(*sc.apply(u0, u1))
    assert torch.allclose(a0, u0, atol=1e-8) and torch.allclose(a1, u1, atol=1e-8)
    # the blocks of W⁻² used by the Newton system, against the explicit matrix
    for k in range(B):
        Wk = _explicit_W(sc, k)
        assert torch.allclose(Wk, Wk.T, rtol=1e-9, atol=1e-9 * float(Wk.abs().max()))
        P = torch.linalg.inv(Wk @ Wk)
        a, uu = sc.pww()
        Pww = a[k] * torch.eye(d, dtype=F64) + torch.outer(uu[k], uu[k])
        assert torch.allclose(Pww, P[1:, 1:], rtol=1e-7, atol=1e-9 * float(P.abs().max()))
        r = torch.randn(d, generator=gen, dtype=F64)
        r_all = torch.zeros(B, d, dtype=F64)
        r_all[k] = r
        inv_r = sc.pww_inv(r_all)[k]
        assert torch.allclose(Pww @ inv_r, r, rtol=1e-7, atol=1e-8 * float(r.abs().max()))
        assert torch.allclose(sc.pww_inv_matrix()[k] @ r, inv_r, rtol=1e-8, atol=1e-10 * (
            1 + float(inv_r.abs().max())))
        ptw = sc.ptw(r_all)[k]
        assert math.isclose(float(ptw), float(P[0, 1:] @ r), rel_tol=1e-7,
                            abs_tol=1e-9 * float(P.abs().max()) * float(r.abs().max()))
        # W is an automorphism of the cone: it maps the cone onto itself (up to a scale)
        J = _J(d)
        WJW = Wk @ J @ Wk
        assert torch.allclose(WJW, float(sc.eta[k]) ** 2 * J, rtol=1e-7,
                              atol=1e-8 * float(WJW.abs().max()))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 6))
def test_jordan_solve_inverts_the_jordan_product(seed, d):
    gen = torch.Generator().manual_seed(seed)
    l0, l1 = _interior(gen, 4, d)
    r0, r1 = torch.randn(4, generator=gen, dtype=F64), torch.randn(4, d, generator=gen,
                                                                      dtype=F64)
    u0, u1 = _jordan(l0, l1, r0, r1)
    s0, s1 = _jordan_solve(l0, l1, u0, u1)
    assert torch.allclose(s0, r0, atol=1e-8) and torch.allclose(s1, r1, atol=1e-8)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 5))
def test_max_step_lands_on_the_boundary(seed, d):
    gen = torch.Generator().manual_seed(seed)
    u0, u1 = _interior(gen, 6, d)
    d0 = torch.randn(6, generator=gen, dtype=F64) * 3
    d1 = torch.randn(6, d, generator=gen, dtype=F64) * 3

    def inside(a: float) -> torch.Tensor:
        x0, x1 = u0 + a * d0, u1 + a * d1
        return x0 - torch.linalg.vector_norm(x1, dim=1)

    a = _max_step(u0, u1, d0, d1)
    if math.isinf(a):
        assert bool((inside(1e6) >= 0).all())
        return
    assert a > 0
    assert bool((inside(0.999 * a) > 0).all())
    assert float(inside(a).min()) == pytest.approx(0.0, abs=1e-8 * (1 + a))
    assert bool((inside(1.001 * a) < 0).any())


def _program(seed, **kw):
    """The gated programs of the barrier method's tests."""
    return _shared_program(seed, relu=False, **kw)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("fit_bias", [False, True])
def test_soc_primal_dual_matches_cvxpy(loss, fit_bias, seed):
    prob = _program(seed, loss=loss, fit_bias=fit_bias)
    res = soc_primal_dual(prob, tol=1e-9)
    ref = cvxpy_reference(prob).extra["value"]
    obj = prob.objective(res.W, res.b)
    assert abs(obj - ref) <= 1e-6 * abs(ref)
    # the gradient certifies it (the estimator's certificate)
    _, lb = block_scores(prob, prob.op.matvec(res.W) + res.b, None)
    assert lb <= ref * (1 + 1e-9) + 1e-12
    assert obj - lb <= 1e-6 * abs(obj)
    # a handful of Newton steps, not the barrier method's dozens
    assert res.n_iter <= 30


@pytest.mark.parametrize("fit_bias", [False, True])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_soc_dense_and_woodbury_agree(monkeypatch, fit_bias, loss):
    prob = _program(1, n=30, d=3, p=40, fit_bias=fit_bias, loss=loss)
    res_w = soc_primal_dual(prob, tol=1e-9)
    assert res_w.extra["mode"] == "woodbury"
    monkeypatch.setattr(pd_mod, "newton_cost", lambda n, c, p, d, **k: (0.0, "dense"))
    res_d = soc_primal_dual(prob, tol=1e-9)
    assert res_d.extra["mode"] == "dense"
    a, b = prob.objective(res_w.W, res_w.b), prob.objective(res_d.W, res_d.b)
    assert abs(a - b) <= 1e-6 * abs(b)


def test_soc_warm_start_and_float32_output():
    prob = _program(2, p=20)
    cold = soc_primal_dual(prob, tol=1e-9)
    warm = soc_primal_dual(prob, cold.W, cold.b, tol=1e-9)
    a, b = prob.objective(cold.W, cold.b), prob.objective(warm.W, warm.b)
    assert abs(a - b) <= 1e-7 * abs(a)
    prob32 = _program(2, p=20)
    prob32.op = type(prob32.op)(prob32.op.X.float(), prob32.op.D > 0, None, 1)
    prob32.Y = prob32.Y.float()
    res = soc_primal_dual(prob32, tol=1e-9)
    assert res.W.dtype == torch.float32
    assert abs(prob.objective(res.W.double(), res.b.double()) - a) <= 1e-5 * abs(a)


def test_soc_reports_steps():
    prob = _program(3, p=15)
    seen = []
    soc_primal_dual(prob, tol=1e-9, step_callback=seen.append)
    assert seen and [s["newton_step"] for s in seen] == list(range(1, len(seen) + 1))
    assert all(s["lower_bound"] <= s["primal"] * (1 + 1e-12) for s in seen)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("fit_bias", [False, True])
def test_soc_relu_program_matches_cvxpy(loss, fit_bias, seed):
    """With the ReLU cones (and the support polish that ends every ReLU solve)."""
    prob = _program(seed, loss=loss, fit_bias=fit_bias)
    relu = _shared_program(seed, loss=loss, fit_bias=fit_bias, relu=True)
    res = soc_primal_dual(relu, tol=1e-9)
    ref = cvxpy_reference(relu).extra["value"]
    obj = relu.objective(res.W, res.b)
    assert abs(obj - ref) <= 1e-6 * abs(ref)
    assert res.extra["violation"] <= 1e-8
    _, lb = block_scores(relu, relu.op.matvec(res.W) + res.b, res.extra["mu"], 50)
    assert lb <= ref * (1 + 1e-9) + 1e-12
    assert obj - lb <= 1e-6 * abs(obj)
    bad = _problem(prob.op.X, sample_patterns(prob.op.X, 5, generator=torch.Generator()
                                              .manual_seed(0)),
                   prob.Y, prob.loss, 0.01, relu=True, fit_bias=False)
    bad.gates = None
    with pytest.raises(ValueError, match="interior directions"):
        soc_primal_dual(bad)


def test_inner_falls_back_to_the_barrier_method_when_the_soc_method_stalls(monkeypatch):
    """Training's inner solve: a primal-dual solve that stops above the requested gap
    (here: cut to one step) hands over to the barrier method, which reaches the optimum."""
    import convexnn.training as training

    prob = _program(1, p=20)
    ref = cvxpy_reference(prob).extra["value"]
    real = training.soc_primal_dual
    seen = {}

    def one_step(*a, **k):
        k["max_iter"] = 1
        res = real(*a, **k)
        seen["soc"] = res
        return res

    monkeypatch.setattr(training, "soc_primal_dual", one_step)
    W0, b0 = prob.zeros()
    res = training._inner(prob, W0, b0, None, tol=1e-8, max_iter=300)
    assert not seen["soc"].converged and seen["soc"].extra["certified_gap"] > 1e-8
    assert res.n_iter > seen["soc"].n_iter  # the barrier method's steps are added
    assert abs(prob.objective(res.W, res.b) - ref) <= 1e-6 * abs(ref)
    # without the cut, the soc method's own answer is returned
    monkeypatch.setattr(training, "soc_primal_dual", real)
    direct = training._inner(prob, W0, b0, None, tol=1e-6, max_iter=300)
    assert direct.extra["certified_gap"] <= 1e-6
