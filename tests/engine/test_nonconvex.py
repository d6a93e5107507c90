"""The non-convex baseline: Adam/SGD/L-BFGS runs, and several Adam runs advanced together."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convexnn.exceptions import ValidationError
from convexnn.losses import encode_targets
from convexnn.nonconvex import train_network, train_networks
from convexnn.objective import network_forward


def _data(loss: str, n: int = 40, d: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    t = np.maximum(X @ rng.standard_normal(d), 0) - X[:, 0]
    if loss == "squared":
        y = t
    elif loss == "logistic":
        y = np.where(t > np.median(t), 1.0, -1.0)
    else:
        y = np.digitize(t, np.quantile(t, [1 / 3, 2 / 3]))
    return X, y


def _objective(X, y, loss, lam, coefs, intercepts, fit_intercept):
    from convexnn.losses import get_loss

    Xt = torch.as_tensor(X)
    Y = encode_targets(y, loss, device=Xt.device, dtype=Xt.dtype)
    W1, W2 = (torch.as_tensor(a) for a in coefs)
    b1, b2 = (torch.as_tensor(a) for a in intercepts)
    out = network_forward(Xt, W1, b1 if fit_intercept else None, W2, b2 if fit_intercept else None)
    reg = (W1**2).sum() + (W2**2).sum() + (b1**2).sum()
    return float(get_loss(loss).value(out, Y) + 0.5 * lam * reg)


@pytest.mark.parametrize("loss", ["squared", "logistic", "softmax"])
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_batched_runs_take_the_same_steps_as_single_runs(loss, fit_intercept, device):
    X, y = _data(loss)
    seeds = [3, 17, 91]
    single = [train_network(X, y, n_neurons=6, lam=1e-2, loss=loss, fit_intercept=fit_intercept,
                            lr=1e-2, max_epochs=60, random_state=s, dtype="float64",
                            device=device)
              for s in seeds]
    Xt = torch.as_tensor(X, device=device)
    Y = encode_targets(y, loss, device=Xt.device, dtype=Xt.dtype)
    batched = train_networks(Xt, Y, seeds=seeds, n_neurons=6, lam=1e-2, loss=loss,
                             fit_intercept=fit_intercept, lr=1e-2, max_epochs=60)
    assert len(batched) == len(seeds)
    for a, b in zip(single, batched):
        assert b.objective == pytest.approx(a.objective, rel=1e-9)
        for u, v in zip(a.coefs + a.intercepts, b.coefs + b.intercepts):
            np.testing.assert_allclose(v, u, rtol=1e-7, atol=1e-10)
        # the reported objective is the SPEC §1 value of the returned network
        assert b.objective == pytest.approx(
            _objective(X, y, loss, 1e-2, b.coefs, b.intercepts, fit_intercept), rel=1e-12)
    if not fit_intercept:
        for b in batched:
            assert not np.any(b.intercepts[0]) and not np.any(b.intercepts[1])


def test_batched_runs_lower_the_objective_and_keep_the_best_iterate():
    X, y = _data("squared", seed=1)
    Xt = torch.as_tensor(X)
    Y = encode_targets(y, "squared", device=Xt.device, dtype=Xt.dtype)
    start = train_networks(Xt, Y, seeds=[5], n_neurons=8, lam=1e-3, lr=1e-2, max_epochs=1)[0]
    # lr = 10 diverges: the best iterate seen (the start) is what comes back
    wild = train_networks(Xt, Y, seeds=[5], n_neurons=8, lam=1e-3, lr=10.0, max_epochs=200)[0]
    tame = train_networks(Xt, Y, seeds=[5], n_neurons=8, lam=1e-3, lr=1e-2, max_epochs=300)[0]
    assert tame.objective < 0.5 * start.objective
    assert wild.objective <= start.objective + 1e-12


def test_batched_runs_refuse_bad_input():
    X = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValidationError, match="'seeds'"):
        train_networks(X, X[:, :1], seeds=[], n_neurons=2, lam=1.0)
    with pytest.raises(ValidationError, match="'n_neurons'.*Got 0"):
        train_networks(X, X[:, :1], seeds=[1], n_neurons=0, lam=1.0)
    with pytest.raises(ValidationError, match=r"Got X \(3, 2\) and Y \(2, 1\)"):
        train_networks(X, X[:2, :1], seeds=[1], n_neurons=2, lam=1.0)
    with pytest.raises(ValidationError, match="'lr_start'.*> 0. Got -0.1"):
        train_networks(X, X[:, :1], seeds=[1], n_neurons=2, lam=1.0, lr_start=-0.1)
    with pytest.raises(ValidationError, match="'lr'.*Got nan"):
        train_networks(X, X[:, :1], seeds=[1], n_neurons=2, lam=1.0, lr=float("nan"))
    with pytest.raises(ValidationError, match="'progress_every'.*Got 0"):
        train_networks(X, X[:, :1], seeds=[1], n_neurons=2, lam=1.0, progress_every=0)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_lbfgs_run_converges_and_beats_a_short_adam_run(loss):
    X, y = _data(loss, n=60, seed=2)
    adam = train_network(X, y, n_neurons=8, lam=1e-2, loss=loss, lr=1e-2, max_epochs=100,
                         random_state=0, dtype="float64")
    lb = train_network(X, y, n_neurons=8, lam=1e-2, loss=loss, optimizer="lbfgs",
                       max_epochs=2000, random_state=0, dtype="float64")
    assert lb.objective < adam.objective
    assert lb.n_epochs < 2000  # it stops once a chunk of iterations no longer helps
    assert lb.objective == pytest.approx(
        _objective(X, y, loss, 1e-2, lb.coefs, lb.intercepts, True), rel=1e-12)


def test_unknown_optimizer_is_refused():
    X, y = _data("squared")
    with pytest.raises(ValidationError, match="'optimizer'.*'lbfgs'.*'newton'"):
        train_network(X, y, n_neurons=2, lam=1.0, optimizer="newton")


def test_batched_runs_stop_once_every_run_stalls():
    X, y = _data("squared", seed=3)
    Xt = torch.as_tensor(X)
    Y = encode_targets(y, "squared", device=Xt.device, dtype=Xt.dtype)
    kw = dict(seeds=[1, 2], n_neurons=6, lam=1e-2, lr=1e-2, max_epochs=400)
    full = train_networks(Xt, Y, **kw)
    # a huge tolerance: the first comparison (after two windows) already counts as a stall
    early = train_networks(Xt, Y, stall_tol=1e9, stall_window=50, **kw)
    never = train_networks(Xt, Y, stall_tol=0.0, stall_window=50, **kw)
    assert [r.n_epochs for r in full] == [400, 400]
    assert [r.n_epochs for r in early] == [100, 100]
    assert [r.n_epochs for r in never] == [400, 400]  # still improving: no stall
    assert all(e.objective >= f.objective for e, f in zip(early, full))


@pytest.mark.parametrize("loss", ["squared", "softmax"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_polish_network_lowers_the_objective_from_a_given_network(loss, fit_intercept):
    from convexnn.losses import get_loss
    from convexnn.nonconvex import polish_network

    X, y = _data(loss)
    start = train_network(X, y, n_neurons=6, lam=1e-2, loss=loss, optimizer="adam",
                          max_epochs=30, random_state=0, fit_intercept=fit_intercept)
    Xt = torch.as_tensor(X)
    Y = encode_targets(y, loss, device=Xt.device, dtype=Xt.dtype)
    W1, W2 = (torch.as_tensor(a) for a in start.coefs)
    b1, b2 = (torch.as_tensor(a) for a in start.intercepts)
    res = polish_network(W1, b1, W2, b2, Xt, Y, get_loss(loss), 1e-2,
                         fit_intercept=fit_intercept, max_iter=200)
    assert res.objective < start.objective * (1 - 1e-3)
    assert res.objective == pytest.approx(_objective(X, y, loss, 1e-2, res.coefs,
                                                     res.intercepts, fit_intercept), rel=1e-10)
    if not fit_intercept:
        assert not np.any(res.intercepts[0]) and not np.any(res.intercepts[1])


@pytest.mark.parametrize("lr_start", [None, 5e-2])
def test_batched_runs_follow_the_step_size_schedule(lr_start):
    """Adam's first step moves every parameter with a nonzero gradient by the step size
    (m̂ = g, v̂ = g² at t = 1): lr + (lr_start − lr) e^{−1/τ} with a schedule, lr without."""
    X, y = _data("squared", seed=4)
    Xt = torch.as_tensor(X)
    Y = encode_targets(y, "squared", device=Xt.device, dtype=Xt.dtype)
    kw = dict(seeds=[2], n_neurons=5, lam=1e-3, lr=1e-3, lr_start=lr_start, lr_tau=10.0)
    start = train_networks(Xt, Y, max_epochs=1, **kw)[0]   # the best iterate: the start
    one = train_networks(Xt, Y, max_epochs=2, **kw)[0]     # one step on, and better
    assert one.objective < start.objective
    step = 1e-3 if lr_start is None else 1e-3 + (lr_start - 1e-3) * np.exp(-1 / 10.0)
    moved = np.abs(one.coefs[0] - start.coefs[0])
    assert moved.max() == pytest.approx(step, rel=1e-6)
    assert np.median(moved) == pytest.approx(step, rel=1e-6)


def test_adam_stepper_fused_and_term_by_term_agree(monkeypatch):
    """The fused kernel (where torch has one) and the term-by-term update take the same
    steps, with a step size that changes between epochs."""
    import convexnn.nonconvex as nc

    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(50, generator=gen, dtype=torch.float64) for _ in range(20)]
    out = []
    for fused in (True, False):
        if not fused:
            monkeypatch.delattr(torch, "_fused_adam_", raising=False)
        P = torch.linspace(-1, 1, 50, dtype=torch.float64)
        m1, m2 = torch.zeros_like(P), torch.zeros_like(P)
        step = nc._adam_stepper(P, m1, m2)
        for t, g in enumerate(grads, start=1):
            step(g, 1e-2 + 1e-2 * 0.9**t, t)
        out.append((P, m1, m2))
    for a, b in zip(*out, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    assert not torch.equal(out[0][0], torch.linspace(-1, 1, 50, dtype=torch.float64))


def test_batched_runs_weight_decay_by_product_or_scatter_agree(monkeypatch):
    """The runs' weight-decay values come from one product with their indicator matrix,
    or (when that matrix would be large) a scatter-add: the same runs either way."""
    import convexnn.nonconvex as nc

    X, y = _data("squared", seed=2)
    Xt = torch.as_tensor(X)
    Y = encode_targets(y, "squared", device=Xt.device, dtype=Xt.dtype)
    kw = dict(seeds=[1, 2, 3], n_neurons=5, lam=1e-2, lr=1e-2, max_epochs=80)
    product = train_networks(Xt, Y, **kw)
    monkeypatch.setattr(nc, "_ONEHOT_MAX", 0)
    scatter = train_networks(Xt, Y, **kw)
    for a, b in zip(product, scatter, strict=True):
        assert a.objective == pytest.approx(b.objective, rel=1e-12)
        for u, v in zip(a.coefs + a.intercepts, b.coefs + b.intercepts, strict=True):
            np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)
