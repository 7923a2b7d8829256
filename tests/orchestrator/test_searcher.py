"""CellSearch and ReplayASHA on a real Optuna storage (no Ray cluster needed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState
from ray.tune.schedulers import TrialScheduler

from orchestrator.cells import FINAL_KEY, Cell
from orchestrator.searcher import CellSearch, ReplayASHA

SPACE = {"lam": CategoricalDistribution([0.1, 0.5, 1.0]), "lr": FloatDistribution(1e-4, 1e-2)}


def _cell(params: dict, number: int) -> Cell:
    return Cell(f"s#{number}", "sweep", "aal", dict(params), 0, ("a",), ("b",), seeds=2)


def _search(url: str, **kw: object) -> CellSearch:
    args = dict(
        space=SPACE,
        metric="val/mean_acc",
        mode="max",
        storage=optuna.storages.RDBStorage(url),
        study_name="s",
        make_cell=_cell,
        user_attrs={"dataset": "d"},
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    args.update(kw)
    return CellSearch(**args)  # type: ignore[arg-type]


@pytest.fixture
def url(tmp_path: Path) -> str:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return f"sqlite:///{tmp_path / 'optuna.db'}"


def test_suggests_cells_and_tags_trials(url: str) -> None:
    search = _search(url)
    config = search.suggest("ray-1")
    assert config is not None
    cell = Cell.from_dict(json.loads(config["cell"]))
    trial = search.study.trials[0]
    assert cell.id == "s#0" and cell.params == trial.params
    assert trial.user_attrs == {
        "dataset": "d",
        "cell": "s#0",
        "tasks": ["a"],
        "aux": ["b"],
        "seeds": [0, 1],
        "ray_trial_id": "ray-1",
    }


def test_stopped_early_is_pruned_with_its_last_value_finished_is_complete(url: str) -> None:
    search = _search(url)
    for rid in ("r0", "r1", "r2"):
        search.suggest(rid)
    search.on_trial_result("r0", {"val/mean_acc": 0.6, "training_iteration": 1})
    # ASHA's stopping result reaches on_trial_complete without a final marker
    search.on_trial_complete("r0", {"val/mean_acc": 0.55, "training_iteration": 2})
    search.on_trial_complete("r1", {"val/mean_acc": 0.8, "training_iteration": 4, FINAL_KEY: 1})
    search.on_trial_complete("r2", None, error=True)
    for cell in ("s#0", "s#1", "s#2"):  # each recorded in results.parquet
        search.recorded(cell)
    t0, t1, t2 = search.study.trials
    assert t0.state == TrialState.PRUNED and t0.value == 0.55
    assert t0.intermediate_values == {1: 0.6, 2: 0.55}
    assert t1.state == TrialState.COMPLETE and t1.value == 0.8
    assert t2.state == TrialState.FAIL


def test_a_new_searcher_hands_out_trials_a_dead_driver_left_running(url: str) -> None:
    first = _search(url)
    for rid in ("r0", "r1", "r2"):
        first.suggest(rid)
    first.on_trial_complete("r0", {"val/mean_acc": 0.7, FINAL_KEY: 1})
    first.recorded("s#0")
    # the driver dies here: #1 and #2 stay RUNNING in the study
    second = _search(url)
    params = [json.loads(second.suggest(r)["cell"])["params"] for r in ("x1", "x2", "x3")]
    trials = second.study.trials
    assert len(trials) == 4  # #1 and #2 reused, one new
    assert params[0] == trials[1].params and params[1] == trials[2].params
    assert trials[1].user_attrs["ray_trial_id"] == "x1"


def test_a_trial_ended_but_not_yet_recorded_is_handed_out_again(url: str) -> None:
    """Tune tells the searcher before the callback that writes results.parquet; a
    driver killed between the two must not leave the study saying "finished" for a
    cell the results lack (it would never be trained again)."""
    first = _search(url)
    first.suggest("r0")
    first.on_trial_complete("r0", {"val/mean_acc": 0.7, FINAL_KEY: 1})
    assert first.study.trials[0].state == TrialState.RUNNING  # not recorded yet
    # the driver dies here; a rerun hands #0 out again
    second = _search(url)
    again = json.loads(second.suggest("x0")["cell"])
    assert again["id"] == "s#0" and len(second.study.trials) == 1
    second.on_trial_complete("x0", {"val/mean_acc": 0.7, FINAL_KEY: 1})
    second.recorded("s#0")
    assert second.study.trials[0].state == TrialState.COMPLETE


def test_grid_points_are_enqueued_exactly_once(url: str) -> None:
    points = [{"lam": 0.1, "lr": 1e-3}, {"lam": 1.0, "lr": 1e-3}, {"lam": 0.5, "lr": 2e-3}]
    first = _search(url, points=points)
    first.suggest("r0")
    first.suggest("r1")
    first.on_trial_complete("r0", {"val/mean_acc": 0.7, FINAL_KEY: 1})
    first.recorded("s#0")
    # restart: #1 still running, one point never started; a point no longer
    # wanted by the new plan is dropped from it
    second = _search(url, points=points[1:])
    got = [json.loads(second.suggest(r)["cell"])["params"] for r in ("x1", "x2")]
    assert got == [points[1], points[2]]
    assert len(second.study.trials) == 3


def test_an_orphan_outside_a_new_grid_is_failed(url: str) -> None:
    first = _search(url, points=[{"lam": 0.1, "lr": 1e-3}])
    first.suggest("r0")
    second = _search(url, points=[{"lam": 1.0, "lr": 1e-3}])
    assert second.study.trials[0].state == TrialState.FAIL
    second.suggest("x0")
    assert second.study.trials[1].params == {"lam": 1.0, "lr": 1e-3}


@dataclass
class _TrialRef:
    """ASHA reads only a trial's id."""

    trial_id: str


def test_replayed_rungs_stop_a_weak_newcomer() -> None:
    fresh = ReplayASHA(metric="m", mode="max", max_t=9, grace_period=1, reduction_factor=3)
    replayed = ReplayASHA(metric="m", mode="max", max_t=9, grace_period=1, reduction_factor=3)
    replayed.replay([{1: 0.9, 2: 0.9, 3: 0.92}, {1: 0.8, 2: 0.85}, {1: 0.85}])
    for scheduler in (fresh, replayed):
        scheduler.on_trial_add(None, _TrialRef("new"))  # type: ignore[arg-type]
    weak = {"training_iteration": 1, "m": 0.5}
    assert fresh.on_trial_result(None, _TrialRef("new"), weak) == TrialScheduler.CONTINUE
    assert replayed.on_trial_result(None, _TrialRef("new"), weak) == TrialScheduler.STOP
    rung3 = dict(replayed._brackets[0]._rungs)[3]
    assert sorted(rung3.values()) == [0.92]  # only the history that reached step 3
