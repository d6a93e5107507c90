"""Explicit solver registry: name → factory(mode) → :class:`Solver`.

``mode`` is ``"quick"`` (CI, seconds) or ``"full"``; factories pick budgets from it.
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


def _torch(optimizer: str, mode: str) -> Solver:
    if mode == "quick":  # CI: one learning rate, two seeds, short runs
        lrs = (1e-2,) if optimizer == "adam" else (1e-1,)
        return TorchSolver(optimizer, n_seeds=2, lrs=lrs, max_epochs=200)
    return TorchSolver(optimizer, n_seeds=5, max_epochs=3000)


SOLVERS: dict[str, Callable[[str], Solver]] = {
    "convexnn_relu": lambda mode: ConvexnnSolver("relu"),
    "convexnn_gated": lambda mode: ConvexnnSolver("gated"),
    "pyscnn_al": lambda mode: PyscnnSolver("relu", max_iters=500 if mode == "quick" else 10_000),
    "pyscnn_rfista": lambda mode: PyscnnSolver(
        "gated", max_iters=1000 if mode == "quick" else 10_000),
    "cvxpy_clarabel": lambda mode: CvxpySolver(max_size=20_000 if mode == "quick" else 400_000),
    "torch_adam": lambda mode: _torch("adam", mode),
    "torch_sgd": lambda mode: _torch("sgd", mode),
    "sklearn_mlp": lambda mode: SklearnMLPSolver(max_iter=100 if mode == "quick" else 2000),
}


def make_solver(name: str, mode: str) -> Solver:
    try:
        return SOLVERS[name](mode)
    except KeyError:
        raise KeyError(f"unknown solver {name!r}; registered: {sorted(SOLVERS)}") from None
