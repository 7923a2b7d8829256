"""Running a list of cells as Ray Tune trials.

One `CellRunner` per search: the dataset is put into Ray's object store once
and every trial of every stage reads that one copy (`tune.with_parameters`
with an object reference). Trials reuse their actors (`reuse_actors=True`), so
a stage of hundreds of short trainings does not start hundreds of processes.
A trial that raises or diverges is retried `max_failures` times
(`FailureConfig`), then recorded as failed with its error while the others go
on. Every finished cell is handed to `on_outcome` as soon as it finishes, so a
driver killed mid-stage loses only the cells that were still running.

With `--pack N`, cells that may train as one fused network (`packs.py`) go to
one trial per pack of up to N; each cell of a pack still gets its own outcome.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from methods.data import Dataset

from . import ray_session  # noqa: F401  (selects Ray Tune's quiet console reporter)
from .cells import FINAL_KEY, PACK_KEY, WALL_KEY, Cell, Outcome, trial_metrics
from .errors import UserInputError
from .options import PACK, RAY
from .packs import plan_packs
from .storage import OutputDir
from .trainable import run_trial

# Cells per pack on a GPU with `--pack auto`: as many as fit its memory, found in
# the trial (a pack that runs out is halved: packed.train_pack_within_memory) from
# at most this many. What each size is worth on a GPU is benchmarks/pack_gpu.py's
# to measure; no GPU has run it yet.
AUTO_GPU_PACK = 64


RAY_DEFAULTS = {o.name: o.default for o in (*RAY, PACK)}


@dataclass(frozen=True)
class Resources:
    """What each trial gets and how many run at once.

    `gpus_per_trial` may be fractional (0.25 packs four trials on one GPU); Ray
    schedules by it but does not cap a trial's GPU memory.
    """

    cpus_per_trial: float = RAY_DEFAULTS["cpus_per_trial"]
    gpus_per_trial: float = RAY_DEFAULTS["gpus_per_trial"]
    max_concurrent: int | None = None  # None: as many as the resources allow
    # retries of a trial that raises or diverges
    max_failures: int = RAY_DEFAULTS["max_failures"]
    # cells per trial trained as one fused network (packs.py)
    pack: int | str = RAY_DEFAULTS["pack"]

    def __post_init__(self) -> None:
        # the flags' own declarations (options.RAY), for callers that build this directly
        for option in (*RAY, PACK):
            if option.name != "address":
                option.check("Resources", getattr(self, option.name))
        if self.cpus_per_trial > 1 and not float(self.cpus_per_trial).is_integer():
            # above one CPU the value is also the trial's torch threads: 1.5 would mean 1
            raise UserInputError(
                f"--cpus-per-trial {self.cpus_per_trial:g} is not allowed; use a fraction"
                " below 1 (trials share a CPU) or a whole number (also its torch threads)"
            )

    def pack_size(self) -> int:
        """Cells per trial: `pack`, or for auto one on CPUs (fused packs were no
        faster than their cells one by one on this workplace's CPUs,
        benchmarks/pack_gpu.py) and up to `AUTO_GPU_PACK` on a GPU (halved in the
        trial until a pack fits the GPU's memory)."""
        if self.pack != "auto":
            return int(self.pack)
        return AUTO_GPU_PACK if self.gpus_per_trial > 0 else 1

    def check_for(self, address: str | None) -> None:
        """Before a search: trials must fit the machine when Ray runs locally."""
        import os

        if not (address or os.environ.get("RAY_ADDRESS")):
            self.check_fits_this_machine()

    def check_fits_this_machine(self) -> None:
        """For a local Ray: a trial asking more than the machine has would wait forever.

        (A cluster may autoscale to what a trial asks, so only local runs are checked.)
        """
        import os

        import torch

        cpus = os.cpu_count() or 1
        if self.cpus_per_trial > cpus:
            raise UserInputError(
                f"--cpus-per-trial {self.cpus_per_trial:g} exceeds the {cpus} CPUs of this"
                f" machine; use at most {cpus} (or join a cluster with --address)"
            )
        gpus = torch.cuda.device_count()
        if self.gpus_per_trial > 0 and (gpus == 0 or self.gpus_per_trial > gpus):
            raise UserInputError(
                f"--gpus-per-trial {self.gpus_per_trial:g} but this machine has {gpus} GPU(s);"
                " use 0 here, or join a GPU cluster with --address"
            )


OutcomeFn = Callable[[Outcome], None]
StartFn = Callable[[Cell], None]


class _Recorder(Callback):
    """Turns Ray's trial events into `Outcome`s the moment a trial ends.

    A trial that ends without its final report was stopped by the scheduler:
    "pruned" when one is in use (its metrics are those of the epoch it reached),
    a failure otherwise. `on_start`, if given, hears of each trial that starts
    running (again when a failed one is retried).
    """

    def __init__(self, on_outcome: OutcomeFn, prunable: bool, on_start: StartFn | None = None):
        self.on_outcome = on_outcome
        self.prunable = prunable
        self.on_start = on_start
        self.started: dict[str, float] = {}
        # an outcome that could not be recorded (--out became unwritable) ends the search
        self.fatal: UserInputError | None = None

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.started.setdefault(trial.trial_id, time.perf_counter())
        if self.on_start is not None:
            for cell in _cells(trial):
                self.on_start(cell)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        result = trial.last_result or {}
        cells = _cells(trial)
        if len(cells) > 1 or PACK_KEY in result:
            self._emit_pack(trial, cells, result)
            return
        cell = cells[0]
        metrics = trial_metrics(result)
        if result.get(FINAL_KEY):
            self._emit(trial, cell, "ok", metrics, wall=float(result.get(WALL_KEY, 0.0)))
        elif self.prunable and metrics:
            self._emit(trial, cell, "pruned", metrics, stopped=result)
        else:
            self._emit(trial, cell, "failed", {}, error="the trial ended without final metrics")

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        error = _error_message(trial)
        for cell in _cells(trial):
            self._emit(trial, cell, "failed", {}, error=error)

    def _emit_pack(self, trial: Trial, cells: list[Cell], result: dict[str, Any]) -> None:
        """One outcome per cell of a pack; each is charged an equal share of the
        pack's training time (its cells train together, not one after another)."""
        if not result.get(FINAL_KEY):
            for cell in cells:
                self._emit(trial, cell, "failed", {}, error="the pack ended without final metrics")
            return
        entries = json.loads(result[PACK_KEY])
        share = float(result.get(WALL_KEY, 0.0)) / len(cells)
        for cell in cells:
            entry = entries.get(cell.id, {"error": "the pack returned nothing for this cell"})
            if "metrics" in entry:
                metrics = {k: float(v) for k, v in entry["metrics"].items()}
                self._emit(trial, cell, "ok", metrics, wall=share)
            else:
                self._emit(trial, cell, "failed", {}, error=entry["error"], wall=share)

    def _emit(
        self,
        trial: Trial,
        cell: Cell,
        status: str,
        metrics: dict[str, float],
        *,
        error: str | None = None,
        wall: float | None = None,
        stopped: dict[str, Any] | None = None,
    ) -> None:
        if self.fatal is not None:  # Tune reports the trial again as an error: same end
            raise self.fatal
        if wall is None:
            wall = time.perf_counter() - self.started.get(trial.trial_id, time.perf_counter())
        outcome = Outcome(
            cell=cell,
            status=status,
            metrics=metrics,
            wall_s=round(wall, 3),
            finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            error=error,
            attempts=max(1, trial.num_failures) if status == "failed" else 1,
            stopped_epoch=int(stopped["epoch"]) if stopped and "epoch" in stopped else None,
            stopped_seed=int(stopped["seed"]) if stopped and "seed" in stopped else None,
        )
        try:
            self.on_outcome(outcome)
        except UserInputError as exc:
            self.fatal = exc
            raise


def _cells(trial: Trial) -> list[Cell]:
    """The cells a trial trains: one, or a pack (a JSON list)."""
    unit = json.loads(trial.config["cell"])
    return [Cell.from_dict(d) for d in (unit if isinstance(unit, list) else [unit])]


def _trial_name(trial: Trial) -> str:
    cells = _cells(trial)
    return cells[0].id if len(cells) == 1 else f"pack:{cells[0].id}+{len(cells) - 1}"


def _error_message(trial: Trial) -> str:
    """The last line of the trial's traceback: the exception and its message."""
    path = trial.error_file
    if path and Path(path).is_file():
        lines = [ln.strip() for ln in Path(path).read_text(errors="replace").splitlines()]
        lines = [ln for ln in lines if ln]
        if lines:
            return lines[-1][:2000]
    return "the trial failed without an error message"


class CellRunner:
    """Runs cells on the Ray cluster this process is connected to, for one search
    whose files live in `out` (Ray's experiments in `ray/`, artifacts in `artifacts/`)."""

    def __init__(self, dataset: Dataset, resources: Resources, out: OutputDir):
        self.resources = resources
        self.storage_uri = out.ray_storage()
        device = "cuda" if resources.gpus_per_trial > 0 else "cpu"
        threads = max(1, int(resources.cpus_per_trial))
        self.trainable = tune.with_resources(
            tune.with_parameters(
                run_trial,
                dataset=ray.put(dataset),
                device=device,
                threads=threads,
                artifacts=out.uri,
            ),
            {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial},
        )

    def run(
        self,
        name: str,
        cells: Sequence[Cell],
        on_outcome: OutcomeFn,
        on_start: StartFn | None = None,
    ) -> None:
        """Train a fixed list of cells (a grid), in packs where `Resources.pack` asks
        and the cells allow; each cell's outcome goes to `on_outcome` (and each cell
        that starts running to `on_start`)."""
        if not cells:
            return
        units = plan_packs(cells, self.resources.pack_size())
        ids = {c.id: i for i, c in enumerate(cells)}
        encoded = [
            json.dumps(u[0].to_dict() if len(u) == 1 else [c.to_dict() for c in u]) for u in units
        ]
        self._fit(
            name,
            on_outcome,
            on_start=on_start,
            param_space={"cell": tune.grid_search(encoded)},
            dirname=lambda t: f"cell_{ids[_cells(t)[0].id]:05d}",
        )

    def search(
        self,
        name: str,
        searcher: Searcher,
        num_samples: int,
        on_outcome: OutcomeFn,
        scheduler: TrialScheduler | None = None,
        on_start: StartFn | None = None,
    ) -> None:
        """Train `num_samples` cells proposed by `searcher` (its `suggest` returns a cell)."""
        if num_samples <= 0:
            return
        self._fit(
            name,
            on_outcome,
            on_start=on_start,
            param_space={},
            dirname=lambda t: f"trial_{t.trial_id}",
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=num_samples,
        )

    def _fit(
        self,
        name: str,
        on_outcome: OutcomeFn,
        *,
        param_space: dict[str, Any],
        dirname: Callable[[Trial], str],
        search_alg: Searcher | None = None,
        scheduler: TrialScheduler | None = None,
        num_samples: int = 1,
        on_start: StartFn | None = None,
    ) -> None:
        recorder = _Recorder(on_outcome, prunable=scheduler is not None, on_start=on_start)
        tuner = tune.Tuner(
            self.trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                search_alg=search_alg,
                scheduler=scheduler,
                num_samples=num_samples,
                reuse_actors=True,
                max_concurrent_trials=self.resources.max_concurrent,
                trial_name_creator=_trial_name,
                trial_dirname_creator=dirname,
            ),
            run_config=tune.RunConfig(
                name=f"{name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}",
                storage_path=self.storage_uri,
                failure_config=tune.FailureConfig(max_failures=self.resources.max_failures),
                callbacks=[recorder],
                verbose=0,
            ),
        )
        try:
            tuner.fit()
        except Exception:
            # Tune wraps a callback's error in its own (three chained tracebacks):
            # the user gets the sentence of what could not be written
            if recorder.fatal is not None:
                raise recorder.fatal from None
            raise
