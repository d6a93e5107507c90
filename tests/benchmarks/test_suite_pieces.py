"""The suite's building blocks mean what they say (scalings, recovery, scoring)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.suite.datasets import DATASETS, load, planted_teacher
from benchmarks.suite.problem import (
    gated_lam_max,
    gated_network_objective,
    make_gates,
    prepare,
    rebalance,
    score,
)
from benchmarks.suite.report import fit_slope, profile_curve
from benchmarks.suite.runner import count_neurons


@pytest.fixture
def tiny():
    X, y = planted_teacher(120, d=4, seed=1)
    return prepare("t", X, y, "regression", kind="gated", loss="squared", lam=1e-2,
                   n_gates=30, seed=0)


def test_prepare_adds_bias_column_and_unique_patterns(tiny):
    assert np.allclose(tiny.X[:, -1], 1.0)
    assert abs(tiny.y.mean()) < 1e-12 and abs(tiny.y.std() - 1) < 1e-12
    D = tiny.masks()
    assert D.shape == (tiny.n, tiny.n_patterns)
    assert len({col.tobytes() for col in D.T.astype(bool)}) == tiny.n_patterns
    assert D.any(axis=0).all()


def test_make_gates_deduplicates():
    X = np.hstack([np.random.default_rng(0).standard_normal((5, 1)), np.ones((5, 1))])
    G = make_gates(X, 200, seed=0)
    # 1-D data with a bias column: at most 2·5 distinct non-empty patterns.
    assert 1 <= G.shape[1] <= 10


def test_lam_fraction_is_relative_to_lam_max():
    X, y = planted_teacher(100, d=3, seed=2)
    p = prepare("t", X, y, "regression", kind="relu", loss="squared", lam_fraction=0.5,
                n_gates=20)
    assert p.lam == pytest.approx(0.5 * gated_lam_max(p.X, p.y, p.gates))


def test_rebalance_keeps_function_and_lowers_objective(tiny):
    rng = np.random.default_rng(0)
    W1, W2 = rng.standard_normal((tiny.d, 7)) * 3, rng.standard_normal((7, 1)) / 3
    (V1, V2), _ = rebalance([W1, W2], None)
    X = tiny.X
    assert np.allclose(np.maximum(X @ W1, 0) @ W2, np.maximum(X @ V1, 0) @ V2)
    relu = tiny.__class__(**{**tiny.__dict__, "kind": "relu"})
    from convexnn.objective import network_objective

    assert score(relu, [W1, W2], None) <= network_objective([W1, W2], None, X, tiny.y,
                                                             tiny.lam) + 1e-12
    assert np.allclose(np.linalg.norm(V1, axis=0), np.abs(V2[:, 0]))


def test_gated_network_objective_equals_group_lasso(tiny):
    rng = np.random.default_rng(3)
    U = rng.standard_normal((tiny.d, tiny.n_patterns))
    r = np.linalg.norm(U, axis=0)
    coefs = [U / np.sqrt(r), np.sqrt(r)[:, None]]
    D = tiny.masks()
    direct = (0.5 * (((D * (tiny.X @ U)).sum(1) - tiny.y) ** 2).mean()
              + tiny.lam * r.sum())
    assert gated_network_objective(tiny.gates, coefs, tiny.X, tiny.y, tiny.lam,
                                   "squared") == pytest.approx(direct, rel=1e-12)


def test_cvxpy_recovery_matches_clarabel_value(tiny):
    pytest.importorskip("cvxpy")
    from benchmarks.suite.solvers.cvxpy_solver import CvxpySolver

    for kind in ("gated", "relu"):
        prob = tiny.__class__(**{**tiny.__dict__, "kind": kind})
        out = CvxpySolver().run(prob, seed=0, device="cpu", context={})
        val = score(prob, out.coefs, out.intercepts, out.gates)
        assert val == pytest.approx(out.extra["reported_objective"], rel=1e-5)


def test_pyscnn_scaling_matches_spec(tiny):
    pytest.importorskip("scnn")
    from benchmarks.suite.solvers.pyscnn_solver import PyscnnSolver

    out = PyscnnSolver("gated", max_iters=2000).run(tiny, seed=0, device="cpu", context={})
    # pyscnn's own objective and ours, recomputed from its returned network, agree:
    # its λ and loss scaling are SPEC §3's for one output.
    ours = score(tiny, out.coefs, None, out.gates)
    assert ours == pytest.approx(out.extra["reported_objective"], rel=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_alpha_mapping_is_exact(tiny):
    from sklearn.neural_network import MLPRegressor

    from convexnn.objective import network_objective

    lam = 1e-2
    est = MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", alpha=lam * tiny.n,
                       max_iter=50, random_state=0).fit(tiny.X, tiny.y)
    b1 = est.intercepts_[0]
    ours = network_objective(est.coefs_, est.intercepts_, tiny.X, tiny.y, lam, "squared")
    # sklearn does not penalize its intercepts; everything else is SPEC §1 with λ = α/n.
    assert ours - 0.5 * lam * (b1**2).sum() == pytest.approx(est.loss_, rel=1e-10)


def test_count_neurons_ignores_dead_units():
    W1 = np.array([[1.0, 0.0, 2.0], [0.5, 0.0, 1.0]])
    W2 = np.array([[1.0], [3.0], [0.0]])
    assert count_neurons([W1, W2]) == 1


def test_profile_curve_is_a_monotone_fraction():
    import pandas as pd

    df = pd.DataFrame({
        "dataset": ["a", "a", "b", "b"], "lam": [1.0] * 4, "repetition": [0] * 4,
        "solver": ["x", "y", "x", "y"], "time_to_tol": [0.1, np.inf, 1.0, 0.5],
    })
    t = np.array([0.05, 0.2, 0.7, 2.0])
    c = profile_curve(df, t)
    assert np.allclose(c["x"], [0, 0.5, 0.5, 1])
    assert np.allclose(c["y"], [0, 0, 0.5, 0.5])


def test_fit_slope_recovers_power():
    x = np.array([1e3, 1e4, 1e5])
    assert fit_slope(x, 3 * x**1.5) == pytest.approx(1.5)


def test_registry_is_explicit_and_sklearn_sets_load():
    assert sum(k.startswith("keel:") for k in DATASETS) >= 40
    X, y, task = load("diabetes")
    assert X.shape == (442, 10) and task == "regression"


def test_convexnn_trace_records_its_rounds_with_network_objectives():
    """The ReLU pipeline's trace (seed, working-set rounds) is non-empty, in time order
    within the fit's wall time, and no recorded value is below the final network's
    re-scored objective by more than rounding (each is the value of a network)."""
    from benchmarks.suite.solvers.convexnn_solver import ConvexnnSolver

    X, y = planted_teacher(80, d=3, seed=2)
    prob = prepare("t", X, y, "regression", kind="relu", loss="squared", lam=1e-2,
                   n_gates=12, seed=0)
    solver = ConvexnnSolver("relu", grow=True, seed_epochs=300)
    out = solver.run(prob, seed=0, device="cpu", context={})
    assert len(out.trace) >= 2
    times = [t for t, _ in out.trace]
    assert times == sorted(times) and times[-1] <= out.time
    final = score(prob, out.coefs, out.intercepts)
    vals = [o for _, o in out.trace]
    assert min(vals) >= final * (1 - 1e-8)
    assert vals[0] >= vals[-1] - 1e-12  # the seed's network, then better rounds


@pytest.mark.parametrize("which", ["convexnn_fixed", "convexnn_grow", "adam"])
def test_output_bias_problems_give_every_solver_the_bias(which):
    """With ``output_bias`` the convexnn and torch adapters fit an unregularized output
    bias (as scikit-learn does): the returned network has one, its hidden biases are folded
    into the constant column's row, and the suite's score equals the solver's own value."""
    from benchmarks.suite.solvers.convexnn_solver import ConvexnnSolver
    from benchmarks.suite.solvers.torch_solver import TorchSolver

    X, y = planted_teacher(80, d=3, seed=2)
    y = y + 3.0  # an offset that only an output bias fits for free
    prob = prepare("t", X, y, "regression", kind="relu", loss="squared", lam=1e-2,
                   n_gates=12, seed=0, output_bias=True)
    prob.y = prob.y + 3.0  # (prepare standardizes y)
    if which == "adam":
        out = TorchSolver("adam", n_seeds=1, lrs=(1e-2,), max_epochs=1500).run(
            prob, seed=0, device="cpu", context={"width": 8})
        own = out.trace[-1][1]
    else:
        solver = (ConvexnnSolver("relu", grow=True, seed_epochs=300) if which.endswith("grow")
                  else ConvexnnSolver("relu"))
        out = solver.run(prob, seed=0, device="cpu", context={})
        own = out.extra["reported_objective"]
    W1, W2 = out.coefs
    assert W1.shape[0] == prob.d and out.intercepts is not None
    np.testing.assert_array_equal(out.intercepts[0], 0.0)
    b2 = float(out.intercepts[1][0])
    # the convex optimum puts the offset in the free bias; Adam's hidden biases share it
    assert abs(b2 - 3.0) < 1.0 if which != "adam" else b2 > 0.3
    if which == "adam":  # the suite's score rebalances the layers (never raises it)
        assert score(prob, out.coefs, out.intercepts) <= own * (1 + 1e-12)
    else:  # convexnn's networks are balanced already
        assert score(prob, out.coefs, out.intercepts) == pytest.approx(own, rel=1e-9)
    with pytest.raises(ValueError, match="needs bias_column"):
        prepare("t", X, y, "regression", kind="relu", loss="squared", lam=1e-2, n_gates=12,
                bias_column=False, output_bias=True)
    prob.X = prob.X[:, ::-1]
    with pytest.raises(ValueError, match="not constant"):
        _ = prob.X_without_bias_column
