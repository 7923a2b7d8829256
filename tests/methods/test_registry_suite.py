"""The suite every registered method must pass, parametrised over the registry:
a newly registered kernel is tested without anyone adding it here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from methods import (
    ConfigError,
    DivergedError,
    MetricsCollector,
    RunContext,
    get_method,
    list_methods,
)
from methods.data import Dataset, Domain
from tests.conftest import TINY_TRAIN

METHODS = list_methods()


def _config(name: str, data: Dataset, **extra: object):
    spec = get_method(name)
    tasks = spec.config_cls.example(data.domain().binary_attributes())
    return spec, spec.make_config({**TINY_TRAIN, **tasks, **extra})


def _run(name: str, data: Dataset, seed: int = 0, **extra: object):
    spec, config = _config(name, data, **extra)
    config.check_data(data)
    history = MetricsCollector()
    final = spec.train(config, data, RunContext(seed=seed, report=history, num_threads=1))
    return final, history.history


def test_registry_holds_the_foundation_methods() -> None:
    assert {"stl", "mtl", "aal"} <= set(METHODS)


def test_unknown_method_lists_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match="registered methods: .*aal"):
        get_method("nope")


@pytest.mark.parametrize("name", METHODS)
def test_reports_finite_named_losses_and_accuracies(name: str, tiny_shapes: Dataset) -> None:
    final, history = _run(name, tiny_shapes)
    assert [int(h["epoch"]) for h in history] == [1, 2]
    for epoch in history:
        assert "train/loss" in epoch
        assert any(k.startswith("val/acc/") for k in epoch)
        assert all(math.isfinite(v) for v in epoch.values())
    tasks = [k.split("/", 2)[2] for k in final if k.startswith("val/acc/")]
    assert tasks
    for t in tasks:
        assert 0.0 <= final[f"val/acc/{t}"] <= 1.0
        assert 0.0 <= final[f"test/acc/{t}"] <= 1.0
        assert final[f"epoch/{t}"] in (1.0, 2.0)
        # the selected epoch's val accuracy is the best one seen
        assert final[f"val/acc/{t}"] == max(h[f"val/acc/{t}"] for h in history)
    assert all(math.isfinite(v) for v in final.values())


@pytest.mark.parametrize("name", METHODS)
def test_same_seed_same_result_other_seed_differs(name: str, tiny_shapes: Dataset) -> None:
    a, _ = _run(name, tiny_shapes, seed=3)
    b, _ = _run(name, tiny_shapes, seed=3)
    c, _ = _run(name, tiny_shapes, seed=4)
    assert a == b
    assert a["train/loss"] != c["train/loss"]


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"no_such_key": 1}, "unknown config key 'no_such_key'"),
        ({"epochs": "many"}, "epochs='many' is not valid"),
        ({"lr": -0.1}, "lr=-0.1 is out of range"),
        ({"backbone": "resnet1000"}, "backbone='resnet1000' is not allowed; choose one of"),
    ],
)
def test_bad_config_rejected_before_training(
    name: str, override: dict[str, object], message: str, tiny_shapes: Dataset
) -> None:
    with pytest.raises(ConfigError, match=message):
        _, config = _config(name, tiny_shapes, **override)
        config.check_data(tiny_shapes)


@pytest.mark.parametrize("name", METHODS)
def test_unknown_attribute_rejected(name: str, tiny_shapes: Dataset) -> None:
    spec = get_method(name)
    tasks = spec.config_cls.example(["no_such_attribute", "red"])
    config = spec.make_config({**TINY_TRAIN, **tasks})
    with pytest.raises(Exception, match="unknown attribute 'no_such_attribute'"):
        config.check_data(tiny_shapes)


@pytest.mark.parametrize("name", METHODS)
def test_divergence_stops_the_run_instead_of_reporting_nan(name: str) -> None:
    rng = np.random.default_rng(0)
    n = 60
    inputs = rng.normal(size=(n, 5)).astype(np.float32)
    inputs[::7, 2] = np.nan  # corrupt features: the loss cannot stay finite
    labels = rng.integers(0, 2, size=(n, 2)).astype(np.float32)
    split = np.array(["train", "val", "test"])[np.arange(n) % 3]
    data = Dataset("corrupt", {"d": Domain("d", inputs, labels, ("x", "y"), split)}, "corrupt")
    spec = get_method(name)
    config = spec.make_config(
        {**TINY_TRAIN, "backbone": "mlp", **spec.config_cls.example(["x", "y"])}
    )
    history = MetricsCollector()
    with pytest.raises(DivergedError, match="diverged"):
        spec.train(config, data, RunContext(seed=0, report=history))
    assert not history.history  # nothing was reported for the diverged epoch
