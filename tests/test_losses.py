"""NT-Xent against a direct loop over the SimCLR definition."""

from __future__ import annotations

import math

import pytest
import torch

from singerbench.errors import UserError
from singerbench.losses import nt_xent


def _loop_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float) -> float:
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n, b = z.shape[0], z1.shape[0]
    total = 0.0
    for i in range(n):
        j = (i + b) % n
        sims = {k: float(z[i] @ z[k]) / t for k in range(n) if k != i}
        denom = sum(math.exp(s) for s in sims.values())
        total += -math.log(math.exp(sims[j]) / denom)
    return total / n


def test_matches_loop() -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    for t in (0.2, 0.5, 1.0):
        assert float(nt_xent(z1, z2, t)) == pytest.approx(_loop_nt_xent(z1, z2, t), rel=1e-5)


def test_symmetric_in_pair_order() -> None:
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    assert float(nt_xent(a, b)) == pytest.approx(float(nt_xent(b, a)), rel=1e-6)


def test_aligned_pairs_score_lower_than_shuffled() -> None:
    g = torch.Generator().manual_seed(2)
    a = torch.randn(16, 32, generator=g)
    b = a + 0.1 * torch.randn(16, 32, generator=g)
    shuffled = b[torch.roll(torch.arange(16), 1)]
    assert float(nt_xent(a, b)) < float(nt_xent(a, shuffled))


def test_default_temperature_is_the_papers() -> None:
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    assert float(nt_xent(a, b)) == pytest.approx(float(nt_xent(a, b, 0.2)))


def test_bad_shapes_are_user_errors() -> None:
    with pytest.raises(UserError):
        nt_xent(torch.randn(4, 8), torch.randn(3, 8))
    with pytest.raises(UserError):
        nt_xent(torch.randn(1, 8), torch.randn(1, 8))
