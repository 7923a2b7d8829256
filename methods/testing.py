"""The shared suite every registered method passes, shipped with the package (as
Optuna ships `optuna/testing/`).

Each check takes a registered method's name, trains its `tiny_example()` and
asserts one part of the contract (`methods.core.contract`); `CHECKS` lists
them all. A test parametrised over the registry and the checks tests a new
method with no edit anywhere else:

    import pytest
    from methods import list_methods
    from methods.testing import CHECKS

    @pytest.mark.parametrize("method", list_methods())
    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    def test_method_contract(method, check):
        check(method)

`registered(name, config, train)` registers a throwaway method for the length
of a `with` block and puts the registry back afterwards.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from .core import (
    ArtifactCollector,
    ConfigError,
    DivergedError,
    MethodConfig,
    MetricsCollector,
    RunContext,
    UserInputError,
    config_to_dict,
    get_method,
    register_method,
    unregister_method,
)
from .core.registry import TrainFn
from .core.selection import CURVE_PREFIX
from .data import Dataset, Domain

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Run:
    """One training of a method: its config, final metrics, per-epoch history and
    artifacts."""

    config: MethodConfig
    final: dict[str, float]
    history: list[dict[str, float]]
    artifacts: dict[str, dict[str, np.ndarray]]


def example(method: str) -> tuple[MethodConfig, Dataset]:
    """The method's tiny example (config, data), checked to be what the hook promises."""
    spec = get_method(method)
    config, data = spec.config_cls.tiny_example()
    assert isinstance(config, spec.config_cls), (
        f"{method}: tiny_example() returned a {type(config).__name__}, not a"
        f" {spec.config_cls.__name__}"
    )
    assert isinstance(data, Dataset), f"{method}: tiny_example() returned no Dataset"
    return config, data


def train(
    method: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    data: Dataset | None = None,
) -> Run:
    """Train the method's tiny example, with `overrides` of its config values."""
    spec = get_method(method)
    config, example_data = example(method)
    if overrides:
        config = spec.make_config({**config_to_dict(config), **overrides})
    data = example_data if data is None else data
    config.check_data(data)
    history, artifacts = MetricsCollector(), ArtifactCollector()
    final = spec.train(
        config, data, RunContext(seed=seed, report=history, num_threads=1, artifact=artifacts)
    )
    return Run(config, final, history.history, artifacts.tables)


def _baseline(method: str, seed: int = 0) -> Run:
    """The example's own run (several checks compare to it)."""
    return _cached(method, (), seed)


@functools.cache
def _cached(method: str, overrides: tuple[tuple[str, Any], ...], seed: int) -> Run:
    """`train`, once per process for each (method, overrides, seed)."""
    return train(
        method, {k: list(v) if isinstance(v, tuple) else v for k, v in overrides}, seed=seed
    )


def _train_once(method: str, overrides: Mapping[str, Any], seed: int = 0) -> Run:
    frozen = tuple(
        sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in overrides.items())
    )
    return _cached(method, frozen, seed)


# ---------------------------------------------------------------- the checks


def check_declares_the_contract(method: str) -> None:
    """A summary, a documented config, a valid example that survives the JSON round
    trip every search makes, main tasks, and objectives the metrics name."""
    spec = get_method(method)
    assert spec.summary, f"{method}: no summary (the config's docstring)"
    config, data = example(method)
    config.check_data(data)
    again = spec.make_config(config_to_dict(config))
    assert again == config, f"{method}: its config does not survive config_to_dict/make_config"
    main, _aux = config.run_tasks()
    assert main, f"{method}: run_tasks() names no main task"
    objectives = config.objectives()
    assert objectives.get("val/mean_acc") == "max"
    for key, goal in objectives.items():
        assert key.startswith("val") and goal in ("max", "min"), f"{method}: objective {key}"


def check_reports_every_epoch(method: str) -> None:
    """One report per epoch with finite named losses and every declared objective;
    final metrics of the selected epoch (test never chosen on test); cross-domain
    tests; and a PNG for every declared plot of an artifact it keeps."""
    run = _baseline(method)
    config, final, history = run.config, run.final, run.history
    epochs = [int(h["epoch"]) for h in history]
    assert epochs == list(range(1, config.reported_epochs() + 1)), (
        f"{method}: reported epochs {epochs}, declared {config.reported_epochs()}"
    )
    objectives = config.objectives()
    for row in history:
        assert "train/loss" in row, f"{method}: no train/loss in epoch {row['epoch']}"
        missing = sorted(set(objectives) - set(row))
        assert not missing, f"{method}: declared objective {missing[0]} is not reported"
        bad = [k for k, v in row.items() if not math.isfinite(v)]
        assert not bad, f"{method}: {bad[0]} is not finite"
    missing = sorted(set(objectives) - set(final))
    assert not missing, f"{method}: {missing[0]} is missing from the final metrics"
    assert all(math.isfinite(v) for v in final.values())
    for key, value in final.items():
        if key.split("/")[-2:-1] == ["acc"] or key.endswith("/mean_acc"):
            assert 0.0 <= value <= 1.0, f"{method}: accuracy {key} = {value}"
    for domain in config.test_domains:
        assert f"test@{domain}/mean_acc" in final, f"{method}: no test on '{domain}'"
    names = {m.name for m in config.metrics}
    main, _aux = config.run_tasks()
    for task in main:
        chosen = int(final[f"epoch/{task}"])
        if config.select == "last":
            assert chosen == len(history), f"{method}: select=last chose epoch {chosen}"
        for key, value in final.items():
            parts = key.split("/")
            if len(parts) == 3 and parts[1] in names and parts[2] == task and key in history[0]:
                assert value == history[chosen - 1][key], (
                    f"{method}: final {key} is not that of the selected epoch {chosen}"
                )
    if config.select == "best_val" and len(main) == 1:
        key = next(k for k in objectives if k.endswith(f"/acc/{main[0]}"))
        assert final[key] == max(h[key] for h in history), f"{method}: not the best {key}"
    curves = {m.name for m in config.metrics if m.curve}
    for key, value in final.items():
        if key.startswith(CURVE_PREFIX):  # curve/<epoch>/<split>/<name>/<task>
            epoch, rest = key[len(CURVE_PREFIX) :].split("/", 1)
            assert rest.split("/")[1] in curves, f"{method}: {key} is no declared curve"
            assert value == history[int(epoch) - 1][rest], f"{method}: {key} is not epoch {epoch}'s"
    for row in history:
        for key in row:
            parts = key.split("/")
            if len(parts) == 3 and parts[0].startswith(("val", "test")) and parts[1] in curves:
                row_epoch = int(row["epoch"])
                assert f"{CURVE_PREFIX}{row_epoch}/{key}" in final, (
                    f"{method}: curve {key} of epoch {row_epoch} is not in the final metrics"
                )
    for name, plot in config.plots.items():
        if name in run.artifacts:
            assert plot(run.artifacts[name]).startswith(PNG_MAGIC), f"{method}: plot {name}"


def check_same_seed_same_result(method: str) -> None:
    """Deterministic for a seed on CPU; another seed trains differently."""
    a, b = _baseline(method), train(method, seed=0)
    assert a.final == b.final and a.history == b.history, f"{method}: seed 0 twice differs"
    c = train(method, seed=1)
    assert a.final["train/loss"] != c.final["train/loss"], f"{method}: seeds 0 and 1 agree"


BAD_VALUES: tuple[tuple[dict[str, Any], str], ...] = (
    ({"no_such_key": 1}, "unknown config key 'no_such_key'"),
    ({"epochs": "many"}, "epochs='many' is not valid"),
    ({"epochs": 1.5}, "epochs=1.5 is not valid"),
    ({"lr": -0.1}, "lr=-0.1 is out of range"),
    ({"backbone": "resnet1000"}, "backbone='resnet1000' is not allowed; choose one of"),
    ({"optimizer": "lbfgs"}, "optimizer='lbfgs' is not valid"),
)


def check_bad_config_refused(method: str) -> None:
    """Unknown keys, wrong types and out-of-range values are refused in one sentence."""
    spec = get_method(method)
    config, _ = example(method)
    for override, message in BAD_VALUES:
        with _raises(ConfigError, message):
            spec.make_config({**config_to_dict(config), **override})


def check_unknown_label_and_domain_refused(method: str) -> None:
    """check_data names a label the data lacks, and a domain it lacks, before training."""
    config, data = example(method)
    renamed = {
        name: Domain(d.name, d.inputs, d.labels, tuple(f"{n}_x" for n in d.label_names), d.split)
        for name, d in data.domains.items()
    }
    with _raises(UserInputError, "unknown attribute '"):
        config.check_data(dataclasses.replace(data, domains=renamed))
    moved = get_method(method).make_config({**config_to_dict(config), "test_domains": ["mars"]})
    with _raises(UserInputError, "unknown domain 'mars'"):
        moved.check_data(data)


def check_divergence_stops_the_run(method: str) -> None:
    """A loss that becomes NaN stops the run with DivergedError; nothing of the
    diverged epoch is reported."""
    spec = get_method(method)
    config, data = example(method)
    corrupt = {}
    for name, d in data.domains.items():
        inputs = d.inputs.reshape(len(d.inputs), -1).astype(np.float32)
        inputs[::7, inputs.shape[1] // 2] = np.nan
        corrupt[name] = Domain(d.name, inputs, d.labels, d.label_names, d.split)
    config = spec.make_config({**config_to_dict(config), "backbone": "mlp", "weights": ""})
    history = MetricsCollector()
    with _raises(DivergedError, "diverged"):
        spec.train(config, dataclasses.replace(data, domains=corrupt), RunContext(report=history))
    assert not history.history, f"{method}: reported an epoch of a diverged run"


def inherited_probes(config: MethodConfig) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(setting, base values, changed values): pairs of configs that differ in one
    inherited training setting, and so must train differently (or be refused)."""
    other = "sgd" if config.optimizer == "adam" else "adam"
    flat = {"lr_step_size": 0, "lr_milestones": []}
    return [
        ("optimizer", {}, {"optimizer": other}),
        ("momentum", {"optimizer": "sgd", "momentum": 0.9}, {"optimizer": "sgd", "momentum": 0.5}),
        ("lr", {}, {"lr": config.lr * 3}),
        ("weight_decay", {"weight_decay": 0.0}, {"weight_decay": 0.05}),
        ("lr_milestones", flat, {**flat, "lr_milestones": [1], "lr_gamma": 0.1}),
        ("lr_step_size", flat, {**flat, "lr_step_size": 1, "lr_gamma": 0.1}),
        ("batch_size", {}, {"batch_size": max(2, config.batch_size // 2)}),
        ("feature_dim", {}, {"feature_dim": config.feature_dim + 8}),
        ("loss_reduction", {"loss_reduction": "mean"}, {"loss_reduction": "sum"}),
    ]


def check_inherited_settings_honoured(method: str) -> None:
    """Every shared training setting a config inherits changes the training, or the
    method refuses it: a kernel never accepts a setting and then ignores it."""
    config, _ = example(method)
    values = config_to_dict(config)
    for setting, base, changed in inherited_probes(config):
        try:
            after = _train_once(method, changed)
        except UserInputError:
            continue  # refused: the method says it does not take this value
        same_base = all(values.get(k) == v for k, v in base.items())
        before = _baseline(method) if same_base else _train_once(method, base)
        assert (before.history, before.final) != (after.history, after.final), (
            f"{method}: setting {setting} ({base or values.get(setting)} → {changed}) changed"
            " nothing; honour it in the kernel or refuse it in check()"
        )


def check_packed_as_alone(method: str) -> None:
    """A method whose `pack_plan()` declares it packable trains inside a pack (two
    copies of its example, without test domains) to every number of every epoch
    it gets alone, in float64 to 1e-6; one that declares no plan never packs."""
    import torch

    from .core.packed import pack_key, train_pack

    spec = get_method(method)
    config, data = example(method)
    config = spec.make_config({**config_to_dict(config), "test_domains": [], "pca_components": 0})
    if config.pack_plan() is None or pack_key(config, 0) is None:
        assert config.pack_plan() is not None or pack_key(config, 0) is None
        return
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        alone = MetricsCollector()
        final = spec.train(config, data, RunContext(seed=0, report=alone, num_threads=1))
        together = [MetricsCollector(), MetricsCollector()]
        ctxs = [RunContext(seed=0, report=h, num_threads=1) for h in together]
        results = train_pack([config, config], data, ctxs)
    finally:
        torch.set_default_dtype(before)
    for result, history in zip(results, together, strict=True):
        assert isinstance(result, dict), f"{method}: failed in a pack: {result}"
        for got, want in [(result, final), *zip(history.history, alone.history, strict=True)]:
            assert got.keys() == want.keys(), f"{method}: a pack reports other metrics"
            worst = max(abs(got[k] - want[k]) for k in want)
            assert worst < 1e-6, f"{method}: packed differs from alone by {worst:g}"


CHECKS: tuple[Callable[[str], None], ...] = (
    check_declares_the_contract,
    check_reports_every_epoch,
    check_same_seed_same_result,
    check_bad_config_refused,
    check_unknown_label_and_domain_refused,
    check_divergence_stops_the_run,
    check_inherited_settings_honoured,
    check_packed_as_alone,
)


def run_suite(method: str) -> None:
    """Every check, in turn, on one method."""
    for check in CHECKS:
        check(method)


@contextmanager
def registered(name: str, config: type[MethodConfig], train: TrainFn[Any]) -> Iterator[None]:
    """`train` registered as method `name` inside the block, removed after it."""
    register_method(name, config=config)(train)
    try:
        yield
    finally:
        unregister_method(name)
        _cached.cache_clear()


@contextmanager
def _raises(kind: type[BaseException], match: str) -> Iterator[None]:
    try:
        yield
    except kind as exc:
        assert re.search(match, str(exc)), f"{str(exc)!r} does not match {match!r}"
        return
    raise AssertionError(f"{kind.__name__} matching {match!r} was not raised")
