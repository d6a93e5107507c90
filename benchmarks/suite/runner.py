"""Run experiments into long-format rows: one per dataset × λ × solver × repetition."""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.suite.datasets import DatasetUnavailable, load, planted_teacher
from benchmarks.suite.experiments import Experiment, ProblemSpec
from benchmarks.suite.memory import peak_memory
from benchmarks.suite.problem import Problem, prepare, rebalance, score, test_metric
from benchmarks.suite.solvers import SolverSkipped, make_solver

__all__ = ["COLUMNS", "TOL", "count_neurons", "finalize", "merge", "run_experiment",
           "run_problem"]

logger = logging.getLogger(__name__)

#: Relative suboptimality counted as "solved" in the performance profile.
TOL = 1e-3

COLUMNS = [
    "experiment", "dataset", "n", "d", "n_patterns", "kind", "loss", "lam", "lam_label",
    "solver", "device", "repetition", "status", "reason", "objective", "best_objective",
    "rel_subopt", "gap", "scope", "time", "time_to_tol", "n_iter", "matvecs", "neurons",
    "metric", "test_metric", "reported_objective", "peak_mem_mb", "note",
]


def count_neurons(coefs: list[np.ndarray], intercepts=None, rtol: float = 1e-6) -> int:
    """Neurons whose weight ``‖w_j‖·‖α_j‖`` exceeds ``rtol`` times the largest one."""
    (W1, W2), _ = rebalance(coefs, intercepts)
    size = np.linalg.norm(W1, axis=0) * np.linalg.norm(W2, axis=1)
    if size.size == 0 or size.max() <= 0:
        return 0
    return int((size > rtol * size.max()).sum())


def _load_problem(spec: ProblemSpec, seed: int = 0) -> Problem:
    X, y, task = load(spec.dataset)
    return prepare(spec.dataset, X, y, task, kind=spec.kind, loss=spec.loss, lam=spec.lam,
                   lam_fraction=spec.lam_fraction, n_gates=spec.n_gates, max_n=spec.max_n,
                   seed=seed, center_labels=spec.center_labels,
                   output_bias=spec.output_bias)


def _base_row(exp: str, problem: Problem, solver: str, device: str, rep: int) -> dict:
    return dict(
        experiment=exp, dataset=problem.dataset, n=problem.n, d=problem.d,
        n_patterns=problem.n_patterns, kind=problem.kind, loss=problem.loss, lam=problem.lam,
        lam_label=problem.lam_label, solver=solver, device=device, repetition=rep,
        status="ok", reason="", objective=np.nan, best_objective=np.nan, rel_subopt=np.nan,
        gap=np.nan, scope="", time=np.nan, time_to_tol=np.nan, n_iter=np.nan, matvecs=np.nan,
        neurons=np.nan, metric="", test_metric=np.nan, reported_objective=np.nan,
        peak_mem_mb=np.nan, note="",
    )


def run_problem(
    exp_name: str,
    problem: Problem,
    solver_names: Iterable[str],
    *,
    repetitions: int,
    device: str,
    mode: str,
    measure_memory: bool = False,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Every solver × repetition on one problem; traces kept for :func:`finalize`."""
    names = list(solver_names)
    # The convex ReLU solution fixes the width of the non-convex baselines: run it first.
    names.sort(key=lambda s: 0 if s == "convexnn_relu" else 1)
    solvers = [make_solver(s, mode) for s in names]
    rows: list[dict] = []
    for rep in range(repetitions):
        context: dict[str, Any] = {}
        for solver in solvers:
            row = _base_row(exp_name, problem, solver.name, device, rep)
            why = solver.supports(problem, device)
            if why is not None:
                row.update(status="skipped", reason=why)
                rows.append(row)
                continue
            try:
                if measure_memory:
                    out, mem = peak_memory(
                        lambda s=solver, r=rep, c=context: s.run(
                            problem, seed=r, device=device, context=c), device)
                    row["peak_mem_mb"] = mem / 2**20
                else:
                    out = solver.run(problem, seed=rep, device=device, context=context)
            except SolverSkipped as exc:
                row.update(status="skipped", reason=str(exc))
                rows.append(row)
                continue
            except Exception as exc:  # a failing peer is a result, not a crash
                logger.debug("solver failed", exc_info=True)
                row.update(status="error", reason=f"{type(exc).__name__}: {exc}"[:300])
                row["note"] = traceback.format_exc(limit=2)[-300:].replace("\n", " | ")
                rows.append(row)
                continue
            obj = score(problem, out.coefs, out.intercepts, out.gates)
            metric, value = test_metric(problem, out.coefs, out.intercepts, out.gates)
            neurons = count_neurons(out.coefs, out.intercepts if problem.kind == "relu" else None)
            if solver.name == "convexnn_relu" and "width" not in context:
                context["width"] = max(neurons, 1)
            row.update(
                objective=obj, gap=out.gap, scope=out.scope, time=out.time, n_iter=out.n_iter,
                matvecs=out.matvecs, neurons=neurons, metric=metric, test_metric=value,
                reported_objective=out.extra.get("reported_objective", np.nan), note=out.note,
            )
            row["_trace"] = out.trace
            rows.append(row)
            log(f"  {problem.dataset:<22} λ={problem.lam:<9.3g} {solver.name:<16} "
                f"rep {rep}: obj {obj:.8g}  time {out.time:7.2f}s  neurons {neurons}")
    return rows


def _time_to_tol(row: dict, best: float) -> float:
    target = best + TOL * max(abs(best), 1e-12)
    if not (row["objective"] <= target):
        return math.inf
    trace = row.get("_trace")
    for t, o in trace if isinstance(trace, list) else []:
        if o <= target:
            return float(min(t, row["time"]))
    return float(row["time"])


def finalize(rows: list[dict]) -> pd.DataFrame:
    """Best objective per problem (over all solvers and repetitions), suboptimality, time-to-tol.

    Traces store each solver's own view of its objective (for convexnn and pyscnn the
    convex program's value, for Adam the unbalanced network's); the time to tolerance
    is read from the trace only when the final, re-scored objective is within tolerance.
    """
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=COLUMNS)
    keys = ["experiment", "dataset", "n", "kind", "loss", "lam", "n_patterns"]
    ok = df["status"] == "ok"
    best = df[ok].groupby(keys)["objective"].min().rename("best")
    df = df.drop(columns=["best_objective"]).merge(best, how="left", left_on=keys,
                                                  right_index=True)
    df = df.rename(columns={"best": "best_objective"})
    df["rel_subopt"] = (df["objective"] - df["best_objective"]) / df["best_objective"].abs().clip(
        lower=1e-12)
    df["time_to_tol"] = [
        _time_to_tol(r, r["best_objective"]) if r["status"] == "ok" else math.inf
        for r in df.to_dict("records")
    ]
    return df.drop(columns=["_trace"], errors="ignore")[COLUMNS]


def run_experiment(
    exp: Experiment,
    *,
    device: str = "cpu",
    mode: str = "quick",
    datasets: str | None = None,
    solvers: str | None = None,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Run one experiment (filters are comma-separated substrings of names)."""
    def keep(name: str, filt: str | None) -> bool:
        return filt is None or any(f and f in name for f in filt.split(","))

    solver_names = [s for s in exp.solvers if keep(s, solvers)]
    if exp.name == "scaling":
        return _run_scaling(exp, device=device, mode=mode, solver_names=solver_names, log=log)
    rows: list[dict] = []
    for spec in exp.problems:
        if not keep(spec.dataset, datasets):
            continue
        t0 = time.perf_counter()
        try:
            problem = _load_problem(spec)
        except DatasetUnavailable as exc:
            log(f"  {spec.dataset}: skipped ({exc})")
            continue
        log(f"[{exp.name}] {spec.dataset} n={problem.n} d={problem.d} p={problem.n_patterns} "
            f"{spec.kind}/{spec.loss} λ={problem.lam:.3g} ({time.perf_counter() - t0:.1f}s load)")
        rows += run_problem(exp.name, problem, solver_names, repetitions=exp.repetitions,
                            device=device, mode=mode, log=log)
    return finalize(rows)


def _run_scaling(exp: Experiment, *, device: str, mode: str, solver_names: list[str],
                 log: Callable[[str], None]) -> pd.DataFrame:
    cfg = exp.scaling
    rows: list[dict] = []
    ns = cfg["ns_cuda"] if device.startswith("cuda") else cfg["ns"]
    grid = [("n", n, cfg["n_gates"]) for n in ns]
    grid += [("patterns", cfg["base_n"], p) for p in cfg["ps"]]
    for axis, n, p in grid:
        X, y = planted_teacher(int(math.ceil(n / 0.8)), seed=0)
        for kind in ("gated", "relu"):
            cap = cfg.get("relu_max_patterns")
            if kind == "relu" and cap is not None and p > cap:
                log(f"[scaling/{axis}] n={n} p={p} relu: skipped (relu_max_patterns={cap})")
                continue
            names = [s for s in solver_names if make_solver(s, mode).kinds == (kind,)]
            if not names:
                continue
            problem = prepare(f"teacher[{axis}]", X, y, "regression", kind=kind,
                              loss="squared", lam=cfg["lam"], n_gates=p, seed=0)
            log(f"[scaling/{axis}] n={problem.n} p={problem.n_patterns} {kind}")
            rows += run_problem("scaling", problem, names, repetitions=exp.repetitions,
                                device=device, mode=mode, measure_memory=True, log=log)
    df = finalize(rows)
    df["axis"] = [str(ds).split("[")[-1].rstrip("]") for ds in df["dataset"]]
    return df


def merge(earlier: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """Add rows of an earlier run (same machine) for solvers absent from ``current``.

    Best objectives and suboptimalities are recomputed over the union. An earlier row keeps
    its trace-based time to tolerance only if the best objective did not move; otherwise its
    wall time is used (a conservative value, since its trace is not stored in the CSV).
    """
    if earlier.empty:
        return current
    keys = ["experiment", "dataset", "n", "kind", "loss", "lam", "n_patterns"]
    have = set(map(tuple, current[keys + ["solver"]].astype(str).to_numpy()))
    extra = earlier[[tuple(r) not in have
                     for r in earlier[keys + ["solver"]].astype(str).to_numpy()]]
    df = pd.concat([current, extra], ignore_index=True)
    old_best = df["best_objective"].copy()
    ok = df["status"] == "ok"
    best = df[ok].groupby(keys)["objective"].min().rename("best")
    df = df.drop(columns=["best_objective"]).merge(best, how="left", left_on=keys,
                                                  right_index=True)
    df = df.rename(columns={"best": "best_objective"})
    df["rel_subopt"] = (df["objective"] - df["best_objective"]) / df["best_objective"].abs().clip(
        lower=1e-12)
    moved = ~np.isclose(old_best.to_numpy(dtype=float), df["best_objective"].to_numpy(dtype=float),
                        rtol=1e-12, atol=0)
    solved = (df["rel_subopt"] <= TOL) & ok
    ttt = np.where(solved & moved, df["time"], df["time_to_tol"])
    df["time_to_tol"] = np.where(solved, ttt, np.inf)
    extra_cols = [c for c in df.columns if c not in COLUMNS]
    return df[COLUMNS + extra_cols]
