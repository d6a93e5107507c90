r"""The training objective of SPEC §1, evaluated for any two-layer ReLU network.

.. math::

    P_{nc}(W, \alpha, b) = \frac1n \sum_k \ell(f(x_k), y_k)
        + \frac{\lambda}{2} \sum_j \left(\|w_j\|_2^2 + \|\alpha_j\|_2^2\right),
    \qquad f(x) = \sum_j (x^\top w_j + b_{1j})_+ \alpha_j + b_2 .

The hidden bias ``b1`` is regularized (it is the weight of a constant-1 column);
the output bias ``b2`` is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from convexnn.losses import encode_targets, get_loss
from convexnn.utils import to_tensor

__all__ = ["network_forward", "network_objective"]


def network_forward(
    X: torch.Tensor,
    W1: torch.Tensor,
    b1: torch.Tensor | None,
    W2: torch.Tensor,
    b2: torch.Tensor | None,
) -> torch.Tensor:
    """Outputs ``(X W1 + b1)_+ W2 + b2`` of shape ``(n, c)``."""
    H = X @ W1
    if b1 is not None:
        H = H + b1
    out = torch.relu(H) @ W2
    if b2 is not None:
        out = out + b2
    return out


def network_objective(
    coefs: Sequence[Any],
    intercepts: Sequence[Any] | None,
    X: Any,
    y: Any,
    lam: float,
    loss: str = "squared",
) -> float:
    """SPEC §1 objective of the network ``coefs = [W1 (d, m), W2 (m, c)]``.

    Parameters
    ----------
    coefs, intercepts : as ``MLPRegressor.coefs_`` / ``intercepts_`` (``intercepts``
        may be ``None`` for a network without biases).
    X : array of shape (n, d)
    y : targets in the loss's encoding (real values; ±1 for ``"logistic"``;
        integer class indices for ``"softmax"``).
    lam : λ in the SPEC scaling (weight decay ``λ/2 Σ ‖w_j‖² + ‖α_j‖²``).
    loss : ``"squared"``, ``"logistic"`` or ``"softmax"``.
    """
    dtype = torch.float64
    dev = X.device if isinstance(X, torch.Tensor) else torch.device("cpu")

    def t(a: Any) -> torch.Tensor:
        if isinstance(a, torch.Tensor):
            return a.detach().to(device=dev, dtype=dtype)
        return to_tensor(np.asarray(a), dtype=dtype, device=dev)

    Xt = t(X)
    W1, W2 = t(coefs[0]), t(coefs[1])
    if W2.ndim == 1:
        W2 = W2[:, None]
    b1 = b2 = None
    if intercepts is not None:
        b1, b2 = t(intercepts[0]), t(intercepts[1])
    out = network_forward(Xt, W1, b1, W2, b2)
    L = get_loss(loss)
    Y = encode_targets(y, loss, device=dev, dtype=dtype, n_classes=out.shape[1])
    data = L.value(out, Y)
    reg = (W1**2).sum() + (W2**2).sum()
    if b1 is not None:
        reg = reg + (b1**2).sum()
    return float(data + 0.5 * lam * reg)
