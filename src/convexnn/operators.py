r"""The activation-pattern matrix as a linear operator (never materialized by default).

With patterns :math:`D_1, \dots, D_p` of ``X`` (n × d), ``c`` outputs and a sign
:math:`\sigma_j \in \{\pm 1\}` per neuron block (``+1`` for ``u`` blocks, ``−1`` for the
``v`` blocks of the ReLU program), the operator maps ``W`` of shape ``(c, p, d)`` to

.. math:: (\mathcal A W)_{:, c} = \sum_{j} \sigma_j D_j X w_{c j} \in \mathbb R^n,

and its adjoint maps ``V`` (n × c) to :math:`(\mathcal A^\top V)_{c j} = \sigma_j X^\top D_j v_c`.
Each application costs one ``n × d × (c p)`` matrix product. The cone map of the ReLU
program, :math:`\mathcal G W = ((2D_j - I) X w_{cj})_{j}`, has the same cost.
"""

from __future__ import annotations

import torch

__all__ = ["PatternOperator", "dottest"]


class PatternOperator:
    """``W ↦ Σ_j σ_j D_j X w_j`` for every output, with adjoint and call counters.

    Parameters
    ----------
    X : tensor (n, d)
    masks : bool tensor (n, p)
        Activation patterns, one column per neuron block.
    signs : tensor (p,), optional
        ``σ_j``; all ones by default (gated ReLU).
    n_outputs : int
        ``c``.
    """

    def __init__(
        self,
        X: torch.Tensor,
        masks: torch.Tensor,
        signs: torch.Tensor | None = None,
        n_outputs: int = 1,
    ) -> None:
        self.X = X
        self.D = masks.to(X.dtype)
        self.p = int(masks.shape[1])
        self.c = int(n_outputs)
        self.sign = (
            torch.ones(self.p, dtype=X.dtype, device=X.device)
            if signs is None
            else signs.to(dtype=X.dtype, device=X.device)
        )
        self.SD = self.D * self.sign  # σ_j D_j, (n, p)
        self.n_matvec = 0
        self.n_rmatvec = 0

    @property
    def shape_in(self) -> tuple[int, int, int]:
        return (self.c, self.p, int(self.X.shape[1]))

    @property
    def shape_out(self) -> tuple[int, int]:
        return (int(self.X.shape[0]), self.c)

    def preactivations(self, W: torch.Tensor) -> torch.Tensor:
        """``X w_{cj}`` for every block: shape (n, c, p)."""
        c, p, d = W.shape
        return (self.X @ W.reshape(c * p, d).T).reshape(-1, c, p)

    def _by_pattern(self) -> bool:
        """Contract over patterns first (intermediate n × c × d) when p > d; otherwise
        over features first (intermediate n × c × p). Same flops, smaller temporary."""
        return self.p > self.X.shape[1]

    def matvec(self, W: torch.Tensor) -> torch.Tensor:
        """:math:`\\mathcal A W`, shape (n, c).

        Either :math:`\\sum_j \\sigma_j D_j (X w_{cj})` or, when ``p > d``, row-wise
        :math:`z_{ic} = x_i^\\top \\sum_j \\sigma_j D_{ij} w_{cj}` (one ``(n × p)(p × cd)``
        product) — or, when the blocks are mostly zero or of low rank, from their compact
        factors (:meth:`_compact`).
        """
        self.n_matvec += 1
        compact = self._compact(W)
        if compact is not None:
            R, L, idx = compact
            return ((self.X @ R.T) * self.SD[:, idx]) @ L
        if self._by_pattern():
            c, p, d = W.shape
            T = (self.SD @ W.transpose(0, 1).reshape(p, c * d)).reshape(-1, c, d)
            return torch.bmm(T, self.X[:, :, None])[:, :, 0]
        return (self.preactivations(W) * self.SD[:, None, :]).sum(dim=2)

    def _compact(self, W: torch.Tensor, max_fraction: float = 0.5
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        r"""Factors :math:`W_j = \sum_k l_{jk} r_{jk}^\top` of the blocks (c × d each) over
        their numerically nonzero components, or None when there are more than
        ``max_fraction · c p`` of them (then the dense product is as cheap).

        The iterates of the proximal solvers are sparse in blocks (group-ℓ2) and of low
        rank within them (nuclear norm): at a FISTA iterate on digits with 300 gates, 150
        nonzero components out of 3,000. The product then costs
        :math:`n d \sum_j r_j` instead of :math:`n d c p`. Components come from the
        eigendecomposition of each block's c × c Gram matrix (float64),
        :math:`W_j = \sum_k u_k (u_k^\top W_j)`; rows :math:`u_k^\top W_j` of norm below
        :math:`10\,\varepsilon` times the block's largest are dropped (ε of ``W``'s
        dtype): the product differs from the dense one at the level of that dtype's
        round-off.
        """
        c, p, d = W.shape
        if p == 0 or c * p < 8:
            return None
        B = W.transpose(0, 1).double()  # (p, c, d)
        eps = torch.finfo(W.dtype).eps
        if c == 1:
            e = (B[:, 0, :] ** 2).sum(dim=1)  # (p,)
            keep = e > 0  # the group-ℓ2 prox leaves zero blocks exactly zero
            if int(keep.sum()) > max_fraction * p:
                return None
            idx = torch.nonzero(keep).flatten()
            R = B[idx, 0, :]
            L = torch.ones(idx.numel(), 1, dtype=B.dtype, device=B.device)
            return R.to(W.dtype), L.to(W.dtype), idx
        _, U = torch.linalg.eigh(B @ B.transpose(1, 2))  # (p, c, c), orthonormal columns
        # W_j = Σ_k u_k (u_kᵀ W_j) exactly; the rows u_kᵀ W_j are products, so their norms
        # are accurate (the Gram's eigenvalues are not, below ε of the largest)
        UB = U.transpose(1, 2) @ B  # (p, c, d): row k is u_kᵀ W_j
        norms = torch.linalg.vector_norm(UB, dim=2)  # (p, c)
        top = norms.max(dim=1, keepdim=True).values
        keep = (norms > 10 * eps * top) & (top > 0)
        if int(keep.sum()) > max_fraction * c * p:
            return None
        R = UB[keep]  # (K, d)
        L = U.transpose(1, 2)[keep]  # (K, c): u_k
        idx = torch.nonzero(keep)[:, 0]  # each component's block
        return R.to(W.dtype), L.to(W.dtype), idx

    def rmatvec(self, V: torch.Tensor) -> torch.Tensor:
        """:math:`\\mathcal A^\\top V`, shape (c, p, d)."""
        self.n_rmatvec += 1
        n, c = V.shape
        if self._by_pattern():
            d = self.X.shape[1]
            XV = (self.X[:, :, None] * V[:, None, :]).reshape(n, d * c)
            return (self.SD.T @ XV).reshape(self.p, d, c).permute(2, 0, 1).contiguous()
        M = (V[:, :, None] * self.SD[:, None, :]).reshape(n, c * self.p)
        return (M.T @ self.X).reshape(c, self.p, -1)

    def cone_matvec(self, W: torch.Tensor) -> torch.Tensor:
        """:math:`(2D_j - I) X w_{cj}`, shape (n, c, p); ≥ 0 means feasible."""
        self.n_matvec += 1
        return self.preactivations(W) * (2 * self.D - 1)[:, None, :]

    def cone_rmatvec(self, M: torch.Tensor) -> torch.Tensor:
        """Adjoint of :meth:`cone_matvec`: (n, c, p) → (c, p, d)."""
        self.n_rmatvec += 1
        n, c, p = M.shape
        M = (M * (2 * self.D - 1)[:, None, :]).reshape(n, c * p)
        return (M.T @ self.X).reshape(c, p, -1)

    def both(self, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:math:`\\mathcal A W` and the cone values from one matrix product."""
        self.n_matvec += 1
        P = self.preactivations(W)
        return (P * self.SD[:, None, :]).sum(dim=2), P * (2 * self.D - 1)[:, None, :]

    def to_dense(self) -> torch.Tensor:
        """The explicit matrix ``[σ_1 D_1 X … σ_p D_p X]`` (n × p d), for c = 1."""
        n, d = self.X.shape
        return (self.SD[:, :, None] * self.X[:, None, :]).reshape(n, self.p * d)


def dottest(op: PatternOperator, *, generator: torch.Generator | None = None) -> float:
    """Relative error of :math:`\\langle \\mathcal A W, V\\rangle = \\langle W,
    \\mathcal A^\\top V\\rangle` on random ``W``, ``V`` (≈ machine precision when correct)."""
    X = op.X
    W = torch.randn(op.shape_in, generator=generator, dtype=X.dtype, device=X.device)
    V = torch.randn(op.shape_out, generator=generator, dtype=X.dtype, device=X.device)
    lhs = (op.matvec(W) * V).sum()
    rhs = (W * op.rmatvec(V)).sum()
    return float((lhs - rhs).abs() / max(float(lhs.abs()), float(rhs.abs()), 1e-300))
