"""Explicit solver registry: name → factory(mode) → :class:`Solver`.

``mode`` is ``"quick"`` (CI, seconds), ``"small"`` (a 2-core machine, reduced budgets) or
``"full"``; factories pick budgets from it (``_BUDGET``).
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.suite.solvers.base import Solver, SolverOutput, SolverSkipped
from benchmarks.suite.solvers.convexnn_solver import ConvexnnSolver
from benchmarks.suite.solvers.cvxpy_solver import CvxpySolver
from benchmarks.suite.solvers.pyscnn_solver import PyscnnSolver
from benchmarks.suite.solvers.sklearn_solver import SklearnMLPSolver
from benchmarks.suite.solvers.torch_solver import TorchSolver

__all__ = ["SOLVERS", "Solver", "SolverOutput", "SolverSkipped", "make_solver"]


_BUDGET = {
    # mode: (seeds, adam lrs, sgd lrs, epochs, pyscnn iters, sklearn iters)
    "quick": (2, (1e-2,), (1e-1,), 200, 500, 100),
    "small": (5, (1e-2,), (1e-1,), 500, 2000, 500),
    "full": (5, (1e-3, 1e-2), (1e-2, 1e-1), 3000, 10_000, 2000),
}


def _torch(optimizer: str, mode: str) -> Solver:
    seeds, adam_lrs, sgd_lrs, epochs, _, _ = _BUDGET[mode]
    lrs = adam_lrs if optimizer == "adam" else sgd_lrs
    return TorchSolver(optimizer, n_seeds=seeds, lrs=lrs, max_epochs=epochs)


SOLVERS: dict[str, Callable[[str], Solver]] = {
    # convexnn as a user runs it (column generation from the shared gates) ...
    "convexnn_relu": lambda mode: ConvexnnSolver("relu", grow=True),
    # ... and on exactly the shared patterns, to compare with pyscnn and CVXPY.
    "convexnn_relu_fixed": lambda mode: ConvexnnSolver("relu", grow=False, name="fixed"),
    "convexnn_gated": lambda mode: ConvexnnSolver("gated", grow=False),
    "pyscnn_al": lambda mode: PyscnnSolver("relu", max_iters=_BUDGET[mode][4]),
    "pyscnn_rfista": lambda mode: PyscnnSolver("gated", max_iters=_BUDGET[mode][4]),
    "cvxpy_clarabel": lambda mode: CvxpySolver(
        max_size={"quick": 20_000, "small": 250_000, "full": 400_000}[mode]),
    "torch_adam": lambda mode: _torch("adam", mode),
    "torch_sgd": lambda mode: _torch("sgd", mode),
    "sklearn_mlp": lambda mode: SklearnMLPSolver(max_iter=_BUDGET[mode][5]),
}


def make_solver(name: str, mode: str) -> Solver:
    try:
        return SOLVERS[name](mode)
    except KeyError:
        raise KeyError(f"unknown solver {name!r}; registered: {sorted(SOLVERS)}") from None
