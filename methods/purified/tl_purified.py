"""`tl_purified`: Purified Learning combined with task-relevant transfer learning
(PL appendix A, eq. 27; Table 4 "TL (Expression) + PL (Hair Color)"): pre-train
the extractor and classifier on a large task-relevant set (RAF for
expressions; plain digits here), then train with Purified Learning (Alg. 1) on
the small target set. When the relevant label has the target's class count
the pre-trained classifier is kept, else a new one is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.config import meta
from ..core.context import RunContext
from ..core.errors import ConfigError
from ..core.examples import grid_example
from ..core.registry import register_method
from ..core.roles import GridRoles
from ..data import Dataset
from .kernel import PurifiedConfig, purify
from .tl import pretrain

if TYPE_CHECKING:
    from typing import Self
from ..core import Trainer, task_specs


@dataclass(frozen=True)
class TLPurifiedConfig(PurifiedConfig):
    """Pre-train on a task-relevant set, then Purified Learning (PL appendix A)."""

    relevant_domain: str = field(default="", metadata=meta("the task-relevant set"))
    relevant_label: str = field(default="", metadata=meta("its label (e.g. the same task)"))
    pretrain_epochs: int = field(
        default=50, metadata=meta("epochs on the relevant set (not given in PL)", min=0)
    )

    def check(self) -> None:
        super().check()
        if not self.relevant_domain or not self.relevant_label:
            raise ConfigError(
                "method 'tl_purified' needs relevant_domain=<...> and relevant_label=<...>"
            )

    def check_data(self, data: Dataset) -> None:
        super().check_data(data)
        task_specs(data.domain(self.relevant_domain), [self.relevant_label], need_val=False)

    @classmethod
    def tiny_example(cls) -> tuple[Self, Dataset]:
        return grid_example(cls, pretrain_epochs=1)

    @staticmethod
    def for_grid(roles: GridRoles, train: str, tests: Sequence[str]) -> dict[str, Any]:
        return {
            **PurifiedConfig.for_grid(roles, train, tests),
            "relevant_domain": roles.relevant_domain,
            "relevant_label": roles.relevant_label,
        }


@register_method("tl_purified", config=TLPurifiedConfig)
def train(config: TLPurifiedConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    trainer = Trainer(config, data, ctx)
    relevant = trainer.view_of(config.relevant_domain)
    (pre_spec,) = task_specs(relevant.domain, [config.relevant_label], need_val=False)
    (spec,) = task_specs(trainer.domain, [config.task], need_val=config.needs_val)
    head, pre_loss = pretrain(trainer, relevant, pre_spec, config.pretrain_epochs)
    if pre_spec.out_features != spec.out_features:
        head = trainer.head(spec)
    final = purify(config, trainer, spec, head)
    if config.pretrain_epochs:
        final["train/pretrain_loss"] = pre_loss
    return final
