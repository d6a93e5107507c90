"""The real commands on bundled data: fit, path, compare, predict, demo."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from convexnn.cli import _compare
from convexnn.datasets import load_dataset
from convexnn.persistence import read_model

PNG = b"\x89PNG\r\n\x1a\n"
# Small, fast settings: gated ReLU with a few sampled patterns and no column generation.
GATED = ["--activation", "gated", "--patterns", "8", "--no-grow"]
FAST = [*GATED, "--quiet"]
RELU = ["--activation", "relu", "--patterns", "6", "--no-grow"]


def _png(path):
    data = path.read_bytes()
    return data[:8] == PNG and len(data) > 5000


def test_fit_regression_reports_everything(run):
    result = run("fit", "diabetes", "--lam", "0.01", *FAST)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for key in ("objective", "lower bound", "gap", "scope", "neurons", "time", "train", "test",
                "R²"):
        assert key in out, key
    assert "standardized" not in out  # --quiet drops the notes


def test_fit_says_it_standardizes(run):
    result = run("fit", "diabetes", "--lam", "0.01", *GATED)
    assert result.exit_code == 0
    assert "standardized X and y with training-set mean" in result.stdout
    result = run("fit", "diabetes", "--lam", "0.01", *GATED, "--no-standardize")
    assert "standardized" not in result.stdout


def test_fit_json(run):
    result = run("fit", "breast_cancer", "--lam", "0.01", "--json", *GATED)
    assert result.exit_code == 0
    payload = json.loads(result.stdout)  # nothing but JSON on stdout
    assert payload["task"] == "binary" and payload["estimator"] == "ConvexGatedReLUClassifier"
    assert payload["n_train"] + payload["n_test"] == 569
    cert = payload["certificate"]
    assert cert["scope"] in ("global", "sampled")
    assert cert["lower_bound"] <= payload["objective"] + 1e-8
    assert 0.8 <= payload["test"]["accuracy"] <= 1.0
    assert payload["lam"] == 0.01


def test_fit_gated_multiclass(run):
    result = run("fit", "iris", "--lam", "0.01", "--json", *GATED)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["estimator"] == "ConvexGatedReLUClassifier"
    assert payload["test"]["accuracy"] >= 0.6


def test_fit_default_lam_is_a_fraction_of_lam_max(run):
    payload = json.loads(run("fit", "diabetes", "--json", *GATED).stdout)
    assert payload["lam"] == pytest.approx(payload["lam_max"] / 100)


def test_save_then_predict_round_trips_exactly(run, tmp_path):
    model = tmp_path / "model.npz"
    result = run("fit", "diabetes", "--lam", "0.01", "--save", model, *FAST)
    assert result.exit_code == 0 and model.is_file()
    saved = read_model(model)
    assert saved.metadata["feature_names"][:3] == ["age", "sex", "bmi"]
    out_csv = tmp_path / "pred.csv"
    result = run("predict", model, "diabetes", "-o", out_csv)
    assert result.exit_code == 0, result.output
    pred = pd.read_csv(out_csv)["prediction"].to_numpy()
    # the same numbers as the loaded estimator on the standardized data, undone
    ds = load_dataset("diabetes")
    a = saved.arrays
    expected = saved.estimator.predict((ds.X - a["x_mean"]) / a["x_scale"])
    expected = expected * float(a["y_scale"]) + float(a["y_mean"])
    np.testing.assert_allclose(pred, expected, rtol=1e-12)
    assert np.corrcoef(pred, ds.y)[0, 1] > 0.6  # in the target's units, and sensible
    # predictions to stdout, from a CSV that has the target column
    table = tmp_path / "table.csv"
    pd.DataFrame(ds.X, columns=ds.feature_names).assign(target=ds.y).to_csv(table, index=False)
    result = run("predict", model, table)
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "prediction" and len(lines) == 443
    np.testing.assert_allclose(np.array(lines[1:], dtype=float), pred, rtol=1e-9)


def test_predict_classifier_with_probabilities(run, tmp_path):
    model = tmp_path / "m.npz"
    assert run("fit", "wine", "--lam", "0.01", "--save", model, *FAST).exit_code == 0
    result = run("predict", model, "wine", "--proba")
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert list(frame.columns) == ["prediction", "proba_0", "proba_1", "proba_2"]
    np.testing.assert_allclose(frame[["proba_0", "proba_1", "proba_2"]].sum(axis=1), 1.0)
    assert (frame["prediction"] == load_dataset("wine").y).mean() > 0.8


def test_predict_wrong_columns(run, tmp_path):
    model = tmp_path / "m.npz"
    assert run("fit", "diabetes", "--lam", "0.01", "--save", model, *FAST).exit_code == 0
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"age": [1.0], "bmi": [2.0]}).to_csv(bad, index=False)
    result = run("predict", model, bad)
    assert result.exit_code == 1 and "missing from" in result.stderr
    assert "Traceback" not in result.output


def test_fit_plot_one_dimensional(run, csv_1d, tmp_path):
    png = tmp_path / "fit.png"
    result = run("fit", csv_1d, "--target", "y", "--lam", "0.001", "--plot", png, *RELU,
                 "--quiet")
    assert result.exit_code == 0, result.output
    assert _png(png)


def test_fit_plot_objective(run, tmp_path):
    png = tmp_path / "obj.png"
    result = run("fit", "breast_cancer", "--lam", "0.01", "--plot", png, *FAST)
    assert result.exit_code == 0 and _png(png)


def test_path(run, tmp_path):
    png = tmp_path / "path.png"
    result = run("path", "diabetes", "--n-lams", "4", "--lam-min-ratio", "0.01", *GATED,
                 "--plot", png, "--quiet")
    assert result.exit_code == 0, result.output
    assert "chosen λ" in result.stdout and _png(png)
    payload = json.loads(run("path", "diabetes", "--n-lams", "3", *GATED, "--json").stdout)
    rows = payload["path"]
    assert len(rows) == 3 and rows[0]["lam"] == pytest.approx(payload["lam_max"])
    # near λ_max the network is (almost) zero: the objective of the mean, ½·var = 0.5 for the
    # standardized targets; the optimal value can only decrease as λ decreases
    assert rows[0]["objective"] == pytest.approx(0.5, rel=0.03)
    objectives = [r["objective"] for r in rows]
    assert all(b <= a * (1 + 1e-6) for a, b in zip(objectives, objectives[1:]))
    assert rows[-1]["objective"] < 0.45 and rows[-1]["n_neurons"] >= 1
    assert payload["chosen"]["lam"] in [r["lam"] for r in rows]


def test_compare(run, csv_1d, tmp_path):
    png = tmp_path / "cmp.png"
    result = run("compare", csv_1d, "--lam", "0.01", *RELU, "--seeds", "2",
                 "--epochs", "60", "--optimizer", "adam", "--optimizer", "sgd", "--plot", png,
                 "--quiet")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "convex" in out and "adam" in out and "sgd" in out and "vs convex" in out
    assert _png(png)
    payload = json.loads(run("compare", csv_1d, "--lam", "0.01", *RELU, "--seeds", "2",
                             "--epochs", "30", "--json").stdout)
    assert len(payload["runs"]) == 2 and payload["width"] >= 1
    assert payload["best"]["adam"]["objective"] == min(r["objective"] for r in payload["runs"])


def test_demo_small(run, monkeypatch, csv_1d, tmp_path):
    """The demo's code path with settings and data small enough for a unit test."""
    monkeypatch.setattr(_compare, "DEMO_SETTINGS", {
        "lam": 1e-2, "patterns": 6, "seeds": 2, "epochs": 40, "lr": 1e-2, "time_limit": 5.0,
        "grow": False})
    png = tmp_path / "demo.png"
    result = run("demo", "--data", csv_1d, "--quiet", "--plot", png)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for key in ("one_d.csv", "objective", "lower bound", "scope", "neurons", "R²",
                "Adam", "time"):
        assert key in out, key
    assert _png(png)


@pytest.mark.parametrize("flags,grow", [([], True), (["--thorough"], "thorough"),
                                        (["--no-grow", "--thorough"], False),
                                        (["--no-grow"], False)])
@pytest.mark.parametrize("command", ["fit", "compare", "path"])
def test_thorough_flag_reaches_the_estimator_as_grow(run, monkeypatch, command, flags, grow):
    """``--thorough`` turns ``grow`` into ``"thorough"`` (and does nothing with --no-grow)
    for every command that fits; the estimator is never built here."""
    import click

    from convexnn.estimators import _base

    seen = {}

    def stop(self, *args, **kwargs):
        seen["grow"] = self.grow
        raise click.exceptions.Exit(0)

    monkeypatch.setattr(_base.BaseConvexNetwork, "_fit", stop)
    lam = [] if command == "path" else ["--lam", "0.01"]
    result = run(command, "diabetes", *lam, "--quiet", *flags)
    assert result.exit_code == 0, result.output
    assert seen["grow"] == grow
