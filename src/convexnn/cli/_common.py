"""What the subcommands share: data preparation, estimator choice, metrics, progress, output."""

from __future__ import annotations

import functools
import inspect
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import click
import numpy as np

from convexnn.datasets import Dataset, load_dataset
from convexnn.exceptions import ValidationError

__all__ = [
    "Prepared",
    "Progress",
    "data_options",
    "echo",
    "encode_targets_for",
    "error_name",
    "estimator_class",
    "fmt",
    "format_table",
    "loss_name",
    "make_estimator",
    "metrics",
    "prepare",
    "resolve_lam",
]


# --------------------------------------------------------------------------- options


class PatternsType(click.ParamType):
    """A positive number of sampled patterns, or ``exact``."""

    name = "INTEGER|exact"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif str(value).strip().lower() == "exact":
            return "exact"
        else:
            try:
                number = int(str(value))
            except ValueError:
                self.fail(f"{value!r} is neither a positive integer nor 'exact'.", param, ctx)
        if number < 1:
            self.fail(f"{number} is not a positive integer.", param, ctx)
        return number


class PositiveFloat(click.ParamType):
    """A finite float > 0 (rejects nan and inf, which click's FloatRange lets through)."""

    name = "FLOAT>0"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number.", param, ctx)
        if not math.isfinite(number) or number <= 0:
            self.fail(f"{value!r} is not a finite number > 0.", param, ctx)
        return number


POSITIVE = PositiveFloat()


class Fraction(click.ParamType):
    """A finite float in ``[low, high]`` (``low`` excluded when ``open_low``)."""

    name = "FLOAT"

    def __init__(self, low: float, high: float, *, open_low: bool = False) -> None:
        self.low, self.high, self.open_low = low, high, open_low

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number.", param, ctx)
        too_low = number <= self.low if self.open_low else number < self.low
        if not math.isfinite(number) or too_low or number > self.high:
            bracket = "(" if self.open_low else "["
            self.fail(f"{value!r} is not in the range {bracket}{self.low:g}, {self.high:g}].",
                      param, ctx)
        return number


def data_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--target``, ``--task``, ``--test-size``, ``--seed``, ``--no-standardize``."""
    options = [
        click.option(
            "--target", default=None, metavar="COLUMN",
            help="Target column of a CSV/Parquet file (default: the last column), column "
            "index of a .npy file, or member of a .npz file (default: y).",
        ),
        click.option(
            "--task", type=click.Choice(["regression", "binary", "multiclass"]), default=None,
            help="Learning task (inferred from the target when omitted).",
        ),
        click.option(
            "--test-size", type=Fraction(0.0, 0.9), default=0.2, show_default=True,
            help="Fraction of samples held out for testing (0 for none).",
        ),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed of the split, the pattern sampling and Adam."),
        click.option(
            "--standardize/--no-standardize", default=True, show_default=True,
            help="Scale features (and regression targets) to zero mean and unit variance "
            "with training-set statistics.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--patterns``, ``--activation``, ``--device``."""
    options = [
        click.option(
            "--patterns", type=PatternsType(), default=None,
            help="Number of sampled activation patterns (or 'exact' for small data).",
        ),
        click.option(
            "--activation", type=click.Choice(["relu", "gated"]), default="relu",
            show_default=True, help="ReLU network (cone constraints) or gated ReLU.",
        ),
        click.option("--device", default=None, help="torch device, e.g. cpu or cuda:0."),
        click.option(
            "--grow/--no-grow", default=True, show_default=True,
            help="Column generation: add the patterns of neurons that violate the dual "
            "constraints (slower, closer to the global optimum).",
        ),
        click.option(
            "--thorough", is_flag=True,
            help="With --grow (ReLU, one output): search for violating neurons by a "
            "monotone ascent from more starts; finds lower optima at small λ, in more "
            "growth rounds (grow=\"thorough\" of the estimators).",
        ),
    ]
    func = _thorough_growth(func)
    for option in reversed(options):
        func = option(func)
    return func


def _thorough_growth(func: Callable[..., Any]) -> Callable[..., Any]:
    """Fold ``--thorough`` into the command's ``grow`` argument (``"thorough"``)."""
    @functools.wraps(func)
    def wrapper(*args: Any, thorough: bool = False, **kwargs: Any) -> Any:
        if thorough and kwargs.get("grow", True):
            kwargs["grow"] = "thorough"
        return func(*args, **kwargs)
    return wrapper


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--plot``, ``--json``, ``--quiet``."""
    options = [
        click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
                     metavar="FILE.png", help="Write a figure there."),
        click.option("--json", "as_json", is_flag=True,
                     help="Print the results as JSON on stdout (nothing else)."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar and no notes."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


# --------------------------------------------------------------------------- output


def echo(message: str = "", *, quiet: bool = False, err: bool = False) -> None:
    """Print unless ``quiet``."""
    if not quiet:
        click.echo(message, err=err)


def fmt(value: Any, digits: int = 6) -> str:
    """A number in a short, aligned-friendly form."""
    if value is None:
        return "-"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return str(v)
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.{max(digits - 3, 2)}e}"
        return f"{v:.{digits}g}"
    return str(value)


def _numeric(text: str) -> bool:
    try:
        float(text.rstrip("%").replace("−", "-"))
    except ValueError:
        return text.strip() == "-"
    return True


def pct(value: float) -> str:
    """A signed percentage."""
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0%"
    return f"{value:+.2%}" if abs(value) >= 1e-4 else f"{value:+.1e}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table: right-aligned numbers, left-aligned text."""
    cells = [[fmt(v) for v in row] for row in rows]
    widths = [
        max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
        for i, h in enumerate(headers)
    ]

    def line(values: Sequence[str], raw: Sequence[Any] | None = None) -> str:
        parts = []
        for i, v in enumerate(values):
            text_like = raw is not None and isinstance(raw[i], str) and not _numeric(raw[i])
            parts.append(v.ljust(widths[i]) if text_like else v.rjust(widths[i]))
        return "  ".join(parts).rstrip()

    out = [line([str(h) for h in headers], list(headers)), "  ".join("-" * w for w in widths)]
    out += [line(c, r) for c, r in zip(cells, rows)]
    return "\n".join(out)


def print_json(payload: dict[str, Any]) -> None:
    """JSON on stdout, with non-finite floats as strings."""

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, np.ndarray):
            return clean(v.tolist())
        if isinstance(v, (np.integer,)):
            return int(v)
        if isinstance(v, (float, np.floating)):
            f = float(v)
            return f if math.isfinite(f) else str(f)
        if isinstance(v, np.bool_):
            return bool(v)
        return v

    click.echo(json.dumps(clean(payload), indent=2))


class Progress:
    """A tqdm bar fed by the estimators' ``callback(info)``; off when stdout is not a
    terminal, or with ``--quiet`` / ``--json``."""

    def __init__(self, desc: str, *, enabled: bool, total: int | None = None) -> None:
        self.enabled = enabled and sys.stdout.isatty()
        self.bar: Any = None
        #: ``{"time", "objective", "lower_bound"}`` of every callback (a convex curve).
        self.records: list[dict[str, float]] = []
        if self.enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="step", leave=False, file=sys.stderr,
                            dynamic_ncols=True)

    def callback(self, info: dict[str, Any]) -> None:
        """Estimator callback: one outer step."""
        obj = info.get("objective", info.get("primal"))
        # the curve holds the states a fit can return: seeding and rounds, not the
        # interior-point iterates inside a round (those only move the bar)
        if obj is not None and info.get("time") is not None and info.get("phase") != "newton":
            self.records.append({"time": float(info["time"]), "objective": float(obj),
                                 "lower_bound": float(info.get("lower_bound", float("nan")))})
        if self.bar is None:
            return
        post = {}
        for key in ("objective", "gap", "n_patterns"):
            if key in info and info[key] is not None:
                post[key.replace("n_patterns", "patterns")] = fmt(info[key], 4)
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)

    def step(self, **post: Any) -> None:
        """One unit of work (e.g. one λ of a path)."""
        if self.bar is not None:
            self.bar.set_postfix({k: fmt(v, 4) for k, v in post.items()}, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --------------------------------------------------------------------------- data


@dataclass
class Prepared:
    """A data set split and (optionally) standardized for fitting."""

    dataset: Dataset
    task: str
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: float = 0.0
    y_scale: float = 1.0
    standardize: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def Xs_train(self) -> np.ndarray:
        return (self.X_train - self.x_mean) / self.x_scale

    @property
    def Xs_test(self) -> np.ndarray:
        return (self.X_test - self.x_mean) / self.x_scale

    @property
    def ys_train(self) -> np.ndarray:
        """Training targets as the estimator sees them (standardized for regression)."""
        if self.task == "regression":
            return (self.y_train - self.y_mean) / self.y_scale
        return self.y_train

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.x_mean) / self.x_scale

    def to_original_y(self, y: np.ndarray) -> np.ndarray:
        if self.task == "regression":
            return np.asarray(y, dtype=float) * self.y_scale + self.y_mean
        return y

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "x_mean": self.x_mean,
            "x_scale": self.x_scale,
            "y_mean": np.array(self.y_mean),
            "y_scale": np.array(self.y_scale),
        }


def load(data: str, target: str | None, task: str | None) -> Dataset:
    """Load DATA (bundled name or file) for a command."""
    return load_dataset(data, target=target, task=task)


def prepare(ds: Dataset, *, test_size: float, seed: int, standardize: bool) -> Prepared:
    """Split into train/test (stratified for classification) and standardize."""
    from sklearn.model_selection import train_test_split

    n = ds.n_samples
    idx = np.arange(n)
    notes: list[str] = []
    if test_size > 0:
        n_test = int(math.ceil(test_size * n))
        if n_test < 1 or n - n_test < 2:
            raise ValidationError(
                f"--test-size {test_size} leaves too few samples to train on ({n} in total)."
            )
        stratify = None
        if ds.task != "regression":
            _, counts = np.unique(ds.y, return_counts=True)
            if counts.min() >= 2 and n_test >= counts.size:
                stratify = ds.y
        tr, te = train_test_split(idx, test_size=test_size, random_state=seed, stratify=stratify)
    else:
        tr, te = idx, idx[:0]
    X_train, X_test = ds.X[tr], ds.X[te]
    y_train, y_test = ds.y[tr], ds.y[te]
    if ds.task != "regression" and np.unique(y_train).size < 2:
        raise ValidationError("The training split has a single class; use a smaller --test-size.")
    d = ds.n_features
    if standardize:
        x_mean = X_train.mean(axis=0)
        x_scale = X_train.std(axis=0)
        x_scale = np.where(x_scale > 1e-12 * max(1.0, float(np.abs(x_mean).max())), x_scale, 1.0)
        what = "X"
        y_mean, y_scale = 0.0, 1.0
        if ds.task == "regression":
            y_mean = float(y_train.mean())
            y_scale = float(y_train.std()) or 1.0
            what = "X and y"
        notes.append(
            f"standardized {what} with training-set mean and standard deviation "
            "(objectives are in standardized units; --no-standardize to fit raw values)"
        )
    else:
        x_mean, x_scale = np.zeros(d), np.ones(d)
        y_mean, y_scale = 0.0, 1.0
    return Prepared(
        dataset=ds, task=ds.task, X_train=X_train, X_test=X_test, y_train=y_train,
        y_test=y_test, x_mean=x_mean, x_scale=x_scale, y_mean=y_mean, y_scale=y_scale,
        standardize=standardize, notes=notes,
    )


# --------------------------------------------------------------------------- models


def estimator_class(task: str, activation: str) -> type:
    """The convexnn estimator for a task and an activation."""
    import convexnn

    kind = "Regressor" if task == "regression" else "Classifier"
    name = f"Convex{'Gated' if activation == 'gated' else ''}ReLU{kind}"
    cls = getattr(convexnn, name, None)
    if cls is None:
        raise click.ClickException(f"This convexnn has no {name} estimator.")
    return cls


def make_estimator(cls: type, **params: Any) -> Any:
    """Build ``cls`` with the given parameters it accepts (``None`` = its default)."""
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in params.items() if v is not None and k in accepted}
    return cls(**kwargs)


def accepts(cls_or_est: Any, name: str) -> bool:
    cls = cls_or_est if isinstance(cls_or_est, type) else type(cls_or_est)
    return name in inspect.signature(cls.__init__).parameters


def loss_name(task: str, est: Any = None) -> str:
    """The SPEC §1 loss an estimator fits (from its ``loss`` parameter when it has one)."""
    loss = getattr(est, "loss", None) if est is not None else None
    if isinstance(loss, str) and loss in ("squared", "logistic", "softmax"):
        return loss
    return {"regression": "squared", "binary": "logistic", "multiclass": "softmax"}[task]


def encode_targets_for(y: np.ndarray, loss: str, classes: np.ndarray | None) -> np.ndarray:
    """Targets in the encoding of ``convexnn.objective``/``nonconvex`` for ``loss``."""
    if loss == "squared" and classes is None:
        return np.asarray(y, dtype=float)
    if classes is None:
        raise ValidationError(f"Loss {loss!r} needs class labels.")
    index = np.searchsorted(classes, y)
    if loss == "logistic":
        return np.where(index == 1, 1.0, -1.0)
    if loss == "squared":  # one-hot squared loss for classification
        return np.eye(classes.size)[index]
    return index.astype(np.int64)


def resolve_lam(lam: float | None, Xs: np.ndarray, y_enc: np.ndarray, loss: str,
                activation: str = "relu") -> tuple[float, float | None, str]:
    """The λ to use: ``lam`` itself, or ``λ_max / 100`` when omitted."""
    lmax = compute_lam_max(Xs, y_enc, loss, activation)
    if lam is not None:
        return float(lam), lmax, "--lam"
    if lmax is None or not math.isfinite(lmax) or lmax <= 0:
        return 1e-3, lmax, "default"
    return lmax / 100.0, lmax, "λ_max/100"


def compute_lam_max(Xs: np.ndarray, y_enc: np.ndarray, loss: str,
                    activation: str = "relu", seed: int = 0) -> float | None:
    """``convexnn.lam_max`` (SPEC §4) for the standardized training data."""
    import convexnn

    fn = getattr(convexnn, "lam_max", None)
    if fn is None:
        return None
    kwargs: dict[str, Any] = {"loss": loss, "fit_intercept": True}
    params = inspect.signature(fn).parameters
    if "activation" in params:
        kwargs["activation"] = activation
    if "random_state" in params:
        kwargs["random_state"] = seed
    return float(fn(Xs, y_enc, **kwargs))


def error_name(task: str) -> str:
    return "RMSE" if task == "regression" else "error rate"


def metrics(task: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """R² and RMSE (regression) or accuracy (classification), in original units."""
    if y_true.size == 0:
        return {}
    if task == "regression":
        y_true = np.asarray(y_true, dtype=float)
        y_pred = np.asarray(y_pred, dtype=float).ravel()
        resid = y_true - y_pred
        ss = float(((y_true - y_true.mean()) ** 2).sum())
        return {
            "r2": 1.0 - float((resid**2).sum()) / ss if ss > 0 else float("nan"),
            "rmse": float(np.sqrt(np.mean(resid**2))),
        }
    return {"accuracy": float(np.mean(np.asarray(y_pred) == np.asarray(y_true)))}


def error_of(task: str, m: dict[str, float]) -> float:
    """The error a path minimizes: RMSE, or 1 − accuracy."""
    if not m:
        return float("nan")
    return m["rmse"] if task == "regression" else 1.0 - m["accuracy"]


def metric_text(task: str, m: dict[str, float]) -> str:
    if not m:
        return "-"
    if task == "regression":
        return f"R² {m['r2']:.4f}, RMSE {fmt(m['rmse'], 5)}"
    return f"accuracy {m['accuracy']:.4f}"


def timed_fit(est: Any, X: np.ndarray, y: np.ndarray, progress: Progress | None) -> float:
    """Fit with the progress callback (when the estimator takes one); the seconds it took."""
    t0 = time.perf_counter()
    kwargs = {}
    if progress is not None and "callback" in inspect.signature(est.fit).parameters:
        kwargs["callback"] = progress.callback
    est.fit(X, y, **kwargs)
    return time.perf_counter() - t0


def convex_curve(est: Any, progress: Progress | None) -> list[dict[str, float]]:
    """Objective against time of a convex fit: the callback records when there are more
    of them than ``history_`` records."""
    history = [
        {"time": float(r["time"]), "objective": float(r.get("objective", r.get("primal")))}
        for r in (getattr(est, "history_", None) or [])
        if "time" in r and ("objective" in r or "primal" in r)
    ]
    records = progress.records if progress is not None else []
    return records if len(records) > len(history) else history


def certificate_dict(est: Any) -> dict[str, Any]:
    cert = getattr(est, "certificate_", None)
    if cert is None:
        return {}
    if hasattr(cert, "to_dict"):
        return dict(cert.to_dict())
    keys = ("primal", "lower_bound", "gap", "rel_gap", "scope", "max_violation")
    return {k: getattr(cert, k) for k in keys if hasattr(cert, k)}


SCOPE_TEXT = {
    "global": "global: no two-layer ReLU network of any width has a lower objective",
    "sampled": "sampled: optimal among networks whose neurons use the program's activation "
    "patterns (sampled, seeded and grown)",
}


def n_neurons(est: Any) -> int:
    value = getattr(est, "n_neurons_", None)
    if value is not None:
        return int(value)
    return int(np.asarray(est.coefs_[0]).shape[1])
