"""The Optuna study after a rebuild of results.parquet with `ray/` gone, and a
resumed sweep's reports (issue 28): one finished trial per cell, no step twice."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import optuna
import pyarrow.parquet as pq
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from orchestrator.cells import FINAL_KEY, Cell, Outcome
from orchestrator.cli import main
from orchestrator.recovery import OUTCOME_ATTR, study_outcomes
from orchestrator.searcher import CellSearch
from tests.orchestrator.test_pairs_integration import BASE as PAIRS

pytestmark = pytest.mark.integration

EXE = str(Path(sys.executable).with_name("auxsearch"))
SPACE = """\
method: aal
fixed: {backbone: small_cnn, epochs: 2, batch_size: 32}
space:
  lam: {choice: [0.1, 1.0]}
"""


def _sweep(tmp_path: Path, out: Path, trials: int) -> list[str]:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    return [
        "sweep",
        "--method",
        "aal",
        "--space",
        str(space),
        "--trials",
        str(trials),
        "--dataset",
        "shapes:n=120,image_size=16",
        "--set",
        "main=[left]",
        "--set",
        "adversaries=[red]",
        "--max-concurrent",
        "1",
        "--scheduler",
        "fifo",
        "--out",
        str(out),
    ]


def _study(out: Path, name: str) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'optuna.db'}")


def _damage(out: Path) -> None:
    """results.parquet overwritten, Ray's trial records gone."""
    (out / "results.parquet").write_bytes(b"not parquet at all " * 8)
    shutil.rmtree(out / "ray", ignore_errors=True)  # a run that trained nothing made none


def _forget_outcomes(out: Path) -> None:
    """The study as an auxsearch before this fix left it: no outcome on its trials."""
    with sqlite3.connect(out / "optuna.db") as con:
        con.execute("delete from trial_system_attributes where key = ?", (OUTCOME_ATTR,))


def _trials(study: optuna.Study) -> list[tuple]:
    return [(t.number, t.state, t.value, t.user_attrs["cell"]) for t in study.get_trials()]


def _one_trial_per_cell(study: optuna.Study, out: Path, stage: str) -> None:
    trials = study.get_trials()
    assert all(t.state == TrialState.COMPLETE for t in trials)
    rows = [r for r in pq.read_table(out / "results.parquet").to_pylist() if r["stage"] == stage]
    cells = sorted({r["trial_id"] for r in rows})
    assert sorted(t.user_attrs["cell"] for t in trials) == cells  # each cell once
    for t in trials:
        (mean,) = [
            r["value"]
            for r in rows
            if r["trial_id"] == t.user_attrs["cell"]
            and (r["split"], r["metric"]) == ("val", "mean_acc")
        ]
        assert mean == pytest.approx(t.value)


def test_a_sweep_rebuilt_without_ray_keeps_one_trial_per_cell(
    ray_local: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    args = _sweep(tmp_path, out, 2)
    assert main(args) == 0
    before = _trials(_study(out, "aal-sweep"))
    assert len(before) == 2
    rows = pq.read_table(out / "results.parquet").to_pylist()
    capsys.readouterr()

    # the study holds every cell's outcome: nothing trains, every row comes back
    _damage(out)
    assert main(args) == 0
    assert _trials(_study(out, "aal-sweep")) == before
    captured = capsys.readouterr()
    assert "rebuilt 2 cell(s)" in captured.err and "train again" not in captured.out
    _one_trial_per_cell(_study(out, "aal-sweep"), out, "sweep")
    again = pq.read_table(out / "results.parquet").to_pylist()
    assert sorted(map(str, again)) == sorted(map(str, rows))

    # a study without the outcomes: its cells train again as the same trials
    _forget_outcomes(out)
    _damage(out)
    assert main(args) == 0
    assert "2 finished trial(s) are missing" in capsys.readouterr().out
    assert _trials(_study(out, "aal-sweep")) == before
    _one_trial_per_cell(_study(out, "aal-sweep"), out, "sweep")


@pytest.mark.slow  # slow: `make test` keeps under 15 min on 2 cores; `make test-all` runs it
def test_a_pair_search_rebuilt_without_ray_keeps_one_trial_per_cell(
    ray_local: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pairs"
    args = [*PAIRS, "--out", str(out)]
    assert main(args) == 0
    study = _study(out, "aal-lambda")
    before = _trials(study)
    assert before, "stage 3 trained nothing: no trial to keep"
    _one_trial_per_cell(study, out, "adversarial")
    capsys.readouterr()

    _damage(out)  # stage 1 trains again; stage 3 comes back from the study
    assert main(args) == 0
    assert _trials(_study(out, "aal-lambda")) == before
    assert f"{len(before)} already recorded, 0 to train" in capsys.readouterr().out
    _one_trial_per_cell(_study(out, "aal-lambda"), out, "adversarial")

    _forget_outcomes(out)
    _damage(out)  # stage 3 trains again, as the study's trials
    assert main(args) == 0
    assert _trials(_study(out, "aal-lambda")) == before
    assert f"0 already recorded, {len(before)} to train" in capsys.readouterr().out
    _one_trial_per_cell(_study(out, "aal-lambda"), out, "adversarial")


def test_a_resumed_sweep_reports_no_step_twice(ray_local: None, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    args = _sweep(tmp_path, out, 1)
    assert main(args) == 0
    # what a driver killed after the first epoch of a second trial leaves
    study = _study(out, "aal-sweep")
    (first,) = study.get_trials()
    other = 1.0 if first.params["lam"] == 0.1 else 0.1
    study.enqueue_trial({"lam": other})
    orphan = study.ask(fixed_distributions=first.distributions)
    orphan.report(0.5, 1)

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    resumed = subprocess.run(
        [EXE, *_sweep(tmp_path, out, 2)], capture_output=True, text=True, env=env, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "1 of 2 trial(s) finished, 1 to run" in resumed.stdout
    assert "already reported" not in resumed.stderr
    trials = _study(out, "aal-sweep").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert trials[1].params == {"lam": other} and sorted(trials[1].intermediate_values) == [1, 2]


# CellSearch on its own, on a real Optuna storage (no Ray cluster needed)

SEARCH_SPACE = {"lam": CategoricalDistribution([0.1, 1.0])}


def _cell(params: dict, number: int) -> Cell:
    return Cell(f"s#{number}", "sweep", "aal", dict(params), 0, ("a",), ("b",))


def _search(url: str, **kw: object) -> CellSearch:
    args = dict(
        space=SEARCH_SPACE,
        metric="val/mean_acc",
        mode="max",
        storage=optuna.storages.RDBStorage(url),
        study_name="s",
        make_cell=_cell,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    args.update(kw)
    return CellSearch(**args)  # type: ignore[arg-type]


def test_a_trial_run_again_reports_each_step_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = _search(url)
    first.suggest("r0")
    first.on_trial_result("r0", {"val/mean_acc": 0.6, "training_iteration": 1})
    # the driver dies; the next one hands the trial out again and it starts over
    second = _search(url)
    second.suggest("x0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step, value in ((1, 0.6), (2, 0.7)):
            second.on_trial_result("x0", {"val/mean_acc": value, "training_iteration": step})
        second.on_trial_complete("x0", {"val/mean_acc": 0.7, "training_iteration": 2, FINAL_KEY: 1})
    assert not [w for w in caught if "already reported" in str(w.message)]
    second.recorded("s#0")
    (trial,) = second.study.get_trials()
    assert trial.state == TrialState.COMPLETE and trial.intermediate_values == {1: 0.6, 2: 0.7}


def test_the_told_trial_keeps_its_outcome_and_a_retrained_one_adds_no_trial(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    outcomes: dict[str, Outcome] = {}
    first = _search(url, outcome_of=outcomes.get)
    first.suggest("r0")
    metrics = {"val/mean_acc": 0.7, "val/acc/a": 0.7, "val/loss/a": float("nan")}
    first.on_trial_complete("r0", {**metrics, "training_iteration": 1, FINAL_KEY: 1})
    outcomes["s#0"] = Outcome(_cell(first.study.trials[0].params, 0), "ok", metrics, 1.5, "T")
    first.recorded("s#0")
    (kept,) = study_outcomes(optuna.storages.RDBStorage(url), "s")
    assert kept.cell == outcomes["s#0"].cell and kept.status == "ok" and kept.wall_s == 1.5
    assert kept.metrics == {"val/mean_acc": 0.7, "val/acc/a": 0.7}  # NaN is no result

    (done,) = first.study.get_trials()
    again = _search(url, retrain=[done])
    config = again.suggest("x0")
    assert config is not None and json.loads(config["cell"])["id"] == "s#0"
    again.on_trial_result("x0", {"val/mean_acc": 0.7, "training_iteration": 1})
    again.on_trial_complete("x0", {"val/mean_acc": 0.7, "training_iteration": 1, FINAL_KEY: 1})
    again.recorded("s#0")
    assert [t.number for t in again.study.get_trials()] == [0]
    again.suggest("x1")  # the next one is new
    assert [t.number for t in again.study.get_trials()] == [0, 1]
