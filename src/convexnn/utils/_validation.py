"""Validation of arrays at the library's internal boundaries (torch tensors)."""

from __future__ import annotations

import math
from typing import Any

import torch

from convexnn.exceptions import ValidationError

__all__ = ["check_finite", "check_matrix", "check_positive", "check_targets_1d"]


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise when ``t`` holds NaN or infinity, naming the parameter."""
    if not bool(torch.isfinite(t).all()):
        bad = "NaN" if bool(torch.isnan(t).any()) else "infinity"
        raise ValidationError(f"Input {name} contains {bad}; expected only finite values.")


def check_matrix(t: torch.Tensor, name: str, *, min_rows: int = 1) -> None:
    """Raise unless ``t`` is a finite 2-D floating tensor with at least ``min_rows`` rows."""
    if t.ndim != 2:
        raise ValidationError(
            f"Input {name} must be a 2-D array of shape (n_samples, n_features). "
            f"Got an array with shape {tuple(t.shape)} instead."
        )
    if t.shape[0] < min_rows or t.shape[1] < 1:
        raise ValidationError(
            f"Input {name} must have at least {min_rows} row(s) and 1 column. "
            f"Got shape {tuple(t.shape)} instead."
        )
    check_finite(t, name)


def check_targets_1d(y: torch.Tensor, n: int, name: str = "y") -> None:
    """Raise unless ``y`` is finite with ``n`` rows."""
    if y.shape[0] != n:
        raise ValidationError(
            f"Input {name} must have as many rows as X ({n}). Got {y.shape[0]} instead."
        )
    check_finite(y, name)


def check_positive(value: Any, name: str, owner: str, *, strict: bool = True) -> float:
    """Return ``value`` as a float after checking it is a finite (strictly) positive real."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > 0 if strict else v >= 0)
    if not ok:
        rng = "(0, inf)" if strict else "[0, inf)"
        raise ValidationError(
            f"The {name!r} parameter of {owner} must be a float in the range {rng}. "
            f"Got {value!r} instead."
        )
    return float(value)
