"""Fits must not depend on where their inputs sit in memory, nor differ from call to call:
the helpers that make the linear algebra reproducible."""

import hashlib

import numpy as np
import torch

from convexnn.utils import lstsq, to_tensor


def _digest(t: torch.Tensor) -> str:
    return hashlib.md5(t.detach().cpu().numpy().tobytes()).hexdigest()


def _misaligned(a: np.ndarray, offset_bytes: int) -> np.ndarray:
    """A copy of ``a`` whose data starts ``offset_bytes`` after a 64-byte boundary."""
    buf = np.empty(a.size + 16, dtype=a.dtype)
    start = (-buf.ctypes.data % 64 + offset_bytes) // a.itemsize
    out = buf[start:start + a.size].reshape(a.shape)
    out[...] = a
    assert out.ctypes.data % 64 == offset_bytes
    return out


def test_to_tensor_copies_misaligned_memory_into_aligned_memory():
    a = np.arange(60, dtype=np.float64).reshape(10, 6)
    for off in (0, 8, 16, 24):
        t = to_tensor(_misaligned(a, off), dtype=torch.float64, device=torch.device("cpu"))
        assert t.data_ptr() % 64 == 0
        assert torch.equal(t, torch.as_tensor(a))


def test_lstsq_is_the_same_on_every_call_and_minimum_norm():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(50, 50, generator=g, dtype=torch.float64)
    r = torch.randn(50, 1, generator=g, dtype=torch.float64)
    seen = set()
    for i in range(30):
        _ = [torch.empty(k) for k in range(i)]  # move the allocator around
        seen.add(_digest(lstsq(A, r)))
    assert len(seen) == 1
    # rank deficient (the softmax bias Hessian has the null vector 1): the minimum-norm
    # solution has no component along it
    P = torch.eye(3, dtype=torch.float64) - 1.0 / 3
    x = lstsq(P, torch.tensor([[1.0], [-2.0], [1.0]], dtype=torch.float64))
    assert abs(float(x.sum())) < 1e-12
    assert torch.allclose(P @ x, torch.tensor([[1.0], [-2.0], [1.0]], dtype=torch.float64))


_FIT = """
import hashlib, sys, warnings
import numpy as np
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler
from convexnn import ConvexReLUClassifier
X, y = load_iris(return_X_y=True)
X = StandardScaler().fit_transform(X)
buf = np.empty(X.size + 16)
off = int(sys.argv[1])
start = (-buf.ctypes.data % 64 + off) // 8
Xm = buf[start:start + X.size].reshape(X.shape)
Xm[...] = X
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    est = ConvexReLUClassifier(lam=1e-3, random_state=0).fit(Xm, y)
print(hashlib.md5(b"".join(np.ascontiguousarray(a).tobytes()
                           for a in (*est.coefs_, *est.intercepts_))).hexdigest())
"""


def test_multiclass_fits_are_identical_across_processes_and_input_alignments():
    """Two processes (different hash seeds, inputs at different alignments) fit the same
    network to the last bit. Before the fixes in this module, the default multiclass ReLU
    fit on iris differed from run to run (MKL's gelsy least squares)."""
    import os
    import subprocess
    import sys

    out = set()
    for off, hseed in ((8, "1"), (16, "2")):
        env = dict(os.environ, PYTHONHASHSEED=hseed)
        res = subprocess.run([sys.executable, "-c", _FIT, str(off)], env=env,
                             capture_output=True, text=True, check=True)
        out.add(res.stdout.strip())
    assert len(out) == 1
