"""The primal-dual interior-point solver: oracle checks against CVXPY, both Newton
factorizations (dense and Woodbury) agree, warm starts, the smoothed norm's calculus."""

from collections.abc import Callable

import numpy as np
import pytest
import torch

from convexnn.losses import LogisticLoss, SquaredLoss
from convexnn.operators import PatternOperator
from convexnn.patterns import sample_patterns
from convexnn.solvers import ConvexProblem, cvxpy_reference
from convexnn.solvers import _primal_dual as pd_mod
from convexnn.solvers._primal_dual import _smoothed_norm, newton_cost, primal_dual
from convexnn.solvers._working_set import block_scores
from convexnn.training import _problem

cp = pytest.importorskip("cvxpy")


def _program(seed, *, n=40, d=3, p=12, loss="squared", relu=True, fit_bias=False, lam=0.01):
    rng = np.random.default_rng(seed)
    X = torch.as_tensor(rng.standard_normal((n, d)))
    y = torch.sin(2 * X[:, 0]) + 0.3 * X[:, 1]
    if loss == "logistic":
        y = torch.where(y > y.median(), 1.0, -1.0).double()
    gen = torch.Generator().manual_seed(seed)
    ps = sample_patterns(X, p, generator=gen)
    L = SquaredLoss() if loss == "squared" else LogisticLoss()
    return _problem(X, ps, y[:, None], L, lam, relu=relu, fit_bias=fit_bias)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("fit_bias", [False, True])
def test_primal_dual_matches_cvxpy(loss, relu, fit_bias, seed):
    prob = _program(seed, loss=loss, relu=relu, fit_bias=fit_bias)
    res = primal_dual(prob, tol=1e-9, max_iter=300)
    ref = cvxpy_reference(prob).extra["value"]
    obj = prob.objective(res.W, res.b)
    assert abs(obj - ref) <= 1e-6 * abs(ref)
    assert res.extra["violation"] <= 1e-8
    # the multipliers certify it: the dual bound is within 1e-6 of the objective
    Z = prob.op.matvec(res.W) + res.b
    _, lb = block_scores(prob, Z, res.extra.get("mu"), 50)
    assert lb <= ref * (1 + 1e-9) + 1e-12
    assert (obj - lb) <= 1e-6 * abs(obj)


@pytest.mark.parametrize("fit_bias", [False, True])
@pytest.mark.parametrize("relu", [True, False])  # gated: the identity-plus-rank-one Woodbury
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_dense_and_woodbury_steps_agree(monkeypatch, fit_bias, relu, loss):
    # n < p d: Woodbury is cheaper
    prob = _program(1, n=30, d=3, p=40, fit_bias=fit_bias, relu=relu, loss=loss)
    assert newton_cost(30, 1, prob.op.p, 3, gated=not relu)[1] == "woodbury"
    res_w = primal_dual(prob, tol=1e-9)
    assert res_w.extra["mode"] == "woodbury"
    monkeypatch.setattr(pd_mod, "newton_cost", lambda n, c, p, d, **k: (0.0, "dense"))
    res_d = primal_dual(prob, tol=1e-9)
    assert res_d.extra["mode"] == "dense"
    a, b = prob.objective(res_w.W, res_w.b), prob.objective(res_d.W, res_d.b)
    assert abs(a - b) <= 1e-7 * abs(b)
    ref = cvxpy_reference(prob).extra["value"]
    assert abs(a - ref) <= 1e-6 * abs(ref)


def test_gated_newton_step_solves_the_system():
    """The gated Woodbury solve equals a dense solve of the same Newton matrix."""
    prob = _program(4, n=25, d=3, p=30, relu=False, fit_bias=True, loss="logistic")
    X, SD = prob.op.X, prob.op.SD
    gen = torch.Generator().manual_seed(0)
    B, d, lam, nu = prob.op.p, 3, prob.lam, 1e-3
    W = torch.randn(B, d, generator=gen, dtype=torch.float64)
    W[::3] *= 1e-4  # blocks near zero, as in a solve
    _, ts, s = _smoothed_norm(W, lam, nu)
    Bd = (lam / ts)[:, None, None] * torch.eye(d, dtype=torch.float64) - (
        lam * lam / (ts * ts * s))[:, None, None] * W[:, :, None] * W[:, None, :]
    Z = torch.randn(25, 1, generator=gen, dtype=torch.float64)
    Hl = prob.loss.hessian(Z, prob.Y)
    newton = pd_mod._Newton(prob, X, SD, Hl, Bd, {}, (ts / lam, W, nu))
    assert newton.mode == "woodbury"
    J = torch.cat([(SD[:, :, None] * X[:, None, :]).reshape(25, B * d),
                   torch.ones(25, 1, dtype=torch.float64)], 1)
    K = J.T @ (Hl[:, 0, 0, None] * J)
    K[: B * d, : B * d] += torch.block_diag(*Bd)
    g = torch.randn(B * d + 1, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(K @ newton.solve(g), g, rtol=1e-7, atol=1e-9)


def _assert_solves_the_newton_matrix(newton, X, SD, Hl, Bd, fit_bias, gen):
    """``newton.solve(g)`` against the explicit matrix ``Jᵀ H J + blkdiag(Bd)`` (one
    output; the bias column last when it is fitted)."""
    n, d = X.shape
    B = SD.shape[1]
    J = (SD[:, :, None] * X[:, None, :]).reshape(n, B * d)
    if fit_bias:
        J = torch.cat([J, torch.ones(n, 1, dtype=torch.float64)], 1)
    K = J.T @ (Hl[:, 0, 0, None] * J)
    K[: B * d, : B * d] += torch.block_diag(*Bd)
    g = torch.randn(K.shape[0], generator=gen, dtype=torch.float64)
    x = newton.solve(g)
    torch.testing.assert_close(K @ x, g, rtol=1e-7, atol=1e-8 * float(K.abs().max()))


@pytest.mark.parametrize("precision",
                         ["float64", "single", "single-ill", "single-forced", "float64-ill"])
@pytest.mark.parametrize("keep", ["all", "unpaired"])
@pytest.mark.parametrize("fit_bias", [False, True])
def test_relu_woodbury_step_solves_the_system(monkeypatch, keep, fit_bias, precision):
    """The ReLU Woodbury solve (blocks on one pattern share a capacitance term) equals a
    dense solve of the same Newton matrix, also when some patterns carry one block, and
    with the capacitance formed in single precision (solves refined by conjugate gradients,
    which carry a capacitance of condition ~1e7; where refinement cannot reach its
    residual — forced here — the capacitance is rebuilt in float64)."""
    if precision.startswith("single"):
        monkeypatch.setattr(pd_mod, "_SINGLE_CAPACITANCE_FLOPS", 0)
    if precision == "single-forced":
        monkeypatch.setattr(pd_mod, "_REFINE_ACCEPT", 0.0)
    prob = _program(5, n=25, d=3, p=30, relu=True, fit_bias=fit_bias, loss="logistic")
    if keep == "unpaired":  # drop the v block of every third pattern
        p = prob.op.p // 2
        idx = torch.tensor([j for j in range(2 * p) if not (j >= p and (j - p) % 3 == 0)])
        op = PatternOperator(prob.op.X, prob.op.D[:, idx] > 0, prob.op.sign[idx], 1)
        prob = ConvexProblem(op, prob.Y, prob.loss, prob.penalty, fit_bias, True,
                                    prob.gates[idx])
    X, SD, B, d = prob.op.X, prob.op.SD, prob.op.p, 3
    gen = torch.Generator().manual_seed(1)
    R = torch.randn(B, d, d, generator=gen, dtype=torch.float64)
    Bd = R @ R.transpose(1, 2) + 0.1 * torch.eye(d, dtype=torch.float64)
    Bd[::4] *= 1e4  # blocks of very different curvature, as near the cones' boundary
    Z = torch.randn(25, 1, generator=gen, dtype=torch.float64)
    Hl = prob.loss.hessian(Z, prob.Y)
    if precision.endswith("ill"):  # a loss curvature that puts cond(C) near 1e7
        Hl = Hl * 1e6
    gram: dict = {}
    newton = pd_mod._Newton(prob, X, SD, Hl, Bd, gram)
    assert newton.mode == "woodbury"
    # single precision unless float64 asked for, or already rebuilt (the bias's Schur
    # complement solves once at construction)
    assert (newton.single or "capacitance64" in gram) == precision.startswith("single")
    _assert_solves_the_newton_matrix(newton, X, SD, Hl, Bd, fit_bias, gen)
    # rebuilt in float64 when single precision could not reach the residual (forced; the
    # ill-conditioned case may or may not need it)
    if precision != "single-ill":
        assert gram.get("capacitance64", False) == (precision == "single-forced")


@pytest.mark.parametrize(("fit_bias", "lam"), [(False, 1e-5), (True, 1e-4)])
def test_relu_woodbury_solves_stay_accurate_along_a_degenerate_path(monkeypatch, fit_bias,
                                                                   lam):
    """Many more blocks than rows (n = 30, 200 patterns, small λ): along the path the
    blocks' curvatures spread over 20 orders of magnitude and the exact float64 Woodbury
    solve alone left relative residuals of 1e-4 to inf (here, with the bias, its Schur
    complement came out negative and the bias step overflowed; on KEEL banana the line
    searches failed and the interior points stopped after a few steps). The solves are
    checked and refined against the exact matrix (with the bias, as a whole): every step
    whose decrement is above 1e-9 F solves its system to 1e-7 (the last steps', ~1e-11 F
    and less, have systems of condition ~1e15 and directions that no longer matter; an
    overflowed step — decrement inf or nan — counts), and the method converges to CVXPY's
    optimum (without the refinement, at λ = 1e-5, it ran its 200 steps unconverged)."""
    prob = _program(3, n=30, d=3, p=200, relu=True, fit_bias=fit_bias, lam=lam)
    solve = pd_mod._Newton.solve
    records: list[tuple[float, float]] = []

    def checked(self, g):  # K x formed here from Bd, the rows and the bias
        x = solve(self, g)
        assert self.mode == "woodbury"
        xw = x[: self.B * self.e].reshape(self.B, self.e)
        rows = self.sq * ((self.X @ xw[:, : self.d].T) * self.SD).sum(1)  # √h ∘ J x
        Kx = (self.Bd @ xw[:, :, None])[:, :, 0]
        Kx[:, : self.d] += (self.SD * (self.sq * rows)[:, None]).T @ self.X
        Kx = Kx.reshape(-1)
        if self.fb:
            Kx = torch.cat([Kx + float(x[-1]) * self.kwb.reshape(-1), Kx.new_tensor(
                [float((self.kwb * xw).sum()) + float(self.h.sum()) * float(x[-1])])])
        records.append((float(torch.linalg.vector_norm(Kx - g) / torch.linalg.vector_norm(g)),
                        float(g @ x)))
        return x

    monkeypatch.setattr(pd_mod._Newton, "solve", checked)
    res = primal_dual(prob, tol=1e-10, max_iter=200)
    F = prob.objective(res.W, res.b)
    moving = [r for r, dec in records if not dec <= 1e-9 * F]
    assert len(moving) >= 20
    assert max(moving) <= 1e-7
    assert res.converged
    ref = cvxpy_reference(prob).extra["value"]
    assert abs(F - ref) <= 1e-6 * abs(ref)


def _dense_logistic_step(monkeypatch, fit_bias, seed):
    """A logistic ReLU program (n = 60, d = 3, 40 blocks) forced into the dense Newton
    mode, with random block curvatures ``Bd`` and the loss Hessian at random outputs:
    ``(prob, X, SD, Bd, Hl, gen)``."""
    monkeypatch.setattr(pd_mod, "newton_cost", lambda n, c, p, d, **k: (0.0, "dense"))
    prob = _program(4, n=60, d=3, p=20, relu=True, fit_bias=fit_bias, loss="logistic")
    X, SD, B, d = prob.op.X, prob.op.SD, prob.op.p, 3
    gen = torch.Generator().manual_seed(seed)
    R = torch.randn(B, d, d, generator=gen, dtype=torch.float64)
    Bd = R @ R.transpose(1, 2) + 1e-3 * torch.eye(d, dtype=torch.float64)
    Hl = prob.loss.hessian(torch.randn(60, 1, generator=gen, dtype=torch.float64), prob.Y)
    return prob, X, SD, Bd, Hl, gen


@pytest.mark.parametrize("precision", ["float64", "single", "single-ill", "single-forced"])
@pytest.mark.parametrize("fit_bias", [False, True])
def test_dense_logistic_step_solves_the_system(monkeypatch, fit_bias, precision):
    """The dense Newton solve (logistic loss: Jᵀ H J formed every step) equals a solve of
    the explicit matrix, also with Jᵀ H J in single precision (solves refined by conjugate
    gradients; rebuilt in float64 when refinement cannot get there — forced here)."""
    if precision.startswith("single"):
        monkeypatch.setattr(pd_mod, "_SINGLE_CAPACITANCE_FLOPS", 0)
    if precision == "single-forced":
        monkeypatch.setattr(pd_mod, "_REFINE_ACCEPT", 0.0)
    prob, X, SD, Bd, Hl, gen = _dense_logistic_step(monkeypatch, fit_bias, 2)
    if precision == "single-ill":
        Hl = Hl * 1e6  # the loss part dwarfs the blocks: cond(K) ~ 1e9
    gram: dict = {}
    newton = pd_mod._Newton(prob, X, SD, Hl, Bd, gram)
    assert newton.mode == "dense"
    _assert_solves_the_newton_matrix(newton, X, SD, Hl, Bd, fit_bias, gen)
    assert ("dense64" in gram) == (precision == "single-forced")


@pytest.mark.parametrize("change", [1.3, 100.0])
def test_dense_logistic_step_with_an_earlier_steps_loss_hessian(monkeypatch, change):
    """A later step keeps the first step's single-precision Jᵀ H J in its factor and
    still solves its own exact matrix (conjugate gradients); a loss Hessian that moved
    too far for that (×100 on some rows: more rounds than allowed, here 2) gets Jᵀ H J
    formed afresh within the solve."""
    monkeypatch.setattr(pd_mod, "_SINGLE_CAPACITANCE_FLOPS", 0)
    if change > 10:
        monkeypatch.setattr(pd_mod, "_STALE_MAX_ROUNDS", 2)
    prob, X, SD, Bd, Hl, gen = _dense_logistic_step(monkeypatch, True, 3)
    gram: dict = {}
    first = pd_mod._Newton(prob, X, SD, Hl, Bd, gram)
    _assert_solves_the_newton_matrix(first, X, SD, Hl, Bd, True, gen)
    assert not first.stale
    kept = gram["loss_gram"][1]
    scale = torch.ones_like(Hl)
    scale[::3] = change
    Hl2, Bd2 = Hl * scale, Bd * 1.5
    later = pd_mod._Newton(prob, X, SD, Hl2, Bd2, gram)
    assert later.stale and later.single
    _assert_solves_the_newton_matrix(later, X, SD, Hl2, Bd2, True, gen)
    assert "dense64" not in gram
    assert (gram["loss_gram"][1] is kept) == (change < 10), later.refine_rounds
    assert not gram["loss_gram_refresh"]  # the next step keeps the one it now holds


@pytest.mark.parametrize("m", [129, 300, 1000])  # above the 128-row tile: recursion
def test_symmetric_gram_equals_the_plain_product(m):
    gen = torch.Generator().manual_seed(m)
    V = torch.randn(m, 50, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(pd_mod.symmetric_gram(V), V @ V.T, rtol=1e-12, atol=1e-12)


def test_warm_start_with_multipliers_reaches_the_same_optimum():
    prob = _program(2)
    cold = primal_dual(prob, tol=1e-9)
    warm = primal_dual(prob, cold.W, cold.b, cold.extra["mu"], tol=1e-9)
    a, b = prob.objective(cold.W, cold.b), prob.objective(warm.W, warm.b)
    assert abs(a - b) <= 1e-7 * abs(a)
    assert warm.n_iter <= cold.n_iter


@pytest.mark.parametrize("fit_bias", [False, True])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("kept", ["half", "most"])
def test_restart_from_a_path_point_of_a_smaller_program(loss, fit_bias, kept):
    """A solve over some blocks keeps points of its path (one per level it passed); the
    program over all blocks, started from any of them (laid out over all blocks, the
    others at zero), reaches the optimum of a cold solve; from the one that
    ``path_level`` picks by the gap of the smaller solution, in fewer Newton steps."""
    from convexnn.solvers._working_set import _path_start, path_level, restrict

    prob = _program(3, n=50, p=16, loss=loss, fit_bias=fit_bias, lam=0.005)
    P = prob.op.p
    some = torch.arange(0, P, 2) if kept == "half" else torch.tensor(
        [j for j in range(P) if j % 16])
    part = primal_dual(restrict(prob, some), tol=1e-9)
    points = part.extra["path_points"]
    assert set(points) == set(pd_mod.PATH_POINT_LEVELS)
    nus = [points[lv][3] for lv in sorted(points, reverse=True)]
    assert nus == sorted(nus, reverse=True)  # later levels, smaller barrier weights
    W = torch.zeros(prob.op.c, P, 3, dtype=torch.float64)
    W[:, some] = part.W
    mu = torch.zeros(50, prob.op.c, P, dtype=torch.float64)
    mu[:, :, some] = part.extra["mu"]
    F = prob.objective(W, part.b)
    _, lb = block_scores(prob, prob.op.matvec(W) + part.b, mu, 50)
    cold = primal_dual(prob, tol=1e-9)
    ref = prob.objective(cold.W, cold.b)
    steps = {}
    for level, point in points.items():
        warm = primal_dual(prob, tol=1e-9, start=_path_start((*point, some), torch.arange(P), P))
        assert prob.objective(warm.W, warm.b) == pytest.approx(ref, rel=1e-7), level
        assert warm.extra["violation"] <= 1e-8
        steps[level] = warm.n_iter
    # with half of the blocks missing the picked restart can take as long as a cold solve
    # (logistic, with a bias: 63 steps each), never longer; with most of them, fewer
    picked = steps[path_level(points, (F - lb) / F)]
    assert picked <= cold.n_iter if kept == "half" else picked < 0.8 * cold.n_iter, steps


def test_a_failed_restart_from_a_path_point_is_solved_again_cold(monkeypatch):
    """``_inner``: an interior-point solve started from a path point that ends
    unconverged is solved again without it, and the converged solve is returned."""
    import convexnn.training as tr

    prob = _program(4, n=40, p=10)
    calls = []
    real = tr.primal_dual

    def flaky(sub, *a, start=None, **kw):
        calls.append(start is not None)
        if start is not None:  # as a restart whose first steps were cut short
            return real(sub, *a, **dict(kw, max_iter=2))
        return real(sub, *a, **kw)

    monkeypatch.setattr(tr, "primal_dual", flaky)
    first = real(prob, tol=1e-9)
    start = (*first.extra["path_points"][1e-2],)
    res = tr._inner(prob, first.W, first.b, first.extra["mu"], tol=1e-8, max_iter=300,
                    start=start)
    assert calls == [True, False]
    assert res.converged
    assert prob.objective(res.W, res.b) == pytest.approx(prob.objective(first.W, first.b),
                                                         rel=1e-7)


@pytest.mark.parametrize("nu", [1e-2, 1e-6])
def test_smoothed_norm_gradient_and_limit(nu):
    lam = 0.3
    w = torch.tensor([[0.4, -1.2, 0.5]], dtype=torch.float64, requires_grad=True)
    val, ts, _ = _smoothed_norm(w, lam, nu)
    (g,) = torch.autograd.grad(val.sum(), w)
    torch.testing.assert_close(g, lam * w.detach() / ts[:, None].detach())
    # t* solves min_t λt − ν log(t² − ‖w‖²): stationarity λ = 2νt/(t² − ‖w‖²)
    wn2 = float((w.detach() ** 2).sum())
    t = float(ts.detach())
    assert abs(lam - 2 * nu * t / (t * t - wn2)) <= 1e-9
    # ψ_ν → λ‖w‖ as ν → 0 (up to ν log ν terms)
    assert abs(t - wn2**0.5) <= 2 * nu / lam + 1e-12


def test_relu_needs_interior_gates():
    prob = _program(3)
    prob.gates = None
    with pytest.raises(ValueError, match="interior"):
        primal_dual(prob, interior=None)


@pytest.mark.parametrize("weighted", [False, True])
def test_design_gram_by_row_chunks_matches_the_explicit_design(weighted, monkeypatch):
    g = torch.Generator().manual_seed(7)
    X = torch.randn(50, 3, generator=g, dtype=torch.float64)
    SD = (torch.rand(50, 4, generator=g) > 0.5).double() * torch.tensor([1.0, -1, 1, -1])
    h = torch.rand(50, generator=g, dtype=torch.float64) if weighted else None
    J = (SD[:, :, None] * X[:, None, :]).reshape(50, 12)
    ref = (J if h is None else J * h[:, None]).T @ J
    monkeypatch.setattr(pd_mod, "_OUTER_CHUNK_ENTRIES", 12 * 7)  # chunks of 7 rows
    assert torch.allclose(pd_mod._design_gram(X, SD, h), ref, atol=1e-12)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("fit_bias", [False, True])
def test_cone_bounds_stop_early_without_changing_the_certificate(monkeypatch, loss, fit_bias):
    """The cone iterations stop once no block can move the bound or the violators: the
    lower bound is the one that every iteration would give, and fewer are run. Here
    λ is just above λ_max, where the zero network is optimal and every block's cone
    bound falls below λ within the iterations."""
    from convexnn import certificates
    from convexnn.certificates import dual_bound
    from convexnn.solvers import _working_set as ws_mod

    prob = _program(4, loss=loss, fit_bias=fit_bias)
    Wz, bz = prob.zeros()
    Z0 = prob.op.matvec(Wz) + bz
    scores, _ = ws_mod.block_scores(prob, Z0, None, 200)
    prob = _program(4, loss=loss, fit_bias=fit_bias, lam=1.02 * float(scores.max()))
    res = primal_dual(prob, tol=1e-9, max_iter=300)
    Z = prob.op.matvec(res.W) + res.b
    mu = res.extra.get("mu")
    calls = {"n": 0}
    original = certificates._cone_block_bounds

    def counting(op, G, mu_, iters, enough=0.0):  # the adjoint applications it counts
        before = op.n_rmatvec
        try:
            return original(op, G, mu_, iters, enough)
        finally:
            calls["n"] += op.n_rmatvec - before

    def full(op, G, mu_, iters, enough=0.0):
        return counting(op, G, mu_, iters, 0.0)

    kw = dict(fit_bias=fit_bias, constrained=True, mu=mu, cone_iters=50)
    monkeypatch.setattr(certificates, "_cone_block_bounds", counting)
    monkeypatch.setattr(ws_mod, "_cone_block_bounds", counting)
    lb_early = dual_bound(prob.loss, prob.Y, Z, prob.op, prob.lam, **kw).lower_bound
    s_early, lbw_early = ws_mod.block_scores(prob, Z, mu, 50, tol=1e-6)
    n_early = calls["n"]
    calls["n"] = 0
    monkeypatch.setattr(certificates, "_cone_block_bounds", full)
    monkeypatch.setattr(ws_mod, "_cone_block_bounds", full)
    lb_full = dual_bound(prob.loss, prob.Y, Z, prob.op, prob.lam, **kw).lower_bound
    s_full, lbw_full = ws_mod.block_scores(prob, Z, mu, 50)
    assert n_early < calls["n"]
    assert lb_early == pytest.approx(lb_full, rel=1e-10, abs=1e-14)
    assert lbw_early == pytest.approx(lbw_full, rel=1e-10, abs=1e-14)
    # the violation test sees the same blocks above λ(1 + 0.1 tol)
    thr = prob.lam * (1 + 1e-7)
    assert torch.equal(s_early.max(0).values > thr, s_full.max(0).values > thr)


@pytest.mark.parametrize("fit_bias", [False, True])
def test_dual_excess_refines_poor_multipliers_of_the_exceeding_patterns(fit_bias):
    """The polish's retry test: with the multipliers thrown away (z = 0) the dual point
    exceeds the bound; the refinement's cone iterations bring it back to what the
    solver's own multipliers give, and never above the unrefined value."""
    prob = _program(3, fit_bias=fit_bias)
    res = primal_dual(prob, tol=1e-10, max_iter=300)
    X = prob.op.X.double()
    SD, S = prob.op.SD.double(), 2 * prob.op.D.double() - 1
    W, b, z = res.W.double(), res.b.double(), res.extra["mu"].double()
    own = pd_mod._dual_excess(prob, X, SD, S, W, b, z)
    assert own <= 1e-6
    z0 = torch.zeros_like(z)
    raw = pd_mod._dual_excess(prob, X, SD, S, W, b, z0)
    assert raw > 1e-3  # the cones matter here
    refined = pd_mod._dual_excess(prob, X, SD, S, W, b, z0, refine_iters=2000)
    assert refined <= raw
    # the exact value: per block, min over μ ≥ 0 of ‖G_j − C_jᵀ μ‖ (non-negative least
    # squares); the refinement is an upper bound on it (valid multipliers), and close
    from scipy.optimize import nnls

    Z = (torch.einsum("nd,cpd->ncp", X, W) * SD[:, None, :]).sum(-1) + b
    V = prob.loss.grad(Z, prob.Y.double())
    if fit_bias:
        V = prob.loss.center(V, prob.Y.double())
    G = torch.einsum("nc,np,nd->cpd", V, SD, X)
    exact = max(nnls((S[:, j:j + 1] * X).T.numpy(), G[0, j].numpy())[1]
                for j in range(G.shape[1])) / prob.lam - 1.0
    assert exact - 1e-9 <= refined <= exact + 1e-4


def _failing_newton(monkeypatch, fail: Callable[[int], bool]) -> dict:
    """Patch the Newton factorization to raise LinAlgError on the calls ``fail`` picks."""
    real = pd_mod._Newton
    calls = {"n": 0}

    def failing(*a, **k):
        calls["n"] += 1
        if fail(calls["n"]):
            raise torch.linalg.LinAlgError("linalg.cholesky: not positive-definite")
        return real(*a, **k)

    monkeypatch.setattr(pd_mod, "_Newton", failing)
    return calls


@pytest.mark.parametrize("fail_at", [1, 6])
def test_unfactorable_newton_system_stops_at_a_feasible_iterate(monkeypatch, fail_at):
    # a Cholesky factor that loses definiteness (round-off late on the path) must not
    # escape as an exception: the solve stops, unconverged, at its strictly feasible iterate
    prob = _program(3, n=30, d=3, p=40)
    ref = primal_dual(prob, tol=1e-9)
    calls = _failing_newton(monkeypatch, lambda k: k >= fail_at)
    res = primal_dual(prob, tol=1e-9)
    assert calls["n"] == fail_at
    assert not res.converged
    assert res.extra["violation"] <= 1e-12
    obj = prob.objective(res.W, res.b)
    assert np.isfinite(obj)
    assert ref.converged and prob.objective(ref.W, ref.b) <= obj


def test_fit_survives_an_unfactorable_newton_system(monkeypatch):
    import warnings

    from convexnn import ConvexReLURegressor

    calls = _failing_newton(monkeypatch, lambda k: k == 4)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = np.sin(2 * X[:, 0]) + 0.3 * X[:, 1]
    est = ConvexReLURegressor(lam=1e-2, patterns=20, seed_runs=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    assert calls["n"] > 4  # the fit went on after the failed step
    cert = est.certificate_
    assert np.isfinite(est.objective_) and cert.lower_bound <= est.objective_ + 1e-12
    assert cert.max_violation <= 1e-8
