"""AAL's non-invertible objective (confusion, Tzeng et al. 2015 eq. 3) and the
linear probe that reads what the features carry (issue 27)."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from methods import MetricsCollector, RunContext, get_method
from methods.aal.kernel import AdversarialNet, _group_loss, confusion_loss, make_step
from methods.core import DomainView, TaskSpec, task_loss
from methods.core.probe import probe_accuracies
from methods.data import Dataset
from methods.data.dataset import Domain
from tests.conftest import TINY_TRAIN

A, B = TaskSpec("a", 0, 2), TaskSpec("b", 1, 2)


def test_confusion_is_least_at_the_uniform_prediction_and_blind_to_the_sign() -> None:
    z = torch.linspace(-6, 6, 121)[:, None]
    per_row = torch.stack([confusion_loss(v[None], B) for v in z])
    assert int(per_row.argmin()) == 60  # z = 0: p = (½, ½)
    assert math.isclose(float(per_row.min()), math.log(2), rel_tol=1e-6)
    # a confident adversary is as bad for the features whichever class it names
    assert torch.allclose(per_row, per_row.flip(0), atol=1e-6)
    three = TaskSpec("c", 0, 3)
    uniform = confusion_loss(torch.zeros(4, 3), three)
    assert math.isclose(float(uniform), math.log(3), rel_tol=1e-6)
    assert float(confusion_loss(torch.tensor([[5.0, 0.0, 0.0]]), three)) > float(uniform)


def test_confusion_gradient_pulls_the_logit_towards_zero() -> None:
    z = torch.tensor([[-2.0], [-0.3], [0.5], [3.0]], requires_grad=True)
    confusion_loss(z, B, "sum").backward()
    assert z.grad is not None
    # d/dz of −½(log σ(z) + log σ(−z)) = σ(z) − ½: descent moves z towards 0
    assert torch.allclose(z.grad, torch.sigmoid(z.detach()) - 0.5, atol=1e-6)
    assert bool((torch.sign(z.grad) == torch.sign(z.detach())).all())


def test_reversal_is_satisfied_by_inverting_the_adversary_confusion_is_not() -> None:
    """The mechanism behind the λ = 1 collapse: the features' reversal objective
    −L_b improves without bound when the adversary reads b backwards; confusion
    scores the inverted and the faithful adversary alike."""
    g = torch.Generator().manual_seed(0)
    h = torch.randn(256, 3, generator=g)
    y = torch.zeros(256, 2)
    y[:, 1] = (h[:, 0] > 0).float()  # b is written in the first feature
    faithful, inverted = nn.Linear(3, 1), nn.Linear(3, 1)
    with torch.no_grad():
        faithful.weight.copy_(torch.tensor([[4.0, 0.0, 0.0]]))
        faithful.bias.zero_()
        inverted.weight.copy_(-faithful.weight)
        inverted.bias.zero_()
    reversal = {n: -_group_loss([m], [B], h, y) for n, m in (("f", faithful), ("i", inverted))}
    assert reversal["i"] < reversal["f"] - 1.0  # inverting is a win for gradient reversal
    conf = {n: confusion_loss(m(h), B) for n, m in (("f", faithful), ("i", inverted))}
    assert torch.isclose(conf["f"], conf["i"])  # and no win for confusion


def test_confusion_step_trains_the_adversary_then_confuses_it() -> None:
    lam = 0.7
    torch.manual_seed(0)
    net = AdversarialNet(nn.Linear(4, 3), [nn.Linear(3, 1)], [A], [nn.Linear(3, 1)], [B])
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 4, generator=g), torch.randint(0, 2, (16, 2), generator=g).float()
    ref = copy.deepcopy(net)
    lb = task_loss(ref.adv_heads[0](ref.backbone(x).detach()), y[:, 1], B)
    expected_b = torch.autograd.grad(lb, list(ref.adv_heads[0].parameters()))
    with torch.no_grad():  # the adversary as updated by its SGD step (lr 1)
        for p, gp in zip(ref.adv_heads[0].parameters(), expected_b, strict=True):
            p -= gp
    h = ref.backbone(x)
    objective = task_loss(ref.main_heads[0](h), y[:, 0], A) + lam * confusion_loss(
        ref.adv_heads[0](h), B
    )
    expected_f = torch.autograd.grad(objective, list(ref.backbone.parameters()))
    before = copy.deepcopy(net)
    opt_f = torch.optim.SGD(net.f_params(), lr=1.0)
    opt_b = torch.optim.SGD(net.b_params(), lr=1.0)
    make_step(net, "confusion", lam, [opt_f, opt_b])(x, y)
    for p0, p1, g_ in zip(before.backbone.parameters(), net.backbone.parameters(), expected_f):
        assert torch.allclose(p0 - p1, g_, atol=1e-6)
    for p0, p1, g_ in zip(
        before.adv_heads[0].parameters(), net.adv_heads[0].parameters(), expected_b
    ):
        assert torch.allclose(p0 - p1, g_, atol=1e-6)


def _vectors(encoded: bool) -> Dataset:
    """400 rows of 6 features; label b is the sign of feature 0 (encoded) or noise."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    b = (x[:, 0] > 0) if encoded else rng.random(400) > 0.5
    labels = np.stack([rng.random(400) > 0.5, b], 1).astype(np.float32)
    split = np.array(["train"] * 240 + ["val"] * 80 + ["test"] * 80)
    domain = Domain("v", x, labels, ("a", "b"), split)
    return Dataset("v", {"v": domain}, "v-encoded" if encoded else "v-noise")


def test_the_probe_reads_an_encoded_label_and_not_noise() -> None:
    for encoded, check in (
        (True, lambda acc: acc > 0.9),
        (False, lambda acc: abs(acc - 0.5) < 0.15),
    ):
        data = _vectors(encoded)
        view = DomainView(data.domain(), torch.device("cpu"))
        out = probe_accuracies(nn.Identity(), view, [B])
        assert set(out) == {"val/probe_acc/b", "test/probe_acc/b"}
        assert all(check(v) for v in out.values()), (encoded, out)


def test_an_aal_run_with_the_probe_reports_it_per_epoch_as_a_curve(tiny_shapes: Dataset) -> None:
    spec = get_method("aal")
    config = spec.make_config(
        {
            **TINY_TRAIN,
            "main": ["left"],
            "adversaries": ["red"],
            "probe": True,
            "adversary_loss": "confusion",
        }
    )
    final = spec.train(config, tiny_shapes, RunContext(seed=0, report=MetricsCollector()))
    for epoch in range(1, config.epochs + 1):
        for split in ("val", "test"):
            for metric in ("probe_acc", "adv_acc"):
                value = final[f"curve/{epoch}/{split}/{metric}/red"]
                assert 0.0 <= value <= 1.0
    assert "val/probe_acc/red" in config.objectives()
