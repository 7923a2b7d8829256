"""`dann`: domain-adversarial training (Ganin & Lempitsky, ICML 2015; Ganin et al.,
JMLR 2016), the domain-adaptation baseline of the Purified Learning paper
(appendix B): the extractor feeds the target classifier and, through a gradient
reversal layer, a domain classifier that tells the target set from the
irrelevant set (2-way output; here one hidden layer of `domain_hidden` units,
as in Ganin et al.'s digit networks). Labels come from the target set only.

λ of the reversal follows DANN's schedule λ_p = λ·(2 / (1 + exp(−10 p)) − 1),
p the fraction of training done (`lam_schedule="dann"`), or stays at λ
(`"constant"`). Under PL's protocol.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..core import EvalHead, Trainer, task_loss, task_specs
from ..core.config import meta
from ..core.context import RunContext
from ..core.errors import ConfigError
from ..core.layers import grad_reverse
from ..core.registry import register_method
from ..core.roles import GridRoles
from ..data import Dataset
from .protocol import PLProtocol


@dataclass(frozen=True)
class DANNConfig(PLProtocol):
    """DANN: a domain classifier behind gradient reversal (target vs irrelevant set)."""

    task: str = field(default="", metadata=meta("the target label"))
    irrelevant_domain: str = field(
        default="", metadata=meta("the other domain the features must not tell apart")
    )
    lam: float = field(default=1.0, metadata=meta("reversal weight λ (its final value)", min=0.0))
    lam_schedule: Literal["dann", "constant"] = field(
        default="dann", metadata=meta("λ_p = λ(2/(1+e^(-10p)) - 1), or constant λ")
    )
    domain_hidden: int = field(
        default=100, metadata=meta("hidden units of the domain classifier", min=1)
    )

    def check(self) -> None:
        if not self.task or not self.irrelevant_domain:
            raise ConfigError("method 'dann' needs task=<label> and irrelevant_domain=<domain>")

    def check_data(self, data: Dataset) -> None:
        domain = self.check_training(data)
        task_specs(domain, [self.task], need_val=self.needs_val)
        if data.domain(self.irrelevant_domain).name == domain.name:
            raise ConfigError("dann needs an irrelevant_domain other than the domain trained on")

    @staticmethod
    def for_grid(roles: GridRoles, train: str, tests: Sequence[str]) -> dict[str, Any]:
        return {
            "domain": train,
            "test_domains": list(tests),
            "task": roles.task,
            "irrelevant_domain": roles.irrelevant_domain,
        }


def dann_lambda(lam: float, progress: float, schedule: str) -> float:
    """λ_p of DANN (Ganin et al. 2016, §5.2.2), or λ itself."""
    if schedule == "constant":
        return lam
    return lam * (2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0)


@register_method("dann", config=DANNConfig)
def train(config: DANNConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    trainer = Trainer(config, data, ctx)
    other = trainer.view_of(config.irrelevant_domain)
    (spec,) = task_specs(trainer.domain, [config.task], need_val=config.needs_val)
    head = trainer.head(spec)
    domain_classifier = nn.Sequential(
        nn.Linear(trainer.backbone.out_dim, config.domain_hidden),
        nn.ReLU(),
        nn.Linear(config.domain_hidden, 2),
    ).to(trainer.device)
    opt = trainer.optimizer(
        [*trainer.backbone.parameters(), *head.parameters(), *domain_classifier.parameters()]
    )
    stream = other.forever(config.batch_size, trainer.rng)
    steps_per_epoch = max(1, math.ceil(len(trainer.view.rows["train"]) / config.batch_size))
    total_steps = steps_per_epoch * config.epochs
    step = 0

    def train_epoch() -> dict[str, float]:
        nonlocal step
        sums = torch.zeros(3, device=trainer.device)
        batches = 0
        for x, y in trainer.batches():
            xo, _ = next(stream)
            lam = dann_lambda(config.lam, step / total_steps, config.lam_schedule)
            h, ho = trainer.backbone(x), trainer.backbone(xo)
            cls = task_loss(head(h), y[:, spec.column], spec, config.loss_reduction)
            feats = grad_reverse(torch.cat([h, ho]), lam)
            which = torch.cat([torch.zeros(len(h)), torch.ones(len(ho))]).long()
            dom = F.cross_entropy(domain_classifier(feats), which.to(trainer.device))
            opt.zero_grad(set_to_none=True)
            (cls + dom).backward()
            opt.step()
            sums += torch.stack([cls.detach() + dom.detach(), cls.detach(), dom.detach()])
            batches += 1
            step += 1
        loss, cls_loss, dom_loss = (sums / batches).tolist()
        return {"loss": loss, "cls_loss": cls_loss, "domain_loss": dom_loss}

    return trainer.run(
        train_epoch,
        [EvalHead(spec, head)],
        groups=[([config.task], [])],
        schedulers=[trainer.scheduler(opt)],
    )
