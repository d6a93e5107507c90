"""The result type shared by every pattern source, and deduplication."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["PatternSet", "dedup_columns", "patterns_from_gates"]


@dataclass
class PatternSet:
    """Gates and the activation patterns they induce on a (bias-augmented) data matrix.

    Attributes
    ----------
    gates : tensor of shape (p, d)
        One gate vector per pattern, ``masks[:, i] == (X @ gates[i] >= 0)``.
    masks : bool tensor of shape (n, p)
    exact : bool
        True when the set holds every chamber of the arrangement (exact enumeration),
        which makes the dual certificate global.
    source : str
        ``"sampled"``, ``"exact"``, ``"user"`` or ``"grown"``.
    """

    gates: torch.Tensor
    masks: torch.Tensor
    exact: bool = False
    source: str = "sampled"

    @property
    def n_patterns(self) -> int:
        return int(self.masks.shape[1])

    def extend(self, gates: torch.Tensor, masks: torch.Tensor) -> tuple[PatternSet, int]:
        """Add new patterns (duplicates of existing ones are dropped).

        Returns the new set and how many patterns were actually added.
        """
        all_masks = torch.cat([self.masks, masks], dim=1)
        all_gates = torch.cat([self.gates, gates], dim=0)
        keep = dedup_columns(all_masks)
        # keep existing order: existing ones are first and always kept
        keep = keep[keep >= 0]
        new = PatternSet(all_gates[keep], all_masks[:, keep], self.exact, self.source)
        return new, new.n_patterns - self.n_patterns


def _column_hash(masks: torch.Tensor) -> torch.Tensor:
    """Two independent random projections of each boolean column, exact in float64.

    The weights are random integers below :math:`2^{53}/n`, so every sum of them is an
    integer below :math:`2^{53}` and is computed exactly whatever the order of the sum:
    the hash of a column is the same in any matrix product that contains it (cuBLAS
    splits the n-term sums by the product's shape; real-valued weights then differed
    in their last bits between a pattern set and a network's own masks).
    """
    n = masks.shape[0]
    gen = torch.Generator(device=masks.device)
    gen.manual_seed(20240607)
    high = max(2, 2**53 // max(n, 1))
    r = torch.randint(1, high, (n, 2), generator=gen, device=masks.device)
    return masks.to(torch.float64).T @ r.to(torch.float64)  # (p, 2)


def dedup_columns(masks: torch.Tensor) -> torch.Tensor:
    """Indices of the first occurrence of each distinct non-empty column, in order."""
    p = masks.shape[1]
    if p == 0:
        return torch.zeros(0, dtype=torch.long, device=masks.device)
    h = _column_hash(masks)
    nonempty = masks.any(dim=0)
    _, inverse = torch.unique(h, dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), p, dtype=torch.long, device=masks.device)
    first.scatter_reduce_(0, inverse, torch.arange(p, device=masks.device), reduce="amin")
    is_first = first[inverse] == torch.arange(p, device=masks.device)
    return torch.nonzero(is_first & nonempty).flatten()


def patterns_from_gates(
    X: torch.Tensor, gates: torch.Tensor, *, source: str = "user", dedup: bool = True
) -> PatternSet:
    """Patterns ``1[X g >= 0]`` of the given gates (rows of ``gates``), deduplicated."""
    gates = gates.to(device=X.device, dtype=X.dtype)
    masks = (X @ gates.T) >= 0
    if dedup:
        keep = dedup_columns(masks)
        gates, masks = gates[keep], masks[:, keep]
    return PatternSet(gates.contiguous(), masks.contiguous(), False, source)
