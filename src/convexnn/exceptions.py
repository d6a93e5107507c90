"""Exception and warning types of convexnn (the library raises only these or builtins)."""

from __future__ import annotations

__all__ = [
    "ConvexNNError",
    "ValidationError",
    "PatternBudgetError",
    "MemoryBudgetError",
    "ModelFormatError",
    "SolverError",
    "ConvergenceWarning",
]

from sklearn.exceptions import ConvergenceWarning


class ConvexNNError(Exception):
    """Base class of every error raised on purpose by convexnn."""


class ValidationError(ConvexNNError, ValueError):
    """A parameter or input array is not what the function expects."""


class PatternBudgetError(ValidationError):
    """Exact enumeration would produce more activation patterns than allowed."""


class MemoryBudgetError(ConvexNNError, MemoryError):
    """The requested problem size does not fit in the allowed memory."""


class ModelFormatError(ConvexNNError, ValueError):
    """A saved model file is corrupted, or written by a newer format version."""


class SolverError(ConvexNNError, RuntimeError):
    """A solver cannot run (missing optional dependency, unsupported piece)."""
