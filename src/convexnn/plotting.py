r"""Figures for convex fits, made with matplotlib's Agg canvas (no pyplot, no global state).

- :func:`plot_objective_vs_time`: the SPEC §1 objective against wall-clock time for the
  convex solver and for Adam/SGD runs on the same objective, with the certified lower
  bound; a second panel shows the suboptimality :math:`P(t) - \underline{p}` on a log
  scale.
- :func:`plot_regularization_path`: number of neurons and validation error against λ
  (log axis), the chosen λ marked.
- :func:`plot_fitted_function`: for 1-D inputs, the fitted function over the data, with
  the kinks of the ReLU units.

Every function returns a :class:`matplotlib.figure.Figure` and, given ``path``, writes
it (PNG, PDF or SVG by suffix).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from convexnn.exceptions import ValidationError

__all__ = [
    "new_figure",
    "plot_fitted_function",
    "plot_objective_vs_time",
    "plot_regularization_path",
    "save_figure",
]

logger = logging.getLogger(__name__)

_CONVEX_COLOR = "#1f4e9c"
_OTHER_COLORS = ["#d1495b", "#edae49", "#66a182", "#8d96a3", "#6b3fa0", "#2e4057"]


def new_figure(width: float = 7.0, height: float = 4.5) -> Figure:
    """A figure attached to its own Agg canvas (pyplot's figure registry is not used)."""
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` to ``path``; the format follows the suffix (``.png`` by default).

    Raises
    ------
    FileNotFoundError
        The directory of ``path`` does not exist.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"Cannot write the plot '{path}': no directory '{parent}'.")
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in ("png", "pdf", "svg", "jpg", "jpeg"):
        raise ValidationError(
            f"The plot file must end in .png, .pdf or .svg. Got '{path.name}' instead."
        )
    fig.savefig(path, format=fmt, bbox_inches="tight")
    logger.info("wrote %s", path)
    return path


def _finish(fig: Figure, path: str | os.PathLike[str] | None) -> Figure:
    if path is not None:
        save_figure(fig, path)
    return fig


def _as_curve(curve: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(curve, Mapping):
        t, v = curve["time"], curve["objective"] if "objective" in curve else curve["primal"]
    elif isinstance(curve, Sequence) and curve and isinstance(curve[0], Mapping):
        # histories: {"time", "objective"} records (or "primal", as the estimators' history_)
        records = [r for r in curve if "time" in r and ("objective" in r or "primal" in r)]
        t = [r["time"] for r in records]
        v = [r["objective"] if "objective" in r else r["primal"] for r in records]
    else:
        t, v = curve
    t_arr = np.asarray(t, dtype=float).ravel()
    v_arr = np.asarray(v, dtype=float).ravel()
    if t_arr.shape != v_arr.shape:
        raise ValidationError(
            f"A curve needs as many times as objective values. Got {t_arr.size} and "
            f"{v_arr.size} instead."
        )
    keep = np.isfinite(t_arr) & np.isfinite(v_arr)
    return t_arr[keep], v_arr[keep]


def plot_objective_vs_time(
    curves: Mapping[str, Any],
    *,
    lower_bound: float | None = None,
    bound_label: str = "certified lower bound",
    convex: str | None = None,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    r"""Objective against wall-clock time, for several methods on the same objective.

    Parameters
    ----------
    curves : mapping of label to curve
        Each curve is a history (list of dicts with ``"time"`` and ``"objective"`` or
        ``"primal"``), a dict of two sequences, or a pair ``(times, objectives)``.
    lower_bound : float, optional
        A lower bound :math:`\underline p` from the convex dual, drawn as a dashed line;
        the right panel then shows :math:`P(t) - p_{ref}` on a log scale with
        :math:`p_{ref} = \underline p`, or the best objective reached when a curve goes
        below the bound (possible for a bound over sampled patterns only).
    bound_label : str
        Legend of the bound (say whether its scope is global or sampled).
    convex : str, optional
        The label of the convex curve (drawn thicker, in blue). Default: the first.
    title : str, optional
    path : path-like, optional
        Write the figure there.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not curves:
        raise ValidationError("The 'curves' parameter of plot_objective_vs_time is empty.")
    data = {label: _as_curve(c) for label, c in curves.items()}
    convex = convex if convex is not None else next(iter(data))
    two = lower_bound is not None and math.isfinite(lower_bound)
    fig = new_figure(11.0 if two else 7.0, 4.5)
    axes = fig.subplots(1, 2) if two else [fig.subplots(1, 1)]
    all_v = np.concatenate([v for _, v in data.values() if v.size] or [np.zeros(1)])
    best = float(all_v.min())
    floor = float(lower_bound) if two else best
    below = two and best < floor
    ref = min(floor, best)
    diffs = all_v - ref
    positive = diffs[diffs > 0]
    tiny = float(positive.min()) / 10.0 if positive.size else 1e-12
    tiny = max(tiny, 1e-14 * max(1.0, abs(ref)))
    t_min = min((t[t > 0].min() for t, _ in data.values() if np.any(t > 0)), default=1e-3)
    others = iter(_OTHER_COLORS * 10)
    for label, (t, v) in data.items():
        is_convex = label == convex
        color = _CONVEX_COLOR if is_convex else next(others)
        style = {"color": color, "lw": 2.4 if is_convex else 1.3, "label": label}
        if not is_convex:
            style["alpha"] = 0.85
        t_plot = np.maximum(t, t_min)
        if v.size < 3:  # a line needs points: show the few there are
            style["marker"] = "o"
        axes[0].step(t_plot, v, where="post", **style)
        if v.size:
            axes[0].plot(t_plot[-1], v[-1], "o", color=color, ms=4)
        if two:
            axes[1].step(t_plot, np.maximum(v - ref, tiny), where="post", **style)
    ax = axes[0]
    if two:
        ax.axhline(floor, ls="--", color="k", lw=1, label=bound_label)
    hi = float(np.quantile(all_v, 0.9)) if all_v.size else 1.0
    lo = min(floor, best)
    pad = max(0.08 * (hi - lo), 1e-3 * max(abs(hi), abs(lo), 1e-12))
    ax.set_ylim(lo - pad, hi + pad)
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("training objective  $P_{nc}$")
    ax.set_title("objective vs time")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if two:
        ax2 = axes[1]
        ax2.set_xscale("log")
        ax2.set_yscale("log")
        ax2.set_xlabel("time (s)")
        if below:
            ax2.set_ylabel("objective − best objective reached")
            ax2.set_title("distance to the best objective (a run went below the bound)")
        else:
            ax2.set_ylabel("objective − lower bound")
            ax2.set_title("distance to the lower bound")
        ax2.grid(True, alpha=0.3, which="both")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, path)


def plot_regularization_path(
    lams: Sequence[float],
    n_neurons: Sequence[float],
    val_error: Sequence[float] | None = None,
    *,
    chosen: float | None = None,
    error_label: str = "validation error",
    train_error: Sequence[float] | None = None,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Neurons and validation error against λ on a log axis.

    Parameters
    ----------
    lams : sequence of float
        The λ grid (any order; all > 0).
    n_neurons : sequence of int
        Active hidden neurons at each λ.
    val_error : sequence of float, optional
        Validation error at each λ (lower is better).
    chosen : float, optional
        The selected λ, marked by a vertical line.
    error_label : str
        Axis label of the error panel (e.g. ``"validation RMSE"``).
    train_error : sequence of float, optional
        Training error, drawn dotted beside the validation error.
    title : str, optional
    path : path-like, optional
        Write the figure there.

    Returns
    -------
    matplotlib.figure.Figure
    """
    lam = np.asarray(lams, dtype=float)
    if lam.size == 0 or np.any(~np.isfinite(lam)) or np.any(lam <= 0):
        raise ValidationError(
            "The 'lams' parameter of plot_regularization_path must be a non-empty sequence "
            f"of positive floats. Got {list(lams)!r} instead."
        )
    neurons = np.asarray(n_neurons, dtype=float)
    order = np.argsort(lam)
    panels = 2 if val_error is not None else 1
    fig = new_figure(7.0, 2.8 * panels + 0.6)
    axes = np.atleast_1d(fig.subplots(panels, 1, sharex=True))
    ax = axes[0]
    ax.plot(lam[order], neurons[order], "o-", color=_CONVEX_COLOR, ms=4)
    ax.set_ylabel("hidden neurons")
    ax.set_xscale("log")
    ax.grid(True, alpha=0.3, which="both")
    ax.set_title(title or "regularization path")
    if val_error is not None:
        err = np.asarray(val_error, dtype=float)
        ax2 = axes[1]
        ax2.plot(lam[order], err[order], "o-", color=_OTHER_COLORS[0], ms=4, label="validation")
        if train_error is not None:
            tr = np.asarray(train_error, dtype=float)
            ax2.plot(lam[order], tr[order], ":", color="0.4", label="training")
            ax2.legend(fontsize=8)
        ax2.set_ylabel(error_label)
        ax2.grid(True, alpha=0.3, which="both")
    if chosen is not None:
        for a in axes:
            a.axvline(chosen, ls="--", color="k", lw=1)
        axes[0].annotate(
            f"chosen λ = {chosen:.3g}", xy=(chosen, 1.0), xycoords=("data", "axes fraction"),
            xytext=(4, -12), textcoords="offset points", fontsize=8,
        )
    axes[-1].set_xlabel("λ (log scale)")
    fig.tight_layout()
    return _finish(fig, path)


def plot_fitted_function(
    predict: Callable[[np.ndarray], np.ndarray],
    x: Any,
    y: Any,
    *,
    kinks: Sequence[float] | None = None,
    x_test: Any = None,
    y_test: Any = None,
    n_grid: int = 500,
    xlabel: str = "x",
    ylabel: str = "y",
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """For 1-D inputs: the data and the fitted function on a fine grid.

    Parameters
    ----------
    predict : callable
        Maps an array of shape (k, 1) to k predictions (e.g. ``estimator.predict``).
    x, y : arrays of shape (n,) or (n, 1), and (n,)
        Training data.
    kinks : sequence of float, optional
        Breakpoints of the ReLU units (``-b1_j / w1_j``), marked on the x axis.
    x_test, y_test : optional
        Held-out data, drawn in another colour.
    n_grid : int
        Number of grid points.
    path : path-like, optional
        Write the figure there.

    Returns
    -------
    matplotlib.figure.Figure
    """
    xs = np.asarray(x, dtype=float)
    if xs.ndim == 2 and xs.shape[1] == 1:
        xs = xs[:, 0]
    if xs.ndim != 1:
        raise ValidationError(
            f"plot_fitted_function needs 1-D inputs (one feature). Got x with shape "
            f"{np.shape(x)} instead."
        )
    ys = np.asarray(y, dtype=float).ravel()
    lo, hi = float(xs.min()), float(xs.max())
    if x_test is not None:
        xt = np.asarray(x_test, dtype=float).ravel()
        lo, hi = min(lo, float(xt.min())), max(hi, float(xt.max()))
    pad = 0.05 * max(hi - lo, 1e-12)
    grid = np.linspace(lo - pad, hi + pad, int(n_grid))
    fitted = np.asarray(predict(grid[:, None]), dtype=float).ravel()
    fig = new_figure(7.0, 4.5)
    ax = fig.subplots(1, 1)
    ax.scatter(xs, ys, s=12, color="0.35", alpha=0.7, label="training data")
    if x_test is not None and y_test is not None:
        ax.scatter(
            np.asarray(x_test, dtype=float).ravel(), np.asarray(y_test, dtype=float).ravel(),
            s=14, color=_OTHER_COLORS[0], alpha=0.7, marker="x", label="test data",
        )
    ax.plot(grid, fitted, color=_CONVEX_COLOR, lw=2.2, label="fitted network")
    if kinks is not None:
        k = np.asarray(kinks, dtype=float)
        k = k[np.isfinite(k) & (k >= grid[0]) & (k <= grid[-1])]
        if k.size:
            ax.plot(
                k, np.interp(k, grid, fitted), "v", color=_CONVEX_COLOR, ms=6,
                label=f"ReLU kinks ({k.size})",
            )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "fitted function")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, path)
