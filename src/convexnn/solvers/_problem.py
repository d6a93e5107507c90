r"""The convex program solved by every solver, as data (no solving here).

.. math::

    \min_{W, b}\; L(\mathcal A W + \mathbf 1 b^\top) + R(W)
    \quad\text{s.t.}\quad (2D_j - I) X w_{cj} \ge 0 \text{ (ReLU only)}

``W`` has shape ``(c, p, d)``; ``b`` (shape ``(c,)``) is the unregularized output bias,
fixed at zero when ``fit_bias`` is False. ``R`` is the penalty: group-ℓ2
(:math:`\lambda\sum_j\|w_j\|_2`) or, for gated vector outputs, the pattern-wise nuclear
norm (:class:`convexnn.penalties.GroupNuclear`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from convexnn.losses import Loss
from convexnn.operators import PatternOperator
from convexnn.penalties import Penalty

__all__ = ["ConvexProblem"]


@dataclass
class ConvexProblem:
    op: PatternOperator
    Y: torch.Tensor
    loss: Loss
    penalty: Penalty
    fit_bias: bool = False
    constrained: bool = False
    #: a gate per block (p, d), strictly inside the block's cone (for interior points)
    gates: torch.Tensor | None = None

    @property
    def lam(self) -> float:
        return self.penalty.lam

    def to(self, dtype: torch.dtype) -> ConvexProblem:
        """The same program with its data in ``dtype`` (itself when already there): the
        solvers and checks that need float64 for float32 data use it."""
        if self.op.X.dtype == dtype:
            return self
        return replace(self, op=self.op.to(dtype), Y=self.Y.to(dtype),
                       gates=None if self.gates is None else self.gates.to(dtype))

    def zeros(self) -> tuple[torch.Tensor, torch.Tensor]:
        X = self.op.X
        W = torch.zeros(self.op.shape_in, dtype=X.dtype, device=X.device)
        b = torch.zeros(self.op.shape_out[1], dtype=X.dtype, device=X.device)
        return W, b

    def objective(self, W: torch.Tensor, b: torch.Tensor) -> float:
        """:math:`P_c(W, b)` (constraints are not checked here)."""
        Z = self.op.matvec(W) + b
        return float(self.loss.value(Z, self.Y) + self.penalty.value(W))

    def max_violation(self, W: torch.Tensor) -> float:
        """Largest violation :math:`\\max (-(2D_j - I) X w_j)_+` of the cone constraints."""
        if not self.constrained or W.numel() == 0:
            return 0.0
        # only nonzero blocks can violate, a few patterns at a time: the whole (n, c, p)
        # array was 715 MB for letter's seeded program (26 classes, 860 blocks)
        op = self.op
        c, p, d = W.shape
        live = torch.nonzero((W != 0).any(dim=-1).any(dim=0)).flatten()
        n = op.X.shape[0]
        step = max(1, 4_000_000 // max(1, n * c))
        worst = 0.0
        for s in range(0, live.numel(), step):
            j = live[s:s + step]
            P = (op.X @ W[:, j].reshape(-1, d).T).reshape(n, c, -1)
            worst = max(worst, float(torch.clamp(-(P * (2 * op.D[:, j] - 1)[:, None, :]),
                                                 min=0).max()))
        return worst
