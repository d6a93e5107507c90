"""convexnn's estimators (ReLU and gated ReLU) on the suite's shared patterns."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from benchmarks.suite.problem import Problem, fold_hidden_bias
from benchmarks.suite.solvers.base import Solver, SolverOutput, SolverSkipped

__all__ = ["ConvexnnSolver", "estimator_for"]


def estimator_for(kind: str, loss: str):
    """The convexnn estimator class for a problem ``kind`` × ``loss``."""
    import convexnn

    if kind == "gated":
        return convexnn.ConvexGatedReLURegressor if loss == "squared" else (
            convexnn.ConvexGatedReLUClassifier)
    return convexnn.ConvexReLURegressor if loss == "squared" else convexnn.ConvexReLUClassifier


def _gates_of(est: Any) -> np.ndarray | None:
    """The gated estimator's ``gates_`` (one row per neuron) as a ``(d, m)`` array."""
    g = getattr(est, "gates_", None)
    if g is None:
        return None
    return np.ascontiguousarray(np.asarray(g, dtype=np.float64).T)


class ConvexnnSolver(Solver):
    losses = ("squared", "logistic", "softmax")

    def __init__(self, kind: str, *, tol: float = 1e-6, grow: bool = False, name: str = "",
                 **options: Any):
        super().__init__(**options)
        self.kind = kind
        self.kinds = (kind,)
        self.name = f"convexnn_{kind}" + (f"_{name}" if name else "")
        self.tol = tol
        self.grow = grow

    def supports(self, problem: Problem, device: str) -> str | None:
        why = super().supports(problem, device)
        if why:
            return why
        try:
            estimator_for(problem.kind, problem.loss)
        except (ImportError, AttributeError) as exc:
            return f"convexnn estimators not importable here: {exc}"
        return None

    def run(self, problem: Problem, *, seed: int, device: str, context: dict) -> SolverOutput:
        cls = estimator_for(problem.kind, problem.loss)
        # Fixed patterns: the shared gates (convexnn takes them as rows). Growing: convexnn
        # as a user runs it, from as many gates of its own and column generation (it does
        # not grow from user-given gates).
        patterns: Any = problem.gates.T.copy() if not self.grow else problem.n_patterns
        # an output bias: the estimator appends the constant column itself (the gates,
        # rows over X with that column, are then of its accepted (n_gates, d + 1) shape)
        bias = problem.output_bias and problem.kind == "relu"
        X = problem.X_without_bias_column if bias else problem.X
        params: dict[str, Any] = dict(
            lam=problem.lam, patterns=patterns, fit_intercept=bias, tol=self.tol,
            random_state=seed, device=device, dtype="float64" if device == "cpu" else None,
        )
        params["grow"] = self.grow
        params.update(self.options)
        est = cls(**params)
        y = problem.y
        if problem.loss == "logistic":
            y = np.where(y > 0, 1, -1)
        t0 = time.perf_counter()
        est.fit(X, y)
        elapsed = time.perf_counter() - t0
        cert = getattr(est, "certificate_", None)
        W1, W2 = (np.asarray(c, dtype=np.float64) for c in est.coefs_)
        intercepts = None
        if bias:
            (W1,), intercepts = fold_hidden_bias(W1, est.intercepts_[0], est.intercepts_[1])
        if problem.loss == "logistic" and W2.shape[1] == 1:
            classes = list(getattr(est, "classes_", [-1, 1]))
            if float(classes[-1]) < 0:  # pragma: no cover - classes_ are sorted
                W2 = -W2
                if intercepts is not None:
                    intercepts[1] = -intercepts[1]
        gates = _gates_of(est) if problem.kind == "gated" else None
        if problem.kind == "gated" and gates is None:
            raise SolverSkipped("the gated estimator exposes no gates_ attribute")
        # the fit's history: the best seeding run's network ("seed"), then every
        # working-set round's iterate ("solve", "grow"), each a network whose SPEC §1
        # value is the recorded "primal" (feasible points of the program), with the time
        # since the fit started — the same view as the Adam/SGD traces (best so far)
        trace = [
            (float(h["time"]), float(h.get("objective", h.get("primal"))))
            for h in getattr(est, "history_", []) or []
            if "time" in h and ("objective" in h or "primal" in h)
            and math.isfinite(float(h.get("objective", h.get("primal"))))
            and float(h.get("violation", 0.0)) <= 1e-8  # (first-order ReLU rounds)
        ]
        matvecs = np.nan
        for attr in ("n_matvecs_", "n_operator_applications_"):
            if hasattr(est, attr):
                matvecs = float(getattr(est, attr))
        hist = getattr(est, "history_", None) or []
        if np.isnan(matvecs) and hist and "matvecs" in hist[-1]:
            matvecs = float(hist[-1]["matvecs"])
        return SolverOutput(
            coefs=[W1, W2],
            intercepts=intercepts,
            gates=gates,
            time=elapsed,
            n_iter=float(getattr(est, "n_iter_", np.nan)),
            matvecs=matvecs,
            gap=float(getattr(cert, "rel_gap", np.nan)) if cert is not None else np.nan,
            scope=str(getattr(cert, "scope", "")) if cert is not None else "",
            trace=trace,
            extra={"reported_objective": float(getattr(est, "objective_", np.nan)),
                   "n_patterns": int(getattr(est, "n_patterns_", problem.n_patterns))},
        )
