r"""The SPEC §1 objective trained directly by a local method (Adam, SGD or L-BFGS).

This is the baseline every convex fit is compared with, and a source of activation
patterns for the convex program (a short run's hidden neurons are good gates).

.. math::

    \min_{W_1, b_1, W_2, b_2}\; \frac1n \sum_k \ell\big(((x_k^\top W_1 + b_1)_+) W_2 + b_2,
    y_k\big) + \frac{\lambda}{2}\left(\|W_1\|_F^2 + \|b_1\|^2 + \|W_2\|_F^2\right)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from convexnn.exceptions import ValidationError
from convexnn.losses import encode_targets, get_loss
from convexnn.objective import network_forward
from convexnn.utils import make_generator, resolve_device, resolve_dtype, to_tensor

__all__ = ["NonconvexResult", "polish_network", "train_network", "train_networks"]


@dataclass
class NonconvexResult:
    """Outcome of a non-convex run: the best network seen (by full objective)."""

    coefs: list[np.ndarray]
    intercepts: list[np.ndarray]
    objective: float
    history: list[dict[str, float]] = field(default_factory=list)
    n_epochs: int = 0
    time: float = 0.0
    #: the run was stopped by Ctrl-C (KeyboardInterrupt); it holds the best iterate so far
    interrupted: bool = False


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
    optimizer : ``"adam"``, ``"sgd"`` (SGD with momentum 0.9) or ``"lbfgs"`` (full-batch
        L-BFGS with a strong-Wolfe line search; one "epoch" is one L-BFGS iteration, and
        the run stops early once a chunk of 25 iterations no longer lowers the objective
        by more than ``1e-10`` relative). The objective is smooth except on the ReLU
        kinks, so L-BFGS reaches a local minimum in far fewer passes over the data than
        Adam on small problems, where each pass costs little more than Python's overhead.
    batch_size : ``None`` for full-batch steps (one epoch = one step); ignored by L-BFGS.
    time_limit : stop after this many seconds (the best iterate is kept).

    Returns
    -------
    NonconvexResult
        The network with the lowest full objective seen during training, and a history
        of ``{"time", "epoch", "objective"}`` records.
    """
    if optimizer not in ("adam", "sgd", "lbfgs"):
        raise ValidationError(
            f"The 'optimizer' parameter of train_network must be 'adam', 'sgd' or 'lbfgs'. "
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

    if optimizer == "lbfgs":
        return _run_lbfgs(objective, params, W1, W2, b1, b2, n_neurons=n_neurons, c=c,
                          max_epochs=max_epochs, time_limit=time_limit)
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
    interrupted = False
    try:
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
    except KeyboardInterrupt:  # Ctrl-C: the best iterate so far is the result
        interrupted = True
    return _result(objective, params, best_state, W1, W2, b1, b2, n_neurons=n_neurons, c=c,
                   history=history, epoch=epoch, t0=t0, interrupted=interrupted)


def _result(objective, params, best_state, W1, W2, b1, b2, *, n_neurons: int, c: int,
            history: list[dict[str, float]], epoch: int, t0: float,
            interrupted: bool = False) -> NonconvexResult:
    """Load the best iterate into the parameters and package it as a result."""
    with torch.no_grad():
        for p, s in zip(params, best_state):
            p.copy_(s)
        final = float(objective(None))
    elapsed = time.perf_counter() - t0
    history.append({"time": elapsed, "epoch": float(epoch), "objective": final})
    coefs = [W1.detach().cpu().numpy(), W2.detach().cpu().numpy()]
    if b1 is not None:
        intercepts = [b1.detach().cpu().numpy(), b2.detach().cpu().numpy()]
    else:
        intercepts = [np.zeros(n_neurons), np.zeros(c)]
    return NonconvexResult(coefs, intercepts, final, history, epoch, elapsed, interrupted)


def _run_lbfgs(objective, params, W1, W2, b1, b2, *, n_neurons: int, c: int,
               max_epochs: int, time_limit: float | None) -> NonconvexResult:
    """Full-batch L-BFGS (strong Wolfe) on the objective, keeping the best iterate seen.

    ``torch.optim.LBFGS`` runs in chunks of at most 25 iterations so that the time limit
    and the history are honoured; the run ends after ``max_epochs`` iterations, at the time
    limit, or when a chunk lowers the best objective by less than ``1e-10`` relative.
    """
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=25, history_size=20,
                            tolerance_grad=1e-9, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")
    best = [math.inf]
    best_state: list[torch.Tensor] = [p.detach().clone() for p in params]

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        val = objective(None)
        val.backward()
        v = float(val.detach())
        if math.isfinite(v) and v < best[0]:
            # one list assignment: a Ctrl-C never leaves a mix of two iterates
            best_state[:] = [p.detach().clone() for p in params]
            best[0] = v
        return val

    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    done = 0
    interrupted = False
    try:
        while done < max_epochs:
            chunk = min(25, max_epochs - done)
            opt.param_groups[0]["max_iter"] = chunk
            before = best[0]
            opt.step(closure)
            state = opt.state[params[0]]
            done = int(state.get("n_iter", done + chunk))
            elapsed = time.perf_counter() - t0
            history.append({"time": elapsed, "epoch": float(done), "objective": best[0]})
            if not math.isfinite(best[0]):
                break
            if (math.isfinite(before) and before - best[0] <= 1e-10 * abs(before)) or (
                    time_limit is not None and elapsed > time_limit):
                break
    except KeyboardInterrupt:  # Ctrl-C: the best iterate so far is the result
        interrupted = True
    return _result(objective, params, best_state, W1, W2, b1, b2, n_neurons=n_neurons, c=c,
                   history=history, epoch=done, t0=t0, interrupted=interrupted)


#: largest runs × parameters for which :func:`train_networks` keeps the runs' 0/1 indicator
#: matrix (its weight-decay values are one product with it)
_ONEHOT_MAX = 1 << 22
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8  # torch.optim.Adam's defaults


def _adam_stepper(P: torch.Tensor, m1: torch.Tensor, m2: torch.Tensor
                  ) -> Callable[[torch.Tensor, float, int], None]:
    r"""``step(grad, lr, t)``: Adam's update of ``P`` in place (moments ``m1``, ``m2``):

    .. math::

        m_1 ← β_1 m_1 + (1-β_1) g,\quad m_2 ← β_2 m_2 + (1-β_2) g^2,\quad
        P ← P - \frac{η}{1-β_1^t}\, \frac{m_1}{\sqrt{m_2/(1-β_2^t)} + ε},

    as ``torch.optim.Adam`` computes it (up to rounding): with its fused kernel where this
    torch has one (one pass over the parameters instead of seven; a full-batch epoch of a
    small problem is mostly such passes), else term by term.
    """
    fused = getattr(torch, "_fused_adam_", None)
    if fused is not None and P.device.type in ("cpu", "cuda"):
        t = torch.zeros((), dtype=torch.float32, device=P.device)  # as torch.optim.Adam keeps it

        def step(grad: torch.Tensor, lr: float, epoch: int) -> None:
            t.fill_(epoch)
            fused([P], [grad], [m1], [m2], [], [t], amsgrad=False, lr=lr, beta1=_BETA1,
                  beta2=_BETA2, weight_decay=0.0, eps=_EPS, maximize=False)
        return step

    def step_terms(grad: torch.Tensor, lr: float, epoch: int) -> None:
        m1.lerp_(grad, 1 - _BETA1)
        m2.mul_(_BETA2).addcmul_(grad, grad, value=1 - _BETA2)
        bc1, bc2 = 1 - _BETA1**epoch, 1 - _BETA2**epoch
        denom = m2.sqrt().div_(math.sqrt(bc2)).add_(_EPS)
        P.addcdiv_(m1, denom, value=-lr / bc1)
    return step_terms


def train_networks(
    X: torch.Tensor,
    Y: torch.Tensor,
    *,
    seeds: list[int],
    n_neurons: int,
    lam: float,
    loss: str = "squared",
    fit_intercept: bool = True,
    lr: float = 1e-3,
    lr_start: float | None = None,
    lr_tau: float = 100.0,
    max_epochs: int = 1000,
    time_limit: float | None = None,
    stall_tol: float | None = None,
    stall_window: int = 250,
    progress: Callable[[int, float], Any] | None = None,
    progress_every: int = 16,
) -> list[NonconvexResult]:
    r"""Several full-batch Adam runs of the SPEC §1 objective, advanced together.

    Run ``r`` starts from the same initialization as ``train_network(...,
    random_state=seeds[r])`` and takes the same Adam steps (Adam acts entry by entry, and
    each run's gradient depends on its own parameters only), but all runs share each
    pass: their first layers sit side by side in one ``(d, R·m)`` matrix, the gradients are
    written out by hand (no autograd graph) and one Adam update moves every parameter of
    every run. On small problems a full-batch step costs mostly interpreter overhead, so
    ``R`` runs take little more than one. Each run keeps the best iterate it has seen
    (by its full objective), as :func:`train_network` does.

    With ``H = X W_1 + b_1``, ``A = H_+``, ``Z = A W_2 + b_2`` and ``G = ∇_Z L`` (the loss's
    gradient, already divided by ``n``):

    .. math::

        ∇_{W_2} = A^\top G + λ W_2,\quad ∇_{b_2} = \mathbf 1^\top G,\quad
        Δ = (G W_2^\top) \odot [H > 0],\quad ∇_{W_1} = X^\top Δ + λ W_1,\quad
        ∇_{b_1} = \mathbf 1^\top Δ + λ b_1 .

    Parameters
    ----------
    X : tensor of shape (n, d) on the device and in the dtype of the runs.
    Y : targets encoded as the loss expects (:func:`convexnn.losses.encode_targets`),
        shape (n, c).
    seeds : one integer seed per run.
    lr, lr_start, lr_tau : float
        Adam's step size at epoch ``t`` is :math:`η_t = η + (η_0 - η)\,e^{-t/τ}` with
        ``η = lr``, ``η_0 = lr_start`` and ``τ = lr_tau``: a larger step early, decaying to
        ``lr`` (``lr_start=None``: the constant ``lr``, as :func:`train_network`).
    stall_tol : float, optional
        Stop once no run's best objective has dropped by more than ``stall_tol``
        (relative) over the last ``stall_window`` epochs.
    progress : callable, optional
        ``progress(epoch, best)`` with the lowest objective any run has reached, at epochs
        1, 2, 4, 8, … and every ``progress_every`` epochs (each a network the runs hold).

    Returns
    -------
    list of NonconvexResult
        One per seed, in order (``history`` holds the final record only).
    """
    if not seeds:
        raise ValidationError("The 'seeds' parameter of train_networks must list at least "
                              "one seed. Got an empty list instead.")
    if not isinstance(n_neurons, int) or n_neurons < 1:
        raise ValidationError(
            f"The 'n_neurons' parameter of train_networks must be an int >= 1. "
            f"Got {n_neurons!r} instead."
        )
    for name, value in (("lr", lr), ("lr_start", lr_start), ("lr_tau", lr_tau)):
        if value is not None and not (isinstance(value, (int, float)) and value > 0
                                      and math.isfinite(value)):
            raise ValidationError(f"The {name!r} parameter of train_networks must be a finite "
                                  f"number > 0. Got {value!r} instead.")
    if not isinstance(progress_every, int) or progress_every < 1:
        raise ValidationError(f"The 'progress_every' parameter of train_networks must be an "
                              f"int >= 1. Got {progress_every!r} instead.")
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValidationError(
            f"train_networks needs X of shape (n, d) and Y of shape (n, c) with the same n. "
            f"Got X {tuple(X.shape)} and Y {tuple(Y.shape)} instead."
        )
    L = get_loss(loss)
    n, d = X.shape
    c = Y.shape[1]
    R, m = len(seeds), int(n_neurons)
    dev, dt = X.device, X.dtype
    w1s, w2s = [], []
    for s in seeds:
        gen = make_generator(int(s), dev)
        w1s.append(torch.randn(d, m, generator=gen, device=dev, dtype=dt) / math.sqrt(d))
        w2s.append(torch.randn(m, c, generator=gen, device=dev, dtype=dt) / math.sqrt(m))
    # One flat buffer [W1 (d, R, m) | b1 (R, m) | W2 (R, m, c) | b2 (R, c)]: the runs'
    # first layers side by side make X W1 and Xᵀ Δ single matrix products.
    o1, o2, o3 = d * R * m, d * R * m + R * m, d * R * m + R * m + R * m * c
    P = torch.cat([torch.stack(w1s, 1).reshape(-1), torch.zeros(R * m, device=dev, dtype=dt),
                   torch.stack(w2s).reshape(-1), torch.zeros(R * c, device=dev, dtype=dt)])
    W1, b1 = P[:o1].view(d, R * m), P[o1:o2].view(R * m)
    W2, b2 = P[o2:o3].view(R, m, c), P[o3:].view(R, c)
    runs = torch.arange(R, device=dev)
    run_of = torch.cat([runs.repeat_interleave(m).repeat(d), runs.repeat_interleave(m),
                        runs.repeat_interleave(m * c), runs.repeat_interleave(c)])
    # the weight decay acts on W1, b1 and W2, never on the output bias; without an
    # intercept both biases stay at zero
    decay = torch.full_like(P, lam)
    decay[o3:] = 0.0
    mask = None
    if not fit_intercept:
        decay[o1:o2] = 0.0
        mask = torch.ones_like(P)
        mask[o1:o2] = 0.0
        mask[o3:] = 0.0
    m1, m2 = torch.zeros_like(P), torch.zeros_like(P)
    adam_step = _adam_stepper(P, m1, m2)
    grad = torch.empty_like(P)  # the gradient, laid out as P
    g_W1, g_b1 = grad[:o1].view(d, R * m), grad[o1:o2].view(R * m)
    g_W2, g_b2 = grad[o2:o3].view(R, m, c), grad[o3:].view(R, c)
    best = torch.full((R,), math.inf, device=dev, dtype=dt)
    best_P = P.clone()
    Yr = Y.repeat_interleave(R, dim=0)                     # row i·R + r ↔ sample i, run r
    XT = X.T.contiguous()
    # each run's weight decay ½ Σ λ p² as one matrix-vector product with the runs' 0/1
    # indicator rows (a scatter-add costs several times more on small problems), unless
    # that matrix would be large
    onehot = (run_of[None, :] == runs[:, None]).to(dt) if R * P.numel() <= _ONEHOT_MAX \
        else None
    # on the CPU the best iterates are updated without a gather when every run improved
    # (reading ``better`` there costs no device synchronisation)
    host = dev.type == "cpu"
    t0 = time.perf_counter()
    epoch = 0
    mark: torch.Tensor | None = None  # best objectives stall_window epochs ago
    interrupted = False
    try:
        for epoch in range(1, max_epochs + 1):
            H = torch.addmm(b1, X, W1)                         # (n, R m)
            A = torch.relu(H).view(n, R, m)
            if c == 1:                                         # one output: no small bmm
                Z = (A * W2.view(R, m)).sum(dim=2, keepdim=True) + b2
            else:
                Z = torch.einsum("nrm,rmc->nrc", A, W2) + b2
            Zf = Z.reshape(n * R, c)
            G = L.grad(Zf, Yr).mul_(R).view(n, R, c)
            dP = decay * P                                     # ∇ of the weight decay
            vals = L.row_values(Zf, Yr).view(n, R).sum(dim=0).div_(n)
            if onehot is not None:
                vals.addmv_(onehot, dP * P, alpha=0.5)
            else:
                vals.index_add_(0, run_of, dP * P, alpha=0.5)
            better = vals < best                               # NaN compares False
            best = torch.where(better, vals, best)
            n_better = int(better.sum()) if host else -1
            if n_better == R:
                best_P.copy_(P)
            elif n_better:
                best_P = torch.where(better[run_of], P, best_P)
            if progress is not None and (epoch & (epoch - 1) == 0
                                         or epoch % progress_every == 0):
                progress(epoch, float(best.min()))
            if c == 1:
                D = G * W2.view(R, m)
                gW2 = (A * G).sum(dim=0)
            else:
                D = torch.einsum("nrc,rmc->nrm", G, W2)
                gW2 = torch.einsum("nrm,nrc->rmc", A, G)
            # Δ = D ⊙ [H > 0] (ReLU's backward, with A = H₊ in place of H)
            D = torch.ops.aten.threshold_backward(D.reshape(n, R * m), A.view(n, R * m), 0)
            torch.mm(XT, D, out=g_W1)
            torch.sum(D, dim=0, out=g_b1)
            g_W2.copy_(gW2.view(R, m, c))
            torch.sum(G, dim=0, out=g_b2)
            if mask is not None:
                grad.mul_(mask)
            grad.add_(dP)
            step = lr if lr_start is None else lr + (lr_start - lr) * math.exp(-epoch / lr_tau)
            adam_step(grad, step, epoch)
            if time_limit is not None and time.perf_counter() - t0 > time_limit:
                break
            if epoch % 256 == 0 and not bool(torch.isfinite(vals).any()):
                break
            if stall_tol is not None and epoch % stall_window == 0:
                if mark is not None and bool(((mark - best) <= stall_tol * best.abs()).all()):
                    break
                mark = best.clone()
    except KeyboardInterrupt:  # Ctrl-C: each run's best iterate so far is its result
        interrupted = True
    elapsed = time.perf_counter() - t0
    bW1, bb1 = best_P[:o1].view(d, R, m), best_P[o1:o2].view(R, m)
    bW2, bb2 = best_P[o2:o3].view(R, m, c), best_P[o3:].view(R, c)
    out = []
    for r in range(R):
        W1r, b1r, W2r, b2r = bW1[:, r], bb1[r], bW2[r], bb2[r]
        with torch.no_grad():
            val = L.value(network_forward(X, W1r, b1r, W2r, b2r), Y) + 0.5 * lam * (
                (W1r**2).sum() + (W2r**2).sum() + (b1r**2).sum())
        final = float(val)
        out.append(NonconvexResult(
            [W1r.cpu().numpy().copy(), W2r.cpu().numpy().copy()],
            [b1r.cpu().numpy().copy(), b2r.cpu().numpy().copy()], final,
            [{"time": elapsed, "epoch": float(epoch), "objective": final}], epoch, elapsed,
            interrupted))
    return out


def polish_network(
    W1: torch.Tensor,
    b1: torch.Tensor,
    W2: torch.Tensor,
    b2: torch.Tensor,
    X: torch.Tensor,
    Y: torch.Tensor,
    loss: Any,
    lam: float,
    *,
    fit_intercept: bool,
    max_iter: int = 500,
    time_limit: float | None = None,
) -> NonconvexResult:
    """Full-batch L-BFGS on the SPEC §1 objective from a given network.

    A local refinement: the returned network is the best iterate seen, so its objective is
    never above the starting one. ``Y`` is in the loss's encoding (one-hot for softmax,
    a column of ±1 for logistic) and ``loss`` a :class:`convexnn.losses.Loss`; without
    ``fit_intercept`` the biases stay zero.
    """
    def param(a: torch.Tensor) -> torch.Tensor:
        return a.detach().clone().to(X.dtype).requires_grad_()

    W1p, W2p = param(W1), param(W2)
    params = [W1p, W2p]
    b1p = b2p = None
    if fit_intercept:
        b1p, b2p = param(b1), param(b2)
        params += [b1p, b2p]

    def objective(idx: torch.Tensor | None) -> torch.Tensor:
        out = network_forward(X, W1p, b1p, W2p, b2p)
        reg = (W1p**2).sum() + (W2p**2).sum() + ((b1p**2).sum() if b1p is not None else 0.0)
        return loss.value(out, Y) + 0.5 * lam * reg

    return _run_lbfgs(objective, params, W1p, W2p, b1p, b2p, n_neurons=int(W1.shape[1]),
                      c=int(W2.shape[1]), max_epochs=max_iter, time_limit=time_limit)
