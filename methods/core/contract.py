"""The method contract: everything a method declares, in one place.

A method is a config class and an entry point `train(config, data, ctx) ->
dict[str, float]`, registered by name (`registry.register_method`). The config
class is a frozen dataclass subclassing `MethodConfig`: the shared optimisation
settings of `TrainConfig` (each one honoured by the kernel, or refused by its
`check`) plus the hooks below, each with the default most methods want. The
orchestrator and the shared test suite (`methods.testing`) reach a method only
through these, so a new method is one module and one `search_spaces/<name>.yaml`.

| hook | default | asked by |
| --- | --- | --- |
| `check()` | nothing to check | every config built: cross-field rules, one sentence |
| `check_data(data)` | the training checks, main tasks labelled | before a run or search |
| `run_tasks()` | `(task,)`, no auxiliary task | results rows, study attributes |
| `metrics` | `acc` (max) and `loss` (min) of the main tasks | results rows, sweeps |
| `objectives()` | `val/mean_acc` and `val/<metric>/<task>` | `auxsearch sweep --metric` |
| `reported_epochs()` | `epochs` | a trial's final report |
| `plots` | none | `--out`: a PNG beside an artifact |
| `for_grid(roles, train, tests)` | not usable in a grid | `auxsearch grid` |
| `for_tasks(main, aux)` | not buildable from task names | `auxsearch pairs` |
| `pack_plan()` | None: never trained packed | `--pack` (`packed.py`), the shared suite |
| `tiny_example()` | none: required | the shared suite |
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

import numpy as np

from .roles import GridRoles
from .tasks import task_specs
from .train_config import TrainConfig

if TYPE_CHECKING:
    from typing import Self

    from ..data import Dataset

Goal = Literal["max", "min"]
PlotFn = Callable[[dict[str, np.ndarray]], bytes]


@dataclass(frozen=True)
class Metric:
    """A per-task metric a method reports every epoch as `<split>/<name>/<task>`.

    `of`: whether it is reported for the run's main tasks or its auxiliary ones
    (`run_tasks()`). `partner`: the value measures the run's main model against
    the auxiliary task (AAL's adversary accuracy: how much of b the features still
    carry), so a result row keeps the run's main task and names this one as its
    partner (`aux_task`). `curve`: besides the selected epoch's value, the run
    returns every epoch's (`curve/<epoch>/<split>/<name>/<task>` in its final
    metrics, kept in a search's curves.parquet): for a metric whose path over
    training matters, such as how an adversary's accuracy moves.
    """

    name: str
    goal: Goal
    of: Literal["main", "aux"] = "main"
    partner: bool = False
    curve: bool = False


class RunTasks(NamedTuple):
    """The tasks of one run: `main` are scored and selected on, `aux` are the other
    labels involved (a pair's partner, AAL's adversaries, PL's irrelevant label)."""

    main: tuple[str, ...]
    aux: tuple[str, ...] = ()


@dataclass(frozen=True)
class PackPlan:
    """How a run trains when it is linear heads on one backbone and nothing else,
    as `packed.py` reproduces it inside a pack.

    `main` heads minimise their task's loss; `adversaries` heads sit behind a
    gradient reversal of strength `reversal` (AAL eq. 6/10: each head learns its
    task, the backbone unlearns it). Losses are summed over the main tasks
    (`train_heads`, AAL eq. 2/8), or with `adversaries` averaged within each
    group and added (AAL eq. 10–11). Without adversaries each main task is
    selected at its own best epoch; with them the main group is selected
    together and the adversaries' metrics (`adv_acc`, `adv_loss`) are carried
    from its epoch, as `aal` does.
    """

    main: tuple[str, ...]
    adversaries: tuple[str, ...] = ()
    reversal: float = 0.0


class HookNotSupported(NotImplementedError):
    """A method asked for a hook it does not offer (e.g. a grid of a method that
    cannot take a grid's roles)."""


class MethodContractError(TypeError):
    """A method that does not implement the contract; raised when it registers."""


@dataclass(frozen=True)
class MethodConfig(TrainConfig):
    """Base of every method's config: `TrainConfig`'s settings and the contract's hooks."""

    metrics: ClassVar[tuple[Metric, ...]] = (Metric("acc", "max"), Metric("loss", "min"))
    plots: ClassVar[Mapping[str, PlotFn]] = MappingProxyType({})

    def check(self) -> None:
        """Cross-field rules, checked whenever a config is built; raise `ConfigError`
        with one sentence naming the bad value and what is allowed."""

    def check_data(self, data: Dataset) -> None:
        """Everything the run needs of `data`, checked before any training: by default
        the training domain and splits, and labelled train/val rows of the main tasks."""
        task_specs(self.check_training(data), self.run_tasks().main, need_val=self.needs_val)

    def run_tasks(self) -> RunTasks:
        """(main tasks, auxiliary tasks) of a run. Default: the config's `task`."""
        return RunTasks((str(getattr(self, "task", "")),))  # registration made sure it exists

    def objectives(self) -> dict[str, Goal]:
        """The validation metrics a sweep may optimise, each with its direction: the
        mean accuracy of the main tasks, and every declared metric of its tasks."""
        main, aux = self.run_tasks()
        out: dict[str, Goal] = {"val/mean_acc": "max"}
        for metric in self.metrics:
            for task in main if metric.of == "main" else aux:
                out[f"val/{metric.name}/{task}"] = metric.goal
        return out

    def pack_plan(self) -> PackPlan | None:
        """The run as linear heads on one backbone, one optimiser step per batch on
        the sum of its losses (`PackPlan`): runs like it with the same training
        settings and seed may train packed as one fused network (`packed.py`), with
        the same results. None (the default): the method's update is its own."""
        return None

    def reported_epochs(self) -> int:
        """How many times a run calls `ctx.report` (once per epoch trained)."""
        return self.epochs

    @staticmethod
    def for_grid(roles: GridRoles, train: str, tests: Sequence[str]) -> dict[str, Any]:
        """Config values that train on domain `train` with a grid's roles (target task,
        task-irrelevant / task-relevant sets) and test on `tests`."""
        raise HookNotSupported("for_grid")

    @staticmethod
    def for_tasks(main: Sequence[str], aux: Sequence[str]) -> dict[str, Any]:
        """Config values that train `main` (with `aux` as partners or adversaries),
        the inverse of `run_tasks()`."""
        raise HookNotSupported("for_tasks")

    @classmethod
    def tiny_example(cls) -> tuple[Self, Dataset]:
        """A valid config and dataset small enough that a run takes about a second on
        one CPU thread, with `epochs=2`: what the shared suite trains."""
        raise HookNotSupported("tiny_example")

    @classmethod
    def supports(cls, hook: str) -> bool:
        """Whether this config class implements `hook` itself (or inherits it from a
        method's config) rather than the contract's default."""
        return _defined_by(cls, hook) is not MethodConfig


REQUIRED_HOOKS = ("tiny_example",)
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def check_contract(name: str, config: Any) -> None:
    """Refuse, in one sentence, a method whose config does not implement the contract."""
    who = f"method '{name}'"
    if not _NAME.fullmatch(name):
        raise MethodContractError(
            f"{who}: a method name is lower-case letters, digits and '_', starting with a letter"
        )
    if not (isinstance(config, type) and issubclass(config, MethodConfig)):
        raise MethodContractError(
            f"{who}: its config {config!r} must be a dataclass subclassing"
            " methods.core.MethodConfig"
        )
    params = getattr(config, "__dataclass_params__", None)
    if config.__dict__.get("__dataclass_fields__") is None or not params or not params.frozen:
        raise MethodContractError(
            f"{who}: config {config.__name__} must be decorated @dataclass(frozen=True)"
        )
    if not (config.__dict__.get("__doc__") or "").strip():
        raise MethodContractError(
            f"{who}: config {config.__name__} has no docstring; its first line names the method"
        )
    for hook in REQUIRED_HOOKS:
        if not config.supports(hook):
            raise MethodContractError(
                f"{who}: config {config.__name__} does not implement the hook {hook}()"
                " (see methods.core.contract)"
            )
    fields = {f.name: f for f in dataclasses.fields(config)}
    if "task" not in fields and not config.supports("run_tasks"):
        raise MethodContractError(
            f"{who}: config {config.__name__} has no `task` field, so it must implement"
            " the hook run_tasks()"
        )
    for f in fields.values():
        if not f.metadata.get("doc"):
            raise MethodContractError(
                f"{who}: setting '{f.name}' of {config.__name__} has no description;"
                ' declare it with field(..., metadata=meta("..."))'
            )
    names = [m.name for m in config.metrics]
    if len(set(names)) != len(names) or not all(isinstance(m, Metric) for m in config.metrics):
        raise MethodContractError(
            f"{who}: config {config.__name__}.metrics must be Metric declarations with"
            " distinct names"
        )
    for artifact, plot in config.plots.items():
        if not callable(plot):
            raise MethodContractError(
                f"{who}: plots['{artifact}'] of {config.__name__} is not a function of the"
                " artifact's columns"
            )


def _defined_by(cls: type, name: str) -> type | None:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass
    return None
