"""Gram eigen-components shared by the operator's compact product and the nuclear prox."""

import pytest
import torch

from convexnn.utils import gram_components


@pytest.mark.parametrize("wide", [True, False])
def test_gram_components_reconstruct_and_carry_the_singular_values(wide):
    g = torch.Generator().manual_seed(0)
    B = torch.randn(5, 3, 7, generator=g, dtype=torch.float64)
    if not wide:
        B = B.transpose(1, 2).contiguous()  # (5, 7, 3): the Gram of the short side
    e, U, M = gram_components(B, wide=wide)
    back = U @ M if wide else M @ U.transpose(1, 2)
    torch.testing.assert_close(back, B, rtol=0, atol=1e-12)
    # the components' norms are the singular values, and e their squares
    norms = torch.linalg.vector_norm(M, dim=2 if wide else 1)
    s = torch.linalg.svdvals(B)
    torch.testing.assert_close(norms.sort(dim=1, descending=True).values, s, rtol=1e-12,
                               atol=0)
    torch.testing.assert_close(e.sort(dim=1, descending=True).values, s**2, rtol=1e-10,
                               atol=0)
