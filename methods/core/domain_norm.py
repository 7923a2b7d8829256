"""Batch-norm statistics kept per domain, for models that train on several
datasets (MTL-SA's datasets A and B).

A shared network with batch norm keeps one set of running statistics, those of
whichever dataset it saw last; evaluated (or pseudo-labelling) on another, it
normalises with the wrong means and variances. `per_domain_norm(model, names)`
swaps every `BatchNorm` layer for a `DomainBatchNorm` that keeps the running
statistics of each domain apart while sharing the affine weights,
`on_domain(model, name)` selects whose statistics a forward pass uses and
updates, and `recompute_statistics` re-estimates a domain's statistics under
the current weights (after an epoch on the other domain they are stale). A
domain it was not trained on (a cross-dataset test domain) is normalised with
the first domain's statistics, the domain the model trains on.
A model without batch norm (the papers' VGG) is unchanged, and `on_domain` on
a model without `DomainBatchNorm` layers does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


class DomainBatchNorm(nn.Module):
    """One batch-norm layer with running statistics per domain and shared weights."""

    def __init__(self, norm: nn.modules.batchnorm._BatchNorm, domains: Sequence[str]):
        super().__init__()
        self.domains = list(domains)
        self.active = self.domains[0]
        self.recomputing = 0  # > 0: re-estimating the active domain's statistics
        # a cumulative average (momentum None) has no per-domain meaning here: 0.1, torch's default
        self.eps, self.momentum = norm.eps, norm.momentum if norm.momentum is not None else 0.1
        self.weight, self.bias = norm.weight, norm.bias
        mean, var = norm.running_mean, norm.running_var
        assert mean is not None and var is not None  # track_running_stats layers only
        for k in range(len(self.domains)):
            self.register_buffer(f"running_mean_{k}", mean.detach().clone())
            self.register_buffer(f"running_var_{k}", var.detach().clone())

    def statistics(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(running mean, running variance) of a domain (the first for an unknown one)."""
        k = self.domains.index(name) if name in self.domains else 0
        mean: torch.Tensor = getattr(self, f"running_mean_{k}")
        var: torch.Tensor = getattr(self, f"running_var_{k}")
        return mean, var

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.statistics(self.active)
        if self.recomputing:  # the k-th batch enters the running average with weight 1/k
            momentum = 1.0 / self.recomputing
            self.recomputing += 1
            return F.batch_norm(x, mean, var, self.weight, self.bias, True, momentum, self.eps)
        # Batch statistics, and an update of the running ones, only when training on a
        # known domain: a test domain never moves the first domain's statistics.
        update = self.training and self.active in self.domains
        return F.batch_norm(
            x, mean, var, self.weight, self.bias, update, self.momentum if update else 0.0, self.eps
        )


def per_domain_norm(model: nn.Module, domains: Sequence[str]) -> nn.Module:
    """`model` with each tracking BatchNorm layer replaced by a `DomainBatchNorm` over
    `domains` (in place; the model is returned for chaining)."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and child.track_running_stats:
            setattr(model, name, DomainBatchNorm(child, domains))
        else:
            per_domain_norm(child, domains)
    return model


@contextmanager
def on_domain(model: nn.Module, name: str) -> Iterator[None]:
    """Forward passes inside the block normalise with (and, in train mode, update)
    domain `name`'s statistics; the previous choice is restored after."""
    layers = [m for m in model.modules() if isinstance(m, DomainBatchNorm)]
    before = [m.active for m in layers]
    for m in layers:
        m.active = name
    try:
        yield
    finally:
        for m, active in zip(layers, before, strict=True):
            m.active = active


@torch.no_grad()
def recompute_statistics(model: nn.Module, name: str, batches: Iterable[torch.Tensor]) -> None:
    """Re-estimate domain `name`'s running statistics under the model's current
    weights, as the plain average of the batch statistics over `batches` (precise
    batch norm): after an epoch on the other domain, a domain's running statistics
    are those of weights that have since moved. The model's modes are left as they
    were; nothing but the statistics changes."""
    layers = [m for m in model.modules() if isinstance(m, DomainBatchNorm)]
    if not layers or name not in layers[0].domains:
        return
    modes = [m.training for m in model.modules()]
    model.eval()  # dropout and the like off; the DomainBatchNorm layers recompute
    for m in layers:
        m.recomputing = 1
    try:
        with on_domain(model, name):
            for x in batches:
                model(x)
    finally:
        for m in layers:
            m.recomputing = 0
        for module, mode in zip(model.modules(), modes, strict=True):
            module.training = mode
