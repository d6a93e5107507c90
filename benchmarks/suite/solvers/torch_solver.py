"""PyTorch Adam / SGD on the SPEC §1 objective, through :func:`convexnn.nonconvex.train_network`.

Best of 5 seeds over a small learning-rate grid, at the width of the convex ReLU solution
of the same problem (``context["width"]``); the reported time is the sum over all runs
(what a user pays for "best of"), the network is the one with the lowest objective.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.suite.problem import Problem, fold_hidden_bias
from benchmarks.suite.solvers.base import Solver, SolverOutput

__all__ = ["TorchSolver"]

_DEFAULT_LRS = {"adam": (1e-3, 1e-2), "sgd": (1e-2, 1e-1)}


class TorchSolver(Solver):
    kinds = ("relu",)
    losses = ("squared", "logistic", "softmax")
    needs_width = True

    def __init__(
        self,
        optimizer: str,
        *,
        n_seeds: int = 5,
        lrs: tuple[float, ...] | None = None,
        max_epochs: int = 2000,
        time_limit: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.optimizer = optimizer
        self.name = f"torch_{optimizer}"
        self.n_seeds = n_seeds
        self.lrs = tuple(lrs) if lrs is not None else _DEFAULT_LRS[optimizer]
        self.max_epochs = max_epochs
        self.time_limit = time_limit

    def run(self, problem: Problem, *, seed: int, device: str, context: dict) -> SolverOutput:
        from convexnn.nonconvex import train_network

        width = int(context.get("width") or max(2 * problem.n_patterns, 1))
        # an output bias: the hidden biases (regularized) replace the constant column
        bias = problem.output_bias and problem.kind == "relu"
        X = problem.X_without_bias_column if bias else problem.X
        best = None
        trace: list[tuple[float, float]] = []
        offset, best_val, epochs = 0.0, np.inf, 0
        t0 = time.perf_counter()
        for lr in self.lrs:
            for s in range(self.n_seeds):
                res = train_network(
                    X, problem.y, n_neurons=width, lam=problem.lam, loss=problem.loss,
                    fit_intercept=bias, optimizer=self.optimizer, lr=lr,
                    max_epochs=self.max_epochs, time_limit=self.time_limit,
                    random_state=1000 * seed + s, device=device, dtype="float64"
                    if device == "cpu" else "float32",
                )
                epochs += res.n_epochs
                for rec in res.history:
                    best_val = min(best_val, rec["objective"])
                    trace.append((offset + rec["time"], best_val))
                offset += res.time
                if best is None or res.objective < best[0].objective:
                    best = (res, lr, s)
        elapsed = time.perf_counter() - t0
        assert best is not None
        res, lr, s = best
        coefs, intercepts = [np.asarray(c) for c in res.coefs], None
        if bias:
            (coefs[0],), intercepts = fold_hidden_bias(coefs[0], *res.intercepts)
        return SolverOutput(
            coefs=coefs, intercepts=intercepts, time=elapsed,
            n_iter=float(epochs), trace=trace,
            extra={"best_lr": lr, "best_seed": s, "runs": self.n_seeds * len(self.lrs),
                   "width": width},
        )
