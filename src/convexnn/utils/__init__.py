"""Small helpers shared by every layer: array validation, devices, randomness."""

from convexnn.utils._device import resolve_device, resolve_dtype, to_tensor
from convexnn.utils._linalg import gram_components, lstsq
from convexnn.utils._random import make_generator, seed_from_random_state
from convexnn.utils._validation import (
    check_finite,
    check_matrix,
    check_positive,
    check_targets_1d,
)

__all__ = [
    "check_finite",
    "check_matrix",
    "check_positive",
    "check_targets_1d",
    "gram_components",
    "lstsq",
    "make_generator",
    "resolve_device",
    "resolve_dtype",
    "seed_from_random_state",
    "to_tensor",
]
