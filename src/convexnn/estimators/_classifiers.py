"""Classifiers: logistic loss (binary), softmax cross-entropy (multiclass)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.utils.multiclass import check_classification_targets

from convexnn.estimators._base import BaseConvexNetwork
from convexnn.estimators._regressors import _DOC_PARAMS
from convexnn.losses import LogisticLoss, Loss, SoftmaxLoss
from convexnn.utils import to_tensor

__all__ = ["ConvexGatedReLUClassifier", "ConvexReLUClassifier"]


class _Classifier(ClassifierMixin, BaseConvexNetwork):
    def _loss(self) -> Loss:
        return LogisticLoss() if len(self.classes_) == 2 else SoftmaxLoss()

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, callback: Any = None) -> _Classifier:
        """Fit the network to ``(X, y)``; labels may be any hashable values."""
        X, y, device, dtype = self._prepare(X, y, reset=True, multi_output=False,
                                            y_numeric=False)
        check_classification_targets(y)
        self.classes_, yi = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} can't train when only one class is present: "
                f"y holds the single class {self.classes_[0]!r}; expected at least 2 classes."
            )
        if len(self.classes_) == 2:
            Y = to_tensor(np.where(yi == 1, 1.0, -1.0)[:, None], dtype=dtype, device=device)
        else:
            Y = torch.nn.functional.one_hot(
                torch.as_tensor(yi, device=device), len(self.classes_)
            ).to(dtype)
        self._fit(X, Y, device, dtype, callback)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Network outputs: the logit of ``classes_[1]`` (binary, shape (n,)) or the
        class scores (multiclass, shape (n, n_classes))."""
        out = self._forward(X)
        return out[:, 0] if len(self.classes_) == 2 else out

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities: sigmoid (binary) or softmax (multiclass) of the outputs."""
        z = self.decision_function(X)
        if z.ndim == 1:
            p1 = 1.0 / (1.0 + np.exp(-z))
            return np.column_stack([1.0 - p1, p1])
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        return np.log(np.clip(self.predict_proba(X), 1e-300, None))

    def predict(self, X: Any) -> np.ndarray:
        z = self.decision_function(X)
        idx = (z > 0).astype(int) if z.ndim == 1 else z.argmax(axis=1)
        return self.classes_[idx]


class ConvexReLUClassifier(_Classifier):
    __doc__ = (
        r"""Two-layer ReLU network classifier trained by its convex program.

    Binary: logistic loss on one output (``y ∈ {−1, +1}`` for ``classes_[0], classes_[1]``).
    Multiclass: softmax cross-entropy on one output per class, every neuron feeding every
    output. The exact convex program of such networks is copositive (SPEC §5). With
    seeding (the default) the fit refines the best seeding network by L-BFGS, then solves
    the convex program restricted to its neurons' (pattern, output direction) pairs by an
    interior point and adds the pairs of violating neurons (column generation) while the
    program is small enough (``convexnn.directional``; ``history_`` phase
    ``"directional"``); larger ones return the refined seed. The certificate is a dual
    lower bound valid for vector-output networks over the sampled patterns
    (``certificate_``; loose, with a warning when its gap is above ``tol``).
    ``seed_runs=0`` solves the one-output-per-neuron program instead.
"""
        + _DOC_PARAMS
    )
    _relu = True


class ConvexGatedReLUClassifier(_Classifier):
    __doc__ = (
        r"""Two-layer gated ReLU network classifier (SPEC §3)."""
        + _DOC_PARAMS
    )
    _relu = False
