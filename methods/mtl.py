"""`mtl`: multi-task learning with a shared backbone and one head per task; the
per-task losses are summed (AAL paper eq. 2 for a pair, eq. 8 for M tasks; the
Purified Learning paper's multi-task baseline, appendix B).

Stage 1 of the AAL pair search trains one `mtl` model per attribute pair; a
pair run yields both cells (a, b) and (b, a) of the pair matrix. Each task is
selected at its own best validation epoch (the paper keeps "the best model"
for the attribute it cares about), and its test numbers come from that epoch.

Tasks may live on different domains (`task_domains`): the Purified Learning
baseline trains the target task on the target set and the task-irrelevant
label on the irrelevant set, "both datasets fed jointly" — each step draws one
batch from every domain and sums all tasks' losses. An epoch is one pass over
the domain trained on (`domain`); the other domains are drawn alongside.
Tasks of other domains are auxiliary: scored on their own domain's splits,
carried with the first main task's selected epoch, not in `mean_acc`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .config import meta
from .context import RunContext
from .data import Dataset
from .errors import ConfigError
from .registry import register_method
from .roles import GridRoles
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
    task_domains: tuple[str, ...] = field(
        default=(), metadata=meta("domain of each task ('' or none: the domain trained on)")
    )

    def check(self) -> None:
        check_distinct(self.tasks, "tasks")
        if self.task_domains and len(self.task_domains) != len(self.tasks):
            raise ConfigError(
                f"task_domains has {len(self.task_domains)} entries for {len(self.tasks)}"
                " tasks; give one domain per task (or none)"
            )

    def domains_of_tasks(self, trained_on: str) -> list[str]:
        return [d or trained_on for d in self.task_domains] or [trained_on] * len(self.tasks)

    def check_data(self, data: Dataset) -> None:
        domain = self.check_training(data)
        for task, name in zip(self.tasks, self.domains_of_tasks(domain.name), strict=True):
            task_specs(data.domain(name), [task], need_val=name == domain.name)
        if domain.name not in self.domains_of_tasks(domain.name):
            raise ConfigError(f"no task is trained on the domain '{domain.name}' itself")

    def roles(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(main tasks, auxiliary tasks) of a run, for result tables and study attributes."""
        pairs = list(zip(self.tasks, self.task_domains or [""] * len(self.tasks), strict=True))
        own = ("", self.domain)
        return (tuple(t for t, d in pairs if d in own), tuple(t for t, d in pairs if d not in own))

    @staticmethod
    def for_grid(roles: GridRoles, train: str, tests: Sequence[str]) -> dict[str, Any]:
        """PL's multi-task baseline: the target task with the irrelevant label."""
        return {
            "domain": train,
            "test_domains": list(tests),
            "tasks": [roles.task, roles.irrelevant_label],
            "task_domains": [train, roles.irrelevant_domain],
        }


def train_shared(
    config: TrainConfig,
    names: tuple[str, ...],
    data: Dataset,
    ctx: RunContext,
    domains: Sequence[str] = (),
    trainer: Trainer | None = None,
) -> dict[str, float]:
    """Sum of per-task losses over one shared backbone (eq. 2 / 8; eq. 1 for one task).

    `trainer`: continue from an existing one (a pre-trained backbone), else a new one.
    """
    trainer = trainer or Trainer(config, data, ctx)
    own = trainer.view.name
    views = [trainer.view_of(d or own) for d in (domains or [own] * len(names))]
    specs: list[TaskSpec] = [
        task_specs(v.domain, [n], need_val=v.name == own)[0]
        for n, v in zip(names, views, strict=True)
    ]
    heads = [trainer.head(s) for s in specs]
    params = [*trainer.backbone.parameters(), *(p for h in heads for p in h.parameters())]
    opt = trainer.optimizer(params)
    others = {v.name: v.forever(config.batch_size, trainer.rng) for v in views if v.name != own}

    def train_epoch() -> dict[str, float]:
        # Sums stay on the device: one synchronisation per epoch, not per step.
        sums = torch.zeros(len(specs), device=trainer.device)
        batches = 0
        for x, y in trainer.batches():
            feats = {own: trainer.backbone(x)}
            labels = {own: y}
            for name, stream in others.items():
                xo, labels[name] = next(stream)
                feats[name] = trainer.backbone(xo)
            losses = torch.stack(
                [
                    task_loss(head(feats[v.name]), labels[v.name][:, s.column], s)
                    for head, s, v in zip(heads, specs, views, strict=True)
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

    main = [s.name for s, v in zip(specs, views, strict=True) if v.name == own]
    aux = [s.name for s, v in zip(specs, views, strict=True) if v.name != own]
    groups: list[tuple[list[str], list[str]]] = [([t], []) for t in main]
    groups[0][1].extend(aux)
    return trainer.run(
        train_epoch,
        [EvalHead(s, h, view=v) for s, h, v in zip(specs, heads, views, strict=True)],
        groups=groups,
        schedulers=[trainer.scheduler(opt)],
    )


@register_method("mtl", config=MTLConfig)
def train(config: MTLConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    return train_shared(config, config.tasks, data, ctx, config.task_domains)
