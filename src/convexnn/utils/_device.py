"""Devices and dtypes follow the data: ``device=None`` means "where X is"."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from convexnn.exceptions import ValidationError

__all__ = ["resolve_device", "resolve_dtype", "to_tensor"]

_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "single": torch.float32,
    "double": torch.float64,
}


def resolve_device(device: Any, X: Any = None, *, owner: str = "estimator") -> torch.device:
    """Return the torch device to compute on.

    ``device=None`` means the device of ``X`` when it is a tensor, else the CPU.
    A CUDA device that is not present raises a :class:`ValidationError`.
    """
    if device is None:
        if isinstance(X, torch.Tensor):
            return X.device
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValidationError(
            f"The 'device' parameter of {owner} must be None, 'cpu', 'cuda' or 'cuda:N'. "
            f"Got {device!r} instead."
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValidationError(
                f"The 'device' parameter of {owner} asks for {device!r}, but CUDA is not "
                "available on this machine (torch.cuda.is_available() is False)."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValidationError(
                f"The 'device' parameter of {owner} asks for {device!r}, but only "
                f"{torch.cuda.device_count()} CUDA device(s) exist."
            )
    elif dev.type not in ("cpu", "mps"):
        raise ValidationError(
            f"The 'device' parameter of {owner} must be None, 'cpu' or 'cuda[:N]'. "
            f"Got {device!r} instead."
        )
    return dev


def resolve_dtype(dtype: Any, X: Any = None, *, owner: str = "estimator") -> torch.dtype:
    """Return the floating dtype to compute in (float32 or float64).

    ``dtype=None`` follows ``X`` when it is float32 (tensor or array) and is float64
    otherwise. float16/bfloat16 are refused: the certificates need at least float32.
    """
    if dtype is None:
        src = getattr(X, "dtype", None)
        if src in (torch.float32, np.float32):
            return torch.float32
        return torch.float64
    if isinstance(dtype, torch.dtype):
        out = dtype
    else:
        key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
        out = _DTYPES.get(key)
        if out is None:
            raise ValidationError(
                f"The 'dtype' parameter of {owner} must be 'float32' or 'float64'. "
                f"Got {dtype!r} instead."
            )
    if out not in (torch.float32, torch.float64):
        raise ValidationError(
            f"The 'dtype' parameter of {owner} must be float32 or float64 (half precision "
            f"cannot carry a certificate of optimality). Got {dtype!r} instead."
        )
    return out


#: byte alignment of the memory torch allocates on the CPU
_CPU_ALIGNMENT = 64


def to_tensor(a: Any, *, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Convert an array-like to a contiguous tensor on ``device`` with ``dtype``, in
    memory aligned as torch allocates it.

    MKL picks its kernels by the alignment of its operands: ``X @ W.T`` of a 113 × 6
    array gave different last bits with the data at 8 and at 16 bytes past a 64-byte
    boundary (NumPy aligns to 16 bytes, and ``torch.as_tensor`` shares its memory). A fit
    must not depend on where its inputs happen to sit, so misaligned CPU memory is copied
    (torch's allocator aligns to 64 bytes).
    """
    if isinstance(a, torch.Tensor):
        t = a.detach().to(device=device, dtype=dtype).contiguous()
    else:
        t = torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)
    if t.device.type == "cpu" and t.data_ptr() % _CPU_ALIGNMENT:
        t = t.clone()  # torch's allocator aligns to 64 bytes
    return t
