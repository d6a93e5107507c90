"""Summaries of the long-format results: median and spread tables (markdown) and plots."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.suite.runner import TOL

__all__ = [
    "fit_slope",
    "markdown_table",
    "plot_profile",
    "plot_scaling",
    "profile_curve",
    "summarize",
]

PEER = {"relu": "convexnn_relu", "gated": "convexnn_gated"}


def _fmt(x: object, digits: int = 4) -> str:
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    v = float(x)  # type: ignore[arg-type]
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def markdown_table(df: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A GitHub markdown table (no third-party formatter needed)."""
    cols = list(columns or df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for rec in df[cols].to_dict("records"):
        lines.append("| " + " | ".join(_fmt(rec[c]) for c in cols) + " |")
    return "\n".join(lines)


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Median and spread over repetitions, per problem × solver, with time ratios.

    ``time_ratio`` is the solver's median time divided by convexnn's median time on the
    same problem in the same run (``> 1``: convexnn is faster).
    """
    keys = ["experiment", "dataset", "n", "n_patterns", "kind", "loss", "lam", "solver"]
    ok = df[df["status"] == "ok"]
    rows = []
    for k, g in ok.groupby(keys, sort=False):
        rec = dict(zip(keys, k))
        t = g["time"].to_numpy(dtype=float)
        rec.update(
            reps=len(g),
            objective=float(g["objective"].median()),
            rel_subopt=float(g["rel_subopt"].median()),
            gap=float(g["gap"].median()),
            scope=str(g["scope"].iloc[0]),
            time=float(np.median(t)),
            time_spread=f"{t.min():.3g}–{t.max():.3g}" if len(t) > 1 else "",
            solved=int((g["rel_subopt"] <= TOL).sum()),
            neurons=float(g["neurons"].median()),
            metric=str(g["metric"].iloc[0]),
            test_metric=float(g["test_metric"].median()),
            status="ok",
        )
        rows.append(rec)
    for rec in df[df["status"] != "ok"].drop_duplicates(keys).to_dict("records"):
        r = {k: rec[k] for k in keys}
        r.update(reps=0, objective=np.nan, rel_subopt=np.nan, gap=np.nan, scope="",
                 time=np.nan, time_spread="", solved=0, neurons=np.nan, metric="",
                 test_metric=np.nan, status=f"{rec['status']}: {rec['reason']}"[:90])
        rows.append(r)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    ratios = []
    for rec in out.to_dict("records"):
        peer = PEER.get(rec["kind"])
        m = out[(out["experiment"] == rec["experiment"]) & (out["dataset"] == rec["dataset"])
                & (out["n"] == rec["n"]) & (out["lam"] == rec["lam"])
                & (out["loss"] == rec["loss"]) & (out["solver"] == peer)
                & (out["n_patterns"] == rec["n_patterns"])]
        ratios.append(rec["time"] / m["time"].iloc[0] if len(m) and m["time"].iloc[0] > 0
                      else np.nan)
    out["time_ratio"] = ratios
    return out


def profile_curve(df: pd.DataFrame, times: np.ndarray) -> dict[str, np.ndarray]:
    """Fraction of problems each solver solved to ``TOL`` relative suboptimality by time t.

    A problem is one dataset × λ (first repetition); a solver that was skipped or failed
    on a problem counts as not solving it.
    """
    d = df[df["repetition"] == 0]
    problems = d.groupby(["dataset", "lam"]).ngroups
    curves = {}
    for solver, g in d.groupby("solver"):
        ttt = g["time_to_tol"].to_numpy(dtype=float)
        curves[str(solver)] = np.array([(ttt <= t).sum() / problems for t in times])
    return curves


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_profile(df: pd.DataFrame, path: Path, title: str) -> Path:
    finite = df["time_to_tol"].replace(np.inf, np.nan).dropna()
    lo = max(float(finite.min()) if len(finite) else 1e-3, 1e-4)
    hi = float(df["time"].max()) if df["time"].notna().any() else 1.0
    times = np.logspace(np.log10(lo) - 0.1, np.log10(max(hi, lo * 10)) + 0.1, 200)
    curves = profile_curve(df, times)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, frac in sorted(curves.items()):
        ax.step(times, frac, where="post", label=name, lw=2 if name.startswith("convexnn") else 1)
    ax.set_xscale("log")
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel(f"fraction solved to {TOL:g} rel. subopt.")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fit_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of ``log y`` against ``log x``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = (x > 0) & (y > 0) & np.isfinite(y)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def plot_scaling(df: pd.DataFrame, path: Path, title: str) -> tuple[Path, pd.DataFrame]:
    """Three panels: time vs n, time vs #patterns, peak memory vs n (log-log, slopes)."""
    plt = _plt()
    ok = df[df["status"] == "ok"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    slopes = []
    panels = [("n", "n", "time", "time (s)"), ("patterns", "n_patterns", "time", "time (s)"),
              ("n", "n", "peak_mem_mb", "peak extra memory (MiB)")]
    for ax, (axis, xcol, ycol, ylabel) in zip(axes, panels):
        sub = ok[ok["axis"] == axis]
        for solver, g in sub.groupby("solver"):
            g = g.groupby(xcol)[ycol].median().reset_index()
            s = fit_slope(g[xcol], g[ycol])
            slopes.append({"axis": axis, "quantity": ycol, "solver": solver, "slope": s})
            ax.loglog(g[xcol], g[ycol], "o-", label=f"{solver} (slope {s:.2f})")
        ax.set_xlabel("n (training samples)" if axis == "n" else "number of patterns")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path, pd.DataFrame(slopes)
