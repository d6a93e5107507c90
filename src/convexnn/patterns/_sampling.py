"""Random activation patterns from Gaussian gates ``g ~ N(0, I)``."""

from __future__ import annotations

import torch

from convexnn.patterns._pattern_set import PatternSet, dedup_columns

__all__ = ["sample_patterns"]


def sample_patterns(
    X: torch.Tensor,
    n_patterns: int,
    *,
    generator: torch.Generator,
    max_rounds: int = 20,
) -> PatternSet:
    """Sample up to ``n_patterns`` distinct, non-empty patterns of ``X``.

    Gates are drawn i.i.d. from ``N(0, I_d)`` (a quantized random embedding of the data,
    SPEC §2) in rounds until ``n_patterns`` distinct patterns are found or ``max_rounds``
    rounds have run (small data sets may have fewer patterns than asked).
    """
    n, d = X.shape
    gates = torch.zeros(0, d, dtype=X.dtype, device=X.device)
    masks = torch.zeros(n, 0, dtype=torch.bool, device=X.device)
    for _ in range(max_rounds):
        need = n_patterns - gates.shape[0]
        if need <= 0:
            break
        G = torch.randn(need, d, generator=generator, device=X.device, dtype=X.dtype)
        M = (X @ G.T) >= 0
        gates = torch.cat([gates, G])
        masks = torch.cat([masks, M], dim=1)
        keep = dedup_columns(masks)
        gates, masks = gates[keep], masks[:, keep]
    gates, masks = gates[:n_patterns], masks[:, :n_patterns]
    return PatternSet(gates.contiguous(), masks.contiguous(), False, "sampled")
