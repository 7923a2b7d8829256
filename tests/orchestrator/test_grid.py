"""Grid planning and tables (no Ray): cell counts, configs, validation, matrices."""

from __future__ import annotations

import pytest

from methods.data import Dataset
from methods.purified.protocol import PLProtocol
from orchestrator.cells import Outcome
from orchestrator.errors import UserInputError
from orchestrator.grid import (
    cross_accuracies,
    format_table1,
    grid_cells,
    grid_matrix,
    resolve_grid,
)
from orchestrator.protocols import load_grid_protocol
from orchestrator.results import outcome_rows

SMALL = {"epochs": 1, "batch_size": 32}
T0 = "2026-01-01T00:00:00+00:00"  # a finish time


def _grid(data: Dataset, **kw: object):
    args: dict[str, object] = {
        "methods": None,
        "train": None,
        "test": None,
        "backbones": ["small_cnn"],
        "overrides": dict(SMALL),
    }
    args.update(kw)
    return resolve_grid(data, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("trains", "backbones", "methods", "seeds"),
    [
        (["target"], ["small_cnn"], ["goal1"], 1),
        (["target", "coloured"], ["small_cnn", "mlp"], ["goal1", "purified", "mtl"], 1),
        (["target", "plain"], ["small_cnn"], list(load_grid_protocol().methods), 2),
    ],
)
def test_one_training_per_train_domain_backbone_method_and_seed(
    tiny_digits: Dataset, trains: list[str], backbones: list[str], methods: list[str], seeds: int
) -> None:
    settings = _grid(tiny_digits, train=trains, backbones=backbones, methods=methods, seeds=seeds)
    cells = grid_cells(settings)
    assert len(cells) == len(trains) * len(backbones) * len(methods) * seeds
    assert len({c.id for c in cells}) == len(cells)
    for cell in cells:  # one training fills its whole test row
        train = cell.domain
        assert cell.params["test_domains"] == [d for d in settings.test if d != train]


def test_defaults_come_from_the_dataset_and_the_paper(tiny_digits: Dataset) -> None:
    settings = _grid(tiny_digits, overrides={})
    assert settings.methods == ("goal1", "tl", "mtl", "amtl", "dann", "purified")
    assert settings.train == ("target",) and settings.test == ("plain", "coloured", "blended")
    assert settings.roles.irrelevant_domain == "irrelevant" and settings.roles.task == "digit"
    cell = next(c for c in grid_cells(settings) if c.method == "mtl")
    for key, value in load_grid_protocol().settings.items():  # the protocol, for every method
        assert cell.params[key] == value
    assert cell.params["optimizer"] == "sgd" and cell.params["lr_step_size"] == 7
    assert cell.params["tasks"] == ["digit", "bg"]
    assert cell.params["task_domains"] == ["target", "irrelevant"]


def test_per_method_settings(tiny_digits: Dataset) -> None:
    settings = _grid(
        tiny_digits,
        methods=["goal1", "purified"],
        overrides={**SMALL, "purified.critic_clip": 0.05},
    )
    by_method = {c.method: c.params for c in grid_cells(settings)}
    assert by_method["purified"]["critic_clip"] == 0.05
    assert "critic_clip" not in by_method["goal1"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"methods": ["goal1", "nope"]}, "unknown method 'nope'"),
        ({"train": ["mars"]}, "unknown domain 'mars'"),
        ({"irrelevant": "irrelevant"}, "--irrelevant irrelevant: expected DOMAIN:LABEL"),
        ({"irrelevant": "irrelevant:hue"}, "unknown attribute 'hue'"),
        ({"test": ["target"]}, "training on 'target' leaves nothing to test on"),
        (
            {"overrides": {"critic_clip": 0.1}},
            "grid method 'goal1': unknown config key 'critic_clip'",
        ),
        ({"overrides": {"dann.crtic": 1}}, "unknown config key 'crtic' for method 'dann'"),
        ({"overrides": {"nope.lr": 1}}, "'nope' is not one of the grid's methods"),
        ({"backbones": []}, "--backbones is empty"),
    ],
)
def test_mistakes_are_one_sentence(tiny_digits: Dataset, kw: dict, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        _grid(tiny_digits, **kw)


def test_matrix_and_table_from_results(tiny_digits: Dataset) -> None:
    settings = _grid(tiny_digits, methods=["goal1", "purified"], seeds=2)
    rows = []
    for cell in grid_cells(settings):
        base = 0.5 if cell.method == "purified" else 0.3
        metrics = {
            f"test@{d}/acc/digit": base + 0.1 * i + 0.01 * cell.seed
            for i, d in enumerate(cell.params["test_domains"])
        }
        metrics |= {"val/acc/digit": 0.9, "epoch/digit": 1.0}
        rows += outcome_rows(
            Outcome(cell, "ok", metrics, 1.0, T0), search="grid", dataset="digit_domains"
        )
    ids = {c.id for c in grid_cells(settings)}
    acc = cross_accuracies(rows, settings, ids)
    assert len(acc) == 2 * 3 * 2  # methods × test domains × seeds
    matrix = grid_matrix(acc, settings)
    row = matrix[matrix["method"] == "purified"].iloc[0]
    assert row["plain"] == pytest.approx(0.505) and row["blended"] == pytest.approx(0.705)
    assert row["plain_std"] == pytest.approx(0.00707, abs=1e-4)
    table = format_table1(matrix, settings)
    assert "target → coloured" in table and "average" in table
    assert "50.50" in table and "40.50" in table  # purified plain; goal1 coloured
    assert "60.50" in table.splitlines()[-1]  # purified's average over the three tests


def test_failed_cells_leave_holes_not_numbers(tiny_digits: Dataset) -> None:
    settings = _grid(tiny_digits, methods=["goal1"])
    (cell,) = grid_cells(settings)
    rows = outcome_rows(
        Outcome(cell, "failed", {}, 1.0, T0, error="boom"), search="grid", dataset="d"
    )
    matrix = grid_matrix(cross_accuracies(rows, settings, {cell.id}), settings)
    assert matrix.iloc[0]["plain"] is None


def test_the_bundled_grid_protocol_is_the_pl_kernels_own_defaults() -> None:
    """search_spaces/protocols/grid.yaml and `PLProtocol` state the paper's settings
    twice (a file users copy, a config the kernels default to): they must agree."""
    protocol = load_grid_protocol()
    defaults = PLProtocol()
    assert set(protocol.settings) == set(PLProtocol.__annotations__)
    for key, value in protocol.settings.items():
        assert getattr(defaults, key) == value, key
