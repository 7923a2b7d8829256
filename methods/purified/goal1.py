"""`goal1`: "Goal 1 only", the empirical baseline of the Purified Learning paper
(eq. 18): cross-entropy on the small target set, nothing else, under the
paper's protocol (`PLProtocol`: SGD 1e-3, momentum 0.9, StepLR 7, 50 epochs,
128-d features, last epoch reported).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core import train_heads
from ..core.config import meta
from ..core.context import RunContext
from ..core.errors import ConfigError
from ..core.registry import register_method
from ..core.roles import GridRoles
from ..data import Dataset
from .protocol import PLProtocol


@dataclass(frozen=True)
class Goal1Config(PLProtocol):
    """Goal 1 only: the target task by cross-entropy alone (PL eq. 18)."""

    task: str = field(default="", metadata=meta("the target label"))

    def check(self) -> None:
        if not self.task:
            raise ConfigError("method 'goal1' needs task=<label>")

    @staticmethod
    def for_grid(roles: GridRoles, train: str, tests: Sequence[str]) -> dict[str, Any]:
        return {"domain": train, "test_domains": list(tests), "task": roles.task}


@register_method("goal1", config=Goal1Config)
def train(config: Goal1Config, data: Dataset, ctx: RunContext) -> dict[str, float]:
    return train_heads(config, (config.task,), data, ctx)
