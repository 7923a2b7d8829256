"""A sweep's study belongs to one search, and a finite space is used up before any
point repeats (issue 16: a reused study name read another search's trials; 15 TPE
trials over five λ values trained ten repeats)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from orchestrator.cli import main
from orchestrator.errors import UserInputError
from orchestrator.inputs import resolve_dataset
from orchestrator.searcher import UntriedFirst, finite_points
from orchestrator.spaces import bundled_space_path, load_space
from orchestrator.study import IDENTITY_ATTR, claim_study, open_storage
from orchestrator.sweep import resolve_sweep

optuna.logging.set_verbosity(optuna.logging.WARNING)

LAMBDAS = CategoricalDistribution([0.01, 0.1, 0.3, 0.5, 1.0])


def _proposals(sampler: optuna.samplers.BaseSampler, space: dict, n: int) -> list[tuple]:
    study = optuna.create_study(sampler=sampler, direction="maximize")
    seen = []
    for _ in range(n):
        trial = study.ask(fixed_distributions=space)
        point = tuple(trial.params[k] for k in space)
        seen.append(point)
        study.tell(trial, -sum(abs(float(v) - 0.1) for v in point))
    return seen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tpe_alone_repeats_a_point_but_not_when_wrapped(seed: int) -> None:
    tpe = optuna.samplers.TPESampler(seed=seed, n_startup_trials=2)
    alone = _proposals(tpe, {"lam": LAMBDAS}, 5)
    wrapped = _proposals(
        UntriedFirst(optuna.samplers.TPESampler(seed=seed, n_startup_trials=2),
                     {"lam": LAMBDAS}, seed=seed),
        {"lam": LAMBDAS},
        5,
    )  # fmt: skip
    assert len(set(alone)) < 5, "TPE alone was expected to repeat (the bug this guards)"
    assert sorted(wrapped) == sorted((v,) for v in LAMBDAS.choices)


def test_a_two_key_space_with_an_integer_range_is_enumerated_by_random_sampling() -> None:
    space = {"lam": LAMBDAS, "width": IntDistribution(1, 3)}
    assert len(finite_points(space) or []) == 15
    sampler = UntriedFirst(optuna.samplers.RandomSampler(seed=0), space, seed=0)
    assert len(set(_proposals(sampler, space, 15))) == 15


def test_a_continuous_key_makes_a_space_infinite() -> None:
    assert finite_points({"lam": LAMBDAS, "lr": FloatDistribution(1e-4, 1e-2, log=True)}) is None


def test_more_trials_than_points_is_refused(tmp_path: Path, capsys) -> None:
    args = [
        "sweep", "--method", "aal", "--trials", "6", "--dataset", "shapes:n=90,image_size=16",
        "--set", "main=[red]", "--set", "adversaries=[large]", "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "--trials 6 exceeds the 5 point(s)" in err and "--seeds K" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()


def _settings(epochs: int):
    dataset = resolve_dataset("shapes:n=90,image_size=16", None, None)
    settings = resolve_sweep(
        dataset,
        method="aal",
        space=load_space(bundled_space_path("aal"), "aal"),
        overrides={"main": ["red"], "adversaries": ["large"], "epochs": epochs},
        trials=2,
        study="shared",
    )
    return settings.identity(dataset)


def test_a_study_takes_its_first_search_and_refuses_another(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    storage = open_storage(url)
    claim_study(storage, "shared", _settings(1), url)
    claim_study(storage, "shared", _settings(1), url)  # the same search resumes
    with pytest.raises(UserInputError, match="base.epochs: 1 there, 2 here"):
        claim_study(storage, "shared", _settings(2), url)
    # a study no search claimed, holding trials, is not taken over
    study = optuna.create_study(storage=storage, study_name="foreign")
    study.tell(study.ask(), 1.0)
    with pytest.raises(UserInputError, match="holds 1 trial"):
        claim_study(storage, "foreign", _settings(1), url)
    assert IDENTITY_ATTR not in optuna.load_study(study_name="foreign", storage=url).user_attrs


def test_a_sweep_naming_another_searchs_study_exits_2_before_writing(
    tmp_path: Path, capsys
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    claim_study(open_storage(url), "shared", _settings(1), url)
    args = [
        "sweep", "--method", "aal", "--trials", "2", "--dataset", "shapes:n=90,image_size=16",
        "--set", "main=[red]", "--set", "adversaries=[large]", "--set", "epochs=2",
        "--storage", url, "--study", "shared", "--out", str(tmp_path / "second"),
    ]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "study 'shared'" in err and "belongs to another search" in err
    assert "base.epochs: 1 there, 2 here" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "second").exists()
