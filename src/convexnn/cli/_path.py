"""``convexnn path``: the regularization path from ``λ_max`` down, warm-started."""

from __future__ import annotations

import math
from typing import Any

import click
import numpy as np

from convexnn.cli import _common as c


@click.command()
@click.argument("data")
@c.data_options
@c.model_options
@click.option("--n-lams", type=click.IntRange(min=2, max=200), default=10, show_default=True,
              help="Number of λ values on the grid.")
@click.option("--lam-min-ratio", type=c.Fraction(0.0, 0.999, open_low=True), default=1e-3,
              show_default=True,
              help="Smallest λ of the grid as a fraction of λ_max.")
@click.option("--max-iter", type=click.IntRange(min=1), default=None,
              help="Iteration limit of the solver at each λ.")
@c.output_options
def path(data: str, target: str | None, task: str | None, test_size: float, seed: int,
         standardize: bool, patterns: Any, activation: str, device: str | None, grow: bool,
         n_lams: int,
         lam_min_ratio: float, max_iter: int | None, plot_path: str | None, as_json: bool,
         quiet: bool) -> None:
    """Fit DATA along a grid of λ from λ_max down and pick λ on held-out data.

    Each λ is warm-started from the previous solution when the estimator supports it.
    One convex path gives the optimal network of every width: the number of neurons
    grows as λ shrinks. The held-out fraction (--test-size) is the validation set.
    """
    quiet_all = quiet or as_json
    ds = c.load(data, target, task)
    if test_size <= 0:
        raise click.UsageError("`convexnn path` needs a validation set: use --test-size > 0.")
    prep = c.prepare(ds, test_size=test_size, seed=seed, standardize=standardize)
    cls = c.estimator_class(prep.task, activation)
    loss = c.loss_name(prep.task, None)
    classes = None if prep.task == "regression" else np.unique(prep.y_train)
    y_enc = c.encode_targets_for(prep.ys_train, loss, classes)
    lam_max = c.compute_lam_max(prep.Xs_train, y_enc, loss, activation, seed)
    if lam_max is None or not math.isfinite(lam_max) or lam_max <= 0:
        raise click.ClickException(
            f"Cannot build a λ grid: λ_max of this data is {lam_max!r} (constant target?)."
        )
    lams = np.geomspace(lam_max, lam_max * lam_min_ratio, n_lams)
    warm = c.accepts(cls, "warm_start")
    c.echo(f"convexnn path: {ds.name} ({ds.n_samples} x {ds.n_features}, {prep.task}), "
           f"{n_lams} values of λ from λ_max = {lam_max:.4g} down to {lams[-1]:.4g}",
           quiet=quiet_all)
    for note in prep.notes:
        c.echo(f"  note: {note}", quiet=quiet_all)
    c.echo(f"  validation: {prep.X_test.shape[0]} held-out samples (--test-size {test_size})"
           f"; warm start: {'yes' if warm else 'no (refit at each λ)'}", quiet=quiet_all)
    rows: list[dict[str, Any]] = []
    est = None
    with c.Progress("λ path", enabled=not quiet_all, total=n_lams) as progress:
        for lam in lams:
            if warm and est is not None:
                est.set_params(lam=float(lam))
            else:
                est = c.make_estimator(cls, lam=float(lam), patterns=patterns,
                                       random_state=seed, device=device, max_iter=max_iter,
                                       grow=grow,
                                       warm_start=True if warm else None)
            seconds = c.timed_fit(est, prep.Xs_train, prep.ys_train, None)
            train = c.metrics(prep.task, prep.y_train,
                              prep.to_original_y(est.predict(prep.Xs_train)))
            val = c.metrics(prep.task, prep.y_test,
                            prep.to_original_y(est.predict(prep.Xs_test)))
            cert = c.certificate_dict(est)
            row = {
                "lam": float(lam),
                "lam_ratio": float(lam / lam_max),
                "n_neurons": c.n_neurons(est),
                "objective": float(est.objective_),
                "gap": cert.get("gap"),
                "rel_gap": cert.get("rel_gap"),
                "scope": cert.get("scope"),
                "train_error": c.error_of(prep.task, train),
                "val_error": c.error_of(prep.task, val),
                "train": train,
                "validation": val,
                "time": seconds,
            }
            rows.append(row)
            progress.step(lam=lam, neurons=row["n_neurons"], val=row["val_error"])
    errors = np.array([r["val_error"] for r in rows])
    # the largest λ within the smallest validation error (ties → the simpler network)
    best = int(np.flatnonzero(errors <= np.nanmin(errors) + 1e-12)[0])
    chosen = rows[best]
    metric = c.error_name(prep.task)
    payload = {
        "data": ds.name,
        "task": prep.task,
        "activation": activation,
        "lam_max": lam_max,
        "warm_start": warm,
        "error": metric,
        "path": rows,
        "chosen": {"lam": chosen["lam"], "index": best, "n_neurons": chosen["n_neurons"],
                   "val_error": chosen["val_error"]},
    }
    if plot_path is not None:
        from convexnn.plotting import plot_regularization_path

        plot_regularization_path(
            [r["lam"] for r in rows], [r["n_neurons"] for r in rows],
            [r["val_error"] for r in rows], train_error=[r["train_error"] for r in rows],
            chosen=chosen["lam"], error_label=f"validation {metric}",
            title=f"{ds.name}: regularization path ({activation})", path=plot_path,
        )
        payload["plot"] = plot_path
    if as_json:
        c.print_json(payload)
        return
    headers = ["λ", "λ/λ_max", "neurons", "objective", "rel. gap", "scope",
               f"train {metric}", f"val {metric}", "time (s)"]
    table = [
        (r["lam"], r["lam_ratio"], r["n_neurons"], r["objective"], r["rel_gap"],
         str(r["scope"] or "-"), r["train_error"], r["val_error"], round(r["time"], 2))
        for r in rows
    ]
    click.echo(c.format_table(headers, table))
    click.echo(f"chosen λ = {chosen['lam']:.4g} (λ/λ_max = {chosen['lam_ratio']:.3g}): "
               f"{chosen['n_neurons']} neurons, validation {metric} "
               f"{c.fmt(chosen['val_error'], 4)}")
    if plot_path is not None:
        click.echo(f"wrote plot {plot_path}")
