"""scikit-learn estimators: two-layer (gated) ReLU networks trained by convex programs."""

from convexnn.estimators._classifiers import ConvexGatedReLUClassifier, ConvexReLUClassifier
from convexnn.estimators._regressors import ConvexGatedReLURegressor, ConvexReLURegressor

__all__ = [
    "ConvexGatedReLUClassifier",
    "ConvexGatedReLURegressor",
    "ConvexReLUClassifier",
    "ConvexReLURegressor",
]
