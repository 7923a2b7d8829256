"""A new method is one module and one search-space file: a throwaway method,
registered in a fixture, passes the shared suite with no edit elsewhere — and
the suite fails a method that breaks the contract."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from methods import MethodConfig, RunContext, get_method, list_methods, register_method
from methods.core import MethodContractError, Trainer, meta, train_heads
from methods.core.examples import grid_example
from methods.core.optim import build_optimizer
from methods.data import Dataset
from methods.testing import CHECKS, registered, run_suite


@dataclass(frozen=True)
class ProbeConfig(MethodConfig):
    """A linear probe of one label: the smallest method there is."""

    task: str = field(default="", metadata=meta("the label to learn"))

    @staticmethod
    def for_grid(roles: Any, train: str, tests: Any) -> dict[str, Any]:
        return {"domain": train, "test_domains": list(tests), "task": roles.task}

    @classmethod
    def tiny_example(cls) -> tuple[ProbeConfig, Dataset]:
        return grid_example(cls)


def train_probe(config: ProbeConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    return train_heads(config, (config.task,), data, ctx)


@pytest.fixture
def probe() -> Iterator[str]:
    with registered("probe", ProbeConfig, train_probe):
        yield "probe"
    assert "probe" not in list_methods()  # the registry is put back


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_a_throwaway_method_passes_the_shared_suite(probe: str, check: Any) -> None:
    check(probe)


def test_a_method_that_ignores_an_inherited_setting_fails_the_suite() -> None:
    """A kernel that always uses Adam, whatever `optimizer` says (jdm's old bug)."""

    def always_adam(config: ProbeConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
        trainer = Trainer(config, data, ctx)
        adam = dataclasses.replace(config, optimizer="adam")
        trainer.optimizer = lambda params: build_optimizer(adam, params)  # type: ignore[method-assign]
        return train_heads(config, (config.task,), data, ctx, trainer=trainer)

    with (
        registered("adam_only", ProbeConfig, always_adam),
        pytest.raises(AssertionError, match="setting optimizer .* changed nothing"),
    ):
        run_suite("adam_only")


def test_a_method_that_misdeclares_its_metrics_fails_the_suite() -> None:
    @dataclass(frozen=True)
    class WrongMetrics(ProbeConfig):
        """A probe that declares a metric it never reports."""

        def objectives(self) -> dict[str, Any]:
            return {**super().objectives(), f"val/f1/{self.task}": "max"}

    with (
        registered("wrong_metrics", WrongMetrics, train_probe),
        pytest.raises(AssertionError, match="val/f1/digit is not reported"),
    ):
        run_suite("wrong_metrics")


def test_registration_refuses_a_config_without_the_contract() -> None:
    @dataclass(frozen=True)
    class NoExample(MethodConfig):
        """A config without a tiny example."""

        task: str = field(default="", metadata=meta("the label"))

    with pytest.raises(MethodContractError, match="does not implement the hook tiny_example"):
        register_method("no_example", config=NoExample)(train_probe)

    @dataclass(frozen=True)
    class NoTask(MethodConfig):
        """A config with no `task` field and no run_tasks()."""

        label: str = field(default="", metadata=meta("the label"))

        @classmethod
        def tiny_example(cls) -> tuple[NoTask, Dataset]:
            raise AssertionError("never asked")

    with pytest.raises(MethodContractError, match="no `task` field, so it must implement"):
        register_method("no_task", config=NoTask)(train_probe)  # type: ignore[arg-type]

    class Plain:
        """Not a MethodConfig."""

    with pytest.raises(MethodContractError, match="must be a dataclass subclassing"):
        register_method("plain", config=Plain)(train_probe)  # type: ignore[type-var]

    @dataclass(frozen=True)
    class Undocumented(ProbeConfig):
        """A config with a setting nobody described."""

        depth: int = 3

    with pytest.raises(MethodContractError, match="setting 'depth' of Undocumented"):
        register_method("undocumented", config=Undocumented)(train_probe)
    assert not {"no_example", "no_task", "plain", "undocumented"} & set(list_methods())
    assert get_method("stl")  # the registry is intact
