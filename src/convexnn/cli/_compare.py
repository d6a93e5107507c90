"""``convexnn compare`` (convex fit vs Adam/SGD on the same objective) and ``convexnn demo``."""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any

import click
import numpy as np

from convexnn.cli import _common as c
from convexnn.cli._fit import print_fit

logger = logging.getLogger(__name__)

#: What ``convexnn demo`` runs (~20 s on 2 cores): the default pipeline (three Adam
#: seeding runs, the convex program over their patterns, column generation) on two of the
#: diabetes features, then Adam from three seeds at the same width (session 8: convex 9.5 s,
#: 0.5 % below the best Adam run, within 5e-7 (relative) of its bound over 370 patterns).
DEMO_DATA = "diabetes"
DEMO_SETTINGS: dict[str, Any] = {
    "features": ["bmi", "s5"],
    "lam": 1e-3,
    "patterns": 20,
    "seeds": 3,
    "epochs": 3000,
    "lr": 1e-2,
    "time_limit": 5.0,
    "grow": True,
}


def _network_outputs(coefs: list[np.ndarray], intercepts: list[np.ndarray],
                     X: np.ndarray) -> np.ndarray:
    H = np.maximum(X @ np.asarray(coefs[0]) + np.asarray(intercepts[0]), 0.0)
    W2 = np.asarray(coefs[1])
    if W2.ndim == 1:
        W2 = W2[:, None]
    return H @ W2 + np.asarray(intercepts[1])


def _network_predict(prep: c.Prepared, loss: str, classes: np.ndarray | None,
                     coefs: list[np.ndarray], intercepts: list[np.ndarray],
                     X: np.ndarray) -> np.ndarray:
    out = _network_outputs(coefs, intercepts, X)
    if classes is None:
        return prep.to_original_y(out[:, 0])
    if loss == "logistic":
        return classes[(out[:, 0] > 0).astype(int)]
    return classes[np.argmax(out, axis=1)]


def run_compare(prep: c.Prepared, *, activation: str, lam: float | None, patterns: Any,
                device: str | None, seed: int, optimizers: tuple[str, ...], seeds: int,
                epochs: int, lr: float, time_limit: float | None, max_iter: int | None,
                quiet: bool, report: bool = True, grow: bool = True) -> dict[str, Any]:
    """The convex fit, then each optimizer from ``seeds`` initializations at its width."""
    from convexnn.nonconvex import train_network
    from convexnn.objective import network_objective

    ds = prep.dataset
    cls = c.estimator_class(prep.task, activation)
    loss = c.loss_name(prep.task, None)
    classes = None if prep.task == "regression" else np.unique(prep.y_train)
    y_enc = c.encode_targets_for(prep.ys_train, loss, classes)
    lam_value, lam_max, lam_source = c.resolve_lam(lam, prep.Xs_train, y_enc, loss, activation)
    est = c.make_estimator(cls, lam=lam_value, patterns=patterns, random_state=seed,
                           device=device, max_iter=max_iter, grow=grow)
    c.echo(f"[1/2] convex fit: {type(est).__name__}(lam={lam_value:.4g} [{lam_source}]"
           + (f", patterns={patterns}" if patterns is not None else "") + ")", quiet=quiet)
    with c.Progress("convex fit", enabled=not quiet) as progress:
        seconds = c.timed_fit(est, prep.Xs_train, prep.ys_train, progress)
    curve = c.convex_curve(est, progress)
    loss = c.loss_name(prep.task, est)
    y_enc = c.encode_targets_for(prep.ys_train, loss, classes)
    objective = float(network_objective(est.coefs_, est.intercepts_, prep.Xs_train, y_enc,
                                        lam_value, loss))
    reported = float(est.objective_)
    if not math.isclose(objective, reported, rel_tol=1e-6, abs_tol=1e-10):
        logger.warning("objective_ %.12g differs from the recomputed SPEC value %.12g",
                       reported, objective)
    cert = c.certificate_dict(est)
    width = max(c.n_neurons(est), 1)
    fit_result = {
        "data": ds.name, "task": prep.task, "n_samples": ds.n_samples,
        "n_features": ds.n_features, "n_train": int(prep.X_train.shape[0]),
        "n_test": int(prep.X_test.shape[0]), "standardized": prep.standardize,
        "estimator": type(est).__name__, "activation": activation, "loss": loss,
        "lam": lam_value, "lam_max": lam_max, "objective": objective, "certificate": cert,
        "n_neurons": c.n_neurons(est), "n_patterns": getattr(est, "n_patterns_", None),
        "n_iter": getattr(est, "n_iter_", None), "time": seconds,
        "train": c.metrics(prep.task, prep.y_train,
                           prep.to_original_y(est.predict(prep.Xs_train))),
        "test": c.metrics(prep.task, prep.y_test,
                          prep.to_original_y(est.predict(prep.Xs_test)))
        if prep.X_test.shape[0] else {},
    }
    if report and not quiet:
        print_fit(fit_result)
    names = " and ".join(o.upper() if o == "sgd" else o.capitalize() for o in optimizers)
    c.echo("", quiet=quiet)
    c.echo(f"[2/2] the same network ({width} hidden neurons, λ = {lam_value:.4g}, same "
           f"objective) trained by {names}, best of {seeds} seed(s)"
           + (f", at most {time_limit:g} s each" if time_limit else ""), quiet=quiet)
    runs: list[dict[str, Any]] = []
    total = len(optimizers) * seeds
    with c.Progress("non-convex runs", enabled=not quiet, total=total) as progress:
        for opt in optimizers:
            for k in range(seeds):
                res = train_network(
                    prep.Xs_train, y_enc, n_neurons=width, lam=lam_value, loss=loss,
                    fit_intercept=True, optimizer=opt, lr=lr, max_epochs=epochs,
                    time_limit=time_limit, random_state=seed + 1 + k, device=device,
                )
                obj = float(network_objective(res.coefs, res.intercepts, prep.Xs_train, y_enc,
                                              lam_value, loss))
                run = {
                    "method": opt, "seed": seed + 1 + k, "objective": obj,
                    "time": float(res.time), "epochs": int(res.n_epochs),
                    "train": c.metrics(prep.task, prep.y_train, _network_predict(
                        prep, loss, classes, res.coefs, res.intercepts, prep.Xs_train)),
                    "test": c.metrics(prep.task, prep.y_test, _network_predict(
                        prep, loss, classes, res.coefs, res.intercepts, prep.Xs_test))
                    if prep.X_test.shape[0] else {},
                    "history": res.history,
                }
                runs.append(run)
                progress.step(method=opt, objective=obj)
    lower = cert.get("lower_bound")
    best_by_method = {}
    for opt in optimizers:
        mine = [r for r in runs if r["method"] == opt]
        best_by_method[opt] = min(mine, key=lambda r: r["objective"])
    return {
        "fit": fit_result,
        "estimator": est,
        "width": width,
        "runs": runs,
        "best": best_by_method,
        "lower_bound": lower,
        "history": curve,
    }


def print_comparison(result: dict[str, Any]) -> None:
    """The table of runs and a verdict for each optimizer."""
    fit = result["fit"]
    task = fit["task"]
    cert = fit.get("certificate") or {}
    lower = result["lower_bound"]
    convex_obj = fit["objective"]
    m_name = "R²" if task == "regression" else "accuracy"
    m_key = "r2" if task == "regression" else "accuracy"

    def excess(obj: float) -> str:
        return c.pct((obj - convex_obj) / max(abs(convex_obj), 1e-12))

    rows = [("convex", "-", convex_obj, excess(convex_obj), fit["time"],
             fit["train"].get(m_key), fit["test"].get(m_key))]
    best_ids = {id(r) for r in result["best"].values()}
    for r in result["runs"]:
        label = r["method"] + (" *" if id(r) in best_ids else "")
        rows.append((label, r["seed"], r["objective"], excess(r["objective"]), r["time"],
                     r["train"].get(m_key), r["test"].get(m_key)))
    rows = [tuple(f"{v:.2f}" if i == 4 else v for i, v in enumerate(row)) for row in rows]
    headers = ["method", "seed", "objective", "vs convex", "time (s)",
               f"train {m_name}", f"test {m_name}"]
    click.echo(c.format_table(headers, rows))
    click.echo("(* best seed; 'vs convex' = (objective - convex objective) / |convex objective|)")
    scope = cert.get("scope")
    if lower is not None:
        where = ("over every two-layer ReLU network of any width" if scope == "global"
                 else "over the convex program's activation patterns")
        click.echo(f"certified lower bound {c.fmt(lower, 8)} ({scope}: {where}); the convex "
                   f"fit is within {c.fmt(cert.get('gap'), 3)} of it")
    for opt, best in result["best"].items():
        diff = best["objective"] - convex_obj
        rel = diff / max(abs(convex_obj), 1e-12)
        verdict = "higher" if diff > 0 else "lower"
        name = opt.upper() if opt == "sgd" else opt.capitalize()
        click.echo(f"{name}: best of {sum(r['method'] == opt for r in result['runs'])} seeds "
                   f"reached {c.fmt(best['objective'], 8)}, {abs(rel):.2%} {verdict} than the "
                   f"convex fit, in {best['time']:.1f} s")
        if lower is not None and best["objective"] < lower and scope != "global":
            click.echo(f"  note: {name} went below the sampled program's bound: its neurons use "
                       "activation patterns the convex program did not sample (use more "
                       "--patterns)")


def plot_comparison(result: dict[str, Any], path: str, title: str) -> None:
    from convexnn.plotting import plot_objective_vs_time

    curves: dict[str, Any] = {}
    history = result["history"] or [{"time": result["fit"]["time"],
                                      "objective": result["fit"]["objective"]}]
    curves["convex"] = history
    for r in result["runs"]:
        curves[f"{r['method']} (seed {r['seed']})"] = r["history"]
    scope = (result["fit"].get("certificate") or {}).get("scope")
    label = ("certified lower bound (global)" if scope == "global"
             else "lower bound of the sampled convex program")
    plot_objective_vs_time(curves, lower_bound=result["lower_bound"], bound_label=label,
                           convex="convex", title=title, path=path)


def _compare_payload(result: dict[str, Any]) -> dict[str, Any]:
    runs = [{k: v for k, v in r.items() if k != "history"} for r in result["runs"]]
    return {
        "convex": result["fit"],
        "width": result["width"],
        "lower_bound": result["lower_bound"],
        "runs": runs,
        "best": {k: {kk: vv for kk, vv in v.items() if kk != "history"}
                 for k, v in result["best"].items()},
    }


@click.command()
@click.argument("data")
@c.data_options
@click.option("--lam", type=c.POSITIVE, default=None,
              help="Regularization λ (SPEC scaling). Default: λ_max/100.")
@c.model_options
@click.option("--optimizer", "optimizers", type=click.Choice(["adam", "sgd"]),
              multiple=True, default=("adam",), show_default=True,
              help="Non-convex optimizer(s); repeat the option for several.")
@click.option("--seeds", type=click.IntRange(min=1, max=100), default=3, show_default=True,
              help="Initializations per optimizer (the best is reported).")
@click.option("--epochs", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Full-batch steps per non-convex run.")
@click.option("--lr", type=c.POSITIVE, default=1e-2,
              show_default=True, help="Learning rate of Adam/SGD.")
@click.option("--time-limit", type=c.POSITIVE, default=None,
              help="Seconds per non-convex run (default: no limit).")
@click.option("--max-iter", type=click.IntRange(min=1), default=None,
              help="Iteration limit of the convex solver.")
@c.output_options
def compare(data: str, target: str | None, task: str | None, test_size: float, seed: int,
            standardize: bool, lam: float | None, patterns: Any, activation: str,
            device: str | None, grow: bool, optimizers: tuple[str, ...], seeds: int, epochs: int,
            lr: float, time_limit: float | None, max_iter: int | None,
            plot_path: str | None, as_json: bool, quiet: bool) -> None:
    """Compare the convex fit with Adam/SGD on the same objective and width.

    The non-convex network gets the width of the convex solution and the same λ; each
    optimizer runs from --seeds initializations and the best objective counts. The
    table shows each objective's distance to the convex certified lower bound.
    """
    quiet_all = quiet or as_json
    ds = c.load(data, target, task)
    prep = c.prepare(ds, test_size=test_size, seed=seed, standardize=standardize)
    c.echo(f"convexnn compare: {ds.name} ({ds.n_samples} x {ds.n_features}, {prep.task})",
           quiet=quiet_all)
    for note in prep.notes:
        c.echo(f"  note: {note}", quiet=quiet_all)
    result = run_compare(prep, activation=activation, lam=lam, patterns=patterns,
                         device=device, seed=seed, optimizers=tuple(dict.fromkeys(optimizers)),
                         seeds=seeds, epochs=epochs, lr=lr, time_limit=time_limit,
                         max_iter=max_iter, quiet=quiet_all, grow=grow)
    if plot_path is not None:
        plot_comparison(result, plot_path,
                        f"{ds.name}: convex vs {'/'.join(optimizers)} "
                        f"({result['width']} neurons, λ = {result['fit']['lam']:.3g})")
    if as_json:
        payload = _compare_payload(result)
        if plot_path:
            payload["plot"] = plot_path
        c.print_json(payload)
        return
    click.echo("")
    print_comparison(result)
    if plot_path is not None:
        click.echo(f"wrote plot {plot_path}")


@click.command()
@click.option("--data", default=DEMO_DATA, show_default=True,
              help="Bundled data set (or file) to run the demo on.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              metavar="FILE.png", help="Also draw objective against time.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def demo(data: str, plot_path: str | None, quiet: bool) -> None:
    """The one-minute tour: a certified convex fit on real data, then Adam on the same
    network and objective.

    Fits a two-layer ReLU network to the diabetes data (disease progression from body
    mass index and serum triglycerides) as a convex program, prints its objective, the
    lower bound (gap and scope), the number of neurons, train/test R² and time, then
    trains the same network (same width, same λ, same objective) with Adam from several
    seeds.
    """
    settings = DEMO_SETTINGS
    ds = c.load(data, None, None)
    features = settings.get("features")
    if features and data == DEMO_DATA:
        cols = [ds.feature_names.index(f) for f in features]
        ds = replace(ds, X=ds.X[:, cols], feature_names=list(features),
                     name=f"{ds.name}[{', '.join(features)}]")
    prep = c.prepare(ds, test_size=0.2, seed=0, standardize=True)
    click.echo("convexnn demo: a two-layer ReLU network trained as a convex program, "
               "with a certificate of optimality")
    click.echo(f"data: {ds.name} ({ds.n_samples} samples x {ds.n_features} features, "
               f"{prep.task}); {ds.description}")
    for note in prep.notes:
        click.echo(f"  note: {note}")
    click.echo(f"  split: {prep.X_train.shape[0]} train / {prep.X_test.shape[0]} test (seed 0)")
    click.echo("")
    result = run_compare(
        prep, activation="relu", lam=settings["lam"], patterns=settings["patterns"],
        device=None, seed=0, optimizers=("adam",), seeds=settings["seeds"],
        epochs=settings["epochs"], lr=settings["lr"], time_limit=settings["time_limit"],
        max_iter=None, quiet=quiet, report=True, grow=settings.get("grow", True),
    )
    if quiet:
        print_fit(result["fit"])
    click.echo("")
    print_comparison(result)
    if plot_path is not None:
        plot_comparison(result, plot_path,
                        f"{ds.name}: convex vs Adam ({result['width']} neurons, "
                        f"λ = {result['fit']['lam']:.3g})")
        click.echo(f"wrote plot {plot_path}")
    click.echo("")
    click.echo("next: convexnn fit diabetes --plot fit.png | convexnn path diabetes --plot "
               "path.png | convexnn compare breast_cancer --plot compare.png | convexnn --help")
