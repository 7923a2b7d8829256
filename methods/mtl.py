"""`mtl`: multi-task learning with a shared backbone and one head per task
(AAL paper eq. 2 for a pair, eq. 8 for M tasks): the per-task losses are summed.

Stage 1 of the AAL pair search trains one `mtl` model per attribute pair; a
pair run yields both cells (a, b) and (b, a) of the pair matrix. Each task is
selected at its own best validation epoch (the paper keeps "the best model"
for the attribute it cares about), and its test numbers come from that epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .config import meta
from .context import RunContext
from .data import Dataset
from .registry import register_method
from .training import (
    EvalHead,
    TaskSpec,
    TrainConfig,
    Trainer,
    check_distinct,
    task_loss,
    task_specs,
)


@dataclass(frozen=True)
class MTLConfig(TrainConfig):
    """Multi-task learning: `tasks` share F, each has a linear head C_j."""

    tasks: tuple[str, ...] = field(default=(), metadata=meta("attributes trained together"))

    def check(self) -> None:
        check_distinct(self.tasks, "tasks")

    def roles(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(main tasks, auxiliary tasks) of a run, for result tables and study attributes."""
        return self.tasks, ()

    @staticmethod
    def example(attributes: Sequence[str]) -> dict[str, Any]:
        """The smallest task settings for a dataset with these attributes (shared tests)."""
        return {"tasks": list(attributes[:2])}

    def check_data(self, data: Dataset) -> None:
        task_specs(self.check_training(data), self.tasks)


def train_shared(
    config: TrainConfig, names: tuple[str, ...], data: Dataset, ctx: RunContext
) -> dict[str, float]:
    """Sum of per-task losses over one shared backbone (eq. 2 / 8; eq. 1 for one task)."""
    trainer = Trainer(config, data, ctx)
    specs: list[TaskSpec] = task_specs(trainer.domain, names)
    heads = [trainer.head(s) for s in specs]
    params = [*trainer.backbone.parameters(), *(p for h in heads for p in h.parameters())]
    opt = trainer.adam(params)

    def train_epoch() -> dict[str, float]:
        # Sums stay on the device: one synchronisation per epoch, not per step.
        sums = torch.zeros(len(specs), device=trainer.device)
        batches = 0
        for x, y in trainer.batches():
            h = trainer.backbone(x)
            losses = torch.stack(
                [
                    task_loss(head(h), y[:, s.column], s)
                    for head, s in zip(heads, specs, strict=True)
                ]
            )
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            sums += losses.detach()
            batches += 1
        means = (sums / batches).tolist()
        parts = {"loss": sum(means)}
        if len(specs) > 1:
            parts.update({f"loss/{s.name}": v for s, v in zip(specs, means, strict=True)})
        return parts

    return trainer.run(
        train_epoch,
        [EvalHead(s, h) for s, h in zip(specs, heads, strict=True)],
        groups=[([s.name], []) for s in specs],
        schedulers=[trainer.milestones(opt)],
    )


@register_method("mtl", config=MTLConfig)
def train(config: MTLConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    return train_shared(config, config.tasks, data, ctx)
