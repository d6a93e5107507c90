import pytest
import torch

from convexnn.exceptions import PatternBudgetError
from convexnn.patterns import (
    count_bound,
    enumerate_patterns,
    patterns_from_gates,
    sample_patterns,
)
from convexnn.patterns._pattern_set import dedup_columns


def _data(n, d, bias, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=dtype)
    if bias:
        X = torch.cat([X, torch.ones(n, 1, dtype=dtype)], 1)
    return X


@pytest.mark.parametrize("n,d,bias", [(10, 2, False), (12, 3, False), (10, 2, True),
                                      (9, 3, True), (8, 1, True), (7, 1, False)])
def test_exact_enumeration_counts_every_chamber(n, d, bias, seed):
    X = _data(n, d, bias, seed)
    ps = enumerate_patterns(X)
    r = X.shape[1]
    # general position: the count bound is the exact number of chambers; the empty
    # pattern is dropped (it exists only with a bias column, where all-zero is reachable)
    assert ps.n_patterns == count_bound(n, r) - (1 if bias else 0)
    assert ps.exact
    assert bool(((X @ ps.gates.T >= 0) == ps.masks).all())
    assert dedup_columns(ps.masks).numel() == ps.n_patterns


@pytest.mark.parametrize("bias", [False, True])
def test_sampled_patterns_are_a_subset_of_the_enumeration(bias, seed):
    X = _data(9, 2, bias, seed)
    ps = enumerate_patterns(X)
    g = torch.Generator().manual_seed(seed + 10)
    G = torch.randn(20000, X.shape[1], generator=g, dtype=X.dtype)
    sampled = patterns_from_gates(X, G)
    all_masks = torch.cat([ps.masks, sampled.masks], 1)
    assert dedup_columns(all_masks).numel() == ps.n_patterns


def test_enumeration_refuses_beyond_budget_and_states_the_count():
    X = _data(200, 8, True, 0)
    with pytest.raises(PatternBudgetError, match=r"up to [\d,]+ patterns.*max_patterns=1,000"):
        enumerate_patterns(X, max_patterns=1000)


def test_rank_deficient_data_are_enumerated_in_the_row_space():
    X = _data(10, 2, False, 3)
    X3 = torch.cat([X, X[:, :1] + X[:, 1:]], 1)  # rank 2 in R^3
    assert enumerate_patterns(X3).n_patterns == enumerate_patterns(X).n_patterns


def test_sampling_deduplicates_and_respects_the_count(dtype):
    X = _data(50, 4, True, 1, dtype)
    g = torch.Generator().manual_seed(0)
    ps = sample_patterns(X, 40, generator=g)
    assert ps.n_patterns == 40
    assert dedup_columns(ps.masks).numel() == 40
    assert bool(ps.masks.any(dim=0).all())


def test_count_bound_formula():
    assert count_bound(4, 2) == 2 * (1 + 3)
    assert count_bound(10, 1) == 2
