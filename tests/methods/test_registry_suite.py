"""The suite every registered method must pass, parametrised over the registry:
a newly registered kernel is tested without anyone adding it here. Each method
builds its small config through its own `for_grid` hook on `tiny_digits`."""

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
from methods.roles import GridRoles
from tests.conftest import TINY_TRAIN, tiny_config_values

METHODS = list_methods()


def _run(name: str, data: Dataset, seed: int = 0, **extra: object):
    spec = get_method(name)
    config = spec.make_config(tiny_config_values(name, **extra))
    config.check_data(data)
    history = MetricsCollector()
    final = spec.train(config, data, RunContext(seed=seed, report=history, num_threads=1))
    return config, final, history.history


def test_registry_holds_the_methods() -> None:
    assert {"stl", "mtl", "aal", "goal1", "tl", "amtl", "dann", "purified", "tl_purified"} <= set(
        METHODS
    )


def test_unknown_method_lists_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match="registered methods: .*aal"):
        get_method("nope")


@pytest.mark.parametrize("name", METHODS)
def test_every_method_has_a_documented_config(name: str) -> None:
    spec = get_method(name)
    assert spec.summary and spec.config_cls.__doc__
    main, _aux = spec.make_config(tiny_config_values(name)).roles()
    assert main[0] == "digit"


@pytest.mark.parametrize("name", METHODS)
def test_reports_finite_named_losses_and_accuracies(name: str, tiny_digits: Dataset) -> None:
    config, final, history = _run(name, tiny_digits)
    assert [int(h["epoch"]) for h in history] == [1, 2]
    for epoch in history:
        assert "train/loss" in epoch and "val/acc/digit" in epoch
        assert "test@plain/acc/digit" in epoch  # the cross-domain test, every epoch
        assert all(math.isfinite(v) for v in epoch.values())
    for key in ("val/acc/digit", "test/acc/digit", "test@plain/acc/digit", "val/mean_acc"):
        assert 0.0 <= final[key] <= 1.0
    chosen = int(final["epoch/digit"])
    if config.select == "last":
        assert chosen == 2
    else:  # the selected epoch's val accuracy is the best one seen
        assert final["val/acc/digit"] == max(h["val/acc/digit"] for h in history)
    assert final["test@plain/acc/digit"] == history[chosen - 1]["test@plain/acc/digit"]
    assert all(math.isfinite(v) for v in final.values())


@pytest.mark.parametrize("name", METHODS)
def test_same_seed_same_result_other_seed_differs(name: str, tiny_digits: Dataset) -> None:
    _, a, _ = _run(name, tiny_digits, seed=3)
    _, b, _ = _run(name, tiny_digits, seed=3)
    _, c, _ = _run(name, tiny_digits, seed=4)
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
        ({"optimizer": "lbfgs"}, "optimizer='lbfgs' is not valid"),
    ],
)
def test_bad_config_rejected_before_training(
    name: str, override: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        get_method(name).make_config(tiny_config_values(name, **override))


@pytest.mark.parametrize("name", METHODS)
def test_unknown_label_and_domain_rejected(name: str, tiny_digits: Dataset) -> None:
    spec = get_method(name)
    roles = GridRoles("colour", "irrelevant", "bg", "plain", "digit")
    config = spec.make_config({**TINY_TRAIN, **spec.config_cls.for_grid(roles, "target", [])})
    with pytest.raises(Exception, match="unknown attribute 'colour'"):
        config.check_data(tiny_digits)
    config = spec.make_config(tiny_config_values(name, test_domains=["mars"]))
    with pytest.raises(Exception, match="unknown domain 'mars'"):
        config.check_data(tiny_digits)


def _corrupt() -> Dataset:
    rng = np.random.default_rng(0)
    domains = {}
    for name in ("target", "irrelevant", "plain"):
        n = 60
        inputs = rng.normal(size=(n, 5)).astype(np.float32)
        inputs[::7, 2] = np.nan  # corrupt features: the loss cannot stay finite
        labels = rng.integers(0, 2, size=(n, 2)).astype(np.float32)
        split = np.array(["train", "val", "test"])[np.arange(n) % 3]
        domains[name] = Domain(name, inputs, labels, ("digit", "bg"), split)
    return Dataset("corrupt", domains, "corrupt")


@pytest.mark.parametrize("name", METHODS)
def test_divergence_stops_the_run_instead_of_reporting_nan(name: str) -> None:
    spec = get_method(name)
    values = tiny_config_values(name, backbone="mlp")
    for key in ("relevant_domain", "source_domain"):  # the relevant set's key, per method
        if values.get(key) == "relevant":
            values[key] = "plain"
    config = spec.make_config(values)
    history = MetricsCollector()
    with pytest.raises(DivergedError, match="diverged"):
        spec.train(config, _corrupt(), RunContext(seed=0, report=history))
    assert not history.history  # nothing was reported for the diverged epoch
