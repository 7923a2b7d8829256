"""`stl`: single-task learning, one network per attribute (AAL paper eq. 1 / eq. 7).

The diagonal of the AAL pair matrix: attribute a's validation accuracy when
its network is trained on a alone, selected at the best validation epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import meta
from .context import RunContext
from .data import Dataset
from .errors import ConfigError
from .mtl import train_shared
from .registry import register_method
from .roles import GridRoles
from .training import TrainConfig, task_specs


@dataclass(frozen=True)
class STLConfig(TrainConfig):
    """Single-task learning of `task` (F_a and C_a of eq. 1)."""

    task: str = field(default="", metadata=meta("the attribute to learn"))

    def check(self) -> None:
        if not self.task:
            raise ConfigError("method 'stl' needs task=<attribute>")

    def roles(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(main tasks, auxiliary tasks) of a run, for result tables and study attributes."""
        return (self.task,), ()

    @staticmethod
    def for_grid(roles: GridRoles, train: str, tests: Sequence[str]) -> dict[str, Any]:
        """The target task alone on the train domain."""
        return {"domain": train, "test_domains": list(tests), "task": roles.task}

    def check_data(self, data: Dataset) -> None:
        task_specs(self.check_training(data), [self.task])


@register_method("stl", config=STLConfig)
def train(config: STLConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    return train_shared(config, (config.task,), data, ctx)
