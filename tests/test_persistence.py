"""Model files: exact round trips, no pickle, clear failures on bad files."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

import convexnn.persistence as persistence
from convexnn.exceptions import ModelFormatError, ValidationError
from convexnn.persistence import FORMAT_VERSION, load, read_model, save

# --------------------------------------------------------------------------- stand-in


class StandIn:
    """The smallest object with the estimator persistence contract."""

    def __init__(self, lam=1e-3, patterns=10, dtype=None, device=None, random_state=None):
        self.lam = lam
        self.patterns = patterns
        self.dtype = dtype
        self.device = device
        self.random_state = random_state

    def get_params(self, deep=True):
        return {
            "lam": self.lam,
            "patterns": self.patterns,
            "dtype": self.dtype,
            "device": self.device,
            "random_state": self.random_state,
        }

    def fit(self, X, y):
        rng = np.random.default_rng(0)
        self.coefs_ = [rng.standard_normal((X.shape[1], 5)), rng.standard_normal((5, 1))]
        self.intercepts_ = [rng.standard_normal(5), np.array([0.1])]
        self.objective_ = float(rng.random()) / 3.0
        self.classes_ = np.array(["no", "yes"])
        return self

    def predict(self, X):
        H = np.maximum(X @ self.coefs_[0] + self.intercepts_[0], 0.0)
        return (H @ self.coefs_[1] + self.intercepts_[1]).ravel()

    def _get_fitted_state(self):
        if not hasattr(self, "coefs_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("not fitted")
        return {
            "W1": self.coefs_[0],
            "W2": self.coefs_[1],
            "b1": self.intercepts_[0],
            "b2": self.intercepts_[1],
            "objective": self.objective_,
            "classes": self.classes_,
            "n_iter": 7,
            "scope": "sampled",
            "gap": float("inf"),
            "history": [{"time": 0.5, "objective": 1.25}],
            "nothing": None,
            "scalar_array": np.array(2.5),
            "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
            "int32": np.arange(4, dtype=np.int32),
            "pair": (1, "a"),
        }

    def _set_fitted_state(self, state):
        self.coefs_ = [state["W1"], state["W2"]]
        self.intercepts_ = [state["b1"], state["b2"]]
        self.objective_ = state["objective"]
        self.classes_ = state["classes"]
        self.state_ = state


@pytest.fixture
def standin(monkeypatch):
    monkeypatch.setattr(
        persistence, "_resolve_class", lambda name: StandIn if name == "StandIn" else None
    )
    X = np.random.default_rng(1).standard_normal((20, 3))
    return StandIn(lam=0.125, dtype=torch.float32, device="cpu").fit(X, None), X


def test_standin_round_trip_is_exact(standin, tmp_path):
    est, X = standin
    path = save(est, tmp_path / "m.npz", metadata={"features": ["a", "b", "c"]},
                arrays={"x_mean": np.arange(3.0)})
    assert path.is_file() and path.name == "m.npz"
    saved = read_model(path)
    back = saved.estimator
    assert isinstance(back, StandIn)
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    assert back.objective_ == est.objective_  # exact float through JSON
    assert back.lam == 0.125 and back.dtype is torch.float32 and back.device == "cpu"
    assert back.state_["n_iter"] == 7 and back.state_["scope"] == "sampled"
    assert back.state_["gap"] == float("inf") and back.state_["nothing"] is None
    assert back.state_["history"] == [{"time": 0.5, "objective": 1.25}]
    assert back.state_["scalar_array"].shape == () and back.state_["scalar_array"] == 2.5
    np.testing.assert_array_equal(back.state_["fortran"], np.arange(6.0).reshape(2, 3))
    assert back.state_["int32"].dtype == np.int32
    assert back.state_["pair"] == (1, "a")
    assert list(back.classes_) == ["no", "yes"]
    assert saved.metadata == {"features": ["a", "b", "c"]}
    np.testing.assert_array_equal(saved.arrays["x_mean"], np.arange(3.0))
    assert saved.info["format_version"] == FORMAT_VERSION
    assert saved.info["estimator"] == "StandIn"


def test_file_has_no_pickle(standin, tmp_path):
    est, _ = standin
    path = save(est, tmp_path / "m.model")  # any name; no suffix is added
    assert path.is_file()
    with np.load(path, allow_pickle=False) as npz:  # would raise on object arrays
        for key in npz.files:
            assert npz[key].dtype.kind != "O"


def test_unfitted_estimator_is_refused(standin, tmp_path):
    with pytest.raises(ValidationError, match="not fitted yet"):
        save(StandIn(), tmp_path / "m.npz")


def test_non_estimator_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="'estimator' parameter of save"):
        save(object(), tmp_path / "m.npz")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(tmp_path / "nope.npz")


def _rewrite_meta(path, edit):
    with np.load(path, allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files}
    info = json.loads(members["__convexnn__"].tobytes().decode())
    edit(info)
    members["__convexnn__"] = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)
    np.savez(path, **members)


def test_newer_format_version_fails_clearly(standin, tmp_path):
    est, _ = standin
    path = save(est, tmp_path / "m.npz")
    _rewrite_meta(path, lambda info: info.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ModelFormatError, match=r"format version 2 .*Upgrade convexnn"):
        load(path)


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.6, 0.95])
def test_truncated_file_fails_clearly(standin, tmp_path, keep):
    est, _ = standin
    path = save(est, tmp_path / "m.npz")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelFormatError, match="corrupted|not a convexnn model"):
        load(path)


def test_flipped_bytes_fail_clearly(standin, tmp_path):
    est, _ = standin
    path = save(est, tmp_path / "m.npz")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("state.0.npy")
    # a byte in the middle of the first array's data
    pos = info.header_offset + 30 + len(info.filename) + info.file_size // 2
    data[pos] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="corrupted"):
        load(path)


def test_tampered_array_fails_checksum(standin, tmp_path):
    est, _ = standin
    path = save(est, tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files}
    members["state.0"] = members["state.0"] + 1.0
    np.savez(path, **members)  # a valid zip whose array no longer matches its checksum
    with pytest.raises(ModelFormatError, match="checksum"):
        load(path)


def test_not_a_model_file(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, X=np.zeros((2, 2)))
    with pytest.raises(ModelFormatError, match="not a convexnn model file"):
        load(path)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ModelFormatError, match="corrupted"):
        load(text)


def test_unknown_class_is_refused(standin, tmp_path):
    est, _ = standin
    path = save(est, tmp_path / "m.npz")
    _rewrite_meta(path, lambda info: info.update(estimator="os.system"))
    with pytest.raises(ModelFormatError, match="unknown class 'os.system'"):
        load(path)


def test_unsaveable_state_is_refused(standin, tmp_path):
    est, _ = standin
    est._get_fitted_state = lambda: {"f": lambda x: x}
    with pytest.raises(ValidationError, match="no pickle"):
        save(est, tmp_path / "m.npz")


def test_failed_save_leaves_no_file(standin, tmp_path):
    est, _ = standin
    est._get_fitted_state = lambda: {"f": object()}
    with pytest.raises(ValidationError):
        save(est, tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- real estimators


def _tiny(kind):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2))
    if kind == "regression":
        return X, np.abs(X[:, 0]) + 0.1 * rng.standard_normal(40)
    if kind == "binary":
        return X, np.where(X[:, 0] * X[:, 1] > 0, "yes", "no")
    return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("ConvexGatedReLURegressor", "regression"),
        ("ConvexReLURegressor", "regression"),
        ("ConvexGatedReLUClassifier", "binary"),
        ("ConvexReLUClassifier", "binary"),
        ("ConvexGatedReLUClassifier", "multiclass"),
    ],
)
def test_real_estimator_round_trip_is_exact(name, kind, tmp_path):
    import convexnn

    X, y = _tiny(kind)
    est = getattr(convexnn, name)(lam=0.01, patterns=5, grow=False, random_state=0).fit(X, y)
    path = save(est, tmp_path / "model.npz")
    back = load(path)
    assert type(back) is type(est)
    assert back.get_params() == est.get_params()
    X_new = np.random.default_rng(1).standard_normal((25, 2))
    np.testing.assert_array_equal(back.predict(X_new), est.predict(X_new))
    if kind != "regression":
        np.testing.assert_array_equal(back.classes_, est.classes_)
        np.testing.assert_array_equal(back.predict_proba(X_new), est.predict_proba(X_new))
    assert back.objective_ == est.objective_
    assert back.certificate_.to_dict() == est.certificate_.to_dict()
    assert back.n_neurons_ == est.n_neurons_
    with torch.no_grad():
        Xt = torch.as_tensor(X_new, dtype=torch.float64)
        np.testing.assert_array_equal(back.to_torch()(Xt).numpy(), est.to_torch()(Xt).numpy())


def test_real_unfitted_estimator_is_refused(tmp_path):
    from convexnn import ConvexReLURegressor

    with pytest.raises(ValidationError, match="ConvexReLURegressor instance is not fitted"):
        save(ConvexReLURegressor(), tmp_path / "m.npz")
