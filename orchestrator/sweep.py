"""`auxsearch sweep`: any registered method over a search space, on Ray Tune with
Optuna's TPE (through `CellSearch`) and ASHA, the study in an RDB storage so
`optuna-dashboard` shows it while it runs.

Each trial trains one configuration with `--seeds K` seeds in turn; its score
is the mean over seeds of the selected validation metric (default
`val/mean_acc`). ASHA compares trials at the same point of that run (epoch e
of seed k), stops the weak ones and Optuna marks them PRUNED.

Resume: the study is the record. A rerun with the same --out counts the
finished trials (COMPLETE, PRUNED, FAIL) against `--trials`, hands out trials a
dead driver left RUNNING again, refills ASHA's rungs from the finished trials'
histories, and runs a Tune experiment for what is left. (Ray's own restore
keeps no scheduler state and re-runs trials that finished after its last
checkpoint; the study does not forget.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from methods import get_method
from methods.core import Goal, config_to_dict
from methods.data import Dataset

from . import manifest
from .cells import Cell, Outcome
from .errors import SearchInterrupted, UserInputError
from .inputs import check_seeds
from .options import default
from .progress import Progress
from .recovery import study_outcomes
from .redact import redact
from .results import RESULTS_FILE, ResultsLog, SweptSetting, swept_setting
from .runner import CellRunner, Resources
from .searcher import finite_points
from .spaces import SearchSpace
from .storage import OutputDir
from .study import (
    STORAGE_FILE,
    claim_study,
    default_study_name,
    exclusive,
    open_storage,
    storage_url,
)

Echo = Callable[[str], None]
DEFAULT_METRIC = "val/mean_acc"


@dataclass(frozen=True)
class SweepSettings:
    """Everything that decides what a sweep trains and how it is scored."""

    method: str
    space: SearchSpace
    base: dict[str, Any]  # fixed values of the space file, then --config/--set
    trials: int
    metric: str = DEFAULT_METRIC
    mode: str = default("sweep", "mode")
    scheduler: str = default("sweep", "scheduler")
    # tpe | random | grid (every point of a space of choices)
    sampler: str = default("sweep", "sampler")
    # ASHA: epochs (across seeds) before a trial can be stopped
    grace_period: int = default("sweep", "grace_period")
    seeds: int = default("sweep", "seeds")
    seed: int = default("sweep", "seed")
    study: str = ""
    domain: str = ""
    tasks: tuple[str, ...] = ()
    aux: tuple[str, ...] = ()
    max_epochs: int = 1

    def identity(self, dataset: Dataset) -> dict[str, Any]:
        return {
            "search": "sweep",
            "method": self.method,
            "dataset": dataset.fingerprint,
            "base": self.base,
            "space": self.space.describe()["space"],
            "metric": self.metric,
            "mode": self.mode,
            "scheduler": self.scheduler,
            "sampler": self.sampler,
            "grace_period": self.grace_period,
            "seeds": self.seeds,
            "seed": self.seed,
            "study": self.study,
        }

    def make_sampler(self) -> Any:
        import optuna

        if self.sampler == "grid":
            from .searcher import AskTellGridSampler

            return AskTellGridSampler(
                {k: list(p.values) for k, p in self.space.params.items()}, seed=self.seed
            )
        from .searcher import UntriedFirst

        base: optuna.samplers.BaseSampler = (
            optuna.samplers.RandomSampler(seed=self.seed)
            if self.sampler == "random"
            else optuna.samplers.TPESampler(seed=self.seed)
        )
        space = self.space.to_optuna()
        if finite_points(space) is None:  # a continuous key: a repeat has probability 0
            return base
        return UntriedFirst(base, space, seed=self.seed)

    def cell(self, params: Mapping[str, Any], number: int) -> Cell:
        spec = get_method(self.method)
        config = spec.make_config({**self.base, **params})
        return Cell(
            id=f"{self.study}#{number}",
            stage="sweep",
            method=self.method,
            params=config_to_dict(config),
            seed=self.seed,
            seeds=self.seeds,
            tasks=self.tasks,
            aux=self.aux,
            domain=self.domain,
        )


def resolve_sweep(
    dataset: Dataset,
    *,
    method: str,
    space: SearchSpace,
    overrides: Mapping[str, Any],
    trials: int | None,
    metric: str | None = None,
    mode: str = default("sweep", "mode"),
    scheduler: str = default("sweep", "scheduler"),
    sampler: str = default("sweep", "sampler"),
    grace_period: int = default("sweep", "grace_period"),
    seeds: int = default("sweep", "seeds"),
    seed: int = default("sweep", "seed"),
    study: str = "",
) -> SweepSettings:
    """Validate a sweep completely, before anything is trained or written."""
    spec = get_method(method)
    searched = sorted(set(overrides) & set(space.params))
    if searched:
        raise UserInputError(
            f"'{searched[0]}' is searched by {space.source or 'the space'}; remove it from"
            " --set/--config or from the file's space"
        )
    if sampler not in ("tpe", "random", "grid"):
        raise UserInputError(f"--sampler {sampler}: choose tpe, random or grid")
    if sampler == "grid":
        ranged = [k for k, p in space.params.items() if p.kind != "choice"]
        if ranged:
            raise UserInputError(
                f"--sampler grid needs every searched key to be a choice; '{ranged[0]}' in"
                f" {space.source or 'the space'} is {space.params[ranged[0]].kind}"
            )
        points = math.prod(len(p.values) for p in space.params.values())
        if trials is None:
            trials = points
        elif trials != points:
            raise UserInputError(
                f"--trials {trials} does not cover the grid of {points} point(s); omit --trials"
            )
    if trials is None:
        raise UserInputError("pass --trials N (how many trials the study runs in all)")
    if trials < 1:
        raise UserInputError(f"--trials {trials} is not allowed; use 1 or more")
    finite = finite_points(space.to_optuna())
    if finite is not None and trials > len(finite):
        raise UserInputError(
            f"--trials {trials} exceeds the {len(finite)} point(s) of"
            f" {space.source or 'the space'}, and a sweep never trains a point twice; use"
            f" --trials {len(finite)} or fewer, and --seeds K to repeat each over seeds"
        )
    check_seeds(seeds, first=seed)
    if mode not in ("max", "min"):
        raise UserInputError(f"--mode {mode}: choose max or min")
    if scheduler not in ("asha", "fifo"):
        raise UserInputError(f"--scheduler {scheduler}: choose asha or fifo")
    if grace_period < 1:
        raise UserInputError(f"--grace-period {grace_period} is not allowed; use 1 or more")
    base = {**space.fixed, **overrides}
    # The corners of the space must make valid, data-compatible configs.
    for corner in _corners(space):
        config = spec.make_config({**base, **corner})
        config.check_data(dataset)
    tasks, aux = config.run_tasks()
    metric = metric or DEFAULT_METRIC
    _check_metric(metric, mode, config.objectives())
    epochs = space.params.get("epochs")
    max_epochs = int(max(epochs.values)) if epochs else int(config.epochs)
    domain = dataset.domain(str(config_to_dict(config).get("domain", ""))).name
    return SweepSettings(
        method=method,
        space=space,
        base=base,
        trials=trials,
        metric=metric,
        mode=mode,
        scheduler=scheduler,
        sampler=sampler,
        grace_period=grace_period,
        seeds=seeds,
        seed=seed,
        study=study,
        domain=domain,
        tasks=tuple(tasks),
        aux=tuple(aux),
        max_epochs=max_epochs,
    )


def _corners(space: SearchSpace) -> list[dict[str, Any]]:
    low = {k: p.values[0] for k, p in space.params.items()}
    high = {k: p.values[-1] for k, p in space.params.items()}
    return [low, high] if high != low else [low]


def _check_metric(metric: str, mode: str, objectives: Mapping[str, Goal]) -> None:
    """The objective must be a validation metric the method reports (its declared
    `objectives()`), optimised in its direction: a sweep never chooses or prunes on
    test data."""
    goal = objectives.get(metric)
    if goal is None:
        why = "a sweep selects on validation data only; " if metric.startswith("test") else ""
        raise UserInputError(
            f"--metric {metric} cannot be the objective; {why}choose one of {', '.join(objectives)}"
        )
    if mode != goal:
        better = "higher" if goal == "max" else "lower"
        raise UserInputError(f"--metric {metric} is better {better}; pass --mode {goal}")


def swept_columns(settings: SweepSettings) -> list[SweptSetting]:
    """results.parquet's columns of the searched keys, one per key of the space."""
    return [
        swept_setting(key, p.values, kind=p.kind, method=settings.method)
        for key, p in settings.space.params.items()
    ]


@dataclass
class SweepResult:
    out: OutputDir
    storage_url: str
    study_name: str
    counts: dict[str, int]
    best: dict[str, Any] | None
    trained: int = 0
    failed: list[str] = field(default_factory=list)
    resumed: bool = False  # --out held this search already: the call continued it

    def files(self) -> list[str]:
        names = (RESULTS_FILE, manifest.MANIFEST, STORAGE_FILE)
        return [self.out.display(n) for n in names if self.out.exists(n)]


class _Progress:
    """The line of each finished trial, shown by `display` (a bar on a terminal)."""

    def __init__(self, display: Progress, total: int, metric: str):
        self.display, self.total, self.metric, self.done = display, total, metric, 0

    def __call__(self, outcome: Outcome) -> None:
        self.done += 1
        head = f"  [sweep {self.done:>{len(str(self.total))}}/{self.total}] {outcome.cell.id}"
        value = outcome.metrics.get(self.metric)
        shown = f"{self.metric} {value:.4f}" if value is not None else ""
        if outcome.status == "ok":
            line = f"{head}: {shown}  ({outcome.wall_s:.1f}s)"
        elif outcome.status == "pruned":
            line = (
                f"{head}: pruned at epoch {outcome.stopped_epoch} of seed"
                f" {outcome.stopped_seed}, {shown}"
            )
        else:
            line = f"{head}: FAILED after {outcome.attempts} attempt(s): {outcome.error}"
        self.display.finished(outcome, line)


def run_sweep(
    dataset: Dataset,
    settings: SweepSettings,
    out_location: str,
    *,
    storage: str | None = None,
    resources: Resources | None = None,
    address: str | None = None,
    echo: Echo = print,
    warn: Echo | None = None,
) -> SweepResult:
    import optuna
    from optuna.trial import TrialState

    from .searcher import CellSearch, ReplayASHA

    resources = resources or Resources()
    resources.check_for(address)
    out = OutputDir(out_location)
    url = storage_url(out, storage)
    if storage:  # a database elsewhere: reach it before anything is written
        rdb = open_storage(url)
    if not settings.study:
        settings = replace(
            settings,
            study=default_study_name(
                f"{settings.method}-sweep", settings.identity(dataset), shared=bool(storage)
            ),
        )
    minimize = settings.mode == "min"
    if storage:  # a study in a shared database must be this search's, before --out is touched
        claim_study(rdb, settings.study, settings.identity(dataset), url, minimize=minimize)
    out.ensure_writable()
    with exclusive(out):
        identity = {**settings.identity(dataset), "storage": redact(storage or "inside --out")}
        described = {"trials": settings.trials, "storage": redact(url)}
        resumed = manifest.claim(out, identity, described)
        if not storage:  # the SQLite file inside --out, created now that --out is ours
            rdb = open_storage(url)
            claim_study(rdb, settings.study, settings.identity(dataset), url, minimize=minimize)
        direction: Literal["maximize", "minimize"] = (
            "maximize" if settings.mode == "max" else "minimize"
        )
        study = optuna.create_study(
            storage=rdb, study_name=settings.study, direction=direction, load_if_exists=True
        )
        if study.direction.name.lower() != direction:
            raise UserInputError(
                f"study '{settings.study}' in {url} is set to {study.direction.name.lower()};"
                " use another --study or the same --mode"
            )
        finished = study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        )
        remaining = settings.trials - len(finished)
        echo(
            f"sweep of {settings.method} on {dataset.name}: study '{settings.study}' in {url};"
            f" {len(finished)} of {settings.trials} trial(s) finished, {max(0, remaining)} to run"
        )
        log = ResultsLog(
            out,
            search="sweep",
            dataset=dataset.name,
            study_records=lambda: study_outcomes(rdb, settings.study),
            swept=swept_columns(settings),
            settings=described,
            identity=identity,
            warn=warn,
        )
        # finished trials whose cells neither results.parquet nor any record holds
        # (ray/ gone, a study of an older auxsearch): trained again as the same trials
        recorded = log.finished()
        retrain = [
            t
            for t in finished
            if t.user_attrs.get("cell", f"{settings.study}#{t.number}") not in recorded
        ]
        if retrain:
            echo(
                f"  {len(retrain)} finished trial(s) are missing from results.parquet"
                f" (#{retrain[0].number}, ...) and train again"
            )
        to_run = max(0, remaining) + len(retrain)
        trained, failed = 0, []
        if to_run > 0:
            from .ray_session import ray_session

            searcher = CellSearch(
                space=settings.space.to_optuna(),
                metric=settings.metric,
                mode=settings.mode,
                storage=rdb,
                study_name=settings.study,
                make_cell=settings.cell,
                user_attrs={"method": settings.method, "dataset": dataset.name, "search": "sweep"},
                sampler=settings.make_sampler(),
                outcome_of=log.outcome,
                retrain=retrain,
            )
            scheduler = None
            if settings.scheduler == "asha":
                max_t = settings.seeds * settings.max_epochs
                scheduler = ReplayASHA(
                    metric=settings.metric,
                    mode=settings.mode,
                    grace_period=min(settings.grace_period, max_t),
                    reduction_factor=3,
                    max_t=max_t,
                )
                scheduler.replay(
                    [t.intermediate_values for t in finished if t.state != TrialState.FAIL]
                )

            def record(outcome: Outcome) -> None:
                nonlocal trained
                log.record(outcome)
                searcher.recorded(outcome.cell.id)  # only now does the study hear of it
                trained += 1
                if outcome.status == "failed":
                    failed.append(outcome.cell.id)
                progress(outcome)

            start = time.perf_counter()
            with ray_session(address), Progress("sweep", to_run, echo=echo) as display:
                progress = _Progress(display, to_run, settings.metric)
                runner = CellRunner(dataset, resources, out)
                runner.search(
                    "sweep", searcher, to_run, record, scheduler, on_start=display.started
                )
            echo(f"  sweep: {trained} trial(s) in {time.perf_counter() - start:.0f}s")
            left = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if left:
                raise SearchInterrupted(
                    f"{len(left)} trial(s) did not finish (#{left[0].number}, ...); the study"
                    " and results.parquet hold what did"
                )
    counts = {s.name: 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    best = None
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if complete:
        pick = max if settings.mode == "max" else min
        b = pick(complete, key=lambda t: t.value if t.value is not None else -math.inf)
        best = {
            "number": b.number,
            "value": b.value,
            "params": b.params,
            "cell": b.user_attrs.get("cell"),
        }
    return SweepResult(out, url, settings.study, counts, best, trained, failed, resumed)
