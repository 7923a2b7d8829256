"""Batch-norm statistics per domain: which domain's a forward pass uses and updates,
and their re-estimation under the current weights."""

from __future__ import annotations

import torch
from torch import nn

from methods.core.backbones import build_backbone
from methods.core.domain_norm import (
    DomainBatchNorm,
    on_domain,
    per_domain_norm,
    recompute_statistics,
)


def test_domain_batch_norm_updates_and_uses_one_domain_at_a_time() -> None:
    torch.manual_seed(0)
    model = per_domain_norm(build_backbone("small_cnn", (3, 8, 8)), ["a", "b"])
    norms = [m for m in model.modules() if isinstance(m, DomainBatchNorm)]
    assert norms and not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    first = norms[0]
    x = torch.randn(16, 3, 8, 8) * 3 + 2
    model.train()
    with on_domain(model, "a"):
        model(x)
    mean_a, _ = first.statistics("a")
    mean_b, var_b = first.statistics("b")
    assert not torch.all(mean_a == 0) and torch.all(mean_b == 0) and torch.all(var_b == 1)
    with on_domain(model, "plain"):  # a test domain: a's statistics, and no update
        model(x)
    assert torch.equal(first.statistics("a")[0], mean_a)
    assert first.active == "a"  # the block put the choice back
    # in eval mode each domain is normalised with its own statistics
    model.eval()
    with on_domain(model, "a"):
        on_a = model(x)
    with on_domain(model, "b"):
        on_b = model(x)
    with on_domain(model, "plain"):
        on_plain = model(x)
    assert not torch.allclose(on_a, on_b) and torch.equal(on_a, on_plain)


def test_recomputed_statistics_are_the_average_of_the_batch_statistics() -> None:
    torch.manual_seed(0)
    model = per_domain_norm(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), ["a", "b"])
    model.train()
    batches = [torch.randn(8, 3) * (k + 1) + k for k in range(3)]
    with on_domain(model, "b"):  # some stale statistics for b first
        model(torch.randn(8, 3) * 9)
    recompute_statistics(model, "b", batches)
    norm = model[1]
    assert isinstance(norm, DomainBatchNorm) and norm.recomputing == 0
    with torch.no_grad():
        feats = [model[0](x) for x in batches]
    mean = torch.stack([f.mean(0) for f in feats]).mean(0)
    var = torch.stack([f.var(0, unbiased=True) for f in feats]).mean(0)
    got_mean, got_var = norm.statistics("b")
    torch.testing.assert_close(got_mean, mean)
    torch.testing.assert_close(got_var, var)
    assert model.training and norm.training  # modes as they were
    untouched = norm.statistics("a")[0].clone()
    recompute_statistics(model, "plain", batches)  # not a domain of the model: nothing
    assert torch.equal(norm.statistics("a")[0], untouched)
