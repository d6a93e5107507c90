r"""Regularization paths: ``λ_max`` and λ grids (SPEC §4).

For the squared loss, the zero network (with the best output bias) is optimal exactly
when :math:`|v^\top (\tilde X u)_+| \le \lambda` for every unit ``u``, with
:math:`v = \nabla L(\mathbf 1 b^*)`; hence

.. math:: \lambda_{\max} = \max_{\|u\| \le 1} |v^\top (\tilde X u)_+|
   \;\Big(= \max_u |y^\top (Xu)_+| / n \text{ without biases}\Big).

Over a given pattern set the maximum is over those patterns' cones (gated: over
:math:`\|\tilde X^\top D_i v\|`; gated with several outputs, the spectral norm
:math:`\|\tilde X^\top D_i V\|_2` of the nuclear-norm program). With no pattern set,
the maximum over all ``u`` is found by the same ascent that grows patterns (a lower
estimate of the true value).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from convexnn.certificates import _cone_block_bounds
from convexnn.exceptions import ValidationError
from convexnn.growth import find_violating_gates
from convexnn.losses import encode_targets, get_loss
from convexnn.operators import PatternOperator
from convexnn.patterns import enumerate_patterns, patterns_from_gates, sample_patterns
from convexnn.penalties import penalty_for
from convexnn.utils import check_matrix, make_generator, resolve_device, resolve_dtype, to_tensor

__all__ = ["lam_grid", "lam_max"]


def lam_max(
    X: Any,
    y: Any,
    *,
    loss: str = "squared",
    fit_intercept: bool = True,
    activation: str = "relu",
    patterns: Any = None,
    random_state: Any = 0,
    device: Any = None,
    dtype: Any = None,
) -> float:
    """Smallest λ for which the zero network is optimal (see the module doc).

    ``y`` is encoded as for :func:`convexnn.network_objective` (reals, ±1, or class
    indices for ``"softmax"``).
    """
    if activation not in ("relu", "gated"):
        raise ValidationError(
            f"The 'activation' parameter of lam_max must be 'relu' or 'gated'. "
            f"Got {activation!r} instead."
        )
    dev = resolve_device(device, X, owner="lam_max")
    dt = resolve_dtype(dtype, X, owner="lam_max")
    Xt = to_tensor(X, device=dev, dtype=dt)
    check_matrix(Xt, "X")
    L = get_loss(loss)
    Y = encode_targets(y, loss, device=dev, dtype=dt)
    n = Xt.shape[0]
    X_aug = torch.cat([Xt, torch.ones(n, 1, dtype=dt, device=dev)], 1) if fit_intercept else Xt
    Z = torch.zeros_like(Y)
    if fit_intercept:  # best constant output
        if loss == "squared":
            Z = Y.mean(dim=0, keepdim=True).expand_as(Y)
        elif loss == "logistic":
            p = ((Y + 1) / 2).mean().clamp(1e-12, 1 - 1e-12)
            Z = torch.full_like(Y, float(torch.log(p / (1 - p))))
        else:
            freq = Y.mean(dim=0).clamp_min(1e-12)
            Z = torch.log(freq).expand_as(Y)
    V = L.grad(Z, Y)
    if fit_intercept:
        V = L.center(V, Y)
    gen = make_generator(random_state, dev)
    if patterns is None:
        _, vals = find_violating_gates(X_aug, V, 0.0, gated=activation == "gated",
                                       vector=activation == "gated" and Y.shape[1] > 1,
                                       generator=gen, max_new=10**9, margin=-1.0)
        return float(vals.max()) if vals.numel() else 0.0
    if isinstance(patterns, str):
        ps = enumerate_patterns(X_aug)
    elif isinstance(patterns, (int, np.integer)):
        ps = sample_patterns(X_aug, int(patterns), generator=gen)
    else:
        G = to_tensor(patterns if isinstance(patterns, torch.Tensor) else np.asarray(patterns),
                      dtype=dt, device=dev)
        if fit_intercept and G.shape[1] == X_aug.shape[1] - 1:
            G = torch.cat([G, torch.zeros(G.shape[0], 1, dtype=dt, device=dev)], 1)
        ps = patterns_from_gates(X_aug, G)
    if activation == "gated":  # several outputs: the nuclear-norm program's dual norm
        op = PatternOperator(X_aug, ps.masks, n_outputs=Y.shape[1])
        pen = penalty_for(1.0, n_outputs=Y.shape[1], vector_outputs=True)
        return pen.lam_max(op.rmatvec(V))
    p = ps.n_patterns
    one = torch.ones(p, dtype=dt, device=dev)
    op = PatternOperator(X_aug, torch.cat([ps.masks, ps.masks], 1), torch.cat([one, -one]),
                         n_outputs=Y.shape[1])
    return float(_cone_block_bounds(op, op.rmatvec(V), None, 300).max())


def lam_grid(lam_max_value: float, n_lams: int = 10, ratio: float = 1e-3) -> np.ndarray:
    """Geometric grid from ``lam_max`` down to ``ratio · lam_max`` (``n_lams`` values)."""
    if not lam_max_value > 0:
        raise ValidationError(
            f"The 'lam_max_value' parameter of lam_grid must be > 0. Got {lam_max_value!r}."
        )
    return lam_max_value * np.geomspace(1.0, ratio, int(n_lams))
