import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convexnn.losses import LogisticLoss, SoftmaxLoss, SquaredLoss
from convexnn.penalties import GroupL2


@settings(max_examples=50, deadline=None)
@given(lam=st.floats(1e-3, 10.0), step=st.floats(1e-3, 10.0), seed=st.integers(0, 10**6))
def test_group_prox_moreau_identity(lam, step, seed):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(2, 5, 3, generator=g, dtype=torch.float64) * 3
    pen = GroupL2(lam)
    # prox_{tR}(x) + t prox_{R*/t}(x/t) = x, and prox of R* is the projection on the λ-ball
    lhs = pen.prox(W, step) + step * pen.project_dual(W / step)
    assert torch.allclose(lhs, W, atol=1e-12)


def _loss_cases(seed: int, n: int) -> list:
    """(loss, outputs, targets) for the squared, logistic and softmax losses."""
    g = torch.Generator().manual_seed(seed)
    Z = torch.randn(n, 1, generator=g, dtype=torch.float64)
    y = torch.sign(torch.randn(n, 1, generator=g, dtype=torch.float64))
    Zc = torch.randn(n, 3, generator=g, dtype=torch.float64)
    Yc = torch.nn.functional.one_hot(torch.randint(0, 3, (n,), generator=g), 3).double()
    return [(SquaredLoss(), Z, Z * 0.3 + 1), (LogisticLoss(), Z, y), (SoftmaxLoss(), Zc, Yc)]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_fenchel_young_equality_at_the_gradient(seed):
    for loss, Z_, Y_ in _loss_cases(seed, 7):
        V = loss.grad(Z_, Y_)
        lhs = loss.value(Z_, Y_) + loss.conjugate(V, Y_)
        assert abs(float(lhs - (Z_ * V).sum())) < 1e-10
        # any other point satisfies the inequality
        V2 = loss.center(V, Y_) * 0.5
        assert float(loss.value(Z_, Y_) + loss.conjugate(V2, Y_)) >= float((Z_ * V2).sum()) - 1e-12
        assert abs(float(loss.center(V, Y_).sum(dim=0).abs().max())) < 1e-10


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_loss_hessians_are_the_blocks_of_autograds(seed):
    n = 5
    for loss, Z_, Y_ in _loss_cases(seed, n):
        c = Z_.shape[1]
        full = torch.autograd.functional.hessian(lambda z, f=loss, t=Y_: f.value(z, t), Z_)
        full = full.reshape(n * c, n * c)
        blocks = torch.block_diag(*loss.hessian(Z_, Y_))
        assert torch.allclose(full, blocks, atol=1e-12), loss.name


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_row_values_sum_to_the_value(seed):
    n = 6
    for loss, Z_, Y_ in _loss_cases(seed, n):
        rows = loss.row_values(Z_, Y_)
        assert rows.shape == (n,)
        assert abs(float(rows.sum() / n - loss.value(Z_, Y_))) < 1e-12, loss.name
        # each row is the loss of that sample alone
        assert abs(float(rows[2] - loss.value(Z_[2:3], Y_[2:3]))) < 1e-12, loss.name


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6), margin=st.floats(5.0, 800.0), c=st.integers(2, 12))
def test_softmax_center_is_exact_on_fitted_outputs(seed, margin, c):
    # a well-fitted training set (probabilities near one-hot, as at the end of a
    # classifier's fit) with an output bias off its optimum: Sinkhorn scaling alone
    # converges slowly there, and a dual point whose column sums are not zero gives no
    # valid lower bound when the output bias is free
    g = torch.Generator().manual_seed(seed)
    n = 300
    y = torch.randint(0, c, (n,), generator=g)
    y[:c] = torch.arange(c)  # every class present
    Y = torch.nn.functional.one_hot(y, c).double()
    Z = margin * Y + torch.randn(n, c, generator=g, dtype=torch.float64)
    Z = Z + torch.randn(c, generator=g, dtype=torch.float64)  # bias off its optimum
    loss = SoftmaxLoss()
    V = loss.grad(Z, Y)
    C = loss.center(V, Y)
    assert float(C.sum(dim=0).abs().max()) <= 1e-14  # Σ_k V_kc = 0
    assert math.isfinite(float(loss.conjugate(C, Y)))  # inside the conjugate's domain
    assert math.isfinite(float(loss.conjugate(0.5 * C, Y)))
    # and close to the gradient it centres (the bound uses it as its dual point)
    assert float((C - V).abs().max()) <= float(V.abs().max())
