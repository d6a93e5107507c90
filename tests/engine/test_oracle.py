"""Oracle tests: exact enumeration + our solver == CVXPY's optimum of the exact program."""

import numpy as np
import pytest
import torch

from convexnn import ConvexGatedReLURegressor, ConvexReLUClassifier, ConvexReLURegressor
from convexnn.losses import LogisticLoss, SquaredLoss
from convexnn.patterns import enumerate_patterns
from convexnn.solvers import cvxpy_reference
from convexnn.training import _problem

cp = pytest.importorskip("cvxpy")


def _tiny(seed, classification=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((12, 2))
    y = np.sin(2 * X[:, 0]) + 0.3 * X[:, 1] + 0.1 * rng.standard_normal(12)
    if classification:
        y = (y > np.median(y)).astype(int)
    return X, y


def _cvx_optimum(X, y, lam, fit_intercept, loss, relu=True):
    Xt = torch.as_tensor(X)
    X_aug = torch.cat([Xt, torch.ones(len(X), 1, dtype=Xt.dtype)], 1) if fit_intercept else Xt
    ps = enumerate_patterns(X_aug)
    Y = torch.as_tensor(y, dtype=torch.float64)[:, None]
    if loss.name == "logistic":
        Y = 2 * Y - 1
    prob = _problem(X_aug, ps, Y, loss, lam, relu=relu, fit_bias=fit_intercept)
    return cvxpy_reference(prob).extra["value"]


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_relu_regressor_reaches_the_global_optimum(fit_intercept, seed):
    X, y = _tiny(seed)
    lam = 0.01
    est = ConvexReLURegressor(lam=lam, patterns="exact", fit_intercept=fit_intercept,
                              tol=1e-8).fit(X, y)
    opt = _cvx_optimum(X, y, lam, fit_intercept, SquaredLoss())
    assert abs(est.objective_ - opt) <= 1e-6 * abs(opt)
    cert = est.certificate_
    assert cert.scope == "global"
    assert cert.rel_gap <= 1e-6
    assert cert.lower_bound <= opt * (1 + 1e-9)
    assert cert.max_violation <= 1e-8


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_relu_classifier_reaches_the_global_optimum(fit_intercept, seed):
    X, y = _tiny(seed, classification=True)
    lam = 0.01
    est = ConvexReLUClassifier(lam=lam, patterns="exact", fit_intercept=fit_intercept,
                               tol=1e-8).fit(X, y)
    opt = _cvx_optimum(X, y, lam, fit_intercept, LogisticLoss())
    assert abs(est.objective_ - opt) <= 1e-6 * abs(opt)
    assert est.certificate_.scope == "global"
    assert est.certificate_.rel_gap <= 1e-6
    assert est.certificate_.lower_bound <= opt * (1 + 1e-9)


def test_gated_regressor_reaches_the_optimum_of_its_program(seed):
    X, y = _tiny(seed)
    est = ConvexGatedReLURegressor(lam=0.01, patterns="exact", tol=1e-8).fit(X, y)
    opt = _cvx_optimum(X, y, 0.01, True, SquaredLoss(), relu=False)
    assert abs(est.objective_ - opt) <= 1e-6 * abs(opt)
    assert est.certificate_.rel_gap <= 1e-6


def test_sampled_lower_bound_never_exceeds_the_sampled_optimum(seed):
    X, y = _tiny(seed)
    est = ConvexReLURegressor(lam=0.01, patterns=8, grow=False, max_iter=30,
                              random_state=seed)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    assert est.certificate_.scope == "sampled"
    assert est.certificate_.lower_bound <= est.objective_ + 1e-12
