"""Ctrl-C keeps the best iterate: an interrupted interior point returns its current
(strictly feasible) iterate unpolished, an interrupted polish the interior point, and a
fit interrupted before its first round finishes returns the seeding network."""

import contextlib
import warnings

import numpy as np
import pytest
import torch

import convexnn.training as tr
from convexnn import ConvexReLURegressor
from convexnn.losses import SquaredLoss
from convexnn.patterns import sample_patterns
from convexnn.solvers import _primal_dual as pd_mod
from convexnn.solvers._primal_dual import primal_dual
from convexnn.training import _problem


@contextlib.contextmanager
def _no_escape():
    """A KeyboardInterrupt that escapes is a failure of this test (pytest would otherwise
    stop the whole session)."""
    try:
        yield
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt escaped")


def _program(seed=3, n=30, d=3, p=40, lam=0.01):
    rng = np.random.default_rng(seed)
    X = torch.as_tensor(rng.standard_normal((n, d)))
    y = torch.sin(2 * X[:, 0]) + 0.3 * X[:, 1]
    ps = sample_patterns(X, p, generator=torch.Generator().manual_seed(seed))
    return _problem(X, ps, y[:, None], SquaredLoss(), lam, relu=True, fit_bias=False)


def _interrupt_call(monkeypatch, owner, name: str, k: int) -> dict:
    """Make the ``k``-th call of ``owner.name`` raise KeyboardInterrupt (as Ctrl-C would);
    returns the call counter. Works for module functions, classes and methods alike."""
    real, calls = getattr(owner, name), {"n": 0}

    def wrapper(*a, **kw):
        calls["n"] += 1
        if calls["n"] == k:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def _interrupt_newton_at(monkeypatch, k: int) -> dict:
    return _interrupt_call(monkeypatch, pd_mod, "_Newton", k)


def test_interrupted_interior_point_returns_its_feasible_iterate(monkeypatch):
    prob = _program()
    _interrupt_newton_at(monkeypatch, 8)
    with _no_escape():
        res = primal_dual(prob, tol=1e-9)
    assert res.interrupted and not res.converged and res.n_iter == 8
    assert res.extra["violation"] <= 1e-12 and not res.extra["polished"]
    assert np.isfinite(prob.objective(res.W, res.b))
    assert res.extra["mu"].shape == (30, 1, prob.op.p)


def test_interrupted_polish_returns_the_interior_point(monkeypatch):
    prob = _program()
    done = primal_dual(prob, tol=1e-9)
    assert done.extra["polished"]

    def interrupt(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(pd_mod, "polish_support", interrupt)
    with _no_escape():
        res = primal_dual(prob, tol=1e-9)
    assert res.interrupted and not res.extra["polished"]
    assert res.extra["violation"] <= 1e-12
    # the unpolished interior point is close to, and never below, the polished optimum
    obj, ref = prob.objective(res.W, res.b), prob.objective(done.W, done.b)
    assert ref <= obj <= ref * (1 + 1e-5)


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 3))
    return X, np.sin(2 * X[:, 0]) + 0.3 * X[:, 1]


KW = dict(lam=1e-2, patterns=20, random_state=0, seed_runs=2, seed_epochs=300, seed_width=8)


def test_fit_interrupted_in_the_interior_point_returns_a_network(monkeypatch):
    X, y = _data()
    calls = _interrupt_newton_at(monkeypatch, 3)
    with _no_escape(), pytest.warns(RuntimeWarning, match="interrupted"):
        est = ConvexReLURegressor(**KW).fit(X, y)
    assert calls["n"] == 3  # nothing ran after the interrupt
    seed = next(h["primal"] for h in est.history_ if h.get("phase") == "seed")
    assert est.objective_ <= seed * (1 + 1e-12)  # never worse than the seed
    cert = est.certificate_
    assert cert.max_violation <= 1e-8 and cert.lower_bound <= est.objective_
    assert np.all(np.isfinite(est.predict(X)))


def test_fit_interrupted_before_its_first_round_returns_the_seed(monkeypatch):
    X, y = _data()

    def interrupt(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(tr, "working_set_solve", interrupt)
    with _no_escape(), pytest.warns(RuntimeWarning, match="interrupted"):
        est = ConvexReLURegressor(**KW).fit(X, y)
    seed = next(h["primal"] for h in est.history_ if h.get("phase") == "seed")
    # the seed's convex image (its neurons rebalanced): never worse, nearly the same
    assert 0.99 * seed <= est.objective_ <= seed * (1 + 1e-12)
    assert not any(h.get("phase") == "solve" for h in est.history_)
    assert est.certificate_.lower_bound <= est.objective_


def test_fit_interrupted_with_nothing_to_return_still_raises(monkeypatch):
    X, y = _data()

    def interrupt(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(tr, "working_set_solve", interrupt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(KeyboardInterrupt):
            ConvexReLURegressor(**dict(KW, seed_runs=0)).fit(X, y)


def test_interrupted_gated_interior_point_returns_its_best_iterate(monkeypatch):
    from convexnn import ConvexGatedReLURegressor
    from convexnn.solvers import _soc_interior as soc_mod

    calls = _interrupt_call(monkeypatch, soc_mod, "_Newton", 3)
    X, y = _data()
    with _no_escape(), pytest.warns(RuntimeWarning, match="interrupted"):
        est = ConvexGatedReLURegressor(lam=1e-2, patterns=20, seed_runs=0,
                                       random_state=0).fit(X, y)
    assert calls["n"] == 3  # no other solver ran after the interrupt
    assert np.isfinite(est.objective_) and est.certificate_.lower_bound <= est.objective_
    assert np.all(np.isfinite(est.predict(X)))


def _interrupt_al_gradient_at(monkeypatch, k: int) -> dict:
    from convexnn.solvers import _augmented_lagrangian as al_mod

    return _interrupt_call(monkeypatch, al_mod._AugmentedLagrangian, "grad", k)


@pytest.mark.parametrize("where", ["inner", "outer"])
def test_interrupted_augmented_lagrangian_returns_its_best_feasible_iterate(monkeypatch,
                                                                          where):
    from convexnn.solvers import _augmented_lagrangian as al_mod

    prob = _program()
    W0, b0 = prob.zeros()  # feasible: the zero network
    full = al_mod.augmented_lagrangian(prob, W0, b0, tol=1e-6, max_iter=4000)
    assert len(full.history) >= 3
    # the iterates in between violate the cones: returning one would be a wrong answer
    assert any(h["violation"] > full.extra["feas_tol"] for h in full.history[:2])
    if where == "inner":  # inside the second outer step's FISTA (which catches it)
        _interrupt_al_gradient_at(monkeypatch, full.history[0]["inner"] + 5)
    else:  # between inner solves, where no solver catches it
        _interrupt_call(monkeypatch, al_mod, "relative_gap", 2)
    with _no_escape():
        res = al_mod.augmented_lagrangian(prob, W0, b0, tol=1e-6, max_iter=4000)
    assert res.interrupted and not res.converged
    assert res.extra["violation"] <= res.extra["feas_tol"]
    viol = float(torch.clamp(-prob.op.cone_matvec(res.W), min=0).max())
    assert viol <= res.extra["feas_tol"]
    assert prob.objective(res.W, res.b) <= prob.objective(W0, b0) + 1e-15


def test_fit_interrupted_in_the_augmented_lagrangian_returns_a_feasible_network(monkeypatch):
    X, y = _data()
    # no interior point: every ReLU solve goes to the augmented Lagrangian
    monkeypatch.setattr(tr, "_ipm_budget", lambda gated: 0.0)
    calls = _interrupt_al_gradient_at(monkeypatch, 40)
    with _no_escape(), pytest.warns(RuntimeWarning, match="interrupted"):
        est = ConvexReLURegressor(**KW).fit(X, y)
    assert calls["n"] == 40
    seed = next(h["primal"] for h in est.history_ if h.get("phase") == "seed")
    assert est.objective_ <= seed * (1 + 1e-12)
    # what the solve reported is the feasible point returned, not an infeasible iterate
    # whose convex objective no network attains
    last = [h for h in est.history_ if h.get("phase") == "solve"][-1]
    assert last["violation"] <= 1e-8
    assert last["primal"] == pytest.approx(est.objective_, rel=1e-9)
    cert = est.certificate_
    assert cert.max_violation <= 1e-8 and cert.lower_bound <= est.objective_
    assert np.all(np.isfinite(est.predict(X)))


def test_interrupted_feasible_start_stops_the_solve(monkeypatch):
    from convexnn.solvers import SolverResult

    prob = _program()
    monkeypatch.setattr(tr, "_ipm_budget", lambda gated: 0.0)
    real, calls = tr.fista, {"n": 0}

    def fista(sub, W0, b0, **kw):  # FISTA caught a Ctrl-C: it says so in its result
        calls["n"] += 1
        r = real(sub, W0, b0, **dict(kw, max_iter=3))
        return SolverResult(r.W, r.b, r.n_iter, False, True)

    monkeypatch.setattr(tr, "fista", fista)
    W0, b0 = prob.zeros()
    with _no_escape():
        res = tr._inner(prob, W0, b0, None, tol=1e-6, max_iter=2000)
    assert calls["n"] == 1 and res.interrupted and res.n_iter == 0
    assert torch.equal(res.W, W0)  # the given (feasible) start, no augmented Lagrangian


def test_float32_augmented_lagrangian_follows_the_float64_iterates():
    """For float32 data the augmented Lagrangian iterates in float64 (as FISTA and the
    interior points do) and returns float32 weights with the float64 ones beside them:
    on the same patterns its result after a fixed budget matches the float64 run's up to
    the data's rounding (1000 iterations, n = 200: 2e-9 relative; iterating in float32
    it drifted by 2.3e-4)."""
    from convexnn.solvers._augmented_lagrangian import augmented_lagrangian

    rng = np.random.default_rng(1)
    X = torch.as_tensor(rng.standard_normal((200, 8)))
    y = torch.sin(2 * X[:, 0]) + 0.3 * X[:, 1] * X[:, 2]
    ps = sample_patterns(X, 60, generator=torch.Generator().manual_seed(1))
    out = {}
    for dt in (torch.float64, torch.float32):
        prob = _problem(X.to(dt), ps, y.to(dt)[:, None], SquaredLoss(), 1e-3, relu=True,
                        fit_bias=False)
        res = augmented_lagrangian(prob, tol=1e-6, max_iter=1000)
        assert res.W.dtype == dt and res.extra["mu"].dtype == dt
        out[dt] = prob.to(torch.float64).objective(res.W.double(), res.b.double())
        if dt == torch.float32:
            assert res.extra["W64"].dtype == torch.float64
            assert torch.equal(res.extra["W64"].to(dt), res.W)
    assert out[torch.float32] == pytest.approx(out[torch.float64], rel=1e-6)


def _interrupt_loss_grad_at(monkeypatch, loss_cls, k: int) -> dict:
    """Ctrl-C at the ``k``-th gradient of the loss: the seeding runs take one per epoch."""
    return _interrupt_call(monkeypatch, loss_cls, "grad", k)


@pytest.mark.parametrize("runs", [1, 3])
def test_interrupted_seeding_runs_return_their_best_iterates(monkeypatch, runs):
    from convexnn.nonconvex import train_networks

    X, y = _data()
    Xt = torch.as_tensor(X)
    Yt = torch.as_tensor(y)[:, None]
    kw = dict(seeds=list(range(runs)), n_neurons=8, lam=1e-2, lr=1e-2, max_epochs=400)
    full = train_networks(Xt, Yt, **kw)
    calls = _interrupt_loss_grad_at(monkeypatch, SquaredLoss, 60)
    with _no_escape():
        cut = train_networks(Xt, Yt, **kw)
    assert calls["n"] == 60  # nothing ran after the interrupt
    starts = train_networks(Xt, Yt, **dict(kw, max_epochs=1))
    for a, b, s in zip(cut, full, starts):
        assert a.interrupted and not b.interrupted
        assert a.n_epochs == 60
        assert np.isfinite(a.objective) and b.objective <= a.objective
        # each run's best of its first 59 epochs: below its own starting objective
        assert a.objective < s.objective


def test_interrupted_single_run_returns_its_best_iterate(monkeypatch):
    from convexnn.nonconvex import train_network

    X, y = _data()
    calls = _interrupt_call(monkeypatch, torch.optim.Adam, "step", 40)
    with _no_escape():
        res = train_network(X, y, n_neurons=8, lam=1e-2, lr=1e-2, max_epochs=400,
                            random_state=0)
    assert calls["n"] == 40 and res.interrupted and res.n_epochs == 40
    start = train_network(X, y, n_neurons=8, lam=1e-2, lr=1e-2, max_epochs=1,
                          random_state=0).objective
    assert np.isfinite(res.objective) and res.objective < start


@pytest.mark.parametrize("task", ["regression", "multiclass", "gated"])
def test_fit_interrupted_during_seeding_returns_the_best_seed(monkeypatch, task):
    from convexnn import ConvexGatedReLURegressor, ConvexReLUClassifier
    from convexnn.losses import SoftmaxLoss

    X, y = _data()
    if task == "regression":
        est, loss_cls = ConvexReLURegressor(**KW), SquaredLoss
    elif task == "gated":
        est, loss_cls = ConvexGatedReLURegressor(**KW), SquaredLoss
    else:
        y = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
        est, loss_cls = ConvexReLUClassifier(**KW), SoftmaxLoss
    calls = _interrupt_loss_grad_at(monkeypatch, loss_cls, 100)  # in the first group's runs

    def must_not_run(*a, **kw):
        raise AssertionError("a solve or refinement ran after Ctrl-C in the seeding")

    for name in ("working_set_solve", "_polish_seed", "_directional"):
        monkeypatch.setattr(tr, name, must_not_run)
    with _no_escape(), pytest.warns(RuntimeWarning, match="during the seeding"):
        est.fit(X, y)
    assert calls["n"] >= 100
    phases = [h.get("phase") for h in est.history_]
    assert "seed" in phases and "solve" not in phases and "seed_polished" not in phases
    seed = next(h["primal"] for h in est.history_ if h.get("phase") == "seed")
    assert np.isfinite(est.objective_) and est.objective_ <= seed * (1 + 1e-9)
    assert est.certificate_.lower_bound <= est.objective_
    assert np.all(np.isfinite(est.predict(X)))


def test_fit_interrupted_during_the_certificate_keeps_the_network(monkeypatch, tmp_path):
    from convexnn.persistence import load, save

    X, y = _data()
    ref = ConvexReLURegressor(**KW).fit(X, y)
    calls = _interrupt_call(monkeypatch, tr, "dual_bound", 1)
    with _no_escape(), pytest.warns(RuntimeWarning, match="during the certificate"):
        est = ConvexReLURegressor(**KW).fit(X, y)
    assert calls["n"] == 1
    # the solved network is kept; no bound was finished
    assert est.objective_ == pytest.approx(ref.objective_, rel=1e-12)
    assert est.certificate_.lower_bound == -np.inf and est.certificate_.rel_gap == np.inf
    np.testing.assert_allclose(est.predict(X), ref.predict(X), rtol=1e-10, atol=1e-12)
    save(est, tmp_path / "m.cnn")  # an unbounded certificate still round-trips
    back = load(tmp_path / "m.cnn")
    assert back.certificate_.lower_bound == -np.inf
    np.testing.assert_allclose(back.predict(X), est.predict(X))


def test_interrupted_lbfgs_run_returns_its_best_iterate(monkeypatch):
    from convexnn.nonconvex import train_network

    X, y = _data()
    kw = dict(n_neurons=8, lam=1e-2, optimizer="lbfgs", max_epochs=200, random_state=0)
    start = train_network(X, y, **dict(kw, max_epochs=1)).objective
    calls = _interrupt_call(monkeypatch, SquaredLoss, "value", 30)  # inside a line search
    with _no_escape():
        res = train_network(X, y, **kw)
    assert calls["n"] >= 30 and res.interrupted
    # the best iterate the closure kept, re-evaluated: finite and below the start
    assert np.isfinite(res.objective) and res.objective < start
