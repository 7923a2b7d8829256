"""Gradient reversal (Ganin & Lempitsky, ICML 2015), used by AAL eq. 6 / eq. 10.

Identity on the forward pass; on the backward pass the gradient is multiplied
by −λ. Placed between the shared features h and an adversary head C_b, one
backward pass of L_a + L_b gives C_b the gradient of L_b (eq. 5/11: the head
learns to predict b) and the features the gradient of L_a − λ·L_b (eq. 6/10:
the representation unlearns b).
"""

from __future__ import annotations

from typing import Any

import torch


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lam: float) -> torch.Tensor:
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.lam * grad, None


def grad_reverse(x: torch.Tensor, lam: float) -> torch.Tensor:
    """Identity forward, −λ × gradient backward."""
    out: torch.Tensor = _ReverseGrad.apply(x, lam)
    return out
