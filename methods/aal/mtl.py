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
from typing import TYPE_CHECKING, Any

from ..core import (
    ConfigError,
    GridRoles,
    HookNotSupported,
    MethodConfig,
    PackPlan,
    RunContext,
    RunTasks,
    check_distinct,
    meta,
    register_method,
    task_specs,
    train_heads,
)
from ..core.examples import grid_example
from ..data import Dataset

if TYPE_CHECKING:
    from typing import Self


@dataclass(frozen=True)
class MTLConfig(MethodConfig):
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
            need_val = name == domain.name and self.needs_val
            task_specs(data.domain(name), [task], need_val=need_val)
        if domain.name not in self.domains_of_tasks(domain.name):
            raise ConfigError(f"no task is trained on the domain '{domain.name}' itself")

    def run_tasks(self) -> RunTasks:
        """Main: the tasks of the domain trained on; auxiliary: those of other domains."""
        pairs = list(zip(self.tasks, self.task_domains or [""] * len(self.tasks), strict=True))
        own = ("", self.domain)
        return RunTasks(
            tuple(t for t, d in pairs if d in own), tuple(t for t, d in pairs if d not in own)
        )

    def pack_plan(self) -> PackPlan | None:
        """Packable when every task lives on the domain trained on (no second stream)."""
        return None if any(self.task_domains) else PackPlan(tuple(self.tasks))

    @staticmethod
    def for_grid(roles: GridRoles, train: str, tests: Sequence[str]) -> dict[str, Any]:
        """PL's multi-task baseline: the target task with the irrelevant label."""
        return {
            "domain": train,
            "test_domains": list(tests),
            "tasks": [roles.task, roles.irrelevant_label],
            "task_domains": [train, roles.irrelevant_domain],
        }

    @staticmethod
    def for_tasks(main: Sequence[str], aux: Sequence[str]) -> dict[str, Any]:
        """The main tasks together on the domain trained on (a pair run: two)."""
        if aux:
            raise HookNotSupported("mtl trains its tasks together; it takes no partner")
        return {"tasks": list(main)}

    @classmethod
    def tiny_example(cls) -> tuple[Self, Dataset]:
        return grid_example(cls)


@register_method("mtl", config=MTLConfig)
def train(config: MTLConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    return train_heads(config, config.tasks, data, ctx, config.task_domains)
