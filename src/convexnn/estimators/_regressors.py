"""Regressors: squared loss, SPEC §1 objective."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin, _fit_context

from convexnn.estimators._base import BaseConvexNetwork
from convexnn.losses import Loss, SquaredLoss
from convexnn.utils import to_tensor

__all__ = ["ConvexGatedReLURegressor", "ConvexReLURegressor"]

_DOC_PARAMS = r"""
    Parameters
    ----------
    lam : float, default=1e-3
        λ > 0 of SPEC §1 (weight decay ``λ/2 Σ‖w_j‖² + α_j²`` with the ``1/n`` data term;
        scikit-learn's ``MLPRegressor(alpha=a)`` corresponds to ``λ = a / n``).
    patterns : "exact", int or array of shape (n_gates, n_features), default=100
        ``"exact"``: every activation pattern of the data (small rank only; the
        certificate is then global). An int: that many sampled Gaussian gates.
        An array: the given gate vectors (optionally with a last bias entry).
    fit_intercept : bool, default=True
        Hidden biases (a regularized constant column) and an unregularized output bias.
    tol : float, default=1e-6
        Target relative duality gap of the convex program.
    max_iter : int, default=10000
        Budget of solver iterations (Newton steps or first-order steps).
    grow : bool or "thorough", default=True
        Column generation: add the patterns of neurons that violate the dual constraint
        until none is found (not with ``patterns="exact"`` or user gates). ``"thorough"``
        (ReLU, one output): search for violators by a monotone ascent from up to 1,024
        starts — it finds the violators the default search misses, and lower optima at
        small λ (KEEL pool at 0.001·λ_max: 36 of 47 fits more than 1e-3 above the best
        found, against 5), at the price of more growth rounds (breast cancer: about twice
        the time for a 0.1–0.4 % lower objective).
    seed_runs : int, default=3
        With ``grow``: this many short Adam runs (``seed_width`` neurons, Adam's step
        decaying from 3e-2 to 1e-2) of the same
        objective seed the program with their neurons' activation patterns. Each run is a
        feasible point of the program over the union, so the convex optimum is at most the
        best run's objective. 0 turns seeding off. The Adam runs advance together, one
        pass over the data for all of them per epoch.
    seed_epochs : int, default=3000
        Full-batch epochs (Adam) or iterations (L-BFGS) of each seeding run.
    seed_optimizer : {"adam", "lbfgs"}, default="adam"
        The seeding runs' method. ``"lbfgs"`` (strong-Wolfe L-BFGS, stops early once it
        stalls) is faster on small problems with ``seed_epochs`` of a few hundred, but its
        local minima seed worse programs (measured in BENCHMARKS.md, target 3).
    seed_width : int or "auto", default="auto"
        Hidden neurons of each seeding run. ``"auto"``: as wide as lets the program over
        the union of the runs' patterns (and the sampled ones) take one Newton solve
        (between 64 and 256; wider seeds give richer patterns); for ReLU with several
        outputs, whose fit returns the refined best seed, ``n c / 64`` between 64 and
        128. At most ``n c / 2``.
    max_patterns : int, default=20000
        Memory budget of exact enumeration (a clear error beyond it).
    warm_start : bool, default=False
        Start from the previous fit's solution and patterns (regularization paths).
    random_state : int, RandomState or None
        Seeds the pattern sampling and the violation search.
    device : str or None
        ``None``: where X is (a torch tensor's device, else the CPU); ``"cuda"`` etc.
    dtype : {"float32", "float64"} or None
        ``None``: float32 for float32 input, else float64.
    verbose : int, default=0
        ``1``: print a line per phase (seeding, each working-set round, each growth
        round) to stderr and log the certificate through ``logging.getLogger("convexnn")``;
        ``2``: also a line per interior-point (Newton) step. A ``callback`` given to
        ``fit`` replaces the printed lines.

    Attributes
    ----------
    coefs_ : list of two arrays, (n_features, n_neurons) and (n_neurons, n_outputs)
    intercepts_ : list of two arrays, (n_neurons,) and (n_outputs,)
    objective_ : float
        SPEC §1 objective of the returned network on the training data.
    certificate_ : Certificate
        ``primal``, ``lower_bound``, ``gap``, ``rel_gap``, ``scope`` and ``max_violation``.
    n_iter_, n_neurons_, n_patterns_ : int
    history_ : list of dict
        Working-set and growth rounds: how the fit got to its result.
"""


class _Regressor(RegressorMixin, BaseConvexNetwork):
    def _loss(self) -> Loss:
        return SquaredLoss()

    def __sklearn_tags__(self):  # noqa: ANN204
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, callback: Any = None) -> _Regressor:
        """Fit the network to ``(X, y)``; ``callback(info)`` is called after each round."""
        X, y, device, dtype = self._prepare(X, y, reset=True, multi_output=True,
                                            y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        Y = to_tensor(y.reshape(y.shape[0], -1), dtype=dtype, device=device)
        self._fit(X, Y, device, dtype, callback)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Network outputs, shape (n,) or (n, n_outputs)."""
        out = self._forward(X)
        return out[:, 0] if self.n_outputs_ == 1 else out


class ConvexReLURegressor(_Regressor):
    __doc__ = (
        r"""Two-layer ReLU network for regression, trained by its convex program.

    Minimizes :math:`\frac1{2n}\sum_k (f(x_k) - y_k)^2 + \frac\lambda2\sum_j(\|w_j\|^2 +
    \alpha_j^2)` through the equivalent cone-constrained group lasso (SPEC §2), and
    certifies the result with a dual lower bound (SPEC §4).
"""
        + _DOC_PARAMS
        + r"""
    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.preprocessing import StandardScaler
    >>> X, y = load_diabetes(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X); y = (y - y.mean()) / y.std()
    >>> est = ConvexReLURegressor(lam=1e-2, patterns=20, random_state=0).fit(X, y)
    >>> est.certificate_.gap >= -1e-9
    True
"""
    )
    _relu = True


class ConvexGatedReLURegressor(_Regressor):
    __doc__ = (
        r"""Two-layer gated ReLU network for regression (SPEC §3, an unconstrained group lasso).

    :math:`f(x) = \sum_j 1[\tilde x^\top g_j \ge 0]\,\tilde x^\top w_j\,\alpha_j + b` with fixed
    gates ``g_j`` (``gates_``).
"""
        + _DOC_PARAMS
    )
    _relu = False
