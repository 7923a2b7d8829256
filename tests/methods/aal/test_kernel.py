"""AAL's updates checked against independent gradient computations (eq. 4–6, 10–11)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from methods import MetricsCollector, RunContext, get_method
from methods.aal.kernel import (
    AdversarialNet,
    _group_loss,
    _wasserstein,
    make_step,
    permute_labels,
)
from methods.core import DomainView, TaskSpec, task_loss
from methods.data import Dataset
from tests.conftest import TINY_TRAIN

A, B = TaskSpec("a", 0, 2), TaskSpec("b", 1, 2)


def _net(seed: int = 0) -> AdversarialNet:
    torch.manual_seed(seed)
    return AdversarialNet(nn.Linear(4, 3), [nn.Linear(3, 1)], [A], [nn.Linear(3, 1)], [B])


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 4, generator=g)
    y = torch.randint(0, 2, (16, 2), generator=g).float()
    y[3, 1] = -1.0  # a missing adversary label must be ignored, not flipped
    return x, y


def _grads(loss: torch.Tensor, params: list[nn.Parameter]) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, params, retain_graph=True))


def _sgd(params: list[nn.Parameter]) -> torch.optim.SGD:
    return torch.optim.SGD(params, lr=1.0)


def test_reversal_step_gives_features_grad_la_minus_lambda_lb() -> None:
    lam = 0.3
    net, x, y = _net(), *_batch()
    ref = copy.deepcopy(net)
    h = ref.backbone(x)
    la = task_loss(ref.main_heads[0](h), y[:, 0], A)
    lb = task_loss(ref.adv_heads[0](h), y[:, 1], B)
    f_params = list(ref.backbone.parameters())
    expected_f = [ga - lam * gb for ga, gb in zip(_grads(la, f_params), _grads(lb, f_params))]
    expected_a = _grads(la, list(ref.main_heads[0].parameters()))
    expected_b = _grads(lb, list(ref.adv_heads[0].parameters()))

    before = copy.deepcopy(net)
    step = make_step(net, "reversal", lam, [_sgd([*net.f_params(), *net.b_params()])])
    step(x, y)
    # SGD with lr 1: each parameter moved by exactly −(its gradient).
    for p0, p1, g in zip(before.backbone.parameters(), net.backbone.parameters(), expected_f):
        assert torch.allclose(p0 - p1, g, atol=1e-6)
    for p0, p1, g in zip(
        before.main_heads[0].parameters(), net.main_heads[0].parameters(), expected_a
    ):
        assert torch.allclose(p0 - p1, g, atol=1e-6)
    # The adversary head descends L_b (it learns b), it is not reversed.
    for p0, p1, g in zip(
        before.adv_heads[0].parameters(), net.adv_heads[0].parameters(), expected_b
    ):
        assert torch.allclose(p0 - p1, g, atol=1e-6)


def test_gan_step_trains_adversary_then_fools_it_with_flipped_labels() -> None:
    lam = 0.5
    net, x, y = _net(), *_batch()
    ref = copy.deepcopy(net)
    h = ref.backbone(x).detach()
    lb = task_loss(ref.adv_heads[0](h), y[:, 1], B)
    b_params = list(ref.adv_heads[0].parameters())
    with torch.no_grad():
        for p, g in zip(b_params, _grads(lb, b_params)):
            p -= g  # eq. 5 step, features frozen
    h = ref.backbone(x)
    flipped = torch.where(y[:, 1] >= 0, 1 - y[:, 1], y[:, 1])
    objective = task_loss(ref.main_heads[0](h), y[:, 0], A) + lam * task_loss(
        ref.adv_heads[0](h), flipped, B
    )
    expected_f = _grads(objective, list(ref.backbone.parameters()))

    before = copy.deepcopy(net)
    step = make_step(net, "gan", lam, [_sgd(net.f_params()), _sgd(net.b_params())])
    step(x, y)
    for p_ref, p in zip(ref.adv_heads[0].parameters(), net.adv_heads[0].parameters()):
        assert torch.allclose(p_ref, p, atol=1e-6)
    for p0, p1, g in zip(before.backbone.parameters(), net.backbone.parameters(), expected_f):
        assert torch.allclose(p0 - p1, g, atol=1e-6)


def test_flipped_labels_keep_missing_labels_missing() -> None:
    net, x, y = _net(), *_batch()
    h = net.backbone(x)
    flipped = _group_loss(net.adv_heads, [B], h, y, flip=True)
    mask = y[:, 1] >= 0
    manual = nn.functional.binary_cross_entropy_with_logits(
        net.adv_heads[0](h)[mask, 0], 1 - y[mask, 1]
    )
    assert torch.allclose(flipped, manual)


def test_wasserstein_gap_and_critic_clip() -> None:
    net, x, y = _net(), *_batch()
    h = net.backbone(x)
    score = net.adv_heads[0](h)[:, 0]
    gap = score[y[:, 1] == 1].mean() - score[y[:, 1] == 0].mean()
    assert torch.allclose(_wasserstein(net.adv_heads, [B], h, y), gap)

    clip = 0.05
    step = make_step(net, "wgan", 1.0, [_sgd(net.f_params()), _sgd(net.b_params())], clip)
    step(x, y)
    for p in net.b_params():
        assert float(p.detach().abs().max()) <= clip + 1e-7


def test_group_losses_are_means_over_each_group() -> None:
    """Appendix A.2, eq. 10–11: 1/A and 1/B averages."""
    torch.manual_seed(0)
    heads = [nn.Linear(3, 1), nn.Linear(3, 1)]
    specs = [TaskSpec("a", 0, 2), TaskSpec("c", 1, 2)]
    h = torch.randn(8, 3)
    y = torch.randint(0, 2, (8, 2)).float()
    expected = (
        task_loss(heads[0](h), y[:, 0], specs[0]) + task_loss(heads[1](h), y[:, 1], specs[1])
    ) / 2
    assert torch.allclose(_group_loss(heads, specs, h, y), expected)


def _aal(data: Dataset, **extra: object) -> dict[str, float]:
    spec = get_method("aal")
    config = spec.make_config({**TINY_TRAIN, "main": ["left"], "adversaries": ["red"], **extra})
    ctx = RunContext(seed=0, report=MetricsCollector(), num_threads=1)
    return spec.train(config, data, ctx)


def test_lambda_zero_reduces_to_single_task_learning(tiny_shapes: Dataset) -> None:
    """With λ = 0 the reversed gradient is zero: F and C_a train exactly as in eq. 1."""
    stl = get_method("stl")
    alone = stl.train(
        stl.make_config({**TINY_TRAIN, "task": "left"}),
        tiny_shapes,
        RunContext(seed=0, report=MetricsCollector(), num_threads=1),
    )
    adversarial = _aal(tiny_shapes, lam=0.0)
    for key in ("val/acc/left", "val/loss/left", "test/acc/left", "epoch/left"):
        assert adversarial[key] == alone[key]
    assert _aal(tiny_shapes, lam=1.0)["val/loss/left"] != alone["val/loss/left"]


@pytest.mark.parametrize("mode", ["gan", "wgan"])
def test_ablation_modes_need_binary_adversaries(mode: str) -> None:
    from methods.data import load_dataset

    digits = load_dataset("digits")
    config = get_method("aal").make_config(
        {**TINY_TRAIN, "main": ["even"], "adversaries": ["digit"], "adversary_loss": mode}
    )
    with pytest.raises(Exception, match="needs binary adversaries"):
        config.check_data(digits)


def test_wgan_reports_no_adversary_accuracy(tiny_shapes: Dataset) -> None:
    final = _aal(tiny_shapes, adversary_loss="wgan", epochs=1)
    assert "val/acc/left" in final
    assert not any("adv_acc" in k for k in final)


def test_the_null_control_shuffles_only_the_adversaries_training_labels(
    tiny_shapes: Dataset,
) -> None:
    domain = tiny_shapes.domain()
    view = DomainView(domain, torch.device("cpu"))
    red, left = domain.column_index("red"), domain.column_index("left")
    before = view.labels.clone()
    permute_labels(view, [red], seed=3)
    train = torch.from_numpy(domain.indices("train"))
    held = torch.from_numpy(np.concatenate([domain.indices("val"), domain.indices("test")]))
    assert torch.equal(view.labels[held], before[held])  # val and test keep the truth
    assert torch.equal(view.labels[:, left], before[:, left])  # the main task is untouched
    shuffled, truth = view.labels[train, red], before[train, red]
    assert torch.equal(shuffled.sort().values, truth.sort().values)  # the same labels ...
    assert not torch.equal(shuffled, truth)  # ... on other rows
    # shuffled labels say (almost) nothing about the images: agreement near chance
    agreement = float((shuffled == truth).float().mean())
    chance = float(truth.mean() ** 2 + (1 - truth.mean()) ** 2)
    assert abs(agreement - chance) < 0.15


def test_null_control_runs_are_seeded_and_change_only_the_partner(tiny_shapes: Dataset) -> None:
    spec = get_method("aal")
    values = {**TINY_TRAIN, "main": ["left"], "adversaries": ["red"], "lam": 1.0}

    def run(**extra: object) -> dict[str, float]:
        config = spec.make_config({**values, **extra})
        return spec.train(config, tiny_shapes, RunContext(seed=0))

    null = run(permute_adversaries=True)
    assert null == run(permute_adversaries=True)
    assert null["train/main_loss"] != run()["train/main_loss"]
