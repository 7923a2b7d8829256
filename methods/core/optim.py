"""The optimiser and learning-rate schedule a `TrainConfig` asks for."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from .train_config import TrainConfig


def build_optimizer(config: TrainConfig, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """Adam, or SGD with `momentum`; `lr` and `weight_decay` either way."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(
    config: TrainConfig, opt: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler:
    """StepLR every `lr_step_size` epochs, else MultiStepLR at `lr_milestones`."""
    if config.lr_step_size > 0:
        return torch.optim.lr_scheduler.StepLR(
            opt, step_size=config.lr_step_size, gamma=config.lr_gamma
        )
    return torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=list(config.lr_milestones), gamma=config.lr_gamma
    )
