"""Supervised training of linear heads on one shared backbone, the per-task
losses summed (AAL paper eq. 1 for one task, eq. 2 for a pair, eq. 8 for M
tasks): `stl`, `mtl`, Purified Learning's Goal-1 baseline and the fine-tuning
phase of transfer learning all train this way.

Tasks may live on different domains: each step then draws one batch from
every domain ("both datasets fed jointly", the PL paper's multi-task baseline).
An epoch is one pass over the domain trained on; the other domains are drawn
alongside. Each task of the domain trained on is selected at its own best
validation epoch; tasks of other domains are carried with the first one's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..data import Dataset
from .context import RunContext
from .errors import DataError
from .evaluation import EvalHead
from .loop import gradient_pass
from .tasks import TaskSpec, task_loss, task_specs
from .train_config import TrainConfig
from .trainer import Trainer

Batch = tuple[torch.Tensor, torch.Tensor]


def train_heads(
    config: TrainConfig,
    names: Sequence[str],
    data: Dataset,
    ctx: RunContext,
    domains: Sequence[str] = (),
    trainer: Trainer | None = None,
) -> dict[str, float]:
    """Train one linear head per task in `names` (on `domains`, one per task; none:
    the domain trained on) with the backbone, minimising the sum of their losses.

    `trainer`: continue from an existing one (a pre-trained backbone), else a new one.
    """
    trainer = trainer or Trainer(config, data, ctx)
    own = trainer.view.name
    views = [trainer.view_of(d or own) for d in (domains or [own] * len(names))]
    specs: list[TaskSpec] = [
        task_specs(v.domain, [n], need_val=v.name == own and config.needs_val)[0]
        for n, v in zip(names, views, strict=True)
    ]
    heads = [trainer.head(s) for s in specs]
    params = [*trainer.backbone.parameters(), *(p for h in heads for p in h.parameters())]
    opt = trainer.optimizer(params)
    others = {v.name: v.forever(config.batch_size, trainer.rng) for v in views if v.name != own}

    def losses(batch: Batch) -> torch.Tensor:
        x, y = batch
        feats = {own: trainer.backbone(x)}
        labels = {own: y}
        for name, stream in others.items():
            xo, labels[name] = next(stream)
            feats[name] = trainer.backbone(xo)
        return torch.stack(
            [
                task_loss(
                    head(feats[v.name]), labels[v.name][:, s.column], s, config.loss_reduction
                )
                for head, s, v in zip(heads, specs, views, strict=True)
            ]
        )

    def train_epoch() -> dict[str, float]:
        sums, steps = gradient_pass(trainer.batches(), losses, opt)
        if sums is None:
            raise DataError(
                f"domain '{own}' has fewer than 2 training rows; a batch needs at least 2"
            )
        means = (sums / steps).tolist()
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
