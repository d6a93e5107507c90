r"""The activation-pattern matrix as a linear operator (never materialized by default).

With patterns :math:`D_1, \dots, D_p` of ``X`` (n × d), ``c`` outputs and a sign
:math:`\sigma_j \in \{\pm 1\}` per neuron block (``+1`` for ``u`` blocks, ``−1`` for the
``v`` blocks of the ReLU program), the operator maps ``W`` of shape ``(c, p, d)`` to

.. math:: (\mathcal A W)_{:, c} = \sum_{j} \sigma_j D_j X w_{c j} \in \mathbb R^n,

and its adjoint maps ``V`` (n × c) to :math:`(\mathcal A^\top V)_{c j} = \sigma_j X^\top D_j v_c`.
Each application costs one ``n × d × (c p)`` matrix product. The cone map of the ReLU
program, :math:`\mathcal G W = ((2D_j - I) X w_{cj})_{j}`, has the same cost.

:class:`DirectionalOperator` is the same map for blocks that each feed a fixed *direction*
of the outputs (the vector-output ReLU program restricted to (pattern, direction) pairs).
"""

from __future__ import annotations

import torch

from convexnn.utils import gram_components

__all__ = ["DirectionalOperator", "PatternOperator", "dottest"]


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

    def to(self, dtype: torch.dtype) -> PatternOperator:
        """The same operator with ``X`` (and its factors) in ``dtype``."""
        if dtype == self.X.dtype:
            return self
        return PatternOperator(self.X.to(dtype), self.D > 0, self.sign, self.c)

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

    def outputs(self, P: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathcal A W` from the pre-activations ``P = preactivations(W)``:
        (n, c, p) → (n, c)."""
        return (P * self.SD[:, None, :]).sum(dim=2)

    def output_coefficients(self, V: torch.Tensor) -> torch.Tensor:
        r"""``M`` (n, c, p) with :math:`(\mathcal A^\top V)_{cj} = X^\top M_{:, c, j}`:
        the adjoint of :meth:`outputs`."""
        return V[:, :, None] * self.SD[:, None, :]

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
        # W_j = Σ_k u_k (u_kᵀ W_j) exactly; the rows u_kᵀ W_j are products, so their norms
        # are accurate (the Gram's eigenvalues are not, below ε of the largest)
        _, U, UB = gram_components(B)  # U (p, c, c); UB (p, c, d): row k is u_kᵀ W_j
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


class DirectionalOperator(PatternOperator):
    r"""``W ↦ Σ_j (D_j X w_j) t_jᵀ``: blocks that each feed one fixed unit output direction.

    The ReLU program with vector outputs (SPEC §5) restricted to ``m`` (pattern,
    direction) pairs :math:`(D_j, t_j)`, :math:`\|t_j\| = 1`: a neuron with first-layer
    weights :math:`\tilde w` and output weights :math:`\alpha` is the pair
    :math:`(1[X\tilde w \ge 0], \alpha/\|\alpha\|)` with
    :math:`w = \tilde w\|\alpha\|` in the pair's cone, and
    :math:`\lambda\|w\| \le \tfrac\lambda2(\|\tilde w\|^2 + \|\alpha\|^2)`. The
    direction absorbs the output sign, so no ``v`` blocks are needed. Blocks are laid out
    as one row, ``W`` of shape ``(1, m, d)`` (``c = 1``: the group-ℓ2 penalty and the
    cone maps of :class:`PatternOperator` apply unchanged); the outputs have
    ``n_outputs`` columns.

    .. math:: (\mathcal A W) = \sum_j (D_j X w_j)\, t_j^\top, \qquad
              (\mathcal A^\top V)_j = X^\top D_j V t_j .

    Parameters
    ----------
    X : tensor (n, d)
    masks : bool tensor (n, m)
    directions : tensor (m, n_outputs)
        Unit rows :math:`t_j` (normalized here).
    """

    def __init__(self, X: torch.Tensor, masks: torch.Tensor, directions: torch.Tensor
                 ) -> None:
        super().__init__(X, masks, None, 1)
        if directions.ndim != 2 or directions.shape[0] != self.p:
            raise ValueError(f"directions: expected shape ({self.p}, n_outputs), "
                             f"got {tuple(directions.shape)}")
        T = directions.to(dtype=X.dtype, device=X.device)
        norms = torch.linalg.vector_norm(T, dim=1, keepdim=True)
        if self.p and not bool((norms > 0).all()):
            raise ValueError("directions: every row must be nonzero")
        self.T = T / norms
        self.n_outputs = int(T.shape[1])

    def to(self, dtype: torch.dtype) -> DirectionalOperator:
        if dtype == self.X.dtype:
            return self
        return DirectionalOperator(self.X.to(dtype), self.D > 0, self.T)

    @property
    def shape_out(self) -> tuple[int, int]:
        return (int(self.X.shape[0]), self.n_outputs)

    def outputs(self, P: torch.Tensor) -> torch.Tensor:
        return (P[:, 0, :] * self.D) @ self.T

    def output_coefficients(self, V: torch.Tensor) -> torch.Tensor:
        return ((V @ self.T.T) * self.D)[:, None, :]

    def matvec(self, W: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathcal A W`, shape (n, n_outputs)."""
        self.n_matvec += 1
        return self.outputs(self.preactivations(W))

    def rmatvec(self, V: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathcal A^\top V`, shape (1, m, d)."""
        self.n_rmatvec += 1
        return (self.output_coefficients(V)[:, 0, :].T @ self.X)[None]

    def both(self, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.n_matvec += 1
        P = self.preactivations(W)
        return self.outputs(P), P * (2 * self.D - 1)[:, None, :]

    def to_dense(self) -> torch.Tensor:
        r"""The explicit matrix of :math:`\mathrm{vec}(\mathcal A W)` (column-major
        outputs stacked: ``n · n_outputs`` × ``m d``)."""
        n, d = self.X.shape
        blocks = self.D[:, :, None] * self.X[:, None, :]  # (n, m, d)
        full = self.T.T[:, None, :, None] * blocks[None]  # (c, n, m, d)
        return full.reshape(self.n_outputs * n, self.p * d)


def dottest(op: PatternOperator, *, generator: torch.Generator | None = None) -> float:
    """Relative error of :math:`\\langle \\mathcal A W, V\\rangle = \\langle W,
    \\mathcal A^\\top V\\rangle` on random ``W``, ``V`` (≈ machine precision when correct)."""
    X = op.X
    W = torch.randn(op.shape_in, generator=generator, dtype=X.dtype, device=X.device)
    V = torch.randn(op.shape_out, generator=generator, dtype=X.dtype, device=X.device)
    lhs = (op.matvec(W) * V).sum()
    rhs = (W * op.rmatvec(V)).sum()
    return float((lhs - rhs).abs() / max(float(lhs.abs()), float(rhs.abs()), 1e-300))
