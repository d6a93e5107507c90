"""Inputs that live on the compute device (torch tensors, generators): every entry point
takes them where they are (on CUDA these paths used NumPy conversions or CPU-only
routines; the CUDA parameter runs where a GPU is present)."""

import numpy as np
import torch

from convexnn.losses import encode_targets
from convexnn.patterns._pattern_set import _column_hash, dedup_columns
from convexnn.persistence import read_model, save
from convexnn.sketching import SketchedLinearRegression, SketchedLogisticRegression
from convexnn.sketching._quantized import hamming_fraction
from convexnn.utils import lstsq, make_generator, seed_from_random_state


def test_column_hash_is_exact_in_any_product(device):
    """Integer weights: a column's hash is the same whether it is hashed with 1 or with
    500 other columns (the layout of the sum differs), and it is an integer."""
    g = torch.Generator(device=device).manual_seed(0)
    masks = torch.rand(1000, 500, generator=g, device=device) > 0.5
    full = _column_hash(masks)
    assert torch.equal(full, torch.round(full))
    for j in (0, 17, 499):
        assert torch.equal(_column_hash(masks[:, j:j + 1])[0], full[j])
    assert torch.equal(_column_hash(masks[:, ::7]), full[::7])
    dup = torch.cat([masks[:, :3], masks[:, :2]], dim=1)
    assert dedup_columns(dup).tolist() == [0, 1, 2]


def test_generators_follow_the_device(device):
    g = torch.Generator(device=device).manual_seed(3)
    assert make_generator(g, device) is g
    assert isinstance(seed_from_random_state(g), int)
    cpu = torch.Generator().manual_seed(3)
    moved = make_generator(cpu, device)
    assert moved.device.type == device.type
    torch.randn(2, generator=moved, device=device)  # usable for sampling there


def test_softmax_targets_from_a_tensor(device):
    y = torch.tensor([0, 2, 1, 2], device=device)
    Y = encode_targets(y, "softmax", device=device, dtype=torch.float64)
    assert Y.device.type == device.type
    assert Y.argmax(dim=1).tolist() == [0, 2, 1, 2]


def test_lstsq_is_minimum_norm_on_a_singular_system(device):
    A = torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]], dtype=torch.float64,
                     device=device)
    x = lstsq(A, torch.tensor([[2.0], [2.0], [0.0]], dtype=torch.float64, device=device))
    assert x.device.type == device.type
    torch.testing.assert_close(x.cpu(), torch.tensor([[1.0], [1.0]], dtype=torch.float64))


def test_sketched_estimators_take_tensors_where_they_are(device):
    g = torch.Generator(device=device).manual_seed(1)
    X = torch.randn(400, 5, generator=g, device=device, dtype=torch.float64)
    w = torch.arange(1.0, 6.0, device=device, dtype=torch.float64)
    y = X @ w + 0.5
    reg = SketchedLinearRegression(random_state=0).fit(X, y)
    np.testing.assert_allclose(reg.coef_, w.cpu().numpy(), rtol=1e-6)
    np.testing.assert_allclose(reg.predict(X), y.cpu().numpy(), rtol=1e-6, atol=1e-6)
    labels = (y > y.median()).to(torch.float64)
    clf = SketchedLogisticRegression(random_state=0).fit(X, labels)
    assert clf.score(X.cpu().numpy(), labels.cpu().numpy()) > 0.9
    assert clf.decision_function(X).shape == (400,)


def test_hamming_fraction_of_a_tensor_and_an_array(device):
    a = torch.tensor([1, 0, 1, 1], device=device)
    assert float(hamming_fraction(a, np.array([1, 1, 1, 0]))) == 0.5


def test_saved_arrays_may_be_tensors(device, tmp_path):
    from convexnn import ConvexGatedReLURegressor

    X = np.random.default_rng(0).standard_normal((30, 2))
    est = ConvexGatedReLURegressor(patterns=8, grow=False, random_state=0).fit(X, X[:, 0])
    path = save(est, tmp_path / "m.npz", arrays={"mean": torch.arange(3.0, device=device)})
    np.testing.assert_array_equal(read_model(path).arrays["mean"], np.arange(3.0))
