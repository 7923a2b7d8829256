"""Gradient reversal: identity forward, −λ × gradient backward."""

from __future__ import annotations

import pytest
import torch

from methods.core.layers import grad_reverse


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0, 2.5])
def test_forward_is_identity_backward_is_minus_lambda(lam: float) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 3, requires_grad=True)
    weights = torch.randn(4, 3)
    y = grad_reverse(x, lam)
    assert torch.equal(y, x)
    (y * weights).sum().backward()
    assert x.grad is not None
    assert torch.allclose(x.grad, -lam * weights)


def test_reversal_acts_only_on_the_branch_it_sits_on() -> None:
    torch.manual_seed(0)
    h = torch.randn(5, 2, requires_grad=True)
    main = h.sum()  # gradient +1 everywhere
    adv = (grad_reverse(h, 0.5) * 2.0).sum()  # gradient 2, reversed and scaled: −1
    (main + adv).backward()
    assert h.grad is not None
    assert torch.allclose(h.grad, torch.zeros_like(h))
