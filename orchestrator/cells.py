"""A cell: one training of the search, keyed by a stable id.

The id names what is trained (stage, tasks, λ, seed), never when or where, so
a rerun recognises a finished cell and does not train it again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from methods import get_method
from methods.core.selection import CURVE_PREFIX

# Keys of a trial's last report: the marker of a finished run, its training
# time, the outcome of each cell of a pack (JSON), and the prefix of each seed's
# own metrics in a multi-seed trial.
FINAL_KEY = "auxsearch_final"
WALL_KEY = "auxsearch_wall_s"
PACK_KEY = "auxsearch_pack"
SEED_PREFIX = "seed="


@dataclass(frozen=True)
class Cell:
    """One training: a registered method with its full config and a seed.

    `tasks` are the attributes the run reports on as main tasks (both members of
    a pair run); `aux` are the other attributes involved (a pair's partner, an
    AAL run's adversaries). `domain` is the domain the model trains on (when its
    config does not name one). `seeds` > 1 trains the config with seeds seed,
    seed+1, ... one after another in the same trial (a sweep's `--seeds`).
    """

    id: str
    stage: str
    method: str
    params: dict[str, Any]
    seed: int
    tasks: tuple[str, ...]
    aux: tuple[str, ...] = ()
    domain: str = ""
    seeds: int = 1

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
    status: str  # "ok" | "pruned" (stopped early by the scheduler) | "failed"
    metrics: dict[str, float]
    wall_s: float
    finished_at: str
    error: str | None = None
    attempts: int = 1
    # Where a pruned trial stopped: its metrics are that epoch's, not a selection.
    stopped_epoch: int | None = None
    stopped_seed: int | None = None


def trial_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The kernel's metrics in a Tune result (Tune adds its own bookkeeping keys)."""
    keep = ("train/", "val/", "test/", "test@", "epoch/", CURVE_PREFIX, SEED_PREFIX)
    return {
        k: float(v)
        for k, v in result.items()
        if k.startswith(keep) and isinstance(v, int | float) and not isinstance(v, bool)
    }


def split_seeds(metrics: dict[str, float], first_seed: int) -> dict[int, dict[str, float]]:
    """{seed: its metrics}: a multi-seed trial's `seed=<s>/...` keys, else the one seed."""
    per_seed: dict[int, dict[str, float]] = {}
    for key, value in metrics.items():
        if key.startswith(SEED_PREFIX):
            seed, _, rest = key[len(SEED_PREFIX) :].partition("/")
            per_seed.setdefault(int(seed), {})[rest] = value
    return per_seed or {first_seed: metrics}


def partner_metrics(method: str) -> set[str]:
    """The metrics `method` declares of its main model against a partner task."""
    return {m.name for m in get_method(method).config_cls.metrics if m.partner}


def roles(cell: Cell, task: str | None, partner: bool) -> tuple[str | None, str | None]:
    """(main_task, aux_task) of a row about `task` in this cell; `partner`: a metric
    of the main model measured against `task`."""
    trial_main, trial_aux = "+".join(cell.tasks), "+".join(cell.aux) or None
    if task is None:
        return trial_main, trial_aux
    if partner:
        return trial_main, task
    if task in cell.tasks and len(cell.tasks) == 2 and not cell.aux:
        other = cell.tasks[1] if task == cell.tasks[0] else cell.tasks[0]
        return task, other
    if task in cell.tasks:
        return task, trial_aux
    return task, trial_main
