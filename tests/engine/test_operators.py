import pytest
import torch

from convexnn.operators import PatternOperator, dottest
from convexnn.patterns import sample_patterns


@pytest.mark.parametrize("c,signed", [(1, False), (3, False), (1, True), (2, True)])
def test_adjoint(dtype, device, c, signed):
    g = torch.Generator(device=device).manual_seed(0)
    X = torch.randn(40, 5, generator=g, dtype=dtype, device=device)
    ps = sample_patterns(X, 12, generator=g)
    signs = None
    masks = ps.masks
    if signed:
        p = ps.n_patterns
        masks = torch.cat([masks, masks], 1)
        signs = torch.cat([torch.ones(p), -torch.ones(p)]).to(device)
    op = PatternOperator(X, masks, signs, n_outputs=c)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert dottest(op, generator=g) < tol
    assert op.n_matvec == 1 and op.n_rmatvec == 1


def test_dense_matches_operator():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(30, 4, generator=g, dtype=torch.float64)
    ps = sample_patterns(X, 7, generator=g)
    op = PatternOperator(X, ps.masks)
    W = torch.randn(1, ps.n_patterns, 4, generator=g, dtype=torch.float64)
    assert torch.allclose(op.to_dense() @ W.reshape(-1), op.matvec(W)[:, 0])
    # the explicit definition Σ_i D_i X w_i
    ref = sum(ps.masks[:, i].double() * (X @ W[0, i]) for i in range(ps.n_patterns))
    assert torch.allclose(op.matvec(W)[:, 0], ref)


@pytest.mark.parametrize("n_gates", [3, 12])  # p < d and p > d: the two contraction orders
@pytest.mark.parametrize("c", [1, 3])
def test_both_contraction_orders_match_the_definition(n_gates, c):
    g = torch.Generator().manual_seed(2)
    X = torch.randn(40, 6, generator=g, dtype=torch.float64)
    ps = sample_patterns(X, n_gates, generator=g)
    p = ps.n_patterns
    masks = torch.cat([ps.masks, ps.masks], 1)
    signs = torch.cat([torch.ones(p), -torch.ones(p)]).double()
    op = PatternOperator(X, masks, signs, n_outputs=c)
    assert op._by_pattern() == (2 * p > 6)
    W = torch.randn(c, 2 * p, 6, generator=g, dtype=torch.float64)
    V = torch.randn(40, c, generator=g, dtype=torch.float64)
    ref = torch.stack([sum(signs[j] * masks[:, j].double() * (X @ W[k, j])
                           for j in range(2 * p)) for k in range(c)], 1)
    assert torch.allclose(op.matvec(W), ref, atol=1e-12)
    ref_t = torch.stack([torch.stack([signs[j] * X.T @ (masks[:, j].double() * V[:, k])
                                      for j in range(2 * p)]) for k in range(c)])
    assert torch.allclose(op.rmatvec(V), ref_t, atol=1e-12)


@pytest.mark.parametrize("c", [1, 4])
@pytest.mark.parametrize("signed", [False, True])
def test_sparse_low_rank_blocks_take_the_compact_product(dtype, device, c, signed):
    """Iterates of the proximal solvers are mostly zero blocks of low rank: the product
    from their factors must equal the definition Σ_j σ_j D_j X w_{cj}, and blocks that are
    round-off away from low rank must not be dropped beyond round-off."""
    g = torch.Generator(device=device).manual_seed(3)
    n, d = 60, 7
    X = torch.randn(n, d, generator=g, dtype=dtype, device=device)
    ps = sample_patterns(X, 20, generator=g)
    p = ps.n_patterns
    masks, signs = ps.masks, None
    if signed:
        masks = torch.cat([masks, masks], 1)
        signs = torch.cat([torch.ones(p), -torch.ones(p)]).to(device)
    op = PatternOperator(X, masks, signs, n_outputs=c)
    P = op.p
    W = torch.zeros(c, P, d, dtype=dtype, device=device)
    for j in range(0, P, 4):  # a quarter of the blocks nonzero, each of rank one
        a = torch.randn(c, 1, generator=g, dtype=dtype, device=device)
        b = torch.randn(1, d, generator=g, dtype=dtype, device=device)
        W[:, j] = a @ b
    if P > 2 and c > 1:  # one block of full rank, one a hair away from rank one
        W[:, 1] = torch.randn(c, d, generator=g, dtype=dtype, device=device)
        W[:, 2] = W[:, 0] + 1e-6 * torch.randn(c, d, generator=g, dtype=dtype, device=device)
    assert op._compact(W) is not None
    R, L, idx = op._compact(W)
    nonzero = int((torch.linalg.vector_norm(W, dim=(0, 2)) > 0).sum())
    assert R.shape[0] >= nonzero and R.shape[0] <= nonzero + 2 * min(c, d)
    ref = torch.stack([sum(op.sign[j] * masks[:, j].to(dtype) * (X @ W[k, j])
                           for j in range(P)) for k in range(c)], 1)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert float((op.matvec(W) - ref).abs().max()) <= tol * float(ref.abs().max())
    # dense blocks: the ordinary product
    assert op._compact(torch.randn(c, P, d, generator=g, dtype=dtype, device=device)) is None


@pytest.mark.parametrize("c", [1, 3])
def test_max_violation_matches_the_dense_cone_values(c):
    """max_violation works through the nonzero blocks a few patterns at a time: the same
    value as the whole (n, c, p) array of cone values."""
    from convexnn.losses import SquaredLoss
    from convexnn.penalties import GroupL2
    from convexnn.solvers._problem import ConvexProblem

    g = torch.Generator().manual_seed(c)
    n, d, p = 20_000, 6, 300  # several chunks of patterns (4e6 entries each)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    D = (X @ torch.randn(d, p, generator=g, dtype=torch.float64)) >= 0
    op = PatternOperator(X, D, torch.ones(p, dtype=torch.float64), c)
    prob = ConvexProblem(op, torch.zeros(n, c, dtype=torch.float64), SquaredLoss(),
                         GroupL2(0.1), constrained=True)
    W = torch.randn(c, p, d, generator=g, dtype=torch.float64)
    W[:, ::3] = 0
    dense = float(torch.clamp(-op.cone_matvec(W), min=0).max())
    assert dense > 0 and prob.max_violation(W) == dense
    assert prob.max_violation(torch.zeros_like(W)) == 0.0
