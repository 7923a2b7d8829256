from __future__ import annotations

import itertools

import pytest

from methods.data import Dataset
from orchestrator.errors import UserInputError
from orchestrator.pair_analysis import Partner
from orchestrator.pairs_plan import default_lambdas, resolve_settings, stage1_cells, stage3_cells
from tests.conftest import TINY_TRAIN


def _settings(data: Dataset, attributes: list[str], **kw: object):
    return resolve_settings(data, attributes=attributes, overrides=dict(TINY_TRAIN), **kw)


@pytest.mark.parametrize("m", [2, 3, 5])
@pytest.mark.parametrize("seeds", [1, 3])
def test_stage1_counts_and_pairs(m: int, seeds: int, tiny_shapes: Dataset) -> None:
    attrs = list(tiny_shapes.domain().label_names[:m])
    cells = stage1_cells(_settings(tiny_shapes, attrs, seeds=seeds))
    assert len(cells) == (m + m * (m - 1) // 2) * seeds
    assert len({c.id for c in cells}) == len(cells)
    pairs = {frozenset(c.tasks) for c in cells if c.stage == "pair"}
    assert pairs == {frozenset(p) for p in itertools.combinations(attrs, 2)}
    assert sorted({c.seed for c in cells}) == list(range(seeds))
    assert {c.method for c in cells} == {"stl", "mtl"}


def test_cell_ids_do_not_depend_on_attribute_order(tiny_shapes: Dataset) -> None:
    a = {c.id for c in stage1_cells(_settings(tiny_shapes, ["red", "large", "left"]))}
    b = {c.id for c in stage1_cells(_settings(tiny_shapes, ["left", "red", "large"]))}
    assert a == b


def test_stage3_counts_one_per_partnered_attribute_lambda_and_seed(tiny_shapes: Dataset) -> None:
    s = _settings(tiny_shapes, ["red", "large", "left"], seeds=2, lambdas=[0.1, 0.5, 1.0])
    partners = {
        "red": Partner("red", ["large"]),
        "large": Partner("large"),
        "left": Partner("left", ["red", "large"]),
    }
    cells = stage3_cells(s, partners)
    assert len(cells) == 2 * 3 * 2  # 2 attributes with partners × 3 λ × 2 seeds
    left = [c for c in cells if c.tasks == ("left",)]
    assert {c.params["lam"] for c in left} == {0.1, 0.5, 1.0}
    assert all(c.params["adversaries"] == ["red", "large"] for c in left)
    assert all(c.params["epochs"] == TINY_TRAIN["epochs"] for c in cells)


def test_defaults_every_binary_attribute_and_paper_lambdas(tiny_shapes: Dataset) -> None:
    s = resolve_settings(tiny_shapes, attributes=None, overrides=dict(TINY_TRAIN))
    assert s.attributes == tiny_shapes.domain().label_names
    assert s.lambdas == default_lambdas(s.protocol) == (0.01, 0.1, 0.3, 0.5, 1.0)


def test_paper_defaults_when_nothing_is_overridden(tiny_shapes: Dataset) -> None:
    s = resolve_settings(tiny_shapes, attributes=["red", "large"], overrides={})
    assert s.train["backbone"] == "resnet18" and s.train["epochs"] == 6
    assert s.train["lr"] == 1e-4 and s.train["weight_decay"] == 5e-4
    assert s.train["lr_milestones"] == [4] and s.train["lr_gamma"] == 0.1
    assert s.adversarial == {
        "adversary_loss": "reversal",
        "critic_clip": 0.01,
        "adversary_domain": "",
        "probe": False,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attributes": ["red"]}, "at least 2 attributes, got 1"),
        ({"attributes": ["red", "purple"]}, "unknown attribute 'purple'.*available: round"),
        ({"attributes": ["red", "red"]}, "names 'red' twice"),
        ({"lambdas": [0.1, -0.2]}, "λ=-0.2 is not allowed"),
        ({"lambdas": []}, "--lambdas is empty"),
        ({"seeds": 0}, "--seeds 0"),
        ({"require_significant": True}, "needs --seeds 2"),
        ({"overrides": {"lam": 0.1}}, "'lam' is set by the pair search itself"),
        ({"overrides": {"colour": 1}}, "unknown setting 'colour'.*valid: backbone"),
        ({"overrides": {"backbone": "vit"}}, "backbone='vit' is not allowed"),
        ({"overrides": {"epochs": -1}}, "epochs=-1 is out of range"),
    ],
)
def test_validation_before_anything_runs(
    kwargs: dict[str, object], message: str, tiny_shapes: Dataset
) -> None:
    args: dict[str, object] = {"attributes": ["red", "large"], "overrides": dict(TINY_TRAIN)}
    args.update(kwargs)
    with pytest.raises(UserInputError, match=message):
        resolve_settings(tiny_shapes, **args)  # type: ignore[arg-type]


def test_identity_holds_dataset_training_and_attributes_not_seeds(tiny_shapes: Dataset) -> None:
    base = _settings(tiny_shapes, ["red", "large"]).identity(tiny_shapes)
    assert _settings(tiny_shapes, ["large", "red"], seeds=3).identity(tiny_shapes) == base
    assert _settings(tiny_shapes, ["red", "large"], lambdas=[0.5]).identity(tiny_shapes) == base
    assert _settings(tiny_shapes, ["red", "left"]).identity(tiny_shapes) != base
    other = resolve_settings(
        tiny_shapes, attributes=["red", "large"], overrides={**TINY_TRAIN, "epochs": 3}
    )
    assert other.identity(tiny_shapes) != base


def test_auto_seeds_start_every_cell_at_the_minimum_and_per_cell_counts_hold(
    tiny_shapes: Dataset,
) -> None:
    from orchestrator.pairs_plan import stage1_cells_for, stage1_keys

    auto = _settings(tiny_shapes, ["red", "large", "left"], seeds="auto", max_seeds=4)
    assert auto.adaptive is not None and auto.seeds == 2 and auto.adaptive.max_seeds == 4
    assert auto.describe()["seeds"] == "auto" and auto.describe()["min_seeds"] == 2
    keys = stage1_keys(auto)
    assert keys == [("red",), ("large",), ("left",), ("large", "red"), ("left", "red"),
                    ("large", "left")]  # fmt: skip
    uniform = {c.id for c in stage1_cells(auto)}
    assert {c.id for c in stage1_cells_for(auto, {k: 2 for k in keys})} == uniform
    more = stage1_cells_for(auto, {**{k: 2 for k in keys}, ("large", "red"): 4})
    assert {c.id for c in more} - uniform == {"pair:large+red:seed=2", "pair:large+red:seed=3"}
