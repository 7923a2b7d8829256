"""Stage 3's λ in its Optuna study (issue 29): a log range for the paper's λ, and
every rerun of a study (same λs, more λs, λ = 0 added, a study of an older
auxsearch with a linear λ) records its trials without an Optuna error."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from methods.data import Dataset
from orchestrator.cells import FINAL_KEY, Cell, Outcome
from orchestrator.pair_analysis import Partner
from orchestrator.pairs import LINEAR_SUFFIX, LambdaStudy
from orchestrator.pairs_plan import PairsSettings, resolve_settings, stage3_cells
from orchestrator.protocols import load_pairs_protocol
from orchestrator.results import ResultsLog
from orchestrator.storage import OutputDir
from orchestrator.study import claim_study
from tests.conftest import TINY_TRAIN

PAPER = (0.01, 0.1, 0.3, 0.5, 1.0)
NAME = "aal-lambda"
LAM = load_pairs_protocol().sweep  # the swept setting: the λ of the study
LINEAR = f"{LAM}{LINEAR_SUFFIX}"
PARTNERS = {"red": Partner("red", ["large"]), "large": Partner("large", ["red"])}


@pytest.fixture(scope="module")
def base(tiny_shapes: Dataset) -> PairsSettings:
    return resolve_settings(
        tiny_shapes, attributes=["red", "large"], overrides=dict(TINY_TRAIN), lambdas=PAPER
    )


@pytest.fixture
def storage(tmp_path: Path) -> optuna.storages.RDBStorage:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rdb = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    claim_study(rdb, NAME, {"search": "test"}, "test.db")
    return rdb


def _study(
    base: PairsSettings,
    storage: optuna.storages.RDBStorage,
    tmp_path: Path,
    lambdas: tuple[float, ...],
) -> LambdaStudy:
    settings = replace(base, lambdas=lambdas)
    results = ResultsLog(OutputDir(str(tmp_path / "out")), search="pairs", dataset="shapes")
    return LambdaStudy(settings, "shapes", storage, NAME, results)


def _record(study: LambdaStudy) -> list[Cell]:
    """Every stage-3 cell of the study's settings, recorded as packs record them."""
    cells = stage3_cells(study.settings, PARTNERS)
    for i, cell in enumerate(cells):
        metrics = {"val/mean_acc": 0.5 + i / 100}
        study.log(Outcome(cell, "ok", metrics, 1.0, "2024-01-01T00:00:00"))
    return cells


def _trials(storage: optuna.storages.RDBStorage) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=NAME, storage=storage).get_trials()


def _lam(trial: optuna.trial.FrozenTrial) -> tuple[str, FloatDistribution]:
    (name,) = [n for n in trial.params if n in (LAM, LINEAR)]
    dist = trial.distributions[name]
    assert isinstance(dist, FloatDistribution)
    return name, dist


def test_the_papers_lambdas_are_a_log_range(
    base: PairsSettings, storage: optuna.storages.RDBStorage, tmp_path: Path
) -> None:
    study = _study(base, storage, tmp_path, PAPER)
    assert study.space()[LAM] == FloatDistribution(0.01, 1.0, log=True)
    cells = _record(study)
    trials = _trials(storage)
    assert len(trials) == len(cells) == 10
    for t in trials:
        assert _lam(t) == (LAM, FloatDistribution(0.01, 1.0, log=True))
        assert t.state == TrialState.COMPLETE
    assert sorted({t.params[LAM] for t in trials}) == list(PAPER)


def test_resume_with_the_same_and_with_more_lambdas(
    base: PairsSettings, storage: optuna.storages.RDBStorage, tmp_path: Path
) -> None:
    _record(_study(base, storage, tmp_path, PAPER))
    again = _study(base, storage, tmp_path, PAPER)
    _record(again)  # every cell held already: nothing new, no error
    assert len(_trials(storage)) == 10
    wider = (0.001, *PAPER, 3.0)  # outside the first range on both sides
    _record(_study(base, storage, tmp_path, wider))
    trials = _trials(storage)
    assert len(trials) == 14
    assert all(_lam(t)[1].log for t in trials)
    assert _lam(trials[-1]) == (LAM, FloatDistribution(0.001, 3.0, log=True))


def test_adding_zero_to_a_log_study_records_that_run_on_the_linear_LINEAR(
    base: PairsSettings, storage: optuna.storages.RDBStorage, tmp_path: Path
) -> None:
    _record(_study(base, storage, tmp_path, PAPER))
    with_zero = _study(base, storage, tmp_path, (0.0, *PAPER, 2.0))
    assert with_zero.lambda_param() == (LINEAR, False)
    _record(with_zero)
    trials = _trials(storage)
    assert len(trials) == 14
    new = [t for t in trials if LINEAR in t.params]
    assert {t.params[LINEAR] for t in new} == {0.0, 2.0}
    assert all(_lam(t) == (LINEAR, FloatDistribution(0.0, 2.0)) for t in new)
    assert all(_lam(t)[1].log for t in trials if t not in new)  # the old ones keep theirs
    # later runs: without 0 back on the log λ, with 0 (and more) on the LINEAR
    assert _study(base, storage, tmp_path, (*PAPER, 5.0)).lambda_param() == (LAM, True)
    _record(_study(base, storage, tmp_path, (*PAPER, 5.0)))
    _record(_study(base, storage, tmp_path, (0.0, 0.05, *PAPER)))
    assert len(_trials(storage)) == 18


def test_a_study_begun_with_zero_is_linear_and_stays_linear(
    base: PairsSettings, storage: optuna.storages.RDBStorage, tmp_path: Path
) -> None:
    first = _study(base, storage, tmp_path, (0.0, 0.5))
    assert first.space()[LAM] == FloatDistribution(0.0, 0.5)
    _record(first)
    later = _study(base, storage, tmp_path, (0.01, 0.5, 4.0))  # no 0, out of range
    assert later.lambda_param() == (LAM, False)
    _record(later)
    trials = _trials(storage)
    assert len(trials) == 8
    assert all(_lam(t)[0] == LAM and not _lam(t)[1].log for t in trials)


def test_a_study_of_an_older_auxsearch_resumes_linear(
    base: PairsSettings, storage: optuna.storages.RDBStorage, tmp_path: Path
) -> None:
    # what auxsearch wrote before issue 29: λ as FloatDistribution(min, max), linear
    cells = stage3_cells(base, PARTNERS)
    old = optuna.load_study(study_name=NAME, storage=storage)
    for cell in cells[:4]:
        old.add_trial(
            optuna.trial.create_trial(
                params={"main": cell.tasks[0], LAM: cell.params[LAM], "seed": cell.seed},
                distributions={
                    "main": CategoricalDistribution(["large", "red"]),
                    LAM: FloatDistribution(0.01, 1.0),
                    "seed": IntDistribution(0, 0),
                },
                value=0.5,
                user_attrs={"cell": cell.id},
            )
        )
    same = _study(base, storage, tmp_path, PAPER)
    assert same.lambda_param() == (LAM, False)
    _record(same)
    assert len(_trials(storage)) == 10
    _record(_study(base, storage, tmp_path, (0.0, *PAPER, 2.0)))  # 0 and beyond the range
    trials = _trials(storage)
    assert len(trials) == 14
    assert all(_lam(t)[0] == LAM and not _lam(t)[1].log for t in trials)


def test_the_searcher_asks_and_retrains_across_a_change_of_scale(
    base: PairsSettings, storage: optuna.storages.RDBStorage, tmp_path: Path
) -> None:
    """The Ray path (CellSearch): trials asked on the log λ, then a rerun with λ = 0
    whose results.parquet lost them retrains them, and asks the rest on the LINEAR."""
    first = _study(base, storage, tmp_path, (0.1, 1.0))
    todo = stage3_cells(first.settings, PARTNERS)
    search = first.searcher(todo)
    asked = []
    for k in range(len(todo)):
        config = search.suggest(f"r{k}")
        assert config is not None
        cell = Cell.from_dict(json.loads(config["cell"]))
        search.on_trial_complete(f"r{k}", {"val/mean_acc": 0.7, FINAL_KEY: 1})
        search.recorded(cell.id)
        asked.append(cell.id)
    assert sorted(asked) == sorted(c.id for c in todo)
    trials = _trials(storage)
    assert all(_lam(t) == (LAM, FloatDistribution(0.1, 1.0, log=True)) for t in trials)

    rerun = _study(base, storage, tmp_path, (0.0, 0.1, 1.0))  # results.parquet is empty
    todo = stage3_cells(rerun.settings, PARTNERS)
    search = rerun.searcher(todo)
    got = set()
    for k in range(len(todo)):
        config = search.suggest(f"s{k}")
        assert config is not None
        got.add(Cell.from_dict(json.loads(config["cell"])).id)
    assert got == {c.id for c in todo}
    trials = _trials(storage)
    assert len(trials) == 6  # the 4 finished ones retrained in place, 2 asked for λ = 0
    new = [t for t in trials if LINEAR in t.params]
    assert {t.params[LINEAR] for t in new} == {0.0}
