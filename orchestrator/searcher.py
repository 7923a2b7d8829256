"""Ray Tune's OptunaSearch, fitted to auxsearch, and an ASHA that survives a rerun.

`CellSearch` (a subclass of `ray.tune.search.optuna.OptunaSearch`):

- proposes *cells*: each suggestion is turned into a full, validated training
  (`make_cell(params, trial_number)`), so a sweep trial runs through the same
  trainable and result recording as every other search;
- records a trial that the scheduler stopped early as PRUNED, not COMPLETE as
  OptunaSearch does (a run that never sent its final report did not finish);
  Optuna then keeps its last reported value;
- tags every Optuna trial with user attributes (method, dataset, tasks, seeds,
  the Ray trial id), so the dashboard and results.parquet can be joined;
- continues a study: trials left RUNNING by a driver that died are handed out
  again before anything new is asked (no trial lost, none duplicated); with
  `points` (a fixed grid such as AAL's λ values) it enqueues exactly those;
- tells the study a trial's end only once its cell is in results.parquet
  (`recorded`): Tune calls the searcher before the callbacks that record, so a
  driver killed between the two left a trial finished in the study and missing
  from the results, never trained again. Now it stays RUNNING and is handed out
  again;
- keeps the cell's outcome on the trial it tells (`outcome_of`, a system
  attribute: recovery.py), so a rebuild of results.parquet without `ray/` takes
  the cell from the study instead of training it beside a second trial;
- trains a finished trial's cell again without a new trial (`retrain`: its
  records are gone, as with a study of an older auxsearch): a finished Optuna
  trial cannot change, and a second one would hold the cell twice;
- reports each step of a trial once: a trial handed out again, or retried by
  Tune, starts over, and Optuna warns on (and ignores) a step it already holds.

`UntriedFirst`: TPE and random sampling propose points of a finite space
(every key a choice or an integer range) again long before the space is used
up: 15 TPE trials over five λ values trained 10 exact repeats. Over a finite
space the wrapped sampler never proposes a point the study already holds; a
sweep asks for at most as many trials as the space has points (`--seeds K`
repeats each over seeds instead).

`ReplayASHA`: Ray's restore does not keep a scheduler's state, so a resumed
sweep would promote every new trial past rungs that earlier trials filled.
`replay` refills the rungs from the study's finished trials before Tune starts.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.schedulers import AsyncHyperBandScheduler
from ray.tune.search.optuna import OptunaSearch

from .cells import FINAL_KEY, Cell, Outcome
from .recovery import OUTCOME_ATTR, outcome_record

MakeCell = Callable[[dict[str, Any], int], Cell]
OutcomeOf = Callable[[str], Outcome | None]


class CellSearch(OptunaSearch):
    def __init__(
        self,
        *,
        space: dict[str, Any],
        metric: str,
        mode: str,
        storage: Any,
        study_name: str,
        make_cell: MakeCell,
        user_attrs: Mapping[str, Any] | None = None,
        points: Sequence[dict[str, Any]] | None = None,
        sampler: Any = None,
        outcome_of: OutcomeOf | None = None,
        retrain: Sequence[optuna.trial.FrozenTrial] = (),
    ):
        super().__init__(
            space=space,
            metric=metric,
            mode=mode,
            storage=storage,
            study_name=study_name,
            sampler=sampler,
        )
        self._distributions = dict(space)
        self._make_cell = make_cell
        self._user_attrs = dict(user_attrs or {})
        study = self.study
        self._orphans = list(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        self._cell_of: dict[str, str] = {}  # Ray trial id → cell id
        self._untold: dict[str, tuple[optuna.Trial, float | None, TrialState]] = {}
        self._outcome_of = outcome_of
        self._retrain = list(retrain)
        self._detached: dict[str, optuna.trial.FrozenTrial] = {}  # Ray trial id → retrained
        self._points = list(points or [])
        if points is not None:
            waiting = [
                t.system_attrs.get("fixed_params", {})
                for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            ]
            wanted = [dict(p) for p in self._points]
            keep = []
            for orphan in self._orphans:
                if orphan.params in wanted:
                    wanted.remove(orphan.params)
                    keep.append(orphan)
                else:  # a trial of an earlier plan that this one no longer contains
                    study.tell(orphan.number, state=TrialState.FAIL)
            self._orphans = keep
            self._points = [p for p in wanted if p not in waiting]

    @property
    def study(self) -> optuna.Study:
        """The Optuna study (created or loaded by OptunaSearch from the storage)."""
        study = self._ot_study
        assert isinstance(study, optuna.Study)
        return study

    def _next_trial(self) -> optuna.Trial:
        if self._orphans:
            orphan = self._orphans.pop(0)
            return optuna.trial.Trial(self.study, orphan._trial_id)
        if self._points:
            self.study.enqueue_trial(self._points.pop(0))
        return self.study.ask(fixed_distributions=self._distributions)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if trial_id not in self._ot_trials and trial_id not in self._detached and self._retrain:
            self._detached[trial_id] = self._retrain.pop(0)
        held = self._detached.get(trial_id)
        if held is not None:  # kept out of _ot_trials: the study hears nothing of this run
            cell = self._make_cell(dict(held.params), held.number)
            return {"cell": json.dumps(cell.to_dict())}
        if trial_id not in self._ot_trials:
            self._ot_trials[trial_id] = self._next_trial()
        ot_trial = self._ot_trials[trial_id]
        cell = self._make_cell(dict(ot_trial.params), ot_trial.number)
        self._cell_of[trial_id] = cell.id
        attrs = {
            **self._user_attrs,
            "cell": cell.id,
            "tasks": list(cell.tasks),
            "aux": list(cell.aux),
            "seeds": [cell.seed + k for k in range(cell.seeds)],
            "ray_trial_id": trial_id,
        }
        for key, value in attrs.items():
            ot_trial.set_user_attr(key, value)
        return {"cell": json.dumps(cell.to_dict())}

    def save(self, checkpoint_path: str) -> None:
        """Ray checkpoints its searcher; ours keeps its state in the study, so the
        checkpoint records only which Ray trial is which Optuna trial."""
        state = {
            "study": self.study.study_name,
            "trials": {rid: t.number for rid, t in self._ot_trials.items()},
        }
        with open(checkpoint_path, "w") as f:
            json.dump(state, f)

    def __getstate__(self) -> dict[str, Any]:
        # Ray Tune pickles its searcher into the experiment's tuner.pkl (for its own
        # restore, which we never use: see `restore`). The storage and the study hold
        # the database URL with its password, so the copy leaves them out.
        state = self.__dict__.copy()
        state.update(_storage=None, _ot_study=None)
        return state

    def restore(self, checkpoint_path: str) -> None:
        raise NotImplementedError(
            "auxsearch resumes from the Optuna study, not from Ray's searcher checkpoint;"
            " rerun the same auxsearch command"
        )

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        value = result.get(self.metric)
        if trial_id not in self._ot_trials or trial_id in self._completed_trials:
            return
        if isinstance(value, int | float) and math.isfinite(value):
            self._report_once(trial_id, float(value), result.get("training_iteration"))

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        value = (result or {}).get(self.metric)
        finite = isinstance(value, int | float) and math.isfinite(value)
        if result and finite and not error:
            # Tune hands a trial's last result (its final report, or the one that
            # made the scheduler stop it) to on_trial_complete, not on_trial_result:
            # report it, so the curve is whole and a pruned trial's value is its
            # last reported one (Optuna takes the value of the last step).
            self._report_once(trial_id, float(value), result.get("training_iteration"))  # type: ignore[arg-type]
        if error:
            state, values = TrialState.FAIL, None
        elif result and result.get(FINAL_KEY) and finite:
            state, values = TrialState.COMPLETE, float(value)  # type: ignore[arg-type]
        elif result and not result.get(FINAL_KEY):
            state, values = TrialState.PRUNED, None
        else:
            state, values = TrialState.FAIL, None
        # told once the cell is recorded (`recorded`), not before
        self._untold[self._cell_of[trial_id]] = (self._ot_trials[trial_id], values, state)
        self._completed_trials.add(trial_id)

    def recorded(self, cell_id: str) -> None:
        """The cell's outcome is in results.parquet: tell the study how it ended."""
        pending = self._untold.pop(cell_id, None)
        if pending is not None:
            ot_trial, values, state = pending
            outcome = self._outcome_of(cell_id) if self._outcome_of is not None else None
            if outcome is not None:  # before the tell: a finished trial takes no attribute
                self.study._storage.set_trial_system_attr(
                    ot_trial._trial_id, OUTCOME_ATTR, outcome_record(outcome)
                )
            self.study.tell(ot_trial, values, state=state)

    def _report_once(self, trial_id: str, value: float, step: Any) -> None:
        # a trial run again from its start (handed out again, or retried by Tune)
        # reports steps the study holds: the same seed gives the same values
        if not isinstance(step, int):
            return
        ot_trial = self._ot_trials[trial_id]
        reported = self.study._storage.get_trial(ot_trial._trial_id).intermediate_values
        if step not in reported:
            ot_trial.report(value, step)


def finite_points(space: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Every point of a space of Optuna distributions, or None when a key is
    continuous (or the space is too large to list)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    axes: dict[str, list[Any]] = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            axes[name] = list(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            axes[name] = list(range(dist.low, dist.high + 1, dist.step))
        else:
            return None
    if math.prod(len(v) for v in axes.values()) > MAX_LISTED_POINTS:
        return None
    return [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]


MAX_LISTED_POINTS = 100_000


def _point_key(params: Mapping[str, Any], names: Sequence[str]) -> tuple[Any, ...]:
    return tuple(round(v, 12) if isinstance(v, float) else v for v in (params[n] for n in names))


class UntriedFirst(optuna.samplers.BaseSampler):
    """A sampler (TPE, random) over a finite space that never proposes a point the
    study already holds (finished, running or queued) while untried points remain.

    Each trial's whole point is drawn at once (a relative search space): the
    wrapped sampler proposes it key by key as it would alone; a repeat is drawn
    again a few times (TPE's draws are random, so it usually moves on to its next
    best guess), and after that an untried point is taken at random (seeded)."""

    REDRAWS = 8

    def __init__(self, base: optuna.samplers.BaseSampler, space: Mapping[str, Any], seed: int):
        points = finite_points(space)
        if points is None:
            raise ValueError("UntriedFirst needs a finite space of choices and integer ranges")
        self.base, self.distributions, self.points = base, dict(space), points
        self.names = list(space)
        self._rng = random.Random(seed)

    def infer_relative_search_space(self, study: optuna.Study, trial: Any) -> dict[str, Any]:
        # an enqueued trial (fixed parameters) is not drawn at all
        return {} if trial.system_attrs.get("fixed_params") else dict(self.distributions)

    def sample_relative(
        self, study: optuna.Study, trial: Any, search_space: dict[str, Any]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        held = {self._key(t) for t in study.get_trials(deepcopy=False) if t.number != trial.number}
        proposal: dict[str, Any] = {}
        for _ in range(self.REDRAWS):
            proposal = {
                n: self.base.sample_independent(study, trial, n, d)
                for n, d in self.distributions.items()
            }
            if _point_key(proposal, self.names) not in held:
                return proposal
        untried = [p for p in self.points if _point_key(p, self.names) not in held]
        return self._rng.choice(untried) if untried else proposal

    def _key(self, trial: Any) -> tuple[Any, ...] | None:
        params = trial.params or trial.system_attrs.get("fixed_params") or {}
        return _point_key(params, self.names) if set(self.names) <= set(params) else None

    def sample_independent(
        self, study: optuna.Study, trial: Any, param_name: str, param_distribution: Any
    ) -> Any:
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: Any) -> None:
        self.base.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: Any, state: Any, values: Any) -> None:
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()


class AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler for ask-and-tell: the stock one calls `study.stop()` once
    the grid is exhausted, which raises outside `study.optimize` (inside Ray's
    searcher, it would fail the trial that finished last)."""

    def after_trial(self, study: optuna.Study, trial: Any, state: Any, values: Any) -> None:
        return None


class ReplayASHA(AsyncHyperBandScheduler):
    """ASHA whose rungs can be refilled from finished trials' reported histories."""

    def replay(self, histories: Sequence[Mapping[int, float]]) -> None:
        """Record each history at every rung it reached, as if its trial ran now."""
        sign = self._metric_op
        assert sign is not None, "ReplayASHA needs metric and mode at construction"
        for i, history in enumerate(histories):
            steps = sorted(history)
            for bracket in self._brackets:
                for milestone, recorded in bracket._rungs:
                    reached = [s for s in steps if s >= milestone]
                    if reached:
                        recorded[f"replayed-{i}"] = sign * history[reached[0]]
