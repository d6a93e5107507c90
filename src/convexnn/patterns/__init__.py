"""Activation patterns ``D_i = diag(1[X g_i >= 0])`` of a data matrix (SPEC §2).

Three sources, one result type (:class:`PatternSet`): Gaussian gates (deduplicated),
exact enumeration of every chamber of the hyperplane arrangement, and user gates.
"""

from convexnn.patterns._count import count_bound
from convexnn.patterns._enumeration import enumerate_patterns
from convexnn.patterns._pattern_set import PatternSet, patterns_from_gates
from convexnn.patterns._sampling import sample_patterns

__all__ = [
    "PatternSet",
    "count_bound",
    "enumerate_patterns",
    "patterns_from_gates",
    "sample_patterns",
]
