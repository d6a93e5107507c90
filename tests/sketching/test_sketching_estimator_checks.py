"""scikit-learn's estimator contract for the sketched estimators (no expected failures)."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from convexnn.sketching import SketchedLinearRegression, SketchedLogisticRegression, SketchedRidge


@parametrize_with_checks(
    [
        SketchedLinearRegression(),
        SketchedRidge(),
        SketchedLinearRegression(method="preconditioned", sketch="sparse_sign"),
        SketchedLogisticRegression(),
    ]
)
def test_sklearn_contract(estimator, check):
    check(estimator)
