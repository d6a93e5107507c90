"""Vector outputs for gated ReLU: the pattern-wise nuclear norm (SPEC §5).

Checks the penalty's algebra (prox/Moreau, dual norm, ``lam_max``), the recovery of a
gated network from a ``c × d`` block per pattern, the certificate, the growth search's
spectral values, and — against CVXPY — that the estimators reach the optimum of the
nuclear-norm program with several outputs.
"""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convexnn import ConvexGatedReLUClassifier, ConvexGatedReLURegressor
from convexnn.certificates import dual_bound
from convexnn.growth import _spectral_values
from convexnn.losses import SoftmaxLoss, SquaredLoss
from convexnn.patterns import enumerate_patterns, sample_patterns
from convexnn.penalties import GroupL2, GroupNuclear, penalty_for
from convexnn.reformulation import convex_to_network
from convexnn.solvers import fista
from convexnn.training import _problem, network_outputs

DTYPES = [torch.float64, torch.float32]


def _rand(shape, seed, dtype=torch.float64, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype) * scale


@settings(max_examples=40, deadline=None)
@given(lam=st.floats(1e-3, 10.0), step=st.floats(1e-3, 10.0), seed=st.integers(0, 10**6))
def test_nuclear_prox_moreau_identity(lam, step, seed):
    W = _rand((3, 4, 5), seed, scale=3.0)
    pen = GroupNuclear(lam)
    lhs = pen.prox(W, step) + step * pen.project_dual(W / step)
    assert torch.allclose(lhs, W, atol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nuclear_value_dual_norm_and_prox_optimality(dtype):
    W = _rand((3, 6, 4), 0, dtype)
    lam = 0.7
    pen = GroupNuclear(lam)
    ref = sum(np.linalg.norm(W[:, j, :].double().numpy(), "nuc") for j in range(6))
    assert float(pen.value(W)) == pytest.approx(lam * ref, rel=1e-5)
    spec = max(np.linalg.norm(W[:, j, :].double().numpy(), 2) for j in range(6))
    assert float(pen.dual_norm(W)) == pytest.approx(spec, rel=1e-5)
    assert pen.block_dual_norms(W).shape == (1, 6)
    # the prox minimizes  t R(x) + ½‖x − W‖²: no random perturbation does better
    t = 0.9
    P = pen.prox(W, t).double()
    pen64 = GroupNuclear(lam)
    W64 = W.double()

    def f(x):
        return float(t * pen64.value(x) + 0.5 * ((x - W64) ** 2).sum())

    best = f(P)
    for k in range(20):
        assert f(P + 1e-3 * _rand(W.shape, 100 + k)) >= best - 1e-12


def test_one_output_nuclear_equals_group_l2():
    W = _rand((1, 7, 5), 3)
    a, b = GroupNuclear(0.3), GroupL2(0.3)
    assert float(a.value(W)) == pytest.approx(float(b.value(W)), rel=1e-12)
    assert torch.allclose(a.prox(W, 0.5), b.prox(W, 0.5), atol=1e-12)
    assert isinstance(penalty_for(0.3, n_outputs=1, vector_outputs=True), GroupL2)
    assert isinstance(penalty_for(0.3, n_outputs=3, vector_outputs=True), GroupNuclear)
    assert isinstance(penalty_for(0.3, n_outputs=3, vector_outputs=False), GroupL2)


def _gated_problem(seed, loss, c=3, n=40, d=3, p=12, lam=0.02, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64).to(dtype)
    X_aug = torch.cat([X, torch.ones(n, 1, dtype=dtype)], 1)
    if loss.name == "softmax":
        Y = torch.nn.functional.one_hot(torch.randint(0, c, (n,), generator=g), c).to(dtype)
    else:
        Y = torch.randn(n, c, generator=g, dtype=torch.float64).to(dtype)
    ps = sample_patterns(X_aug, p, generator=g)
    return X, X_aug, Y, _problem(X_aug, ps, Y, loss, lam, relu=False, fit_bias=True)


@pytest.mark.parametrize("loss", [SquaredLoss(), SoftmaxLoss()], ids=["squared", "softmax"])
def test_lam_max_gives_the_zero_network(loss):
    _, _, Y, prob = _gated_problem(1, loss)
    assert isinstance(prob.penalty, GroupNuclear)
    Z0 = torch.zeros_like(Y)
    V = loss.center(loss.grad(Z0 + 0, Y), Y)
    lam_max = GroupNuclear.lam_max(prob.op.rmatvec(V))
    prob.penalty = GroupNuclear(1.01 * lam_max)
    res = fista(prob, tol=1e-10, max_iter=2000)
    assert float(torch.linalg.vector_norm(res.W)) == 0.0
    prob.penalty = GroupNuclear(0.9 * lam_max)
    res = fista(prob, tol=1e-10, max_iter=2000)
    assert float(torch.linalg.vector_norm(res.W)) > 0.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_vector_recovery_keeps_outputs_and_objective(dtype):
    X, X_aug, Y, prob = _gated_problem(2, SquaredLoss(), dtype=dtype)
    W = _rand(prob.op.shape_in, 5, dtype)
    W[:, ::3] = 0.0
    W[:, 1] = torch.outer(_rand((3,), 6, dtype), _rand((4,), 7, dtype))  # rank one
    b = _rand((3,), 8, dtype)
    net = convex_to_network(W, b, prob.op.sign, fit_intercept=True, gates=prob.gates,
                            vector=True)
    Z = network_outputs(net, X, True)
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert torch.allclose(Z, prob.op.matvec(W) + b, atol=tol * 10, rtol=tol)
    reg = 0.5 * ((net.W1**2).sum() + (net.W2**2).sum() + (net.b1**2).sum())
    assert float(reg) == pytest.approx(float(prob.penalty.value(W)) / prob.lam, rel=tol)
    # a neuron per non-zero singular value: 3 per full block, 1 for the rank-one block
    p = W.shape[1]
    assert net.n_neurons == 3 * (p - len(range(0, p, 3)) - 1) + 1


def test_spectral_values_match_their_definition():
    X = _rand((30, 4), 11)
    V = _rand((30, 3), 12)
    M = (X @ _rand((4, 9), 13) >= 0).double()
    got = _spectral_values(X, M, V, max_entries=100)  # several chunks
    ref = torch.stack([torch.linalg.matrix_norm((M[:, b:b + 1] * V).T @ X, ord=2)
                       for b in range(9)])
    assert torch.allclose(got, ref, rtol=1e-12)


def test_vector_dual_bound_is_below_the_optimum_and_tight_there():
    _, _, Y, prob = _gated_problem(3, SoftmaxLoss())
    res = fista(prob, tol=1e-9, max_iter=20000)
    Z = prob.op.matvec(res.W) + res.b
    opt = prob.objective(res.W, res.b)
    lb = dual_bound(prob.loss, Y, Z, prob.op, prob.lam, fit_bias=True, constrained=False,
                    combine_outputs=True).lower_bound
    assert lb <= opt + 1e-12
    assert opt - lb <= 1e-8 * abs(opt)
    # the per-output (separable) bound is not valid here: the spectral one is smaller
    sep = dual_bound(prob.loss, Y, Z, prob.op, prob.lam, fit_bias=True, constrained=False,
                     combine_outputs=False).lower_bound
    assert sep >= lb - 1e-12


def _cvx_nuclear_optimum(X, Y, lam, loss):
    pytest.importorskip("cvxpy")
    from convexnn.solvers import cvxpy_reference

    Xt = torch.as_tensor(X)
    X_aug = torch.cat([Xt, torch.ones(len(X), 1, dtype=Xt.dtype)], 1)
    ps = enumerate_patterns(X_aug)
    prob = _problem(X_aug, ps, torch.as_tensor(Y, dtype=torch.float64), loss, lam,
                    relu=False, fit_bias=True)
    return cvxpy_reference(prob).extra["value"]


def test_gated_multi_output_regressor_reaches_the_nuclear_optimum(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((12, 2))
    Y = np.stack([np.sin(2 * X[:, 0]), X[:, 1] ** 2 - 1, X[:, 0] * X[:, 1]], 1)
    est = ConvexGatedReLURegressor(lam=0.01, patterns="exact", tol=5e-7,
                                   max_iter=20_000).fit(X, Y)
    opt = _cvx_nuclear_optimum(X, Y, 0.01, SquaredLoss())
    assert abs(est.objective_ - opt) <= 1e-6 * abs(opt)
    assert est.certificate_.rel_gap <= 1e-6
    assert est.certificate_.lower_bound <= opt * (1 + 1e-9)
    # vector neurons: some neuron feeds more than one output
    assert (np.count_nonzero(np.abs(est.coefs_[1]) > 1e-9, axis=1) > 1).any()


def test_gated_multiclass_classifier_reaches_the_nuclear_optimum(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((15, 2))
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1] ** 2, [-0.3, 0.6])
    est = ConvexGatedReLUClassifier(lam=0.01, patterns="exact", tol=1e-6, max_iter=20_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.fit(X, y)
    Y = (y[:, None] == np.unique(y)[None]).astype(float)
    opt = _cvx_nuclear_optimum(X, Y, 0.01, SoftmaxLoss())
    assert abs(est.objective_ - opt) <= 1e-6 * abs(opt)
    assert est.certificate_.rel_gap <= 1e-6
    assert est.certificate_.scope == "global"


def test_gated_multiclass_estimator_is_a_vector_output_network(tmp_path):
    """The fitted gated network pays ½(‖w‖² + ‖α‖²) with α ∈ R^c, round-trips through
    save/load and to_torch, and its objective is recomputed from coefs_ and gates_."""
    from convexnn.persistence import load, save

    rng = np.random.default_rng(3)
    X = rng.standard_normal((90, 4))
    y = np.digitize(X[:, 0] - X[:, 1] ** 2 + 0.3 * X[:, 2], [-1.0, 0.0])
    est = ConvexGatedReLUClassifier(lam=1e-2, patterns=12, grow=False, random_state=0,
                                    tol=1e-6, max_iter=20_000).fit(X, y)
    W1, W2 = est.coefs_
    b1, b2 = est.intercepts_
    assert W2.shape == (est.n_neurons_, 3)
    # neurons feed several classes (the separable program would give one each)
    assert (np.count_nonzero(np.abs(W2) > 1e-8, axis=1) > 1).all()
    G = est.gates_
    Xa = np.hstack([X, np.ones((len(X), 1))])
    Z = ((Xa @ G.T >= 0) * (X @ W1 + b1)) @ W2 + b2
    Zs = Z - Z.max(1, keepdims=True)
    logp = Zs - np.log(np.exp(Zs).sum(1, keepdims=True))
    idx = np.searchsorted(est.classes_, y)
    obj = -logp[np.arange(len(y)), idx].mean() + 0.5e-2 * (
        (W1**2).sum() + (W2**2).sum() + (b1**2).sum())
    assert obj == pytest.approx(est.objective_, rel=1e-10)
    np.testing.assert_allclose(est.decision_function(X), Z, rtol=1e-10, atol=1e-12)
    out = est.to_torch()(torch.as_tensor(X)).detach().numpy()
    np.testing.assert_allclose(out, Z, rtol=1e-10, atol=1e-12)
    back = load(save(est, tmp_path / "g.npz"))
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    assert est.certificate_.rel_gap <= 1e-6


def test_lam_max_of_the_gated_multiclass_estimator():
    """Above ``lam_max(activation="gated")`` the vector-output fit is the zero network."""
    from convexnn import lam_max

    rng = np.random.default_rng(4)
    X = rng.standard_normal((60, 3))
    y = np.digitize(X[:, 0] + X[:, 1] ** 2, [0.0, 1.0])
    pat = rng.standard_normal((10, 3))
    lmax = lam_max(X, y, loss="softmax", activation="gated", patterns=pat)
    est = ConvexGatedReLUClassifier(lam=1.01 * lmax, patterns=pat, grow=False).fit(X, y)
    assert est.n_neurons_ == 0
    est = ConvexGatedReLUClassifier(lam=0.9 * lmax, patterns=pat, grow=False).fit(X, y)
    assert est.n_neurons_ > 0


def test_first_order_solves_report_progress(capsys):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((80, 3))
    y = np.digitize(X[:, 0] * X[:, 1] + X[:, 2], [-0.5, 0.5])
    params = dict(lam=1e-3, patterns=15, grow=False, random_state=0, tol=1e-7,
                  max_iter=400)
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ConvexGatedReLUClassifier(**params).fit(X, y, callback=seen.append)
    inner = [i for i in seen if i["phase"] == "fista"]
    assert inner and all(np.isfinite(i["objective"]) for i in inner)
    assert all(np.isnan(i["lower_bound"]) for i in inner)  # no bound from a working set
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ConvexGatedReLUClassifier(**params, verbose=1).fit(X, y)
        assert "[fista" not in capsys.readouterr().err
        ConvexGatedReLUClassifier(**params, verbose=2).fit(X, y)
        assert "[fista" in capsys.readouterr().err


def _relu_three_class_program(seed, n):
    """A 3-class softmax ReLU program over every pattern of n points in 2-D (+ bias)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=g, dtype=torch.float64)
    X_aug = torch.cat([X, torch.ones(n, 1, dtype=X.dtype)], 1)
    Y = torch.nn.functional.one_hot(torch.arange(n) % 3, 3).double()
    prob = _problem(X_aug, enumerate_patterns(X_aug), Y, SoftmaxLoss(), 0.05, relu=True,
                    fit_bias=True)
    return g, X_aug, Y, prob


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_relu_vector_dual_norm_bounds_every_neuron_and_beats_the_older_bounds(seed):
    """The ReLU vector-output dual norm ν ≥ max over unit u of ‖Vᵀ(Xu)₊‖ (sampled u);
    the stacked-residual spectral bound is what makes it tighter than the ℓ2 of the
    per-output cone bounds and the cone-free spectral norm."""
    from convexnn import certificates

    g, X_aug, Y, prob = _relu_three_class_program(seed, 14)
    Z = torch.randn(14, 3, generator=g, dtype=torch.float64)
    nu = dual_bound(prob.loss, Y, Z, prob.op, prob.lam, fit_bias=True, constrained=True,
                    combine_outputs=True, cone_iters=500).dual_norm
    V = prob.loss.center(prob.loss.grad(Z, Y), Y)
    U = torch.randn(200_000, 3, generator=g, dtype=torch.float64)
    U = U / torch.linalg.vector_norm(U, dim=1, keepdim=True)
    sampled = float(torch.linalg.vector_norm(torch.relu(X_aug @ U.T).T @ V, dim=1).max())
    assert nu >= sampled * (1 - 1e-12)
    # the bound without the stacked residuals (the older rule) is looser
    G = prob.op.rmatvec(V)
    blocks = certificates._cone_block_bounds(prob.op, G, None, 500)
    half = prob.op.p // 2
    per = torch.maximum(blocks[:, :half], blocks[:, half:])
    older = torch.minimum(torch.linalg.vector_norm(per, dim=0),
                          certificates.block_spectral_norms(G[:, :half]))
    assert nu < float(older.max())
    assert nu <= 1.5 * sampled  # and not far from the true maximum here


@pytest.mark.parametrize("seed", [0, 1])
def test_lazy_vector_cone_bounds_give_the_maximum_of_refining_every_pattern(seed):
    """Patterns are refined in decreasing order of their cone-free bound until none left
    can raise the maximum: the maximum equals refining every pattern (one chunk), with
    fewer patterns refined, and every bound stays above sampled neurons' values."""
    from convexnn.certificates import _vector_cone_bounds

    g, X_aug, Y, prob = _relu_three_class_program(seed, 30)
    Z = 0.3 * torch.randn(30, 3, generator=g, dtype=torch.float64)
    V = prob.loss.center(prob.loss.grad(Z, Y), Y)
    G = prob.op.rmatvec(V)
    half = prob.op.p // 2
    full, n_full = _vector_cone_bounds(prob.op, G, None, 300, chunk=half)
    lazy, n_lazy = _vector_cone_bounds(prob.op, G, None, 300, chunk=4)
    assert n_full == half and 0 < n_lazy < half
    assert abs(float(lazy.max()) - float(full.max())) <= 1e-12 * float(full.max())
    # unrefined patterns keep a looser bound; refined ones the same, up to round-off (300
    # accelerated iterations on differently batched products: ~1e-11 relative)
    assert bool((lazy >= full - 1e-10 * float(full.max())).all())
    # every pattern's bound holds for neurons with that pattern (sampled unit u)
    U = torch.randn(100_000, 3, generator=g, dtype=torch.float64)
    U = U / torch.linalg.vector_norm(U, dim=1, keepdim=True)
    A = X_aug @ U.T  # (n, samples)
    vals = torch.linalg.vector_norm(torch.relu(A).T @ V, dim=1)
    masks = prob.op.D[:, :half] > 0
    key = {tuple(m.tolist()): j for j, m in enumerate(masks.T)}
    idx = torch.tensor([key.get(tuple(m.tolist()), -1) for m in (A >= 0).T])
    ok = idx >= 0
    assert bool((vals[ok] <= lazy[idx[ok]] * (1 + 1e-12)).all())
    # a floor above every cheap bound refines nothing
    none, n_none = _vector_cone_bounds(prob.op, G, None, 300, chunk=4,
                                       floor=float(full.max()) * 100)
    assert n_none == 0


def _svd_prox(W, tau):
    U, S, Vh = torch.linalg.svd(W.double().transpose(0, 1), full_matrices=False)
    return ((U * torch.clamp(S - tau, min=0)[:, None, :]) @ Vh).transpose(0, 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 5, 8), (8, 5, 3), (4, 6, 4)])  # c < d, c > d, square
def test_nuclear_prox_matches_singular_value_thresholding(dtype, shape):
    # the prox works from the small Gram matrix of each block; it must agree with soft
    # thresholding of an SVD, also on rank-deficient blocks and thresholds near a
    # singular value
    W = _rand(shape, 11)
    W[:, 0] = W[:, 1, :1] * W[:1, 2, :]  # a rank-one block: (c × 1)(1 × d)
    assert int(torch.linalg.matrix_rank(W[:, 0])) == 1
    W[:, 3] = 0.0
    sv = torch.linalg.svdvals(W.transpose(0, 1))
    for tau in (0.0, 0.3, float(sv[1, 1]) * (1 + 1e-9), float(sv.max()) * 1.01):
        pen = GroupNuclear(2.0)
        got = pen.prox(W.to(dtype), tau / 2.0)
        assert got.dtype == dtype and got.shape == W.shape
        ref = _svd_prox(W.to(dtype), tau)
        tol = 1e-11 if dtype == torch.float64 else 2e-5
        assert float((got.double() - ref).abs().max()) <= tol * max(1.0, float(W.abs().max()))
        # FISTA takes the value at the prox from the same eigendecomposition
        out, val = pen.prox_value(W.to(dtype), tau / 2.0)
        assert torch.equal(out, got)
        exact = 2.0 * float(torch.linalg.svdvals(ref.transpose(0, 1)).sum())
        assert float(val) == pytest.approx(exact, rel=tol, abs=tol)


def test_cone_support_bounds_match_cvxpy():
    """Both bounds of the barrier method are valid and meet CVXPY's value (degenerate
    cones included: g in the polar cone, value 0)."""
    cp = pytest.importorskip("cvxpy")
    from convexnn.certificates import _cone_support

    g0 = torch.Generator().manual_seed(5)
    X = torch.randn(30, 4, generator=g0, dtype=torch.float64)
    A, G, gates, ref = [], [], [], []
    for e in range(12):
        gate = torch.randn(4, generator=g0, dtype=torch.float64)
        Ae = torch.sign(X @ gate)[:, None] * X
        ge = torch.randn(4, generator=g0, dtype=torch.float64)
        if e % 4 == 0:  # inside the polar cone: -Aᵀμ
            ge = -(Ae.T @ torch.rand(30, generator=g0, dtype=torch.float64))
        u = cp.Variable(4)
        prob = cp.Problem(cp.Maximize(ge.numpy() @ u), [Ae.numpy() @ u >= 0, cp.norm(u) <= 1])
        prob.solve()
        A.append(Ae), G.append(ge), gates.append(gate), ref.append(max(prob.value, 0.0))
    up, lo = _cone_support(torch.stack(A), torch.stack(G), torch.stack(gates))
    ref_t = torch.tensor(ref, dtype=torch.float64)
    scale = torch.linalg.vector_norm(torch.stack(G), dim=1)
    assert bool((up >= ref_t - 1e-7 * scale).all()) and bool((lo <= ref_t + 1e-7 * scale).all())
    assert float(((up - lo) / scale).max()) < 1e-5


def test_cone_support_is_tight_in_ten_dimensions():
    """Against the exact value ‖Π_K(g)‖ = min_{μ≥0} ‖g + Aᵀμ‖ (scipy's NNLS): on 30 random
    cones in d = 10 both bounds are valid and within 1e-5 ‖g‖ (six fixed barrier steps per
    ν left some cones uncentred, with upper bounds up to ~0.5 ‖g‖ above the value)."""
    from scipy.optimize import nnls

    from convexnn.certificates import _cone_support

    g0 = torch.Generator().manual_seed(1)
    X = torch.randn(300, 10, generator=g0, dtype=torch.float64)
    gates = torch.randn(30, 10, generator=g0, dtype=torch.float64)
    A = torch.sign(X @ gates.T).T[:, :, None] * X[None]
    G = torch.randn(30, 10, generator=g0, dtype=torch.float64)
    up, lo = _cone_support(A, G, gates)
    exact = torch.tensor([float(np.linalg.norm(G[e].numpy() + A[e].numpy().T @ nnls(
        A[e].numpy().T, -G[e].numpy(), maxiter=5000)[0])) for e in range(30)],
        dtype=torch.float64)
    scale = torch.linalg.vector_norm(G, dim=1)
    assert bool((up >= exact - 1e-9 * scale).all()) and bool((lo <= exact + 1e-9 * scale).all())
    assert float(((up - exact) / scale).max()) < 1e-5
    assert float(((exact - lo) / scale).max()) < 1e-5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sphere_bound_is_valid_and_tight(seed):
    """With the gates, the maximum over output directions is bounded by branch and bound:
    above every sampled neuron's value, below the relaxed bound, and (for the pattern
    that sets it) within the branch and bound's tolerance of a value it attains."""
    from convexnn.certificates import _sphere_bounds

    g, X_aug, Y, prob = _relu_three_class_program(seed, 14)
    Z = torch.randn(14, 3, generator=g, dtype=torch.float64)
    kw = dict(fit_bias=True, constrained=True, combine_outputs=True, cone_iters=500)
    relaxed = dual_bound(prob.loss, Y, Z, prob.op, prob.lam, **kw).dual_norm
    sphere = dual_bound(prob.loss, Y, Z, prob.op, prob.lam, gates=prob.gates, **kw).dual_norm
    V = prob.loss.center(prob.loss.grad(Z, Y), Y)
    U = torch.randn(400_000, 3, generator=g, dtype=torch.float64)
    U = U / torch.linalg.vector_norm(U, dim=1, keepdim=True)
    sampled = float(torch.linalg.vector_norm(torch.relu(X_aug @ U.T).T @ V, dim=1).max())
    assert sampled * (1 - 1e-12) <= sphere <= relaxed
    # every pattern by itself (no floor): the bound meets the best value found
    half = prob.op.p // 2
    G = prob.op.rmatvec(V)[:, :half]
    bound, best, t = _sphere_bounds(X_aug, prob.op.D[:, :half] > 0, prob.gates[:half], G,
                                    floor=0.0)
    j = int(torch.argmax(bound))
    assert float(bound[j]) == pytest.approx(sphere, rel=5e-3)
    assert float(bound[j]) <= float(best[j]) * (1 + 5e-3)  # within its round budget
    assert float(best.max()) <= sampled * (1 + 1e-2)  # best values are attained values
    # one level for all patterns (the largest best value) stops the others early: still
    # valid, and its maximum within the tolerance of the per-pattern maximum
    joint = _sphere_bounds(X_aug, prob.op.D[:, :half] > 0, prob.gates[:half], G, floor=0.0,
                           joint=True)[0]
    assert sampled * (1 - 1e-12) <= float(joint.max()) <= float(bound.max()) * (1 + 1e-4)
    if seed == 2:  # the split spectral bound made the relaxation nearly as tight (it was
        assert relaxed <= 1.02 * sphere  # 8 % above the branch and bound before)


@pytest.mark.parametrize("seed", [0, 2])
@pytest.mark.parametrize("c", [3, 6])
def test_split_spectral_bound_is_valid_tight_and_never_worse(seed, c, monkeypatch):
    """The jointly optimized split multipliers bound every pattern's maximum over unit
    neurons (sampled u), never above the per-output residuals side by side, and here
    within 0.5 % of the largest sampled value — also for c > 3, where the branch and
    bound on the sphere does not run."""
    from convexnn import certificates

    g = torch.Generator().manual_seed(seed)
    n = 18
    X = torch.randn(n, 2, generator=g, dtype=torch.float64)
    X_aug = torch.cat([X, torch.ones(n, 1, dtype=X.dtype)], 1)
    Y = torch.nn.functional.one_hot(torch.arange(n) % c, c).double()
    prob = _problem(X_aug, enumerate_patterns(X_aug), Y, SoftmaxLoss(), 0.05, relu=True,
                    fit_bias=True)
    Z = 0.5 * torch.randn(n, c, generator=g, dtype=torch.float64)
    V = prob.loss.center(prob.loss.grad(Z, Y), Y)
    G = prob.op.rmatvec(V)
    half = prob.op.p // 2
    new, _ = certificates._vector_cone_bounds(prob.op, G, None, 300, chunk=half)
    monkeypatch.setattr(certificates, "_SPLIT_STAGES", ())  # the bound before
    old, _ = certificates._vector_cone_bounds(prob.op, G, None, 300, chunk=half)
    U = torch.randn(100_000, 3, generator=g, dtype=torch.float64)
    U = U / torch.linalg.vector_norm(U, dim=1, keepdim=True)
    A = X_aug @ U.T
    vals = torch.linalg.vector_norm(torch.relu(A).T @ V, dim=1)
    masks = prob.op.D[:, :half] > 0
    key = {tuple(m.tolist()): j for j, m in enumerate(masks.T)}
    idx = [key.get(tuple(m.tolist()), -1) for m in (A >= 0).T]  # (-1: the empty pattern)
    per = torch.zeros(half, dtype=torch.float64)
    for j, v in zip(idx, vals.tolist(), strict=True):
        if j >= 0:
            per[j] = max(float(per[j]), v)
    assert bool((new >= per * (1 - 1e-12)).all())  # valid for every pattern
    assert bool((new <= old * (1 + 1e-12)).all())  # never worse than its start
    assert float(new.max()) <= 1.005 * float(per.max())
    if (seed, c) == (2, 6):
        assert float(old.max()) > 1.04 * float(new.max())


def test_vector_relu_bound_from_float32_outputs_matches_float64():
    """The vector-output ReLU bound runs in float64 whatever the fit's dtype (in float32
    its inner solvers lost almost all of it: wine 0.82 relative gap against 0.005)."""
    g, X_aug, Y, prob = _relu_three_class_program(1, 14)
    Z = torch.randn(14, 3, generator=g, dtype=torch.float64)
    kw = dict(fit_bias=True, constrained=True, combine_outputs=True, cone_iters=200)
    ref = dual_bound(prob.loss, Y, Z, prob.op, prob.lam, **kw)
    op32 = prob.op.to(torch.float32)
    got = dual_bound(prob.loss, Y.float(), Z.float(), op32, prob.lam, **kw)
    assert got.dual_norm == pytest.approx(ref.dual_norm, rel=1e-5)
    assert got.lower_bound == pytest.approx(ref.lower_bound, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("c,with_mu", [(1, True), (3, False), (4, True)])
def test_cone_block_bounds_match_plain_projected_gradient(c, with_mu):
    """The cone bounds run on signed multipliers, in place, in rotating buffers: they must
    give what the plain accelerated projected gradient on μ ≥ 0 gives (bounds, residuals,
    multipliers), also for a strided μ (a view of a larger array)."""
    import math

    from convexnn.certificates import _cone_block_bounds
    from convexnn.operators import PatternOperator

    g = torch.Generator().manual_seed(c)
    n, d, p, iters = 60, 4, 12, 25
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    D = (X @ torch.randn(d, p, generator=g, dtype=torch.float64)) >= 0
    op = PatternOperator(X, D, torch.ones(p, dtype=torch.float64), c)
    G = torch.randn(c, p, d, generator=g, dtype=torch.float64)
    mu = None
    if with_mu:  # a strided view, as the callers' slices are
        mu = torch.rand(n, c, 2 * p, generator=g, dtype=torch.float64)[:, :, ::2]
    # reference: the textbook iteration on μ itself
    m = torch.zeros(n, c, p, dtype=torch.float64) if mu is None else mu.clone()
    step = 1.0 / float(torch.linalg.matrix_norm(X, ord=2)) ** 2
    best = torch.linalg.vector_norm(-G + op.cone_rmatvec(m), dim=-1)
    R, mb = -G + op.cone_rmatvec(m), m.clone()
    prev, y, t = m, m, 1.0
    for _ in range(iters):
        new = torch.clamp(y - step * op.cone_matvec(-G + op.cone_rmatvec(y)), min=0)
        t_new = 0.5 * (1 + math.sqrt(1 + 4 * t * t))
        y = new + ((t - 1) / t_new) * (new - prev)
        prev, t = new, t_new
        H = -G + op.cone_rmatvec(new)
        nrm = torch.linalg.vector_norm(H, dim=-1)
        better = nrm < best
        best = torch.where(better, nrm, best)
        R = torch.where(better[..., None], H, R)
        mb = torch.where(better[None], new, mb)
    plain = torch.linalg.vector_norm(G, dim=-1)
    worse = ~(best <= plain)
    best = torch.where(worse, plain, best)
    R = torch.where(worse[..., None], -G, R)
    mb = torch.where(worse[None], torch.zeros_like(mb), mb)
    got = _cone_block_bounds(op, G, mu, iters, residuals=True, multipliers=True)
    for a, b in zip(got, (best, R, mb)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert bool((got[2] >= 0).all())


@pytest.mark.parametrize("c", [1, 3])
def test_cone_block_bounds_stop_iterating_patterns_below_enough(c):
    """Plain bounds with ``enough``: patterns whose blocks are all ≤ enough stop being
    iterated once at most half are left (the problem is separable by block). The blocks
    that end above ``enough`` get the same bounds as without it; the others end ≤ enough,
    frozen where they dropped (no lower than the full run's)."""
    from convexnn.certificates import _cone_block_bounds
    from convexnn.operators import PatternOperator

    g = torch.Generator().manual_seed(10 + c)
    n, d, p, iters = 80, 5, 40, 60
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    D = (X @ torch.randn(d, p, generator=g, dtype=torch.float64)) >= 0
    op = PatternOperator(X, D, torch.ones(p, dtype=torch.float64), c)
    G = torch.randn(c, p, d, generator=g, dtype=torch.float64)
    full = _cone_block_bounds(op, G, None, iters)
    enough = float(torch.quantile(full.max(dim=0).values, 0.7))
    got = _cone_block_bounds(op, G, None, iters, enough)
    above = full > enough
    assert torch.equal(got > enough, above) and bool(above.any())
    torch.testing.assert_close(got[above], full[above], rtol=1e-10, atol=1e-12)
    assert bool((got[~above] >= full[~above] - 1e-12).all())
    assert bool((got[~above] > full[~above] * (1 + 1e-9)).any())  # some stopped early
