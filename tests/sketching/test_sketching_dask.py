"""Dask input: one chunked pass equals the in-memory sketch; Zarr and .npy memmap on disk."""

from __future__ import annotations

import numpy as np
import pytest

from convexnn.exceptions import ValidationError
from convexnn.sketching import lstsq, make_sketch, sketch_dask

da = pytest.importorskip("dask.array")


def _data(n=6000, d=6, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, d)) * np.logspace(0, -3, d)
    a[:, 0] = 1.0
    b = a @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    return a, b


@pytest.mark.parametrize("kind", ["gaussian", "srht", "countsketch", "sparse_sign", "less"])
def test_chunked_sketch_equals_in_memory(kind):
    a, _ = _data()
    s = make_sketch(kind, 40, a.shape[0], random_state=0)
    ad = da.from_array(a, chunks=(1700, 3))  # uneven row chunks, split columns
    np.testing.assert_allclose(sketch_dask(ad, s).numpy(), s.apply_left(a), atol=1e-10)


@pytest.mark.parametrize("method", ["sketch_and_solve", "ihs", "preconditioned"])
def test_dask_lstsq_equals_in_memory(method):
    a, b = _data()
    ad, bd = da.from_array(a, chunks=(1000, 6)), da.from_array(b, chunks=1000)
    x_d, info = lstsq(ad, bd, method=method, sketch="countsketch", sketch_size=60,
                      random_state=3, return_info=True)
    x_m = lstsq(a, b, method=method, sketch="countsketch", sketch_size=60, random_state=3)
    assert isinstance(x_d, np.ndarray)
    f = lambda x: np.sum((a @ x - b) ** 2)  # noqa: E731
    if method == "sketch_and_solve":
        np.testing.assert_allclose(x_d, x_m, atol=1e-10)  # same sketch, same solution
        assert info.n_passes == 1
    else:
        ref = np.linalg.lstsq(a, b, rcond=None)[0]
        assert (f(x_d) - f(ref)) / f(ref) <= 1e-9
        assert (f(x_m) - f(ref)) / f(ref) <= 1e-9


def test_out_of_core_npy_memmap_and_zarr(tmp_path):
    a, b = _data(n=8000, d=5)
    ab = np.column_stack([a, b])
    np.save(tmp_path / "ab.npy", ab)
    mm = np.load(tmp_path / "ab.npy", mmap_mode="r")
    arr = da.from_array(mm, chunks=(2000, -1))
    ref = np.linalg.lstsq(a, b, rcond=None)[0]
    x = lstsq(arr[:, :5], arr[:, 5], method="preconditioned", random_state=0)
    np.testing.assert_allclose(x, ref, atol=1e-8)
    zarr = pytest.importorskip("zarr")
    z = zarr.open(str(tmp_path / "ab.zarr"), mode="w", shape=ab.shape, chunks=(2000, 6),
                  dtype="f8")
    z[:] = ab
    arr = da.from_zarr(str(tmp_path / "ab.zarr"))
    x = lstsq(arr[:, :5], arr[:, 5], method="sketch_and_solve", sketch_size=200,
              random_state=0)
    f = lambda x: np.sum((a @ x - b) ** 2)  # noqa: E731
    assert f(ref) <= f(x) <= 1.2 * f(ref)


def test_distributed_client_is_used_when_present():
    distributed = pytest.importorskip("distributed")
    a, b = _data(n=3000, d=4)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=None) as client:
        ad = da.from_array(a, chunks=(1000, 4))
        x = lstsq(ad, b, method="sketch_and_solve", sketch_size=50, random_state=0)
        assert client.status == "running"
    x_m = lstsq(a, b, method="sketch_and_solve", sketch_size=50, random_state=0)
    np.testing.assert_allclose(x, x_m, atol=1e-10)


def test_dask_bad_input():
    a, b = _data(n=1000, d=4)
    bad = a.copy()
    bad[700, 1] = np.nan
    with pytest.raises(ValidationError, match="NaN"):
        lstsq(da.from_array(bad, chunks=(300, 4)), b, method="sketch_and_solve")
    with pytest.raises(ValidationError, match="rows like A"):
        lstsq(da.from_array(a, chunks=(300, 4)), b[:-3])
    with pytest.raises(ValidationError, match="n_features"):
        lstsq(da.from_array(a, chunks=(300, 4)), b, sketch_size=2)
