"""Counting activation patterns of a hyperplane arrangement."""

from __future__ import annotations

from math import comb

__all__ = ["count_bound"]


def count_bound(n: int, r: int) -> int:
    r"""Upper bound on the number of patterns :math:`|\{1[Xg \ge 0]\}|` (SPEC §2).

    .. math:: 2 \sum_{k=0}^{r-1} \binom{n-1}{k}

    It is the exact number of chambers when the ``n`` rows of ``X`` (rank ``r``) are in
    general position.
    """
    if n < 1 or r < 1:
        return 1
    return 2 * sum(comb(n - 1, k) for k in range(r))
