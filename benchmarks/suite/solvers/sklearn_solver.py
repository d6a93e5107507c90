r"""scikit-learn's ``MLPRegressor`` / ``MLPClassifier`` with the matching ``alpha``.

Mapping (read from ``sklearn/neural_network/_multilayer_perceptron.py``, ``_backprop``):
sklearn minimizes ``loss + (alpha / (2 n)) Σ ‖coefs‖²`` with ``loss`` the mean of
``½(ŷ − y)²`` (squared, one output) or of the log-loss (binary: sigmoid output, i.e. our
logistic loss on ±1 labels; multiclass: softmax cross-entropy). Hence ``alpha = λ n``
exactly — **for the full-batch L-BFGS solver used here**. (With its mini-batch solvers the
penalty is divided by the batch size instead of n, so ``alpha`` would have to be
``λ · batch_size``.) Two differences remain, both in sklearn's favour and both
measured honestly by re-scoring the returned network with SPEC §1: its intercepts are
never penalized, and it always fits an output bias.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

from benchmarks.suite.problem import Problem
from benchmarks.suite.solvers.base import Solver, SolverOutput

__all__ = ["SklearnMLPSolver"]


class SklearnMLPSolver(Solver):
    name = "sklearn_mlp"
    kinds = ("relu",)
    losses = ("squared", "logistic", "softmax")
    needs_width = True

    def __init__(self, max_iter: int = 2000, **options: Any) -> None:
        super().__init__(**options)
        self.max_iter = max_iter

    def run(self, problem: Problem, *, seed: int, device: str, context: dict) -> SolverOutput:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        width = int(context.get("width") or max(2 * problem.n_patterns, 1))
        common = dict(
            hidden_layer_sizes=(width,), activation="relu", solver="lbfgs",
            alpha=problem.lam * problem.n, max_iter=self.max_iter, max_fun=10 * self.max_iter,
            tol=1e-10, random_state=seed,
        )
        est = MLPRegressor(**common) if problem.loss == "squared" else MLPClassifier(**common)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(problem.X, problem.y)
        elapsed = time.perf_counter() - t0
        W1, W2 = est.coefs_
        b1, b2 = est.intercepts_
        if problem.loss == "logistic":
            # sklearn's single logit is for classes_[1]; our labels are ±1 with +1 = "1.0".
            sign = 1.0 if float(est.classes_[1]) > 0 else -1.0
            W2, b2 = sign * W2, sign * b2
        return SolverOutput(
            coefs=[W1, W2], intercepts=[b1, b2], time=elapsed, n_iter=float(est.n_iter_),
            extra={"width": width, "alpha": problem.lam * problem.n},
        )
