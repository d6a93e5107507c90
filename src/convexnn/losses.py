r"""Convex losses on network outputs, with the conjugates that the dual bound needs.

Every loss acts on outputs ``Z`` of shape ``(n, c)`` and encoded targets ``Y`` of the
same shape, with the SPEC §1 scaling :math:`L(Z) = \frac1n \sum_k \ell(z_k, y_k)`:

- ``squared``:  :math:`\ell(z, y) = \tfrac12 \|z - y\|^2`;
  :math:`L^*(V) = \langle V, Y\rangle + \tfrac n2 \|V\|_F^2`.
- ``logistic`` (``c = 1``, ``y ∈ {−1, +1}``): :math:`\ell(z, y) = \log(1 + e^{-yz})`;
  with :math:`\tau_k = -n y_k v_k \in [0, 1]`,
  :math:`L^*(v) = \frac1n \sum_k \tau_k\log\tau_k + (1-\tau_k)\log(1-\tau_k)`.
- ``softmax`` (one-hot ``Y``): :math:`\ell(z, y) = \operatorname{logsumexp}(z) - z^\top y`;
  with :math:`P = nV + Y` row-stochastic, :math:`L^*(V) = \frac1n \sum_{k,c} P_{kc}\log P_{kc}`.

The dual of :math:`\min_z L(Az) + R(z)` is :math:`\max_V -L^*(V) - R^*(-A^\top V)`, and the
natural dual point is :math:`V = \nabla L(Az)`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from convexnn.exceptions import ValidationError
from convexnn.utils import to_tensor

__all__ = ["Loss", "LogisticLoss", "SoftmaxLoss", "SquaredLoss", "encode_targets", "get_loss"]


def _xlogx(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > 0, t * torch.log(t.clamp_min(1e-300)), torch.zeros_like(t))


class Loss:
    """Interface of a loss: value, gradient, conjugate and dual-point repair."""

    name: str = ""
    #: Lipschitz constant of the gradient times n.
    smoothness: float = 1.0

    def value(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        r""":math:`L(Z) = \frac1n \sum_k \ell(z_k, y_k)`, a scalar tensor."""
        return self.row_values(Z, Y).sum() / Z.shape[0]

    def row_values(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        r"""The per-sample losses :math:`\ell(z_k, y_k)`, shape (n,) (no ``1/n``)."""
        raise NotImplementedError

    def grad(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def hessian(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Per-sample Hessians w.r.t. the outputs, shape (n, c, c), with the 1/n (the
        Hessian of :meth:`value` is block diagonal with these blocks)."""
        raise NotImplementedError

    def conjugate(self, V: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """:math:`L^*(V)`, ``+inf`` outside its domain."""
        raise NotImplementedError

    def center(self, V: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """A dual point close to ``V`` with zero column sums (unregularized output bias),
        staying in the domain of the conjugate; scaling it by ``s ∈ [0, 1]`` keeps both."""
        raise NotImplementedError

    def lipschitz(self, n: int) -> float:
        return self.smoothness / n


class SquaredLoss(Loss):
    name = "squared"
    smoothness = 1.0

    def value(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((Z - Y) ** 2).sum() / Z.shape[0]

    def row_values(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((Z - Y) ** 2).sum(dim=1)

    def grad(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return (Z - Y) / Z.shape[0]

    def hessian(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        n, c = Z.shape
        return torch.eye(c, dtype=Z.dtype, device=Z.device).expand(n, c, c) / n

    def conjugate(self, V: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return (V * Y).sum() + 0.5 * V.shape[0] * (V**2).sum()

    def center(self, V: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return V - V.mean(dim=0, keepdim=True)


class LogisticLoss(Loss):
    name = "logistic"
    smoothness = 0.25

    def value(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(-Y * Z).sum() / Z.shape[0]

    def row_values(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(-Y * Z).sum(dim=1)

    def grad(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return -Y * torch.sigmoid(-Y * Z) / Z.shape[0]

    def hessian(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(Z * Y)
        return (s * (1 - s))[:, :, None] / Z.shape[0]

    def conjugate(self, V: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        n = V.shape[0]
        tau = -n * Y * V
        if bool((tau < -1e-12).any()) or bool((tau > 1 + 1e-12).any()):
            return torch.tensor(math.inf, dtype=V.dtype, device=V.device)
        tau = tau.clamp(0.0, 1.0)
        return (_xlogx(tau) + _xlogx(1 - tau)).sum() / n

    def center(self, V: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        # Σ v = -(1/n) Σ y τ; shrink τ on the side that is too heavy (stays in [0, 1]).
        n = V.shape[0]
        tau = (-n * Y * V).clamp(0.0, 1.0)
        pos, neg = Y > 0, Y < 0
        sp, sn = tau[pos].sum(), tau[neg].sum()
        if sp > sn and sp > 0:
            tau = torch.where(pos, tau * (sn / sp), tau)
        elif sn > sp and sn > 0:
            tau = torch.where(neg, tau * (sp / sn), tau)
        return -Y * tau / n


class SoftmaxLoss(Loss):
    name = "softmax"
    smoothness = 0.5

    def value(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return (torch.logsumexp(Z, dim=1) - (Z * Y).sum(dim=1)).sum() / Z.shape[0]

    def row_values(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(Z, dim=1) - (Z * Y).sum(dim=1)

    def grad(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return (torch.softmax(Z, dim=1) - Y) / Z.shape[0]

    def hessian(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        P = torch.softmax(Z, dim=1)
        return (torch.diag_embed(P) - P[:, :, None] * P[:, None, :]) / Z.shape[0]

    def conjugate(self, V: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        n = V.shape[0]
        P = n * V + Y
        if bool((P < -1e-12).any()) or bool(((P.sum(dim=1) - 1).abs() > 1e-8).any()):
            return torch.tensor(math.inf, dtype=V.dtype, device=V.device)
        return _xlogx(P.clamp_min(0.0)).sum() / n

    def center(self, V: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        r"""A dual point with zero column sums near ``V``: ``(P − Y)/n`` with ``P``
        row-stochastic, non-negative and with column sums equal to the class counts.

        Sinkhorn scaling of :math:`nV + Y` (at most 100 sweeps; it converges slowly when
        the probabilities are nearly one-hot, as on a fitted training set), then an exact
        correction of the remaining column-sum residual ``r`` (which sums to zero): each
        column with :math:`r_c < 0` shrinks by the factor :math:`1 + r_c/\text{col}_c`,
        and what a row loses, :math:`\delta_i`, goes to the columns with
        :math:`r_c > 0` in proportion :math:`r_c / \sum_{c'} r_{c'}^+`. Rows keep summing
        to one, entries stay non-negative, and every column sum is then exact up to
        round-off: a residual would leave the dual point infeasible for the free output
        bias, and the lower bound computed from it not a bound.
        """
        n = V.shape[0]
        P = (n * V + Y).clamp_min(0.0)
        P = P / P.sum(dim=1, keepdim=True).clamp_min(1e-300)
        target = Y.sum(dim=0)
        for k in range(100):
            col = P.sum(dim=0)
            P = P * torch.where(col > 0, target / col, torch.ones_like(col))
            P = P / P.sum(dim=1, keepdim=True)
            if k % 5 == 4 and float((P.sum(dim=0) - target).abs().max()) < 1e-13 * max(n, 1):
                break
        col = P.sum(dim=0)
        r = target - col
        neg = r < 0
        shrink = torch.where(neg, r / torch.where(col > 0, col, torch.ones_like(col)),
                             torch.zeros_like(r))  # in [-1, 0]
        delta = -(P * shrink).sum(dim=1, keepdim=True)  # ≥ 0: what each row gives up
        pos = torch.clamp(r, min=0.0)
        total = pos.sum()
        P = P * (1 + shrink)
        if float(total) > 0:
            P = P + delta * (pos / total)
        return (P - Y) / n


_LOSSES: dict[str, type[Loss]] = {
    "squared": SquaredLoss,
    "logistic": LogisticLoss,
    "softmax": SoftmaxLoss,
}


def get_loss(name: str | Loss) -> Loss:
    """Return the loss object called ``name`` (``"squared"``, ``"logistic"``, ``"softmax"``)."""
    if isinstance(name, Loss):
        return name
    cls = _LOSSES.get(name)
    if cls is None:
        raise ValidationError(
            f"The 'loss' parameter must be one of {sorted(_LOSSES)}. Got {name!r} instead."
        )
    return cls()


def encode_targets(
    y: Any, loss: str, *, device: torch.device, dtype: torch.dtype, n_classes: int | None = None
) -> torch.Tensor:
    """Encode targets as an ``(n, c)`` tensor for ``loss``.

    ``squared``: reals (1-D → one column); ``logistic``: values in {−1, +1};
    ``softmax``: integer class indices → one-hot.
    """
    if loss == "softmax":
        yt = (y.detach().to(device) if isinstance(y, torch.Tensor)
              else torch.as_tensor(np.asarray(y), device=device))
        yi = yt.long().reshape(-1)
        k = n_classes if n_classes is not None else int(yi.max().item()) + 1
        return torch.nn.functional.one_hot(yi, k).to(dtype)
    yt = to_tensor(y, dtype=dtype, device=device)
    return yt.reshape(yt.shape[0], -1)
