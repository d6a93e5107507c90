"""Figures: written as real PNGs, without pyplot's global state."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from convexnn.exceptions import ValidationError
from convexnn.plotting import (
    plot_fitted_function,
    plot_objective_vs_time,
    plot_regularization_path,
    save_figure,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    data = path.read_bytes()
    return data[:8] == PNG and len(data) > 5000


def test_objective_vs_time(tmp_path):
    t = np.logspace(-2, 1, 40)
    history = [{"time": float(a), "objective": float(0.3 + np.exp(-a))} for a in t]
    curves = {"convex": history, "adam (seed 1)": (t * 2, 0.32 + np.exp(-t / 2))}
    fig = plot_objective_vs_time(curves, lower_bound=0.299, path=tmp_path / "o.png")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert fig.axes[0].get_xscale() == "log" and fig.axes[1].get_yscale() == "log"
    assert _is_png(tmp_path / "o.png")
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "certified lower bound" in labels and "convex" in labels


def test_objective_vs_time_below_the_bound_switches_reference():
    t = np.linspace(0.1, 1, 5)
    fig = plot_objective_vs_time({"convex": (t, 1 + 0 * t), "adam": (t, 0.5 + 0 * t)},
                                 lower_bound=0.9, bound_label="bound (sampled)")
    assert "best objective" in fig.axes[1].get_ylabel()


def test_objective_vs_time_without_bound_has_one_panel(tmp_path):
    fig = plot_objective_vs_time({"convex": ([0.1, 1.0], [2.0, 1.0])}, path=tmp_path / "o.svg")
    assert len(fig.axes) == 1
    assert (tmp_path / "o.svg").read_text().lstrip().startswith("<?xml")


def test_objective_vs_time_rejects_bad_curves():
    with pytest.raises(ValidationError, match="is empty"):
        plot_objective_vs_time({})
    with pytest.raises(ValidationError, match="as many times as objective values"):
        plot_objective_vs_time({"a": ([1.0, 2.0], [1.0])})


def test_regularization_path(tmp_path):
    lams = np.geomspace(1.0, 1e-3, 8)
    fig = plot_regularization_path(lams, np.arange(8), np.linspace(1, 0.2, 8),
                                   chosen=lams[5], train_error=np.linspace(0.9, 0.1, 8),
                                   error_label="validation RMSE", path=tmp_path / "p.png")
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
    assert fig.axes[1].get_ylabel() == "validation RMSE"
    assert _is_png(tmp_path / "p.png")
    assert len(plot_regularization_path(lams, np.arange(8)).axes) == 1


def test_regularization_path_rejects_bad_lams():
    with pytest.raises(ValidationError, match="positive floats"):
        plot_regularization_path([1.0, 0.0], [0, 1])


def test_fitted_function(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 50)
    y = np.abs(x) + 0.1 * rng.standard_normal(50)
    fig = plot_fitted_function(lambda g: np.abs(g[:, 0]), x[:, None], y, kinks=[0.0, 99.0],
                               x_test=x[:5], y_test=y[:5], path=tmp_path / "f.png")
    ax = fig.axes[0]
    line = [ln for ln in ax.get_lines() if ln.get_label() == "fitted network"][0]
    np.testing.assert_allclose(line.get_ydata(), np.abs(line.get_xdata()))
    assert any(ln.get_label() == "ReLU kinks (1)" for ln in ax.get_lines())  # 99 is off-range
    assert _is_png(tmp_path / "f.png")


def test_fitted_function_needs_one_feature():
    with pytest.raises(ValidationError, match="needs 1-D inputs"):
        plot_fitted_function(lambda g: g[:, 0], np.zeros((5, 2)), np.zeros(5))


def test_save_figure_errors(tmp_path):
    fig = plot_objective_vs_time({"convex": ([0.1, 1.0], [2.0, 1.0])})
    with pytest.raises(FileNotFoundError, match="no directory"):
        save_figure(fig, tmp_path / "missing" / "a.png")
    with pytest.raises(ValidationError, match=r"must end in \.png"):
        save_figure(fig, tmp_path / "a.gif")


def test_no_pyplot_state():
    code = (
        "import sys, numpy as np\n"
        "from convexnn import plotting\n"
        "plotting.plot_objective_vs_time({'a': ([0.1, 1.0], [2.0, 1.0])}, lower_bound=0.5)\n"
        "plotting.plot_regularization_path([1.0, 0.1], [0, 3], [1.0, 0.5])\n"
        "plotting.plot_fitted_function(lambda g: g[:, 0], np.arange(3.0), np.arange(3.0))\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
