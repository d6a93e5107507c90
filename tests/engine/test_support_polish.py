"""Support polishing of interior-point solutions (ReLU programs): the polished point is
the program's optimum (CVXPY oracle), satisfies the KKT conditions of its face to machine
precision, and certifies itself; plus the weighted block Gram products of the Newton step."""

import warnings

import numpy as np
import pytest
import torch

from convexnn import ConvexReLURegressor
from convexnn.exceptions import ConvergenceWarning
from convexnn.losses import LogisticLoss, SquaredLoss
from convexnn.patterns import sample_patterns
from convexnn.solvers import _primal_dual as pd_mod
from convexnn.solvers import cvxpy_reference
from convexnn.solvers._primal_dual import primal_dual, weighted_block_grams
from convexnn.solvers._support_polish import polish_support
from convexnn.solvers._working_set import block_scores
from convexnn.training import _problem

cp = pytest.importorskip("cvxpy")


def _teacher(seed, n=200, d=5, k=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, k)) / np.sqrt(d)
    y = np.maximum(X @ W, 0) @ rng.choice([-1.0, 1.0], k) + 0.1 * rng.standard_normal(n)
    return X, y


def _program(seed, *, loss="squared", fit_bias=False, p=15, lam=1e-3):
    X, y = _teacher(seed)
    Xt = torch.as_tensor(X)
    yt = torch.as_tensor(y)
    if loss == "logistic":
        yt = torch.where(yt > yt.median(), 1.0, -1.0).double()
    ps = sample_patterns(Xt, p, generator=torch.Generator().manual_seed(seed))
    L = SquaredLoss() if loss == "squared" else LogisticLoss()
    return _problem(Xt, ps, yt[:, None], L, lam, relu=True, fit_bias=fit_bias)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("fit_bias", [False, True])
def test_polished_solution_is_the_optimum_and_certifies_itself(loss, fit_bias, seed):
    prob = _program(seed, loss=loss, fit_bias=fit_bias)
    res = primal_dual(prob, tol=1e-9, max_iter=300)
    assert res.extra["polished"], "the face of this solution was not found"
    ref = cvxpy_reference(prob).extra["value"]
    obj = prob.objective(res.W, res.b)
    # never above CVXPY's optimum; below it only by CVXPY's own inaccuracy
    assert obj <= ref + 1e-9 * abs(ref)
    assert obj >= ref - 1e-6 * abs(ref)
    assert res.extra["violation"] <= 1e-12
    Z = prob.op.matvec(res.W) + res.b
    _, lb = block_scores(prob, Z, res.extra["mu"], 200)
    assert lb <= ref * (1 + 1e-9) + 1e-12
    assert obj - lb <= 1e-10 * abs(obj)  # an interior point alone certifies ~1e-6 here


def test_polish_satisfies_the_face_kkt_conditions():
    prob = _program(3)
    op = prob.op
    res = primal_dual(prob, tol=1e-9, max_iter=300)
    assert res.extra["polished"]
    W, z, lam = res.W, res.extra["mu"], prob.lam
    Z = op.matvec(W) + res.b
    V = prob.loss.grad(Z, prob.Y)
    G = op.rmatvec(V) - op.cone_rmatvec(z)  # (Aᵀ V)_j − C_jᵀ z_j
    norms = torch.linalg.vector_norm(W, dim=-1)
    active = norms > 0
    assert bool(active.any()) and bool((~active).any())
    # stationarity of the active blocks: (AᵀV)_j − C_jᵀ z_j = −λ w_j/‖w_j‖
    unit = W[active] / norms[active][:, None]
    assert torch.allclose(G[active], -lam * unit, atol=1e-10 * lam, rtol=0)
    r = op.cone_matvec(W)
    assert float(r.min()) >= -1e-12
    assert float(z.min()) >= 0
    # complementarity on the active blocks: multipliers only on tight rows
    zr = (z * r)[:, active]
    assert float(zr.abs().max()) <= 1e-12


def test_polish_declines_a_zero_solution():
    prob = _program(0)
    op = prob.op
    X = op.X.double()
    W = torch.zeros(op.shape_in, dtype=torch.float64)
    z = torch.ones(X.shape[0], op.c, op.p, dtype=torch.float64)
    out = polish_support(prob.loss, X, op.SD, 2 * op.D - 1, prob.Y, prob.lam, W,
                         torch.zeros(1, dtype=torch.float64), z, fit_bias=False)
    assert out is None


def test_estimator_certifies_a_sampled_relu_program_to_machine_precision():
    X, y = _teacher(1, n=400, d=8)
    est = ConvexReLURegressor(lam=1e-3, patterns=30, fit_intercept=False, grow=False,
                              random_state=0, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
    assert est.certificate_.rel_gap <= 1e-10
    assert est.certificate_.max_violation <= 1e-12


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("chunked", [False, True])
def test_weighted_block_grams_match_their_definition(monkeypatch, dtype, chunked):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(300, 6, generator=g, dtype=dtype)
    w = torch.rand(300, 7, generator=g, dtype=dtype)
    if chunked:  # the outer products are formed by row chunks
        monkeypatch.setattr(pd_mod, "_OUTER_MAX_ENTRIES", 0)
        monkeypatch.setattr(pd_mod, "_OUTER_CHUNK_ENTRIES", 200)
    cache: dict = {}
    got = weighted_block_grams(X, w, cache)
    ref = torch.stack([X.T @ (w[:, b, None] * X) for b in range(7)])
    tol = 1e-4 if dtype == torch.float32 else 1e-12
    assert torch.allclose(got, ref, rtol=tol, atol=tol * float(ref.abs().max()))
    assert ("outer" in cache) is not chunked


@pytest.mark.parametrize("error", ["missing", "extra"])
def test_polish_corrects_a_wrong_guess_of_the_face(monkeypatch, error):
    """The guess of the largest block's face misses one tight row, or holds one slack row
    too many: the active-set corrections must find the true face again."""
    from convexnn.solvers import _support_polish as sp

    prob = _program(2, p=10)
    op = prob.op
    res = primal_dual(prob, tol=1e-9, max_iter=300)
    assert res.extra["polished"]
    W, b = res.W, res.b
    opt = prob.objective(W, b)
    r = op.cone_matvec(W)
    norms = torch.linalg.vector_norm(W, dim=-1)
    scale = float(r.abs().max())
    big = divmod(int(torch.argmax(norms)), norms.shape[1])
    guess = {}
    for a, j in (norms > 0).nonzero().tolist():
        rows = torch.argsort(r[:, a, j])
        tight = rows[r[rows, a, j] <= 1e-10 * scale]
        guess[(a, j)] = tight
        if (a, j) == big:
            slack = rows[r[rows, a, j] > 1e-10 * scale]
            assert tight.numel() >= 1
            guess[(a, j)] = tight[1:] if error == "missing" else torch.cat([tight, slack[:1]])
    calls = iter(list(guess.values()))
    monkeypatch.setattr(sp, "_tight_rows", lambda r, z, d: next(calls))
    out = polish_support(prob.loss, op.X.double(), op.SD.double(), 2 * op.D.double() - 1,
                         prob.Y, prob.lam, W, b, res.extra["mu"], fit_bias=False)
    assert out is not None
    assert out.rounds >= 2  # a correction was needed
    assert abs(prob.objective(out.W, out.b) - opt) <= 1e-12 * abs(opt)
    assert out.violation <= 1e-12


def _replay(rows: list):
    """A stand-in for ``_tight_rows`` returning the given guesses in order."""
    it = iter(list(rows))
    return lambda r, z, d: next(it)


def test_polish_gives_up_when_its_work_budget_is_spent(monkeypatch):
    """A face needing correction rounds: with no budget after the first round the polish
    returns None (the caller keeps the interior point), with the default it succeeds; with
    a budget below one Newton step on the guessed face it gives up before building it."""
    from convexnn.solvers import _support_polish as sp

    prob = _program(2, p=10)
    op = prob.op
    res = primal_dual(prob, tol=1e-9, max_iter=300)
    W, b, mu = res.W, res.b, res.extra["mu"]
    r = op.cone_matvec(W)
    norms = torch.linalg.vector_norm(W, dim=-1)
    scale = float(r.abs().max())
    guess = []
    for a, j in (norms > 0).nonzero().tolist():
        rows = torch.argsort(r[:, a, j])
        guess.append(rows[r[rows, a, j] <= 1e-10 * scale][1:])  # one tight row missing
    args = (prob.loss, op.X.double(), op.SD.double(), 2 * op.D.double() - 1, prob.Y,
            prob.lam, W, b, mu)
    monkeypatch.setattr(sp, "_tight_rows", _replay(guess))
    full = polish_support(*args, fit_bias=False)
    assert full is not None and full.rounds >= 2
    # enough for one round's first step (m³/3 + n m² on the guessed face), not for more
    n, d = op.X.shape
    m0 = sum(d - int(g.numel()) for g in guess)
    rounds: list[int] = []
    solve = sp._Face.solve
    monkeypatch.setattr(sp._Face, "solve", lambda self, *a, **k: (rounds.append(1),
                                                                  solve(self, *a, **k))[1])
    monkeypatch.setattr(sp, "_tight_rows", _replay(guess))
    assert polish_support(*args, fit_bias=False,
                          work_budget=1.0001 * (m0**3 / 3 + n * m0 * m0)) is None
    assert len(rounds) == 1
    with monkeypatch.context() as m:  # below one step: no face is built
        m.setattr(sp, "_Face", None)
        m.setattr(sp, "_tight_rows", _replay(guess))
        assert polish_support(*args, fit_bias=False,
                              work_budget=0.9999 * (m0**3 / 3 + n * m0 * m0)) is None
    # the interior-point methods pass a budget proportional to their own Newton work:
    # a zero budget keeps the interior point (not polished), with its certificate
    monkeypatch.setattr(pd_mod, "_POLISH_MIN_FLOPS", 0.0)
    monkeypatch.setattr(pd_mod, "_POLISH_WORK_FACTOR", 0.0)
    monkeypatch.setattr(sp, "_tight_rows", _replay(guess))
    kept = primal_dual(prob, tol=1e-9, max_iter=300)
    assert not kept.extra["polished"]
    assert kept.extra["violation"] <= 1e-8
    opt = prob.objective(W, b)
    assert abs(prob.objective(kept.W, kept.b) - opt) <= 1e-6 * abs(opt)


def test_polish_if_skips_the_polish_and_sees_the_interior_point(seed):
    """``polish_if`` is asked on the unpolished interior point; False keeps that point."""
    prob = _program(seed)
    seen = []

    def never(W, b, z):
        seen.append((W.shape, z.shape))
        return False

    skipped = primal_dual(prob, tol=1e-9, max_iter=300, polish_if=never)
    assert len(seen) == 1
    assert seen[0] == ((1, prob.op.p, prob.op.X.shape[1]), (prob.op.X.shape[0], 1, prob.op.p))
    assert not skipped.extra["polished"]
    assert skipped.extra["violation"] <= 1e-8
    done = primal_dual(prob, tol=1e-9, max_iter=300, polish_if=lambda W, b, z: True)
    assert done.extra["polished"]
    opt = prob.objective(done.W, done.b)
    assert abs(prob.objective(skipped.W, skipped.b) - opt) <= 1e-6 * abs(opt)


def test_final_round_detects_violating_blocks_outside_the_working_set(seed):
    from convexnn.solvers._working_set import _final_round, restrict

    prob = _program(seed, p=20)
    full = primal_dual(prob, tol=1e-9, max_iter=300)
    active = (torch.linalg.vector_norm(full.W, dim=-1) > 0).any(dim=0)
    ws_all = torch.arange(prob.op.p)
    # the optimum over every block leaves nothing violating outside (nothing is outside)
    assert _final_round(prob, ws_all, 1e-6, full.W.double(), full.b.double(),
                        full.extra["mu"].double())
    # drop an active block: the restricted optimum leaves that block violating
    drop = int(torch.nonzero(active)[0])
    ws = ws_all[ws_all != drop]
    sub = primal_dual(restrict(prob, ws), tol=1e-9, max_iter=300)
    assert prob.objective(full.W, full.b) < prob.objective(
        *_embed(prob, ws, sub.W, sub.b)) - 1e-9
    assert not _final_round(prob, ws, 1e-6, sub.W.double(), sub.b.double(),
                            sub.extra["mu"].double())


def _embed(prob, ws, W_ws, b):
    W = torch.zeros(prob.op.c, prob.op.p, prob.op.X.shape[1], dtype=W_ws.dtype)
    W[:, ws] = W_ws
    return W, b


def test_working_set_defers_the_polish_to_the_last_round(seed):
    """A ReLU fit from a small working set polishes only rounds without violators, and
    ends at the same optimum as a solve over every block."""
    from functools import partial

    from convexnn.solvers._working_set import working_set_solve
    from convexnn.training import _inner

    prob = _program(seed, p=20)
    calls = []

    def inner(sub, W0, b0, mu0, *, tol, max_iter, polish_if=None, **kw):
        def spy(W, b, z):
            calls.append(polish_if(W, b, z))
            return calls[-1]
        return partial(_inner, polish_if=spy if polish_if else None)(
            sub, W0, b0, mu0, tol=tol, max_iter=max_iter, **kw)

    res = working_set_solve(prob, inner, tol=1e-8, initial_size=4, defer_polish=True)
    assert len(res.history) >= 2 and len(calls) == len(res.history)
    assert calls[-1] and not any(calls[:-1])
    ref = primal_dual(prob, tol=1e-9, max_iter=300)
    opt = prob.objective(ref.W, ref.b)
    assert abs(prob.objective(res.W, res.b) - opt) <= 1e-7 * abs(opt)
    assert res.extra["rel_gap"] <= 1e-8


@pytest.mark.parametrize("fraction,expect_all", [(0.0, True), (1.01, False)])
def test_working_set_takes_every_block_when_the_start_set_is_large(seed, fraction, expect_all):
    """``all_if_fraction``: a first round over every block when the active blocks and
    violators at the start reach that fraction of them; otherwise the set grows from
    ``initial_size`` blocks. Both end at the optimum over every block."""
    from convexnn.solvers._working_set import working_set_solve
    from convexnn.training import _inner

    prob = _program(seed, p=20)
    res = working_set_solve(prob, _inner, tol=1e-8, initial_size=4, all_if_fraction=fraction)
    first = res.history[0]["ws_size"]
    assert (first == prob.op.p) == expect_all
    if expect_all:
        assert len(res.history) == 1
    ref = primal_dual(prob, tol=1e-9, max_iter=300)
    opt = prob.objective(ref.W, ref.b)
    assert abs(prob.objective(res.W, res.b) - opt) <= 1e-7 * abs(opt)


def test_batched_null_bases_are_orthonormal_null_spaces():
    from convexnn.solvers._support_polish import _null_bases

    gen = torch.Generator().manual_seed(0)
    d = 5
    rows = [torch.randn(t, d, generator=gen, dtype=torch.float64) for t in (0, 1, 2, 2, 4, 1)]
    rows.append(torch.cat([rows[2], rows[2][:1] * 3.0]))  # rank 2 with three rows
    rows.append(torch.zeros(2, d, dtype=torch.float64))  # rank 0
    expect = [5, 4, 3, 3, 1, 4, 3, 5]
    bases = _null_bases(rows, d)
    for r, N, k in zip(rows, bases, expect):
        assert N.shape == (d, k)
        torch.testing.assert_close(N.T @ N, torch.eye(k, dtype=torch.float64), atol=1e-12,
                                   rtol=0)
        if r.shape[0]:
            assert float((r @ N).abs().max()) <= 1e-12 * max(1.0, float(r.abs().max()))


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_polish_drops_small_blocks_that_are_zero_on_the_face(loss):
    """An interior point whose inactive blocks are still small but not negligible (as
    after a loose interior-point solve): the polish drops them (their Newton step passes
    the origin) and ends at the optimum, without worsening the objective."""
    prob = _program(3, loss=loss)
    res = primal_dual(prob, tol=1e-9, max_iter=300)
    assert res.extra["polished"]
    W, b, z = res.W.clone(), res.b.clone(), res.extra["mu"].clone()
    norms = torch.linalg.vector_norm(W, dim=-1)[0]
    zero = (norms == 0).nonzero().flatten()[:6]
    assert zero.numel() >= 3
    G = prob.gates / torch.linalg.vector_norm(prob.gates, dim=1, keepdim=True)
    W[0, zero] = 3e-4 * float(norms.max()) * G[zero]  # inside their cones
    op = prob.op
    S = 2 * op.D - 1
    F_start = prob.objective(W, b)
    out = polish_support(prob.loss, op.X, op.SD, S, prob.Y, prob.lam, W, b, z,
                         fit_bias=False)
    assert out is not None
    assert out.objective <= prob.objective(res.W, res.b) * (1 + 1e-10)
    assert out.objective <= F_start
    assert bool((torch.linalg.vector_norm(out.W[0, zero], dim=-1) == 0).all())
    # they leave at once, not after a geometric shrink (squared: 42 Newton steps in all
    # against 75 when only negligible blocks leave; logistic: 22, against a polish that
    # ran out of its budget)
    assert out.newton_steps <= 50, out.newton_steps


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("seed_", [0, 1, 2, 3])
def test_polish_joins_rows_already_on_their_boundary_together(loss, seed_, monkeypatch):
    """Restarted from its own polished point plus a few small blocks, the polish meets
    rows that are tight with zero multipliers (not in its guess): many blocks' Newton
    steps are stopped at once. Each such block's steepest row joins in the same round, so
    the rounds stay few (one row per round took 22–43 rounds here and, with the logistic
    loss's 25 Newton steps, failed on seed 1), and null-space bases are recomputed only
    for the blocks whose rows changed."""
    import convexnn.solvers._support_polish as sp

    prob = _program(seed_, loss=loss)
    res = primal_dual(prob, tol=1e-9, max_iter=300)
    W, b, z = res.W.clone(), res.b.clone(), res.extra["mu"].clone()
    norms = torch.linalg.vector_norm(W, dim=-1)[0]
    zero = (norms == 0).nonzero().flatten()[:6]
    G = prob.gates / torch.linalg.vector_norm(prob.gates, dim=1, keepdim=True)
    W[0, zero] = 3e-4 * float(norms.max()) * G[zero]
    calls: list[int] = []
    orig = sp._null_bases
    monkeypatch.setattr(sp, "_null_bases", lambda rows, d: (calls.append(len(rows)),
                                                            orig(rows, d))[1])
    op = prob.op
    out = polish_support(prob.loss, op.X, op.SD, 2 * op.D - 1, prob.Y, prob.lam, W, b, z,
                         fit_bias=False)
    assert out is not None
    opt = prob.objective(res.W, res.b)
    assert out.objective <= opt * (1 + 1e-12)
    assert out.rounds <= 10, out.rounds
    assert calls[0] >= 15 and max(calls[1:]) < calls[0] and sum(calls[1:]) < 2 * calls[0]


@pytest.mark.parametrize("fit_bias", [False, True])
def test_face_design_is_the_design_times_the_null_space_bases(fit_bias):
    """``_face_design`` (the polish's face Hessian for a changing loss Hessian, one
    output: ``(J Tm)ᵀ H (J Tm)``) equals the full design times the block-diagonal map
    ``Tm`` of null-space bases of different sizes."""
    from convexnn.solvers._support_polish import _face_design, _null_bases

    gen = torch.Generator().manual_seed(4)
    n, d, A = 50, 5, 4
    Jf = torch.randn(n, A * d + int(fit_bias), generator=gen, dtype=torch.float64)
    rows = [torch.randn(t, d, generator=gen, dtype=torch.float64) for t in (0, 1, 3, 2)]
    bases = _null_bases(rows, d)
    Npad = torch.zeros(A, d, d, dtype=torch.float64)
    for k, N in enumerate(bases):
        Npad[k, :, : N.shape[1]] = N
    keep = torch.cat([torch.arange(k * d, k * d + N.shape[1]) for k, N in enumerate(bases)]
                     + ([torch.tensor([A * d])] if fit_bias else []))
    extra = [torch.ones(1, 1, dtype=torch.float64)] if fit_bias else []
    Tm = torch.block_diag(*bases, *extra)
    JT = _face_design(Jf, Npad, keep)
    assert JT.shape == (n, sum(N.shape[1] for N in bases) + int(fit_bias))
    torch.testing.assert_close(JT, Jf @ Tm, rtol=1e-12, atol=1e-12)
    h = torch.rand(n, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(JT.T @ (h[:, None] * JT), Tm.T @ (Jf.T @ (h[:, None] * Jf)) @ Tm,
                               rtol=1e-10, atol=1e-12)
