"""convexnn: train shallow ReLU networks as convex programs, to a certified global optimum.

Public surface::

    ConvexReLURegressor, ConvexReLUClassifier,
    ConvexGatedReLURegressor, ConvexGatedReLUClassifier,
    lam_max, Certificate, network_objective
"""

from convexnn.certificates import Certificate
from convexnn.estimators import (
    ConvexGatedReLUClassifier,
    ConvexGatedReLURegressor,
    ConvexReLUClassifier,
    ConvexReLURegressor,
)
from convexnn.objective import network_objective
from convexnn.path import lam_max

__version__ = "0.1.0"

__all__ = [
    "Certificate",
    "ConvexGatedReLUClassifier",
    "ConvexGatedReLURegressor",
    "ConvexReLUClassifier",
    "ConvexReLURegressor",
    "__version__",
    "lam_max",
    "network_objective",
]
