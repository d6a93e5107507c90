"""Randomness flows from ``random_state`` into explicit ``torch.Generator`` objects."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

__all__ = ["make_generator", "seed_from_random_state"]


def seed_from_random_state(random_state: Any) -> int:
    """Draw a 63-bit seed from an int, ``None`` or a ``numpy.random.RandomState``."""
    if isinstance(random_state, torch.Generator):
        return int(torch.randint(0, 2**62, (1,), generator=random_state,
                                 device=random_state.device).item())
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**62))
    rng = check_random_state(random_state)
    return int(rng.randint(0, 2**31 - 1)) * 2**31 + int(rng.randint(0, 2**31 - 1))


def make_generator(random_state: Any, device: torch.device | str = "cpu") -> torch.Generator:
    """Return a seeded ``torch.Generator`` on ``device`` (no global state is touched).

    A ``torch.Generator`` is returned as is when it lives on ``device``'s type; otherwise a
    new generator there is seeded from it (a CPU generator cannot drive CUDA sampling).
    """
    if isinstance(random_state, torch.Generator):
        if random_state.device.type == torch.device(device).type:
            return random_state
    gen = torch.Generator(device=device)
    gen.manual_seed(seed_from_random_state(random_state))
    return gen
