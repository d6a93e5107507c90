r"""The one reversible mapping between networks and convex variables (SPEC §2).

Convex variables: ``W`` of shape ``(c, q, d̃)`` over ``q`` neuron blocks with signs
``σ_j`` (``+1``: a ``u`` block, ``−1``: a ``v`` block), ``d̃ = d + 1`` when a hidden bias
is modelled by a constant column, and the output bias ``b`` (c,).

Network: ``f(x) = Σ_j (x̃ᵀ w̃_j)_+ α_j + b`` with ``α_j ∈ R^c``.

- :func:`convex_to_network` — one neuron per non-zero block:
  :math:`\tilde w = w / \sqrt{\|w\|}`, :math:`\alpha = \sigma \sqrt{\|w\|}\, e_c`.
  For feasible blocks (``w ∈ K_j``) the network's SPEC §1 objective equals
  :math:`P_c(W, b)` exactly: :math:`(X\tilde w)_+ = D_j X \tilde w` and
  :math:`\tfrac12(\|\tilde w\|^2 + \|\alpha\|^2) = \|w\|`.
- :func:`convex_to_network` with ``vector=True`` (gated vector outputs, the nuclear-norm
  program of :class:`convexnn.penalties.GroupNuclear`): a block is the ``c × d̃`` matrix
  :math:`W_j = \sum_k s_k a_k b_k^\top` (SVD); each singular triple becomes a neuron
  :math:`\tilde w = \sqrt{s_k}\, b_k`, :math:`\alpha = \sqrt{s_k}\, a_k` with the block's
  gate, so the outputs are unchanged and :math:`\tfrac12\sum_k(\|\tilde w\|^2 +
  \|\alpha\|^2) = \sum_k s_k = \|W_j\|_*`.
- :func:`network_to_convex` — the reverse: each neuron becomes one block per output,
  :math:`w = \tilde w |\alpha_c|` with its own pattern :math:`1[X\tilde w \ge 0]` and
  sign of :math:`\alpha_c`. With one output its convex objective is never above the
  network's (equal for balanced neurons, :math:`\|\tilde w\| = \|\alpha\|`), so it is a
  valid warm start and gives the patterns of a trained network. With several outputs a
  neuron's blocks pay :math:`\|\tilde w\|\,\|\alpha\|_1`, which can exceed the
  network's :math:`\tfrac12(\|\tilde w\|^2 + \|\alpha\|_2^2)` (the separable program
  is a restriction of vector-output networks).
- :func:`network_to_directional` / :func:`directional_to_network` — the ReLU program with
  vector outputs over (pattern, direction) pairs
  (:class:`convexnn.operators.DirectionalOperator`): a neuron ``(w̃, α)`` is the pair
  :math:`(1[X\tilde w \ge 0],\, t = \alpha/\|\alpha\|)` with
  :math:`w = \tilde w\|\alpha\|`, whose penalty :math:`\|w\| =
  \|\tilde w\|\|\alpha\|` is at most the network's
  :math:`\tfrac12(\|\tilde w\|^2 + \|\alpha\|^2)` (equal when balanced); back,
  :math:`\tilde w = w/\sqrt{\|w\|}`, :math:`\alpha = \sqrt{\|w\|}\,t`, and the
  objectives agree exactly for feasible blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "ConvexVariables",
    "DirectionalVariables",
    "Network",
    "convex_to_network",
    "directional_to_network",
    "network_to_convex",
    "network_to_directional",
]


@dataclass
class Network:
    """A two-layer network ``(X W1 + b1)_+ W2 + b2`` (torch tensors)."""

    W1: torch.Tensor  # (d, m)
    b1: torch.Tensor  # (m,)
    W2: torch.Tensor  # (m, c)
    b2: torch.Tensor  # (c,)
    gates: torch.Tensor | None = None  # (m, d̃) for gated networks

    @property
    def n_neurons(self) -> int:
        return int(self.W1.shape[1])


@dataclass
class ConvexVariables:
    W: torch.Tensor  # (c, q, d̃)
    b: torch.Tensor  # (c,)
    signs: torch.Tensor  # (q,)
    masks: torch.Tensor  # (n, q) bool
    gates: torch.Tensor  # (q, d̃)


@dataclass
class DirectionalVariables:
    W: torch.Tensor  # (1, m, d̃)
    b: torch.Tensor  # (c,)
    directions: torch.Tensor  # (m, c), unit rows
    masks: torch.Tensor  # (n, m) bool
    gates: torch.Tensor  # (m, d̃): the neurons' own weights w̃


def convex_to_network(
    W: torch.Tensor,
    b: torch.Tensor,
    signs: torch.Tensor,
    *,
    fit_intercept: bool,
    gates: torch.Tensor | None = None,
    threshold: float = 0.0,
    vector: bool = False,
) -> Network:
    """Recover the network of the convex solution (blocks with norm > ``threshold``).

    With ``gates`` (one per block), a gated network is returned: neuron ``j`` keeps the
    gate of its block. ``vector=True`` (gated only) reads each block as one ``c × d̃``
    matrix and returns a neuron per singular value above ``threshold`` and above
    round-off (``eps · max(c, d̃)`` times the largest).
    """
    if vector:
        if gates is None:
            raise ValueError("vector=True needs the gates of a gated program")
        return _vector_to_network(W, b, signs, gates, fit_intercept=fit_intercept,
                                  threshold=threshold)
    c, q, dt = W.shape
    norms = torch.linalg.vector_norm(W, dim=-1)  # (c, q)
    keep = torch.nonzero(norms > threshold)  # (m, 2): (output, block)
    m = keep.shape[0]
    out_idx, blk_idx = keep[:, 0], keep[:, 1]
    w = W[out_idx, blk_idx]  # (m, d̃)
    r = norms[out_idx, blk_idx]
    scale = torch.sqrt(r)
    wt = w / scale[:, None]
    alpha = signs.to(W.dtype)[blk_idx] * scale
    W2 = torch.zeros(m, c, dtype=W.dtype, device=W.device)
    W2[torch.arange(m, device=W.device), out_idx] = alpha
    if fit_intercept:
        W1, b1 = wt[:, :-1].T.contiguous(), wt[:, -1].contiguous()
    else:
        W1, b1 = wt.T.contiguous(), torch.zeros(m, dtype=W.dtype, device=W.device)
    g = gates[blk_idx].contiguous() if gates is not None else None
    return Network(W1, b1, W2, b.clone(), g)


def _vector_to_network(W: torch.Tensor, b: torch.Tensor, signs: torch.Tensor,
                       gates: torch.Tensor, *, fit_intercept: bool,
                       threshold: float) -> Network:
    c, q, dt = W.shape
    if q == 0:
        U = W.new_zeros(0, c, 0)
        S = W.new_zeros(0, 0)
        Vh = W.new_zeros(0, 0, dt)
    else:
        U, S, Vh = torch.linalg.svd(W.transpose(0, 1), full_matrices=False)  # (q,c,r)...
    # singular values at round-off level (relative to the largest) are not neurons
    rel = torch.finfo(W.dtype).eps * max(c, dt)
    cut = max(float(threshold), rel * float(S.max()) if S.numel() else 0.0)
    keep = torch.nonzero(S > cut)  # (m, 2): (block, singular index)
    blk, k = keep[:, 0], keep[:, 1]
    root = torch.sqrt(S[blk, k])
    wt = Vh[blk, k, :] * root[:, None]  # (m, d̃)
    alpha = U[blk, :, k] * (root * signs.to(W.dtype)[blk])[:, None]  # (m, c)
    m = wt.shape[0]
    if fit_intercept:
        W1, b1 = wt[:, :-1].T.contiguous(), wt[:, -1].contiguous()
    else:
        W1, b1 = wt.T.contiguous(), torch.zeros(m, dtype=W.dtype, device=W.device)
    return Network(W1, b1, alpha.contiguous(), b.clone(), gates[blk].contiguous())


def network_to_convex(net: Network, X_aug: torch.Tensor, *, fit_intercept: bool) -> ConvexVariables:
    """Convex variables (one block per neuron and output) of a network."""
    W1, b1, W2 = net.W1, net.b1, net.W2
    m, c = W2.shape
    wt = torch.cat([W1, b1[None, :]], dim=0).T if fit_intercept else W1.T  # (m, d̃)
    gates = net.gates if net.gates is not None else wt
    masks_m = (X_aug @ gates.T) >= 0  # (n, m)
    # one block per (neuron, output): sign of α and weight w̃ |α|
    blocks_w, blocks_s, blocks_o, blocks_n = [], [], [], []
    for k in range(c):
        a = W2[:, k]
        nz = torch.nonzero(a != 0).flatten()
        blocks_w.append(wt[nz] * a[nz].abs()[:, None])
        blocks_s.append(torch.sign(a[nz]))
        blocks_o.append(torch.full_like(nz, k))
        blocks_n.append(nz)
    w = torch.cat(blocks_w)
    s = torch.cat(blocks_s)
    o = torch.cat(blocks_o)
    nidx = torch.cat(blocks_n)
    q = w.shape[0]
    W = torch.zeros(c, q, wt.shape[1], dtype=wt.dtype, device=wt.device)
    W[o, torch.arange(q, device=wt.device)] = w
    return ConvexVariables(W, net.b2.clone(), s, masks_m[:, nidx], gates[nidx])


def network_to_directional(net: Network, X_aug: torch.Tensor, *, fit_intercept: bool
                           ) -> DirectionalVariables:
    """(Pattern, direction) pairs of a ReLU network's live neurons (nonzero input and
    output weights, nonempty pattern), with their convex weights and own gates."""
    if net.gates is not None:
        raise ValueError("network_to_directional: a gated network has no directional image")
    W1, b1, W2 = net.W1, net.b1, net.W2
    wt = torch.cat([W1, b1[None, :]], dim=0).T if fit_intercept else W1.T  # (m, d̃)
    a = torch.linalg.vector_norm(W2, dim=1)
    masks = (X_aug @ wt.T) >= 0
    live = (a > 0) & (torch.linalg.vector_norm(wt, dim=1) > 0) & masks.any(dim=0)
    wt, a, masks = wt[live], a[live], masks[:, live]
    W = (wt * a[:, None])[None]
    return DirectionalVariables(W, net.b2.clone(), W2[live] / a[:, None], masks, wt)


def directional_to_network(W: torch.Tensor, b: torch.Tensor, directions: torch.Tensor, *,
                           fit_intercept: bool, threshold: float = 0.0) -> Network:
    r"""The network of a directional solution: one neuron per block with norm above
    ``threshold``, balanced (:math:`\|\tilde w\| = \|\alpha\|`)."""
    w = W[0]
    r = torch.linalg.vector_norm(w, dim=1)
    keep = r > threshold
    w, r = w[keep], r[keep]
    root = torch.sqrt(r)
    wt = w / root[:, None]
    alpha = directions[keep].to(W.dtype) * root[:, None]
    m = wt.shape[0]
    if fit_intercept:
        W1, b1 = wt[:, :-1].T.contiguous(), wt[:, -1].contiguous()
    else:
        W1, b1 = wt.T.contiguous(), torch.zeros(m, dtype=W.dtype, device=W.device)
    return Network(W1, b1, alpha.contiguous(), b.clone())
