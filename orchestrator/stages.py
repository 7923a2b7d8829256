"""Running a search's stages: the cells still missing, on Ray, each recorded the
moment it finishes.

Shared by every cell-based search (`pairs`, `grid`): a stage lists its cells,
the ones already in results.parquet are skipped (failed ones too, unless
`retry_failed`), Ray is started on first need and reused by later stages, and
a stage that ends with cells unrecorded (Ctrl+C, a lost cluster) stops the
search with `SearchInterrupted` so nothing downstream works from half a stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from types import TracebackType
from typing import Any

from methods.data import Dataset

from .cells import Cell, Outcome
from .errors import SearchInterrupted
from .progress import Progress
from .results import ResultsLog
from .runner import CellRunner, Resources
from .storage import OutputDir

Echo = Callable[[str], None]
Describe = Callable[[Outcome], str]
SearcherFor = Callable[[list[Cell]], Any]


def val_scores(outcome: Outcome) -> str:
    """`red 91.2%  large 88.0%`: the validation accuracy of each main task."""
    return "  ".join(
        f"{t} {outcome.metrics[f'val/acc/{t}'] * 100:.1f}%"
        for t in outcome.cell.tasks
        if f"val/acc/{t}" in outcome.metrics
    )


def describe_cell(outcome: Outcome) -> str:
    """`<cell id>: val <task> 91.2% ...`, the default progress line of a cell."""
    return f"{outcome.cell.id}: val {val_scores(outcome)}"


class StageRunner:
    """Runs the stages of one search on one output directory and results log."""

    def __init__(
        self,
        dataset: Dataset,
        out: OutputDir,
        log: ResultsLog,
        *,
        resources: Resources,
        address: str | None = None,
        retry_failed: bool = False,
        echo: Echo = print,
    ):
        self.dataset, self.out, self.log = dataset, out, log
        self.resources, self.address, self.retry_failed = resources, address, retry_failed
        self.echo = echo
        self.trained = 0
        self.failed: list[str] = []
        self._stack = ExitStack()
        self._runner: CellRunner | None = None

    def __enter__(self) -> StageRunner:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def _cell_runner(self) -> CellRunner:
        if self._runner is None:
            from .ray_session import ray_session

            self._stack.enter_context(ray_session(self.address))
            self._runner = CellRunner(self.dataset, self.resources, self.out)
        return self._runner

    def run(
        self,
        label: str,
        cells: Sequence[Cell],
        *,
        searcher_for: SearcherFor | None = None,
        describe: Describe = describe_cell,
        on_recorded: Callable[[Outcome], None] | None = None,
    ) -> None:
        """Train what is missing of `cells`: as a grid, or proposed by a searcher
        (an Optuna study, for stages that are watched live); `on_recorded` hears of
        each cell once it is in results.parquet."""
        done = self.log.finished()
        todo = [
            c for c in cells if c.id not in done or (self.retry_failed and done[c.id] == "failed")
        ]
        self.echo(
            f"{label}: {len(cells)} cell(s), {len(cells) - len(todo)} already recorded,"
            f" {len(todo)} to train"
        )
        if not todo:
            self._note_failed(cells)
            return
        runner = self._cell_runner()
        name = label.split(":")[0]
        width = len(str(len(todo)))
        start = time.perf_counter()
        # Ray pickles the callback that calls `record` (Tune saves it with the
        # experiment), then calls the original in this process: plain state only,
        # and `progress` leaves its terminal out of the pickle.
        log, tally = self.log, [0]
        searcher = searcher_for(todo) if searcher_for is not None else None

        def record(outcome: Outcome) -> None:
            log.record(outcome)
            if searcher is not None:  # the study hears of a cell once it is recorded
                searcher.recorded(outcome.cell.id)
            if on_recorded is not None:
                on_recorded(outcome)
            tally[0] += 1
            head = f"  [{name} {tally[0]:>{width}}/{len(todo)}]"
            if outcome.status == "ok":
                line = f"{head} {describe(outcome)}  ({outcome.wall_s:.1f}s)"
            else:
                line = (
                    f"{head} FAILED {outcome.cell.id} after {outcome.attempts}"
                    f" attempt(s): {outcome.error}"
                )
            progress.finished(outcome, line)

        tag = name.replace(" ", "")
        with Progress(name, len(todo), echo=self.echo) as progress:
            if searcher is None:
                runner.run(tag, todo, record, on_start=progress.started)
            else:
                runner.search(tag, searcher, len(todo), record, on_start=progress.started)
        self.trained += tally[0]
        self.echo(f"  {name}: {tally[0]} cell(s) in {time.perf_counter() - start:.0f}s")
        self._note_failed(cells)
        unfinished = [c.id for c in todo if c.id not in self.log.finished()]
        if unfinished:
            raise SearchInterrupted(
                f"{len(unfinished)} cell(s) of {name} did not finish ({unfinished[0]}, ...);"
                f" what finished is recorded in {self.out.location}"
            )

    def _note_failed(self, cells: Sequence[Cell]) -> None:
        """Add the cells of a stage that stand recorded as failed, this run's failures
        and earlier runs' alike: a rerun must not report a search with holes as done."""
        status = self.log.finished()
        self.failed += [
            c.id for c in cells if status.get(c.id) == "failed" and c.id not in self.failed
        ]
