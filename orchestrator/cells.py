"""A cell: one training of the search, keyed by a stable id.

The id names what is trained (stage, tasks, λ, seed), never when or where, so
a rerun recognises a finished cell and does not train it again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cell:
    """One training: a registered method with its full config and a seed.

    `tasks` are the attributes the run reports on as main tasks (both members of
    a pair run); `aux` are the other attributes involved (a pair's partner, an
    AAL run's adversaries).
    """

    id: str
    stage: str
    method: str
    params: dict[str, Any]
    seed: int
    tasks: tuple[str, ...]
    aux: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tasks"], out["aux"] = list(self.tasks), list(self.aux)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Cell:
        return cls(**{**d, "tasks": tuple(d["tasks"]), "aux": tuple(d["aux"])})

    def params_json(self) -> str:
        return json.dumps(self.params, sort_keys=True)


@dataclass
class Outcome:
    """What a cell produced: final metrics, or the error that ended it."""

    cell: Cell
    status: str  # "ok" | "failed"
    metrics: dict[str, float]
    wall_s: float
    finished_at: str
    error: str | None = None
    attempts: int = 1
