"""Newton sketch / Newton-LESS logistic regression against scikit-learn's optimum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression, Ridge

from convexnn.exceptions import ValidationError
from convexnn.sketching import (
    SketchedLinearRegression,
    SketchedLogisticRegression,
    SketchedRidge,
    logistic_objective,
    newton_sketch_logistic,
)


def _logistic_data(n=4000, d=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * np.linspace(0.2, 2, d)
    w = rng.standard_normal(d)
    y = (x @ w + 0.3 + rng.logistic(size=n) > 0).astype(int)
    return x, y


def _obj(x, y, coef, icpt, C):
    yt = torch.tensor(np.where(y == 1, 1.0, -1.0))
    return logistic_objective(torch.tensor(x), yt, torch.tensor(coef), float(icpt), C)


@pytest.mark.parametrize("sketch", ["less", "gaussian", "srht", "sparse_sign", "countsketch"])
def test_newton_sketch_matches_sklearn_objective(sketch):
    x, y = _logistic_data()
    ref = LogisticRegression(C=0.5, tol=1e-12, max_iter=10000).fit(x, y)
    est = SketchedLogisticRegression(C=0.5, sketch=sketch, sketch_size=60, random_state=0)
    est.fit(x, y)
    f = _obj(x, y, est.coef_[0], est.intercept_[0], 0.5)
    f_ref = _obj(x, y, ref.coef_[0], ref.intercept_[0], 0.5)
    assert (f - f_ref) / f_ref <= 1e-8
    assert abs(est.objective_ - f) <= 1e-8 * f
    assert (est.predict(x) == ref.predict(x)).mean() > 0.99


def test_newton_sketch_torch_api_and_dtypes(dtype, device):
    x, y = _logistic_data(n=3000, d=5)
    xt = torch.tensor(x, dtype=dtype, device=device)
    yt = torch.tensor(np.where(y == 1, 1.0, -1.0), dtype=dtype, device=device)
    res = newton_sketch_logistic(xt, yt, C=1.0, sketch="less", sketch_size=40, random_state=0,
                                 tol=1e-10)
    assert res.coef.device.type == device.type and res.coef.dtype == dtype
    ref = LogisticRegression(C=1.0, tol=1e-12, max_iter=10000).fit(x, y)
    f_ref = _obj(x, y, ref.coef_[0], ref.intercept_[0], 1.0)
    f = _obj(x, y, res.coef.double().cpu().numpy(), res.intercept, 1.0)
    assert (f - f_ref) / f_ref <= (1e-8 if dtype == torch.float64 else 1e-5)
    assert res.converged


def test_newton_sketch_short_steps_and_fused_blocks(monkeypatch):
    """A sketch too small for full steps (the line search shortens them, which the fused
    pass handles by interpolating z) and many blocks per pass still reach the optimum."""
    from convexnn.sketching import _newton

    monkeypatch.setattr(_newton, "_BLOCK_BYTES", 8 * 8 * 37)  # 37-row blocks, ragged end
    x, y = _logistic_data(n=3001, d=8)
    yt = torch.tensor(np.where(y == 1, 1.0, -1.0))
    res = newton_sketch_logistic(torch.tensor(x), yt, C=1.0, sketch="less", sketch_size=12,
                                 random_state=1, tol=1e-10, max_iter=300)
    assert any(h.get("step", 1.0) < 1.0 for h in res.history)
    ref = LogisticRegression(C=1.0, tol=1e-12, max_iter=10000).fit(x, y)
    f_ref = _obj(x, y, ref.coef_[0], ref.intercept_[0], 1.0)
    assert (res.objective - f_ref) / f_ref <= 1e-8
    assert abs(res.objective - _obj(x, y, res.coef.numpy(), res.intercept, 1.0)) <= 1e-9 * f_ref


def test_default_sketch_size_follows_the_cost_model():
    from convexnn.sketching._newton import default_sketch_size

    sizes = [default_sketch_size(n, 500, 501, 8) for n in (10**4, 2 * 10**5, 10**6, 10**8)]
    assert all(8 * 501 <= m <= 40 * 501 for m in sizes)
    assert sizes == sorted(sizes)  # longer data: a larger sketch, fewer passes
    assert sizes[0] < sizes[-1]


def test_multiclass_one_vs_rest():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 4)) * 3
    x = np.vstack([c + rng.standard_normal((200, 4)) for c in centers])
    y = np.repeat(["a", "b", "c"], 200)
    est = SketchedLogisticRegression(random_state=0).fit(x, y)
    assert est.coef_.shape == (3, 4) and list(est.classes_) == ["a", "b", "c"]
    assert est.score(x, y) > 0.9
    np.testing.assert_allclose(est.predict_proba(x).sum(1), 1.0)


def test_least_squares_estimators_match_sklearn():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 6)) + 5.0  # off-centre columns: the intercept matters
    y = x @ rng.standard_normal(6) + 2.0 + 0.1 * rng.standard_normal(3000)
    for method in ("ihs", "preconditioned", "sketch_and_solve", "direct"):
        est = SketchedLinearRegression(method=method, random_state=0, sketch_size=300)
        est.fit(x, y)
        tol = 0.25 if method == "sketch_and_solve" else 1e-4
        np.testing.assert_allclose(est.predict(x), x @ np.linalg.lstsq(
            np.column_stack([x, np.ones(3000)]), y, rcond=None)[0][:6]
            + np.linalg.lstsq(np.column_stack([x, np.ones(3000)]), y, rcond=None)[0][6],
            atol=tol)
    ref = Ridge(alpha=30.0).fit(x, y)
    est = SketchedRidge(alpha=30.0, method="preconditioned", random_state=0).fit(x, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-5)
    np.testing.assert_allclose(est.intercept_, ref.intercept_, atol=1e-4)


def test_estimator_parameter_errors():
    x, y = _logistic_data(n=200, d=3)
    with pytest.raises(ValidationError, match="'C' parameter of SketchedLogisticRegression"):
        SketchedLogisticRegression(C=0).fit(x, y)
    with pytest.raises(ValidationError, match="'sketch' parameter"):
        SketchedLogisticRegression(sketch="fft").fit(x, y)
    with pytest.raises(ValidationError, match="'alpha' parameter of SketchedRidge"):
        SketchedRidge(alpha=-2).fit(x, y.astype(float))
    with pytest.raises(ValidationError, match=r"'sketch_size' parameter of "
                       r"SketchedLinearRegression must be an int >= n_features \(3\)"):
        SketchedLinearRegression(sketch_size=2).fit(x, y.astype(float))
