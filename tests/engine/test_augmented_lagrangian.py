"""The augmented Lagrangian (ReLU programs beyond the interior points) ends feasible."""

import numpy as np
import pytest
import torch

from convexnn.losses import SquaredLoss
from convexnn.patterns import sample_patterns
from convexnn.solvers._augmented_lagrangian import augmented_lagrangian, restore_feasibility
from convexnn.training import _problem


def _program(seed=3, n=30, d=3, p=40, lam=0.01, dtype=torch.float64):
    rng = np.random.default_rng(seed)
    X = torch.as_tensor(rng.standard_normal((n, d))).to(dtype)
    y = torch.sin(2 * X[:, 0]) + 0.3 * X[:, 1]
    ps = sample_patterns(X, p, generator=torch.Generator().manual_seed(seed))
    return _problem(X, ps, y[:, None], SquaredLoss(), lam, relu=True, fit_bias=False)


def test_restore_feasibility_zeroes_the_violated_rows_of_violating_blocks_only():
    prob = _program(n=40, d=6)
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(1, prob.op.p, 6, generator=gen, dtype=torch.float64)
    W[:, ::3] = 0.0  # some blocks feasible (zero)
    C = prob.op.cone_matvec(W)
    bad = (C < 0).any(dim=0)
    assert bool(bad.any()) and not bool(bad.all())
    W2, changed = restore_feasibility(prob, W)
    assert changed == int(bad.sum())
    assert prob.max_violation(W2) <= 1e-9
    assert torch.equal(W2[~bad], W[~bad])  # feasible blocks untouched
    C2 = prob.op.cone_matvec(W2)
    kept = 0
    for a, j in bad.nonzero().tolist():
        if bool((W2[a, j] == 0).all()):
            continue  # no direction left: the zero block
        kept += 1
        T = C[:, a, j] < 0  # rows violated before are now on the boundary
        torch.testing.assert_close(C2[T, a, j], torch.zeros_like(C2[T, a, j]), atol=1e-9,
                                   rtol=0)
    assert kept > 0  # with d = 6 most blocks keep a direction


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_augmented_lagrangian_out_of_budget_still_returns_a_feasible_point(dtype):
    """With too few iterations to reach feasibility the solver restores it (violation
    ≤ 1e-8 in float64, as the interior points end), and its bound stays below."""
    prob = _program(n=40, d=10, dtype=dtype)
    res = augmented_lagrangian(prob, tol=1e-10, max_iter=1000)
    assert res.history[-1]["violation"] > 1e-6  # the last iterate was infeasible
    assert res.extra["restored"] > 0
    W, b = res.W.double(), res.b.double()
    p64 = prob.to(torch.float64)
    feas = 1e-8 if dtype == torch.float64 else 1e-5
    assert res.extra["violation"] <= feas and p64.max_violation(W) <= feas
    assert res.extra["primal"] == pytest.approx(float(p64.objective(W, b)), rel=1e-6)
    assert res.extra["lower_bound"] <= res.extra["primal"]
    assert not res.converged
