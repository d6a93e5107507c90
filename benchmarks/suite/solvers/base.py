"""What a solver of the suite is: a small class with a name, a capability check and ``run``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.suite.problem import Problem

__all__ = ["Solver", "SolverOutput", "SolverSkipped"]


class SolverSkipped(RuntimeError):
    """The solver cannot run here (peer not installed, device absent, problem too big)."""


@dataclass
class SolverOutput:
    """A returned network and what the solver says about its own run.

    ``coefs = [W1 (d, m), W2 (m, c)]``, ``intercepts`` (or ``None``), and ``gates``
    (``(d, m)``) for gated networks. ``trace`` holds ``(seconds, objective)`` pairs
    when the solver records its progress (used for time-to-tolerance).
    """

    coefs: list[np.ndarray]
    intercepts: list[np.ndarray] | None
    time: float
    gates: np.ndarray | None = None
    n_iter: float = float("nan")
    matvecs: float = float("nan")
    gap: float = float("nan")
    scope: str = ""
    trace: list[tuple[float, float]] = field(default_factory=list)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Solver:
    """Base class. Subclasses set ``name``, ``kinds`` and ``losses`` and implement ``run``.

    ``supports`` returns ``None`` when the problem is accepted, otherwise the reason it
    is not (recorded in the results as a skip, never silently dropped).
    """

    name: str = ""
    kinds: tuple[str, ...] = ("relu",)
    losses: tuple[str, ...] = ("squared",)
    #: Solvers whose width follows the convex solution (``context["width"]``).
    needs_width: bool = False

    def __init__(self, **options: Any) -> None:
        self.options = options

    def supports(self, problem: Problem, device: str) -> str | None:
        if problem.kind not in self.kinds:
            return f"{self.name} does not solve {problem.kind} problems"
        if problem.loss not in self.losses:
            return f"{self.name} does not support the {problem.loss} loss"
        return None

    def run(
        self, problem: Problem, *, seed: int, device: str, context: dict[str, Any]
    ) -> SolverOutput:  # pragma: no cover - interface
        raise NotImplementedError
