"""Successive halving over λ (stage 3 of the pair search), the decisions alone."""

from __future__ import annotations

from orchestrator.lambda_halving import survivors, trainings


def test_the_best_half_goes_on_by_mean_validation_accuracy() -> None:
    values = {
        ("red", 0.01): [0.70, 0.72],
        ("red", 0.1): [0.80, 0.78],
        ("red", 0.5): [0.75, 0.75],
        ("red", 1.0): [0.60, 0.90],  # mean 0.75: ties with 0.5, the smaller λ ranks first
    }
    race = {"red": [0.01, 0.1, 0.5, 1.0]}
    assert survivors(values, race, 2) == {"red": [0.1, 0.5]}
    assert survivors(values, race, 3) == {"red": [0.1, 0.5]}  # ⌈4/3⌉ = 2
    assert survivors(values, race, 4) == {"red": [0.1]}
    assert survivors(values, race, 100) == {"red": [0.1]}  # never fewer than one


def test_a_lambda_whose_runs_failed_ranks_last_and_attributes_race_apart() -> None:
    values = {("red", 0.1): [0.5], ("large", 0.1): [0.9], ("large", 1.0): [0.8]}
    race = {"red": [0.1, 1.0], "large": [0.1, 1.0]}
    assert survivors(values, race, 2) == {"red": [0.1], "large": [0.1]}
    only_failed = {"red": [0.3, 1.0]}
    assert survivors({}, only_failed, 2) == {"red": [0.3]}  # nothing known: the smaller


def test_trainings_counts_each_round() -> None:
    # the paper's five λ values over five seeds: 5 + 3 + 2 + 1 + 1 against a grid of 25
    assert trainings(5, 5, 2) == 12
    assert trainings(5, 3, 2) == 10
    assert trainings(5, 2, 4) == 7
    assert trainings(1, 4, 2) == 4
