"""`tl`: transfer learning through the task-irrelevant label, a baseline of the
Purified Learning paper (appendix B, after Yosinski et al. 2014): pre-train the
feature extractor and a classifier on the irrelevant set's label (hair colour;
background colour for digits), then train the whole model on the target task
with a new classifier (the label spaces differ). Both phases follow the paper's
protocol; `pretrain_epochs` is not given in the paper (default: as `epochs`).

`pretrain` is shared with `tl_purified` (appendix A's pre-train-then-PL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..core import train_heads
from ..core.config import meta
from ..core.context import RunContext
from ..core.examples import grid_example
from ..data import Dataset
from .protocol import IrrelevantSetConfig

if TYPE_CHECKING:
    from typing import Self
from ..core import (
    DomainView,
    TaskSpec,
    Trainer,
    ensure_finite,
    gradient_pass,
    task_loss,
    task_specs,
)
from ..core.registry import register_method


@dataclass(frozen=True)
class TLConfig(IrrelevantSetConfig):
    """Transfer learning: pre-train on the irrelevant label, fine-tune on the target."""

    pretrain_epochs: int = field(
        default=50, metadata=meta("epochs on the irrelevant label (not given in PL)", min=0)
    )

    @classmethod
    def tiny_example(cls) -> tuple[Self, Dataset]:
        return grid_example(cls, pretrain_epochs=1)


def pretrain(
    trainer: Trainer, view: DomainView, spec: TaskSpec, epochs: int
) -> tuple[nn.Module, float]:
    """Train F and a new head on `spec` of `view` for `epochs` epochs (the configured
    optimiser and schedule); returns the head and the last epoch's mean loss."""
    head = trainer.head(spec)
    opt = trainer.optimizer([*trainer.backbone.parameters(), *head.parameters()])
    sched = trainer.scheduler(opt)
    loss_mean = float("nan")
    trainer.backbone.train()

    def loss(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        logits = head(trainer.backbone(x))
        return task_loss(logits, y[:, spec.column], spec, trainer.config.loss_reduction)[None]

    for epoch in range(1, epochs + 1):
        total, steps = gradient_pass(view.epoch(trainer.config.batch_size, trainer.rng), loss, opt)
        sched.step()
        loss_mean = float(total) / steps if total is not None else 0.0
        ensure_finite(loss_mean, f"pre-training loss in epoch {epoch}")
    return head, loss_mean


@register_method("tl", config=TLConfig)
def train(config: TLConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    trainer = Trainer(config, data, ctx)
    irrelevant = trainer.view_of(config.irrelevant_domain)
    (pre_spec,) = task_specs(irrelevant.domain, [config.irrelevant_label], need_val=False)
    _, pre_loss = pretrain(trainer, irrelevant, pre_spec, config.pretrain_epochs)
    # fine-tune the pre-trained backbone with a new classifier, as Goal 1 alone
    final = train_heads(config, (config.task,), data, ctx, trainer=trainer)
    if config.pretrain_epochs:
        final["train/pretrain_loss"] = pre_loss
    return final
