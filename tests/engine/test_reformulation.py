import torch

from convexnn.losses import LogisticLoss, SquaredLoss
from convexnn.objective import network_objective
from convexnn.patterns import sample_patterns
from convexnn.reformulation import convex_to_network, network_to_convex
from convexnn.training import _problem


def _feasible_solution(seed, fit_intercept, loss):
    g = torch.Generator().manual_seed(seed)
    n, d = 30, 4
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(n, generator=g, dtype=torch.float64)
    if loss.name == "logistic":
        y = torch.sign(y)
    X_aug = torch.cat([X, torch.ones(n, 1, dtype=X.dtype)], 1) if fit_intercept else X
    ps = sample_patterns(X_aug, 10, generator=g)
    prob = _problem(X_aug, ps, y[:, None], loss, 0.05, relu=True, fit_bias=fit_intercept)
    # a block is feasible when it is a non-negative multiple of its own gate
    coef = torch.rand(1, 2 * ps.n_patterns, generator=g, dtype=torch.float64)
    coef[:, ::3] = 0.0
    W = coef[:, :, None] * prob.gates[None]
    b = torch.randn(1, generator=g, dtype=torch.float64) if fit_intercept else torch.zeros(1)
    return X, y, X_aug, prob, W, b


def test_round_trip_objective_equals_convex_objective(seed):
    for fit_intercept in (False, True):
        for loss in (SquaredLoss(), LogisticLoss()):
            X, y, X_aug, prob, W, b = _feasible_solution(seed, fit_intercept, loss)
            assert prob.max_violation(W) == 0.0
            net = convex_to_network(W, b, prob.op.sign, fit_intercept=fit_intercept)
            p_c = prob.objective(W, b)
            p_nc = network_objective([net.W1, net.W2], [net.b1, net.b2], X, y, 0.05,
                                     loss=loss.name)
            assert abs(p_nc - p_c) <= 1e-8 * abs(p_c)
            # and back: the network's convex image has the same objective (balanced neurons)
            cv = network_to_convex(net, X_aug, fit_intercept=fit_intercept)
            prob2 = _problem(X_aug, type("PS", (), {"n_patterns": cv.masks.shape[1],
                                                    "masks": cv.masks, "gates": cv.gates})(),
                             y[:, None], loss, 0.05, relu=True, fit_bias=fit_intercept)
            p = cv.masks.shape[1]
            W2 = torch.zeros(1, 2 * p, W.shape[-1], dtype=W.dtype)
            pos = cv.signs > 0
            W2[:, :p][:, pos] = cv.W[:, pos]
            W2[:, p:][:, ~pos] = cv.W[:, ~pos]
            assert abs(prob2.objective(W2, cv.b) - p_c) <= 1e-8 * abs(p_c)
