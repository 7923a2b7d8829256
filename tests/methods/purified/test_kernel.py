"""Purified Learning's updates (Alg. 1) checked one at a time, and its data split."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from methods import MetricsCollector, RunContext, get_method
from methods.core import TaskSpec
from methods.data import Dataset
from methods.purified.kernel import (
    PurifiedConfig,
    PurifiedSteps,
    fixed_and_random_rows,
    make_critic,
)
from tests.conftest import tiny_config_values

SPEC = TaskSpec("digit", 0, 10)


def _steps(clip: float = 0.1, **kw: object) -> PurifiedSteps:
    torch.manual_seed(0)
    extractor = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8))
    classifier = nn.Linear(8, 10)
    critic = make_critic(8)
    config = PurifiedConfig(
        task="digit", irrelevant_domain="i", irrelevant_label="bg", critic_clip=clip, **kw
    )  # type: ignore[arg-type]
    opt = torch.optim.SGD([*extractor.parameters(), *classifier.parameters()], lr=0.1, momentum=0.9)
    critic_opt = torch.optim.Adam(critic.parameters(), lr=1e-3)
    return PurifiedSteps(extractor, classifier, critic, opt, critic_opt, config, SPEC)


def _batch(seed: int) -> torch.Tensor:
    return torch.randn(32, 6, generator=torch.Generator().manual_seed(seed))


def test_critic_has_the_paper_layers() -> None:
    widths = [m.out_features for m in make_critic(128) if isinstance(m, nn.Linear)]
    assert widths == [512, 256, 10, 1]


@pytest.mark.parametrize("clip", [0.01, 0.1])
def test_critic_weights_stay_within_the_clip(clip: float) -> None:
    steps = _steps(clip)
    for i in range(20):
        steps.critic_step(_batch(i), _batch(100 + i) + 1.0)
        for p in steps.critic.parameters():
            assert float(p.detach().abs().max()) <= clip + 1e-7


def test_critic_step_raises_b_relative_to_a_and_leaves_the_extractor() -> None:
    """Alg. 1 line 5's sign: f_d(B) − f_d(A) goes up (eq. 22 would lower it)."""
    steps = _steps(clip=10.0)  # no clipping in the way of a clean comparison
    xa, xb = _batch(1), _batch(2) + 2.0
    before = [p.clone() for p in steps.extractor.parameters()]
    with torch.no_grad():
        gap0 = steps.critic(steps.extractor(xb)).mean() - steps.critic(steps.extractor(xa)).mean()
    for _ in range(5):
        steps.critic_step(xa, xb)
    with torch.no_grad():
        gap1 = steps.critic(steps.extractor(xb)).mean() - steps.critic(steps.extractor(xa)).mean()
    assert gap1 > gap0
    assert all(torch.equal(a, b) for a, b in zip(before, steps.extractor.parameters()))


def test_goal2_moves_the_extractor_not_the_classifier_nor_the_critic() -> None:
    # the mean keeps Goal 1's momentum (which Goal 2's SGD step applies too) small
    steps = _steps(loss_reduction="mean")
    x, y = _batch(3), torch.randint(0, 10, (32, 1)).float()
    steps.goal1_step(x, y)  # gives the classifier a momentum buffer Goal 2 must not apply
    extractor = copy.deepcopy(steps.extractor.state_dict())
    classifier = copy.deepcopy(steps.classifier.state_dict())
    critic = copy.deepcopy(steps.critic.state_dict())
    before = steps.score(steps.extractor(x)).mean().item()
    steps.goal2_step(x)
    assert any(not torch.equal(extractor[k], v) for k, v in steps.extractor.state_dict().items())
    assert all(torch.equal(classifier[k], v) for k, v in steps.classifier.state_dict().items())
    assert all(torch.equal(critic[k], v) for k, v in steps.critic.state_dict().items())
    assert steps.score(steps.extractor(x)).mean().item() > before  # towards high f_d


def test_goal1_moves_extractor_and_classifier_down_the_cross_entropy() -> None:
    steps = _steps(loss_reduction="mean")  # the helper's lr 0.1 suits the mean
    x, y = _batch(4), torch.randint(0, 10, (32, 1)).float()
    classifier = copy.deepcopy(steps.classifier.state_dict())
    first = steps.goal1_step(x, y).item()
    assert any(not torch.equal(classifier[k], v) for k, v in steps.classifier.state_dict().items())
    for _ in range(10):
        last = steps.goal1_step(x, y).item()
    assert last < first


def test_unit_features_bound_the_critic_input() -> None:
    steps = _steps(unit_features=True)
    big = _batch(5) * 1000
    with torch.no_grad():
        a = steps.score(steps.extractor(big))
        b = steps.score(steps.extractor(big) * 10)
    assert torch.allclose(a, b, atol=1e-5)


def test_batch_a_has_one_fixed_value_batch_b_all() -> None:
    labels = np.array([0, 1, 1, 2, 1, -1, 2, 1], dtype=np.float32)
    rows = np.arange(8)
    value, a, b = fixed_and_random_rows(labels, rows, -1)
    assert value == 1 and set(labels[a]) == {1}
    assert sorted(b.tolist()) == [0, 1, 2, 3, 4, 6, 7]  # every labelled row, any value
    value, a, _ = fixed_and_random_rows(labels, rows, 2)
    assert value == 2 and a.tolist() == [3, 6]


def test_kernel_reports_the_paper_parts(tiny_digits: Dataset) -> None:
    spec = get_method("purified")
    config = spec.make_config(tiny_config_values("purified"))
    final = spec.train(config, tiny_digits, RunContext(seed=0, report=MetricsCollector()))
    for key in ("train/cls_loss", "train/wasserstein_loss", "train/critic_gap"):
        assert key in final
    irrelevant = tiny_digits.domain("irrelevant")
    bg = irrelevant.column("bg")[irrelevant.indices("train")]
    values, counts = np.unique(bg, return_counts=True)
    assert final["train/fixed_value"] == values[np.argmax(counts)]  # the most frequent


def test_critic_step_leaves_batch_norm_statistics_alone() -> None:
    """The irrelevant batches must not shift the running statistics the target model
    is evaluated with, nor be normalised by their own (single-colour) statistics."""
    torch.manual_seed(0)
    extractor = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8))
    critic = make_critic(8)
    config = PurifiedConfig(task="digit", irrelevant_domain="i", irrelevant_label="bg")
    steps = PurifiedSteps(
        extractor,
        nn.Linear(8, 10),
        critic,
        torch.optim.SGD(extractor.parameters(), lr=0.1),
        torch.optim.Adam(critic.parameters()),
        config,
        SPEC,
    )
    extractor.train()
    stats = extractor[1].running_mean.clone()
    steps.critic_step(_batch(1) + 5.0, _batch(2))
    assert torch.equal(extractor[1].running_mean, stats)
    assert extractor.training  # back in train mode for the target steps


def test_goal1_is_alg1s_sum_under_the_protocol_and_the_mean_an_option() -> None:
    x, y = _batch(6), torch.randint(0, 10, (32, 1)).float()
    assert PurifiedConfig().loss_reduction == "sum"  # Alg. 1 lines 10–12
    total = _steps().goal1_step(x, y)
    mean = _steps(loss_reduction="mean").goal1_step(x, y)
    assert torch.allclose(total, mean * 32)


def test_goal2_reports_the_critics_input_gradient() -> None:
    """The gradient norm an independent autograd pass gives, before the step."""
    steps = _steps()
    x = _batch(7)
    h = steps.extractor(x).detach().requires_grad_(True)
    (expected,) = torch.autograd.grad(steps.critic(h).sum(), h)
    _, norm = steps.goal2_step(x)
    assert float(norm) == pytest.approx(float(expected.norm(dim=1).mean()), rel=1e-5)
