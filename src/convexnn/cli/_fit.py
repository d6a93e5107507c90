"""``convexnn fit``, ``convexnn predict`` and ``convexnn datasets``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from convexnn.cli import _common as c


@click.command()
@click.argument("data")
@c.data_options
@click.option("--lam", type=c.POSITIVE, default=None,
              help="Regularization λ (SPEC scaling). Default: λ_max/100.")
@c.model_options
@click.option("--max-iter", type=click.IntRange(min=1), default=None,
              help="Iteration limit of the solver (its default when omitted).")
@click.option("--save", "save_path", type=click.Path(dir_okay=False), default=None,
              metavar="MODEL", help="Save the fitted model there (.npz, no pickle).")
@c.output_options
def fit(data: str, target: str | None, task: str | None, test_size: float, seed: int,
        standardize: bool, lam: float | None, patterns: Any, activation: str,
        device: str | None, grow: bool, max_iter: int | None, save_path: str | None,
        plot_path: str | None, as_json: bool, quiet: bool) -> None:
    """Fit a convex two-layer network on DATA and report its certificate.

    DATA is a bundled name (diabetes, breast_cancer, digits, ...) or a CSV, Parquet,
    .npy or .npz file. Prints the objective, the certified lower bound, the gap and its
    scope, the number of neurons, train/test metrics and the time.
    """
    result = run_fit(
        data, target=target, task=task, test_size=test_size, seed=seed,
        standardize=standardize, lam=lam, patterns=patterns, activation=activation,
        device=device, max_iter=max_iter, quiet=quiet or as_json, grow=grow,
    )
    est, prep = result.pop("_estimator"), result.pop("_prepared")
    curve = result.pop("_curve")
    if save_path is not None:
        save_model(est, prep, save_path, activation=activation)
        result["saved"] = save_path
    if plot_path is not None:
        plot_fit(est, prep, result, plot_path, curve)
        result["plot"] = plot_path
    if as_json:
        c.print_json(result)
        return
    print_fit(result, quiet=quiet)
    if save_path is not None:
        click.echo(f"saved model to {save_path}  (convexnn predict {save_path} DATA)")
    if plot_path is not None:
        click.echo(f"wrote plot {plot_path}")


def run_fit(data: str, *, target: str | None, task: str | None, test_size: float, seed: int,
            standardize: bool, lam: float | None, patterns: Any, activation: str,
            device: str | None, max_iter: int | None, quiet: bool,
            grow: bool = True) -> dict[str, Any]:
    """Load, prepare, fit; the results as a dict (plus the estimator and the data)."""
    ds = c.load(data, target, task)
    prep = c.prepare(ds, test_size=test_size, seed=seed, standardize=standardize)
    cls = c.estimator_class(prep.task, activation)
    loss = c.loss_name(prep.task, None)
    classes = None if prep.task == "regression" else np.unique(prep.y_train)
    y_enc = c.encode_targets_for(prep.ys_train, loss, classes)
    lam_value, lam_max, lam_source = c.resolve_lam(lam, prep.Xs_train, y_enc, loss, activation)
    est = c.make_estimator(cls, lam=lam_value, patterns=patterns, random_state=seed,
                           device=device, max_iter=max_iter, grow=grow)
    c.echo(f"convexnn fit: {ds.name} ({ds.n_samples} samples x {ds.n_features} features, "
           f"{prep.task})", quiet=quiet)
    for note in prep.notes:
        c.echo(f"  note: {note}", quiet=quiet)
    c.echo(f"  split: {prep.X_train.shape[0]} train / {prep.X_test.shape[0]} test "
           f"(seed {seed})", quiet=quiet)
    c.echo(f"  model: {type(est).__name__}(lam={lam_value:.4g} [{lam_source}]"
           + (f", patterns={patterns}" if patterns is not None else "") + ")", quiet=quiet)
    with c.Progress("convex fit", enabled=not quiet) as progress:
        seconds = c.timed_fit(est, prep.Xs_train, prep.ys_train, progress)
    curve = c.convex_curve(est, progress)
    train = c.metrics(prep.task, prep.y_train,
                      prep.to_original_y(est.predict(prep.Xs_train)))
    test = c.metrics(prep.task, prep.y_test, prep.to_original_y(est.predict(prep.Xs_test))) \
        if prep.X_test.shape[0] else {}
    cert = c.certificate_dict(est)
    return {
        "data": ds.name,
        "task": prep.task,
        "n_samples": ds.n_samples,
        "n_features": ds.n_features,
        "n_train": int(prep.X_train.shape[0]),
        "n_test": int(prep.X_test.shape[0]),
        "standardized": standardize,
        "estimator": type(est).__name__,
        "activation": activation,
        "loss": c.loss_name(prep.task, est),
        "lam": lam_value,
        "lam_max": lam_max,
        "objective": float(est.objective_),
        "certificate": cert,
        "n_neurons": c.n_neurons(est),
        "n_patterns": getattr(est, "n_patterns_", None),
        "n_iter": getattr(est, "n_iter_", None),
        "time": seconds,
        "train": train,
        "test": test,
        "_curve": curve,
        "_estimator": est,
        "_prepared": prep,
    }


def print_fit(r: dict[str, Any], *, quiet: bool = False, indent: str = "  ") -> None:
    """The human-readable report of a fit."""
    cert = r.get("certificate") or {}
    task = r["task"]
    rows: list[tuple[str, str]] = [
        ("objective", c.fmt(r["objective"], 8)),
    ]
    if cert:
        rows.append(("lower bound", c.fmt(cert.get("lower_bound"), 8)))
        gap, rel = c.fmt(cert.get("gap"), 3), c.fmt(cert.get("rel_gap"), 3)
        rows.append(("gap", f"{gap} (relative {rel})"))
        scope = str(cert.get("scope", "?"))
        rows.append(("scope", c.SCOPE_TEXT.get(scope, scope)))
        if cert.get("max_violation"):
            rows.append(("max cone violation", c.fmt(cert["max_violation"], 3)))
    neurons = f"{r['n_neurons']}"
    if r.get("n_patterns") is not None:
        neurons += f" (from {r['n_patterns']} activation patterns)"
    rows.append(("neurons", neurons))
    if r.get("n_iter") is not None:
        rows.append(("iterations", str(r["n_iter"])))
    rows.append(("time", f"{r['time']:.2f} s"))
    rows.append(("train", c.metric_text(task, r["train"])))
    if r.get("test"):
        rows.append(("test", c.metric_text(task, r["test"])))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{indent}{key.ljust(width)}  {value}")


def save_model(est: Any, prep: c.Prepared, path: str, *, activation: str) -> None:
    """Save with the standardization and the column names needed by ``predict``."""
    from convexnn.persistence import save

    ds = prep.dataset
    meta = {
        "data": ds.name,
        "task": prep.task,
        "feature_names": list(ds.feature_names),
        "target_name": ds.target_name,
        "standardized": prep.standardize,
        "activation": activation,
    }
    save(est, path, metadata=meta, arrays=prep.arrays())


def plot_fit(est: Any, prep: c.Prepared, result: dict[str, Any], path: str,
             curve: list[dict[str, float]]) -> None:
    """1-D input: the fitted function; otherwise the objective against time."""
    from convexnn.plotting import plot_fitted_function, plot_objective_vs_time

    ds = prep.dataset
    if ds.n_features == 1 and prep.task == "regression":
        W1 = np.asarray(est.coefs_[0], dtype=float)
        b1 = np.asarray(est.intercepts_[0], dtype=float)
        w = W1[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            kinks_std = np.where(np.abs(w) > 0, -b1 / w, np.nan)
        kinks = kinks_std * prep.x_scale[0] + prep.x_mean[0]

        def predict(grid: np.ndarray) -> np.ndarray:
            return prep.to_original_y(est.predict(prep.transform(grid)))

        plot_fitted_function(
            predict, prep.X_train[:, 0], prep.y_train, kinks=kinks,
            x_test=prep.X_test[:, 0] if prep.X_test.shape[0] else None,
            y_test=prep.y_test if prep.X_test.shape[0] else None,
            xlabel=ds.feature_names[0], ylabel=ds.target_name,
            title=f"{ds.name}: {result['n_neurons']} neurons, λ = {result['lam']:.3g}",
            path=path,
        )
        return
    history = curve
    if not history:
        history = [{"time": result["time"], "objective": result["objective"]}]
    cert = result.get("certificate") or {}
    plot_objective_vs_time(
        {"convex (" + type(est).__name__ + ")": history},
        lower_bound=cert.get("lower_bound"),
        title=f"{ds.name}: objective of the convex fit (λ = {result['lam']:.3g})",
        path=path,
    )


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data")
@click.option("-o", "--output", default="-", show_default=True, metavar="FILE.csv",
              help="Where to write the predictions CSV ('-' for stdout).")
@click.option("--proba", is_flag=True, help="Classifiers: add one probability column per class.")
def predict(model: str, data: str, output: str, proba: bool) -> None:
    """Predict DATA with a MODEL saved by `convexnn fit --save`; write a CSV.

    DATA is a file or bundled name with the model's feature columns (the target column
    is ignored when present). Standardization saved with the model is applied.
    """
    import pandas as pd

    from convexnn.datasets import load_features
    from convexnn.persistence import read_model

    saved = read_model(model)
    est, meta = saved.estimator, saved.metadata
    if proba and meta.get("task", "regression") == "regression":
        raise click.ClickException("--proba applies to classifiers only; this model regresses.")
    names = meta.get("feature_names")
    if names is None:
        n_in = int(np.asarray(est.coefs_[0]).shape[0])
        names = [f"x{j}" for j in range(n_in)]
    X = load_features(data, names, target_name=meta.get("target_name"))
    arrays = saved.arrays
    x_mean = np.asarray(arrays.get("x_mean", np.zeros(X.shape[1])), dtype=float)
    x_scale = np.asarray(arrays.get("x_scale", np.ones(X.shape[1])), dtype=float)
    Xs = (X - x_mean) / x_scale
    pred = np.asarray(est.predict(Xs))
    frame = pd.DataFrame()
    if meta.get("task", "regression") == "regression":
        y_mean = float(np.asarray(arrays.get("y_mean", 0.0)))
        y_scale = float(np.asarray(arrays.get("y_scale", 1.0)))
        pred = pred.astype(float).reshape(len(X), -1) * y_scale + y_mean
        if pred.shape[1] == 1:
            frame["prediction"] = pred[:, 0]
        else:
            for j in range(pred.shape[1]):
                frame[f"prediction_{j}"] = pred[:, j]
    else:
        frame["prediction"] = pred
        if proba:
            if not hasattr(est, "predict_proba"):
                raise click.ClickException(f"{type(est).__name__} has no predict_proba.")
            P = np.asarray(est.predict_proba(Xs))
            for j, label in enumerate(est.classes_):
                frame[f"proba_{label}"] = P[:, j]
    if output == "-":
        frame.to_csv(sys.stdout, index=False)
    else:
        out = Path(output)
        if not out.parent.is_dir():
            raise click.ClickException(f"Cannot write '{out}': no directory '{out.parent}'.")
        frame.to_csv(out, index=False)
        click.echo(f"wrote {len(frame)} predictions to {out}", err=True)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def datasets(as_json: bool) -> None:
    """List the data sets that DATA can name."""
    from convexnn.datasets import dataset_info

    info = dataset_info()
    if as_json:
        c.print_json({"datasets": info})
        return
    rows = [
        (d["name"], d["task"], f"{d['n_samples']} x {d['n_features']}",
         "yes" if d["available"] else f"no (pip install {d['requires']})")
        for d in info
    ]
    click.echo(c.format_table(["name", "task", "n x d", "available"], rows))
