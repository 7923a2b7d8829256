"""The Purified Learning baselines' own pieces: DANN's λ schedule and the
pre-training phase of transfer learning."""

from __future__ import annotations

import math

import pytest
import torch

from methods import MetricsCollector, RunContext, get_method
from methods.core import TrainConfig, Trainer, task_specs
from methods.data import Dataset
from methods.purified.dann import dann_lambda
from methods.purified.tl import pretrain
from tests.conftest import tiny_config_values


def _trainer(data: Dataset, **values: object) -> Trainer:
    config = TrainConfig(backbone="small_cnn", domain="target", **values)  # type: ignore[arg-type]
    return Trainer(config, data, RunContext(seed=0))


def _run(data: Dataset, name: str, **extra: object) -> tuple[dict, list[dict]]:
    spec = get_method(name)
    config = spec.make_config(tiny_config_values(name, epochs=3, **extra))
    history = MetricsCollector()
    return spec.train(config, data, RunContext(seed=0, report=history)), history.history


def test_dann_lambda_schedule() -> None:
    assert dann_lambda(1.0, 0.0, "dann") == 0.0
    assert dann_lambda(1.0, 1.0, "dann") == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert dann_lambda(0.5, 0.5, "dann") == pytest.approx(0.5 * (2 / (1 + math.exp(-5)) - 1))
    assert dann_lambda(0.3, 0.1, "constant") == 0.3


def test_transfer_learning_pretrains_first(tiny_digits: Dataset) -> None:
    final, _ = _run(tiny_digits, "tl", pretrain_epochs=2)
    assert math.isfinite(final["train/pretrain_loss"])
    skipped, _ = _run(tiny_digits, "tl", pretrain_epochs=0)
    assert math.isnan(skipped.get("train/pretrain_loss", math.nan))


def test_pretraining_moves_the_backbone_down_the_irrelevant_loss(tiny_digits: Dataset) -> None:
    trainer = _trainer(tiny_digits, lr=1e-3)
    view = trainer.view_of("irrelevant")
    (spec,) = task_specs(view.domain, ["bg"], need_val=False)
    before = [p.clone() for p in trainer.backbone.parameters()]
    _, first = pretrain(trainer, view, spec, 1)
    _, later = pretrain(trainer, view, spec, 3)
    assert later < first
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.backbone.parameters()))
