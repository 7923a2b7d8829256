"""One pass of plain gradient descent with the loss as the varying part — the
loop that supervised kernels and baselines share (multi-task heads, pre-training,
fine-tuning, SOSELETO's baselines, the noisy-label baselines).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import torch

Batch = TypeVar("Batch")


def gradient_pass(
    batches: Iterable[Batch],
    loss_parts: Callable[[Batch], torch.Tensor | None],
    opt: torch.optim.Optimizer,
) -> tuple[torch.Tensor | None, int]:
    """For each batch: `loss_parts(batch)` gives a vector of named loss parts (or
    None: nothing to learn from this batch), one optimiser step minimises their
    sum. Returns the parts summed over the steps — detached and left on the
    device, so a pass synchronises once, not per step — and the number of steps
    (the sum is None when no step was taken)."""
    total: torch.Tensor | None = None
    steps = 0
    for batch in batches:
        parts = loss_parts(batch)
        if parts is None:
            continue
        opt.zero_grad(set_to_none=True)
        parts.sum().backward()
        opt.step()
        total = parts.detach() if total is None else total + parts.detach()
        steps += 1
    return total, steps
