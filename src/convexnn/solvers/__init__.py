"""Solvers of the convex programs (SPEC §2, §3).

- :func:`fista` — accelerated proximal gradient with restarts and backtracking line
  search, for the gated-ReLU group lasso (no constraints).
- :func:`augmented_lagrangian` — the ReLU program with its cone constraints, by an
  augmented Lagrangian whose subproblems are FISTA solves; it ends feasible (a final
  restoration where the method itself did not get there).
- :func:`cvxpy_reference` — the same programs written in CVXPY, for tiny problems and
  oracle tests (optional dependency).
"""

from convexnn.solvers._apg import SolverResult, apg
from convexnn.solvers._augmented_lagrangian import augmented_lagrangian
from convexnn.solvers._cvxpy import cvxpy_reference
from convexnn.solvers._fista import fista
from convexnn.solvers._problem import ConvexProblem

__all__ = [
    "ConvexProblem",
    "SolverResult",
    "apg",
    "augmented_lagrangian",
    "cvxpy_reference",
    "fista",
]
