"""`stl`: single-task learning, one network per attribute (AAL paper eq. 1 / eq. 7).

The diagonal of the AAL pair matrix: attribute a's validation accuracy when
its network is trained on a alone, selected at the best validation epoch.
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
    meta,
    register_method,
    train_heads,
)
from ..core.examples import grid_example
from ..data import Dataset

if TYPE_CHECKING:
    from typing import Self


@dataclass(frozen=True)
class STLConfig(MethodConfig):
    """Single-task learning of `task` (F_a and C_a of eq. 1)."""

    task: str = field(default="", metadata=meta("the attribute to learn"))

    def check(self) -> None:
        if not self.task:
            raise ConfigError("method 'stl' needs task=<attribute>")

    def pack_plan(self) -> PackPlan | None:
        return PackPlan((self.task,))

    @staticmethod
    def for_grid(roles: GridRoles, train: str, tests: Sequence[str]) -> dict[str, Any]:
        """The target task alone on the train domain."""
        return {"domain": train, "test_domains": list(tests), "task": roles.task}

    @staticmethod
    def for_tasks(main: Sequence[str], aux: Sequence[str]) -> dict[str, Any]:
        """One attribute, alone."""
        if len(main) != 1 or aux:
            raise HookNotSupported("stl trains exactly one task and no partner")
        return {"task": main[0]}

    @classmethod
    def tiny_example(cls) -> tuple[Self, Dataset]:
        return grid_example(cls)


@register_method("stl", config=STLConfig)
def train(config: STLConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    return train_heads(config, (config.task,), data, ctx)
