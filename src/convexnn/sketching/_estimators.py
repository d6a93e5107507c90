r"""scikit-learn estimators on the sketched solvers.

* :class:`SketchedLinearRegression` — :math:`\min \|y - Xw - c\|^2` (like ``LinearRegression``);
* :class:`SketchedRidge` — :math:`\min \|y - Xw - c\|^2 + \alpha\|w\|^2` (like ``Ridge``);
* :class:`SketchedLogisticRegression` — :math:`\min \tfrac12\|w\|^2 + C\sum_i
  \log(1 + e^{-y_i(x_i^\top w + c)})` by the Newton sketch / Newton-LESS (like
  ``LogisticRegression(penalty="l2")``; one-vs-rest for more than two classes).

The intercept is fitted by implicit centering (``X − 1 μᵀ`` is never formed, so sparse
input stays sparse). ``__init__`` only stores parameters; validation happens in ``fit``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from convexnn.exceptions import ConvergenceWarning, ValidationError
from convexnn.sketching._embeddings import SKETCH_KINDS
from convexnn.sketching._inputs import Operand, check_choice, numpy_to_tensor
from convexnn.sketching._lstsq import (
    METHODS,
    _check_max_iter,
    _check_tol,
    check_sketch_size,
    solve_operand,
)
from convexnn.sketching._newton import newton_sketch_logistic
from convexnn.utils import resolve_device, resolve_dtype

__all__ = ["SketchedLinearRegression", "SketchedRidge", "SketchedLogisticRegression"]


def _host(a: Any) -> Any:
    """A dense torch tensor (on any device) as a NumPy array, for scikit-learn's checks;
    anything else unchanged."""
    if isinstance(a, torch.Tensor) and a.layout == torch.strided:
        return a.detach().cpu().numpy()
    return a


def _to_torch(x: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if hasattr(x, "tocoo"):
        coo = x.tocoo()
        idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        vals = torch.as_tensor(np.asarray(coo.data), dtype=dtype)
        t = torch.sparse_coo_tensor(idx, vals, coo.shape, check_invariants=False).coalesce()
        return t.to(device)
    return numpy_to_tensor(np.asarray(x)).to(device=device, dtype=dtype)


class _SketchedLeastSquares(RegressorMixin, BaseEstimator):
    """Shared fit/predict of the two least-squares estimators."""

    _alpha_attr: str | None = None

    def _alpha(self) -> float:
        return 0.0

    def fit(self, X: Any, y: Any) -> _SketchedLeastSquares:
        """Fit the model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        self
        """
        owner = type(self).__name__
        dev = resolve_device(self.device, X, owner=owner)  # device=None: where X is
        X, y = _host(X), _host(y)
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc", "coo"], y_numeric=True,
                             multi_output=True, dtype=[np.float64, np.float32])
        method = check_choice(self.method, "method", owner, METHODS)
        sketch = check_choice(self.sketch, "sketch", owner, ("auto",) + SKETCH_KINDS)
        tol = _check_tol(self.tol, owner)
        max_iter = _check_max_iter(self.max_iter, owner)
        alpha = self._alpha()
        dt = resolve_dtype(self.dtype, X, owner=owner)
        n, d = X.shape
        sketch_size = check_sketch_size(self.sketch_size, n, d, alpha, owner)
        rs = check_random_state(self.random_state)
        xt = _to_torch(X, dev, dt)
        yt = torch.as_tensor(np.asarray(y), device=dev, dtype=dt)
        vec = yt.ndim == 1
        y2 = yt.unsqueeze(1) if vec else yt
        if self.fit_intercept:
            if xt.layout == torch.sparse_coo:
                mu = torch.sparse.sum(xt, dim=0).to_dense() / n
            else:
                mu = xt.mean(0)
            ymean = y2.mean(0)
            op = Operand(xt, shift=mu)
            y2 = y2 - ymean
        else:
            mu = torch.zeros(d, device=dev, dtype=dt)
            ymean = torch.zeros(y2.shape[1], device=dev, dtype=dt)
            op = Operand(xt)
        coef, info = solve_operand(op, y2, method=method, sketch=sketch, sketch_size=sketch_size,
                                   tol=tol, alpha=alpha, max_iter=max_iter, random_state=rs,
                                   owner=owner)
        intercept = ymean - mu @ coef
        coef_np = coef.T.detach().cpu().numpy()
        icpt = intercept.detach().cpu().numpy()
        self.coef_ = coef_np[0] if vec else coef_np
        self.intercept_ = float(icpt[0]) if vec else icpt
        self.n_iter_ = max(1, int(info.n_iter))
        self.sketch_size_ = int(info.sketch_size)
        self.rank_ = int(info.rank)
        self.info_ = info
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predict ``X w + c``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        check_is_fitted(self)
        X = validate_data(self, _host(X), accept_sparse=["csr", "csc", "coo"], reset=False)
        return np.asarray(X @ np.asarray(self.coef_).T) + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        return tags


class SketchedLinearRegression(_SketchedLeastSquares):
    r"""Ordinary least squares solved by randomized sketching.

    Minimizes :math:`\|y - X w - c\|_2^2` with :func:`convexnn.sketching.lstsq`
    (sketch-and-solve, iterative Hessian sketch, or sketch-preconditioned CG).

    Parameters
    ----------
    fit_intercept : bool, default True
        Fit ``c`` (by implicit centering; sparse ``X`` stays sparse).
    method : {"auto", "sketch_and_solve", "ihs", "preconditioned", "direct"}, default "auto"
    sketch : {"auto", "gaussian", "rademacher", "srht", "countsketch", "sparse_sign", "less"}
    sketch_size : int, optional
        Rows of the sketch, ``n_features <= sketch_size <= n_samples``.
    tol : float in (0, 1), optional
        Relative objective accuracy (see :func:`~convexnn.sketching.lstsq`).
    max_iter : int, optional
        Iteration cap of the iterative methods.
    random_state : int, RandomState or None
    device : str or torch.device, optional
        Where to compute (default CPU).
    dtype : {"float32", "float64"}, optional
        Precision (default: that of ``X`` when float32, else float64).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
    intercept_ : float or ndarray of shape (n_targets,)
    n_iter_ : int
    sketch_size_ : int
    rank_ : int
        Numerical rank seen by the solver.
    info_ : LstsqInfo
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from convexnn.sketching import SketchedLinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((5000, 4)); y = X @ [1., 2., 3., 4.] + 0.5
    >>> est = SketchedLinearRegression(method="preconditioned", random_state=0).fit(X, y)
    >>> np.round(est.coef_, 6).tolist(), round(est.intercept_, 6)
    ([1.0, 2.0, 3.0, 4.0], 0.5)
    """

    def __init__(
        self,
        *,
        fit_intercept: bool = True,
        method: str = "auto",
        sketch: str = "auto",
        sketch_size: int | None = None,
        tol: float | None = None,
        max_iter: int | None = None,
        random_state: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.fit_intercept = fit_intercept
        self.method = method
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.device = device
        self.dtype = dtype


class SketchedRidge(_SketchedLeastSquares):
    r"""Ridge regression solved by randomized sketching.

    Minimizes :math:`\|y - X w - c\|_2^2 + \alpha \|w\|_2^2` (scikit-learn's ``Ridge``
    objective, intercept unpenalized). The default sketch size follows the effective
    dimension :math:`d_\alpha = \sum_i \sigma_i^2/(\sigma_i^2 + \alpha)`, estimated by a
    pilot sketch, so a strong penalty allows ``sketch_size < n_features``.

    Parameters
    ----------
    alpha : float, default 1.0
        Penalty ``α >= 0``.
    fit_intercept, method, sketch, sketch_size, tol, max_iter, random_state, device, dtype
        As in :class:`SketchedLinearRegression` (``sketch_size >= 1``).

    Attributes
    ----------
    coef_, intercept_, n_iter_, sketch_size_, rank_, info_, n_features_in_
        As in :class:`SketchedLinearRegression`.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        fit_intercept: bool = True,
        method: str = "auto",
        sketch: str = "auto",
        sketch_size: int | None = None,
        tol: float | None = None,
        max_iter: int | None = None,
        random_state: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.method = method
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    def _alpha(self) -> float:
        a = self.alpha
        ok = isinstance(a, (int, float, np.floating)) and not isinstance(a, bool)
        if not ok or not math.isfinite(float(a)) or float(a) < 0:
            raise ValidationError(
                f"The 'alpha' parameter of SketchedRidge must be a float in the range "
                f"[0, inf). Got {a!r} instead."
            )
        return float(a)


class SketchedLogisticRegression(ClassifierMixin, BaseEstimator):
    r"""L2-regularized logistic regression by the Newton sketch (Newton-LESS by default).

    Minimizes scikit-learn's objective
    :math:`\tfrac12\|w\|^2 + C\sum_i \log(1 + e^{-y_i(x_i^\top w + c)})` (labels ±1,
    unpenalized intercept) with sketched Newton steps
    :math:`\Delta = -((S D^{1/2}\tilde X)^\top S D^{1/2}\tilde X + I')^{-1}\nabla F`
    and a backtracking line search (:func:`~convexnn.sketching.newton_sketch_logistic`).
    More than two classes: one-vs-rest.

    Parameters
    ----------
    C : float, default 1.0
        Inverse regularization strength, ``C > 0``.
    fit_intercept : bool, default True
    sketch : {"less", "gaussian", "rademacher", "srht", "countsketch", "sparse_sign"}
        ``"less"`` (LESS-uniform) is Newton-LESS.
    sketch_size : int, optional
        Rows of the sketch (default: for LESS, a cost model picks 8–40 × ``(n_features +
        1)``, see :func:`convexnn.sketching._newton.default_sketch_size`; otherwise
        ``10 (n_features + 1)``; the exact Hessian when it is ``>= n_samples``).
    nnz_per_row : int, optional
        Non-zeros per row of the LESS sketch (default ``min(n_features + 1, 8)``).
    tol : float, default 1e-8
        Stop when the sketched Newton decrement ``λ² <= tol · F``.
    max_iter : int, default 100
    random_state : int, RandomState or None
    device, dtype : optional
        Where and in which precision to compute.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    n_iter_ : ndarray of shape (1,) or (n_classes,)
    objective_ : float
        Sum over the binary problems of the objective at the solution.
    n_features_in_ : int
    """

    def __init__(
        self,
        C: float = 1.0,
        *,
        fit_intercept: bool = True,
        sketch: str = "less",
        sketch_size: int | None = None,
        nnz_per_row: int | None = None,
        tol: float = 1e-8,
        max_iter: int = 100,
        random_state: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.C = C
        self.fit_intercept = fit_intercept
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.nnz_per_row = nnz_per_row
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    def _validate_params(self) -> None:
        owner = type(self).__name__
        c = self.C
        if (not isinstance(c, (int, float, np.floating)) or isinstance(c, bool)
                or not math.isfinite(float(c)) or float(c) <= 0):
            raise ValidationError(
                f"The 'C' parameter of {owner} must be a float in the range (0, inf). "
                f"Got {c!r} instead."
            )
        check_choice(self.sketch, "sketch", owner, SKETCH_KINDS)
        if self.sketch_size is not None and (
            not isinstance(self.sketch_size, (int, np.integer)) or isinstance(
                self.sketch_size, bool) or self.sketch_size < 1
        ):
            raise ValidationError(
                f"The 'sketch_size' parameter of {owner} must be None or an int >= 1. "
                f"Got {self.sketch_size!r} instead."
            )
        if self.nnz_per_row is not None and (
            not isinstance(self.nnz_per_row, (int, np.integer)) or self.nnz_per_row < 1
        ):
            raise ValidationError(
                f"The 'nnz_per_row' parameter of {owner} must be None or an int >= 1. "
                f"Got {self.nnz_per_row!r} instead."
            )
        tol = self.tol
        if (not isinstance(tol, (int, float)) or isinstance(tol, bool)
                or not (0 < float(tol) < 1)):
            raise ValidationError(
                f"The 'tol' parameter of {owner} must be a float in the range (0, 1). "
                f"Got {tol!r} instead."
            )
        mi = self.max_iter
        if not isinstance(mi, (int, np.integer)) or isinstance(mi, bool) or mi < 1:
            raise ValidationError(
                f"The 'max_iter' parameter of {owner} must be an int >= 1. Got {mi!r} instead."
            )

    def fit(self, X: Any, y: Any) -> SketchedLogisticRegression:
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        owner = type(self).__name__
        dev = resolve_device(self.device, X, owner=owner)  # device=None: where X is
        X, y = validate_data(self, _host(X), _host(y), dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self._validate_params()
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValidationError(
                f"{owner} needs samples of at least 2 classes in the data; got only one "
                f"class: {self.classes_[0]!r}."
            )
        dt = resolve_dtype(self.dtype, X, owner=owner)
        rs = check_random_state(self.random_state)
        xt = numpy_to_tensor(np.asarray(X)).to(device=dev, dtype=dt)
        problems = [self.classes_[1]] if len(self.classes_) == 2 else list(self.classes_)
        coefs, icpts, iters, obj = [], [], [], 0.0
        for cls in problems:
            yt = torch.as_tensor(np.where(y == cls, 1.0, -1.0), device=dev, dtype=dt)
            res = newton_sketch_logistic(
                xt, yt, C=float(self.C), fit_intercept=self.fit_intercept, sketch=self.sketch,
                sketch_size=self.sketch_size, nnz_per_row=self.nnz_per_row, tol=float(self.tol),
                max_iter=int(self.max_iter), random_state=rs,
            )
            if not res.converged:
                warnings.warn(
                    f"{owner} did not converge in max_iter={self.max_iter} Newton iterations "
                    f"(tol={self.tol:g}); increase max_iter or sketch_size.",
                    ConvergenceWarning,
                    stacklevel=2,
                )
            coefs.append(res.coef.detach().cpu().numpy())
            icpts.append(res.intercept)
            iters.append(max(1, res.n_iter))
            obj += res.objective
        self.coef_ = np.vstack(coefs).astype(X.dtype, copy=False)
        self.intercept_ = np.asarray(icpts, dtype=X.dtype)
        self.n_iter_ = np.asarray(iters, dtype=np.int32)
        self.objective_ = float(obj)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Signed distance ``X wᵀ + c``: shape (n,) for two classes, (n, n_classes) else."""
        check_is_fitted(self)
        X = validate_data(self, _host(X), reset=False, dtype=[np.float64, np.float32])
        scores = X @ self.coef_.T + self.intercept_
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (one-vs-rest probabilities normalized for > 2 classes)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p1 = 1.0 / (1.0 + np.exp(-scores))
            return np.column_stack([1 - p1, p1])
        p = 1.0 / (1.0 + np.exp(-scores))
        return p / p.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels."""
        scores = self.decision_function(X)
        idx = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[idx]
