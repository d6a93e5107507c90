r"""The SPEC §1 objective trained directly by a first-order method (Adam or SGD).

This is the baseline every convex fit is compared with, and a source of activation
patterns for the convex program (a short run's hidden neurons are good gates).

.. math::

    \min_{W_1, b_1, W_2, b_2}\; \frac1n \sum_k \ell\big(((x_k^\top W_1 + b_1)_+) W_2 + b_2,
    y_k\big) + \frac{\lambda}{2}\left(\|W_1\|_F^2 + \|b_1\|^2 + \|W_2\|_F^2\right)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from convexnn.exceptions import ValidationError
from convexnn.losses import encode_targets, get_loss
from convexnn.objective import network_forward
from convexnn.utils import make_generator, resolve_device, resolve_dtype, to_tensor

__all__ = ["NonconvexResult", "train_network"]


@dataclass
class NonconvexResult:
    """Outcome of a non-convex run: the best network seen (by full objective)."""

    coefs: list[np.ndarray]
    intercepts: list[np.ndarray]
    objective: float
    history: list[dict[str, float]] = field(default_factory=list)
    n_epochs: int = 0
    time: float = 0.0


def train_network(
    X: Any,
    y: Any,
    *,
    n_neurons: int,
    lam: float,
    loss: str = "squared",
    fit_intercept: bool = True,
    optimizer: str = "adam",
    lr: float = 1e-3,
    max_epochs: int = 1000,
    batch_size: int | None = None,
    time_limit: float | None = None,
    random_state: Any = None,
    device: Any = None,
    dtype: Any = None,
    record_every: int = 10,
) -> NonconvexResult:
    """Train a two-layer ReLU network on the SPEC §1 objective.

    Parameters
    ----------
    X : array of shape (n, d)
    y : targets: reals (``"squared"``, 1-D or 2-D), ±1 (``"logistic"``) or class
        indices 0..c-1 (``"softmax"``).
    n_neurons : width ``m`` of the hidden layer.
    lam : λ (SPEC scaling).
    optimizer : ``"adam"`` or ``"sgd"`` (SGD with momentum 0.9).
    batch_size : ``None`` for full-batch steps (one epoch = one step).
    time_limit : stop after this many seconds (the best iterate is kept).

    Returns
    -------
    NonconvexResult
        The network with the lowest full objective seen during training, and a history
        of ``{"time", "epoch", "objective"}`` records.
    """
    if optimizer not in ("adam", "sgd"):
        raise ValidationError(
            f"The 'optimizer' parameter of train_network must be 'adam' or 'sgd'. "
            f"Got {optimizer!r} instead."
        )
    if not isinstance(n_neurons, int) or n_neurons < 1:
        raise ValidationError(
            f"The 'n_neurons' parameter of train_network must be an int >= 1. "
            f"Got {n_neurons!r} instead."
        )
    dev = resolve_device(device, X, owner="train_network")
    dt = resolve_dtype(dtype, X, owner="train_network")
    Xt = to_tensor(X, device=dev, dtype=dt)
    Y = encode_targets(y, loss, device=dev, dtype=dt)
    L = get_loss(loss)
    n, d = Xt.shape
    c = Y.shape[1]
    gen = make_generator(random_state, dev)
    # He-style initialization, as PyTorch's default Linear layers would give in scale.
    W1 = (torch.randn(d, n_neurons, generator=gen, device=dev, dtype=dt) / math.sqrt(d))
    W2 = (torch.randn(n_neurons, c, generator=gen, device=dev, dtype=dt) / math.sqrt(n_neurons))
    params = [W1.requires_grad_(), W2.requires_grad_()]
    b1 = b2 = None
    if fit_intercept:
        b1 = torch.zeros(n_neurons, device=dev, dtype=dt, requires_grad=True)
        b2 = torch.zeros(c, device=dev, dtype=dt, requires_grad=True)
        params += [b1, b2]

    def objective(idx: torch.Tensor | None) -> torch.Tensor:
        Xb = Xt if idx is None else Xt[idx]
        Yb = Y if idx is None else Y[idx]
        out = network_forward(Xb, W1, b1, W2, b2)
        reg = (W1**2).sum() + (W2**2).sum() + ((b1**2).sum() if b1 is not None else 0.0)
        return L.value(out, Yb) + 0.5 * lam * reg

    opt: torch.optim.Optimizer
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9)

    best = math.inf
    best_state: list[torch.Tensor] = [p.detach().clone() for p in params]
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    epoch = 0
    for epoch in range(1, max_epochs + 1):
        if batch_size is None or batch_size >= n:
            opt.zero_grad(set_to_none=True)
            val = objective(None)
            val.backward()
            full = float(val.detach())
            if math.isfinite(full) and full < best:
                best = full
                best_state = [p.detach().clone() for p in params]
            opt.step()
        else:
            perm = torch.randperm(n, generator=gen, device=dev)
            for start in range(0, n, batch_size):
                opt.zero_grad(set_to_none=True)
                objective(perm[start : start + batch_size]).backward()
                opt.step()
            with torch.no_grad():
                full = float(objective(None))
            if math.isfinite(full) and full < best:
                best = full
                best_state = [p.detach().clone() for p in params]
        elapsed = time.perf_counter() - t0
        if epoch % record_every == 0 or epoch == 1:
            history.append({"time": elapsed, "epoch": float(epoch), "objective": best})
        if not math.isfinite(full):
            break
        if time_limit is not None and elapsed > time_limit:
            break
    with torch.no_grad():
        for p, s in zip(params, best_state):
            p.copy_(s)
        final = float(objective(None))
    elapsed = time.perf_counter() - t0
    history.append({"time": elapsed, "epoch": float(epoch), "objective": final})
    coefs = [W1.detach().cpu().numpy(), W2.detach().cpu().numpy()]
    if fit_intercept:
        intercepts = [b1.detach().cpu().numpy(), b2.detach().cpu().numpy()]  # type: ignore[union-attr]
    else:
        intercepts = [np.zeros(n_neurons), np.zeros(c)]
    return NonconvexResult(coefs, intercepts, final, history, epoch, elapsed)
