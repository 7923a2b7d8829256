"""Shared by the fault tests: a kill at a moment the test does not choose, and the
cell-by-cell check of a pair search's tables afterwards.

The moment is random: after a random number of finished cells (read from the
driver's progress lines), a further random delay. The seed is printed in every
assertion message (`AUXSEARCH_FAULT_SEED=...` replays it)."""

from __future__ import annotations

import itertools
import os
import random
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

_FINISHED_CELL = re.compile(r"\[stage 1 (\d+)/(\d+)\]")


def fault_rng() -> tuple[random.Random, str]:
    seed = int(os.environ.get("AUXSEARCH_FAULT_SEED", time.time_ns() % 1_000_000))
    return random.Random(seed), f"AUXSEARCH_FAULT_SEED={seed}"


@dataclass
class RandomKill:
    """Watches a running search's output and calls `kill` after `cells` finished
    cells and `delay` more seconds, unless the search has ended by then."""

    process: subprocess.Popen[str]
    kill: Callable[[], None]
    cells: int
    delay: float
    output: list[str] = field(default_factory=list)
    killed_after: int | None = None  # finished cells seen when the kill happened

    @classmethod
    def drawn(
        cls,
        process: subprocess.Popen[str],
        kill: Callable[[], None],
        rng: random.Random,
        total: int,
    ) -> RandomKill:
        # before the last cell can finish, so the search is (almost always) cut short
        return cls(process, kill, cells=rng.randrange(0, total - 1), delay=rng.uniform(0.0, 2.0))

    def run(self, timeout: float = 600) -> str:
        finished = 0
        reached = threading.Event()

        def read() -> None:
            nonlocal finished
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                match = _FINISHED_CELL.search(line)
                if match:
                    finished = int(match.group(1))
                if finished >= self.cells:
                    reached.set()
            reached.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        if self.cells == 0:
            reached.set()
        reached.wait(timeout)
        time.sleep(self.delay)
        if self.process.poll() is None:
            self.killed_after = finished
            self.kill()
        self.process.wait(timeout)
        reader.join(10)
        return "".join(self.output)


def stage_one_cells(results: pd.DataFrame) -> pd.DataFrame:
    """One row per stage-1 cell: its tasks, seed, trial id and when it finished."""
    rows = results[results["stage"].isin(["single", "pair"])]
    return rows.drop_duplicates(["trial_id", "seed"])[
        ["trial_id", "stage", "seed", "finished_at", "status"]
    ].set_index(["trial_id", "seed"])


def check_pair_search(results: pd.DataFrame, matrix: pd.DataFrame, attributes: list[str]) -> None:
    """Every single and pair cell present once and ok, no row twice, and each matrix
    entry equal to the val accuracy its cell recorded."""
    assert (results["status"] == "ok").all(), results[results["status"] != "ok"]
    keys = ["trial_id", "seed", "split", "metric", "main_task", "aux_task"]
    assert not results.duplicated(keys).any(), results[results.duplicated(keys, keep=False)]
    cells = stage_one_cells(results)
    singles = {tid for tid, _ in cells.index if tid.startswith("single:")}
    pairs = {tid for tid, _ in cells.index if tid.startswith("pair:")}
    assert singles == {f"single:{a}:seed=0" for a in attributes}
    assert pairs == {
        f"pair:{'+'.join(sorted(p))}:seed=0" for p in itertools.combinations(attributes, 2)
    }
    val_acc = results[(results["split"] == "val") & (results["metric"] == "acc")]
    matrix = matrix.set_index("main")
    for a, b in itertools.product(attributes, attributes):
        if a == b:
            rows = val_acc[(val_acc["stage"] == "single") & (val_acc["main_task"] == a)]
        else:
            rows = val_acc[
                (val_acc["stage"] == "pair")
                & (val_acc["main_task"] == a)
                & (val_acc["aux_task"] == b)
            ]
        assert len(rows) == 1, (a, b, rows)
        assert np.isclose(matrix.loc[a, b], rows["value"].iloc[0]), (a, b)


def check_only_missing_were_trained(before: pd.DataFrame, after: pd.DataFrame) -> None:
    """Cells recorded before the kill are untouched by the rerun (same finish time)."""
    earlier = stage_one_cells(before)
    later = stage_one_cells(after)
    assert set(earlier.index) <= set(later.index)
    for key in earlier.index:
        assert later.loc[key, "finished_at"] == earlier.loc[key, "finished_at"], key
