"""The working-set loop and the growth loop around it: when they stop, and at what gap."""

import warnings

import numpy as np
import pytest
import torch

from convexnn import ConvexGatedReLUClassifier
from convexnn.losses import SoftmaxLoss
from convexnn.patterns import sample_patterns
from convexnn.solvers._working_set import block_scores, working_set_solve
from convexnn.training import _GROW_ROUND_TOL, _inner, _problem


def _multiclass(seed=3, n=90, d=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.digitize(X[:, 0] - X[:, 1] ** 2 + 0.3 * X[:, 2], [-1.0, 0.0])
    return X, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_working_set_stops_at_the_first_round_that_meets_tol(seed):
    """A round whose gap is within ``tol`` ends the solve: rounds re-solved more tightly
    (when nothing violates and the gap is above tol) must not lower the target itself
    (which kept a gated multiclass fit on digits solving to max_iter past a 9e-7 gap)."""
    X, y = _multiclass(seed)
    Xt = torch.as_tensor(X)
    Y = torch.nn.functional.one_hot(torch.as_tensor(y)).double()
    ps = sample_patterns(Xt, 40, generator=torch.Generator().manual_seed(seed))
    prob = _problem(Xt, ps, Y, SoftmaxLoss(), 1e-3, relu=False, fit_bias=True)
    tol = 1e-6
    res = working_set_solve(prob, _inner, tol=tol, initial_size=ps.n_patterns,
                            max_iter=50_000)
    gaps = [h["rel_gap"] for h in res.history]
    assert res.converged and gaps[-1] <= tol
    assert all(g > tol for g in gaps[:-1]), gaps  # no round after the first that met tol
    assert len(gaps) >= 2  # the early rounds are inexact: the test covers re-solving


def test_growth_rounds_are_solved_loosely_and_the_last_to_tol():
    """First-order growth rounds stop at _GROW_ROUND_TOL; the fit ends with a solve at
    ``tol``, certified to it."""
    X, y = _multiclass(5)
    tol = 1e-6
    est = ConvexGatedReLUClassifier(lam=1e-2, patterns=8, seed_runs=0, tol=tol,
                                    max_iter=50_000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.fit(X, y)
    solves = [h for h in est.history_ if h.get("phase") == "solve"]
    grows = [h for h in est.history_ if h.get("phase") == "grow"]
    assert any(g["added"] > 0 for g in grows)
    # the last working-set round of each growth round (the one before each "grow" record)
    ends = []
    for h_prev, h in zip(est.history_, est.history_[1:]):
        if h.get("phase") == "grow":
            ends.append(h_prev)
    assert ends and all(tol < e["rel_gap"] <= _GROW_ROUND_TOL for e in ends)
    assert solves[-1]["rel_gap"] <= tol
    assert est.certificate_.rel_gap <= tol


@pytest.mark.parametrize("tol", [1e-6, _GROW_ROUND_TOL])
def test_loose_growth_leaves_budget_for_the_last_solve(tol):
    """With too few iterations to finish growing, growth stops early enough for the last
    solve to reach ``tol`` (it is not left at the loose rounds' gap, nor cut short by the
    budget when ``tol`` is the growth rounds' own)."""
    X, y = _multiclass(5)
    full = ConvexGatedReLUClassifier(lam=1e-2, patterns=8, seed_runs=0, tol=tol,
                                     max_iter=50_000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full.fit(X, y)
    est = ConvexGatedReLUClassifier(lam=1e-2, patterns=8, seed_runs=0, tol=tol,
                                    max_iter=full.n_iter_ // 2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    assert est.n_patterns_ < full.n_patterns_  # growth was cut short ...
    phases = [h.get("phase") for h in est.history_]
    assert phases[-2:] == ["certificate", "certified"]  # (the certificate's own lines)
    assert phases[-3] == "solve"  # ... and a last solve followed
    assert est.certificate_.rel_gap <= tol


def _stalling_solve(factor):
    """A working-set solve whose inner solver's k-th answer is scaled by ``factor(k)``
    (answers shrunk towards zero are worse, with gaps above tol: the solve stalls)."""
    X, y = _multiclass(4)
    Xt = torch.as_tensor(X)
    Y = torch.nn.functional.one_hot(torch.as_tensor(y)).double()
    ps = sample_patterns(Xt, 20, generator=torch.Generator().manual_seed(4))
    prob = _problem(Xt, ps, Y, SoftmaxLoss(), 1e-2, relu=False, fit_bias=True)
    calls = []

    def shrinking(sub, W0, b0, mu0, **kw):
        res = _inner(sub, W0, b0, mu0, **kw)
        res.W = factor(len(calls)) * res.W
        calls.append(1)
        return res

    return prob, working_set_solve(prob, shrinking, tol=1e-12, initial_size=ps.n_patterns,
                                   max_iter=50_000)


def test_working_set_stops_when_rounds_stop_improving_and_returns_the_best():
    """Rounds that never lower the objective (here an inner solver whose later answers
    are shrunk towards zero: worse, with the gap above tol) end the solve after
    _STALL_ROUNDS of them, with the best round's point — they used to run to max_rounds
    (KEEL banana cycled for minutes once column generation found its patterns)."""
    from convexnn.solvers._working_set import _BEST_GAP, _STALL_ROUNDS

    prob, res = _stalling_solve(lambda k: 1.0 if k == 0 else 0.7)
    primals = [h["primal"] for h in res.history]
    assert len(primals) == 1 + _STALL_ROUNDS and not res.converged
    assert res.history[0]["rel_gap"] <= _BEST_GAP
    assert all(p > primals[0] for p in primals[1:])
    assert float(prob.objective(res.W, res.b)) == pytest.approx(primals[0], rel=1e-10)


def test_stalled_working_set_without_a_certified_round_returns_the_tightest(monkeypatch):
    """When no round's gap is within _BEST_GAP, a stalled solve returns the round with
    the smallest gap, not the last (which can be far looser)."""
    import convexnn.solvers._working_set as wsm
    from convexnn.solvers._working_set import _STALL_ROUNDS

    monkeypatch.setattr(wsm, "_BEST_GAP", -1.0)  # no round qualifies as "best"
    # later answers further from the optimum
    prob, res = _stalling_solve(lambda k: 1 - 0.1 * k)
    gaps = [h["rel_gap"] for h in res.history]
    assert len(gaps) == 1 + _STALL_ROUNDS and not res.converged
    assert gaps[0] < min(gaps[1:])
    assert res.extra["rel_gap"] == gaps[0]
    assert float(prob.objective(res.W, res.b)) == pytest.approx(res.history[0]["primal"],
                                                                rel=1e-10)


def test_working_set_starts_with_the_given_blocks_and_returns_its_last_set():
    """``initial_blocks`` join the first working set (with the active blocks and the
    violators); ``extra["ws"]`` is the set of the last solve."""
    X, y = _multiclass(5)
    Xt = torch.as_tensor(X)
    Y = torch.nn.functional.one_hot(torch.as_tensor(y)).double()
    ps = sample_patterns(Xt, 60, generator=torch.Generator().manual_seed(5))
    prob = _problem(Xt, ps, Y, SoftmaxLoss(), 1.0, relu=False, fit_bias=True)
    # λ at the 80th percentile of the blocks' dual norms at zero: a fifth of them violate
    scores, _ = block_scores(prob, torch.zeros(Xt.shape[0], 3, dtype=Xt.dtype), None)
    lam = float(torch.quantile(scores.max(dim=0).values, 0.8))
    prob = _problem(Xt, ps, Y, SoftmaxLoss(), lam, relu=False, fit_bias=True)
    seen = []

    def recording(sub, W0, b0, mu0, **kw):
        seen.append(sub.op.p)
        return _inner(sub, W0, b0, mu0, **kw)

    one = working_set_solve(prob, recording, tol=1e-6, initial_size=4, max_rounds=1)
    first = one.extra["ws"]
    assert first.dtype == torch.bool and int(first.sum()) == seen[0] < prob.op.p
    seen.clear()
    full = working_set_solve(prob, recording, tol=1e-6, initial_size=4, max_iter=50_000,
                             initial_blocks=~first)
    assert seen[0] == prob.op.p  # the first set and the given blocks: all of them
    assert full.converged and int(full.extra["ws"].sum()) == seen[-1]
    plain = working_set_solve(prob, _inner, tol=1e-6, initial_size=4, max_iter=50_000)
    assert full.extra["primal"] == pytest.approx(plain.extra["primal"], rel=1e-5)


def test_grown_blocks_keep_the_layout_of_the_relu_halves():
    from convexnn.training import _grown_blocks

    ws = torch.tensor([True, False, False, True, True, False])  # p_old = 3: u 0..2, v 3..5
    out = _grown_blocks(ws, 3, 5, relu=True)  # u 0..4, v 5..9; new patterns 3, 4
    assert out.tolist() == [True, False, False, True, True, True, True, False, True, True]
    assert _grown_blocks(ws[:3], 3, 4, relu=False).tolist() == [True, False, False, True]
    assert _grown_blocks(None, 3, 4, relu=True) is None


def test_later_rounds_restart_from_the_previous_rounds_path():
    """ReLU: every round after the first starts from a point of the previous round's
    interior-point path (``start``), and a solve given path points starts its first round
    from one; the optimum is the one of a solve without them."""
    from convexnn.losses import SquaredLoss

    rng = np.random.default_rng(6)
    X = torch.as_tensor(rng.standard_normal((60, 3)))
    y = torch.sin(2 * X[:, 0]) + 0.3 * X[:, 1]
    ps = sample_patterns(X, 40, generator=torch.Generator().manual_seed(6))
    prob = _problem(X, ps, y[:, None], SquaredLoss(), 0.005, relu=True, fit_bias=True)
    starts = []

    def recording(sub, W0, b0, mu0, **kw):
        starts.append(kw.get("start"))
        return _inner(sub, W0, b0, mu0, **kw)

    res = working_set_solve(prob, recording, tol=1e-6, initial_size=4, max_iter=50_000)
    assert len(starts) >= 2 and starts[0] is None
    assert all(s is not None and s[0].shape[1] == starts_ws for s, starts_ws in
               zip(starts[1:], [h["ws_size"] for h in res.history[1:]], strict=True))
    points = res.extra["path_points"]
    assert points and all(W.shape[1] == blocks.numel() and int(blocks.max()) < prob.op.p
                          for W, _, _, _, blocks in points.values())
    starts.clear()
    again = working_set_solve(prob, recording, res.W, res.b, tol=1e-6, initial_size=4,
                              max_iter=50_000, mu0=res.extra["mu"], path_points=points)
    assert starts[0] is not None
    assert again.extra["primal"] == pytest.approx(res.extra["primal"], rel=1e-6)
