"""``pyscnn`` (import name ``scnn``) as an installed peer: R-FISTA (gated) and AL (ReLU).

The suite builds the gates and passes the SAME gates to pyscnn
(``ConvexGatedReLU(G)`` / ``ConvexReLU(G)``), with ``unitize_data=False`` so that it
solves the program on the same ``X`` (its default rescales the columns, which
changes the regularizer), ``bias=False`` (the bias column is already in ``X``) and
``NeuronGL1(λ)``.

Scaling check (read from ``scnn/private/models/convex/convex_mlp.py``): pyscnn's
objective is ``‖ŷ − y‖² / (2 n c) + λ Σ_i ‖u_i‖``, identical to SPEC §2/§3 for one
output (``c = 1``), which is the only case the suite gives it; the runner re-scores
its returned network with our formula (the suite's tests check the two agree).
Its activations use ``X g > 0`` (strict), ours ``X g ≥ 0``: they differ only on exact
ties, which Gaussian gates do not produce.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.suite.problem import Problem
from benchmarks.suite.solvers.base import Solver, SolverOutput

__all__ = ["PyscnnSolver"]


class PyscnnSolver(Solver):
    kinds = ("relu", "gated")
    losses = ("squared",)

    def __init__(self, kind: str, max_iters: int = 10_000, tol: float = 1e-6, **options: Any):
        super().__init__(**options)
        self.kind = kind
        self.kinds = (kind,)
        self.name = "pyscnn_rfista" if kind == "gated" else "pyscnn_al"
        self.max_iters = max_iters
        self.tol = tol

    def supports(self, problem: Problem, device: str) -> str | None:
        why = super().supports(problem, device)
        if why:
            return why
        try:
            import scnn  # noqa: F401
        except ImportError:
            return ("pyscnn is not installed "
                    "(pip install --no-deps pyscnn linalg_backends opt_einsum)")
        if problem.n_classes > 2:
            return "pyscnn's multi-output model is one-vs-all with a different regularizer"
        return None

    def run(self, problem: Problem, *, seed: int, device: str, context: dict) -> SolverOutput:
        from scnn.metrics import Metrics
        from scnn.models import ConvexGatedReLU, ConvexReLU
        from scnn.optimize import optimize_model
        from scnn.regularizers import NeuronGL1
        from scnn.solvers import AL, RFISTA

        G = problem.gates
        dev = "cuda" if device.startswith("cuda") else "cpu"
        dtype = self.options.get("dtype", "float32" if dev == "cuda" else "float64")
        if self.kind == "gated":
            model = ConvexGatedReLU(G, c=1, bias=False)
            solver = RFISTA(model, max_iters=self.max_iters, tol=self.tol)
        else:
            model = ConvexReLU(G, c=1, bias=False)
            solver = AL(model, max_primal_iters=self.max_iters, max_dual_iters=self.max_iters,
                        tol=self.tol, constraint_tol=self.tol)
        t0 = time.perf_counter()
        nc, metrics = optimize_model(
            model, solver, Metrics(), problem.X, problem.y,
            regularizer=NeuronGL1(problem.lam), unitize_data=False,
            device=dev, dtype=dtype, seed=seed,
        )
        elapsed = time.perf_counter() - t0
        W1, W2 = (np.asarray(_np(a), dtype=np.float64) for a in nc.parameters[:2])
        coefs = [W1.T, W2.T]
        gates = np.asarray(_np(nc.G), dtype=np.float64) if self.kind == "gated" else None
        obj = np.asarray(getattr(metrics, "objective", []), dtype=float)
        times = np.asarray(getattr(metrics, "time", []), dtype=float)
        trace = []
        if self.kind == "gated" and len(obj) == len(times):
            trace = [(float(t), float(o)) for t, o in zip(times, obj)]
        return SolverOutput(
            coefs=coefs, intercepts=None, gates=gates, time=elapsed, trace=trace,
            scope="",
            extra={"reported_objective": float(obj[-1]) if len(obj) else np.nan,
                   "dtype": dtype},
        )


def _np(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return np.asarray(a)
