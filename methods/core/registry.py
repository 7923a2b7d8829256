"""The explicit method registry: a dict filled by a decorator at import time.

    @register_method("aal", config=AALConfig)
    def train(config: AALConfig, data: Dataset, ctx: RunContext) -> dict[str, float]: ...

Registration checks the contract (`contract.check_contract`): a config that
lacks a hook is refused with one sentence naming it, at import, not deep in a
trial. A duplicate name is an error (two kernels cannot answer to one name); an
unknown name fails listing the registered ones; `list_methods("m*")` filters.
`MethodSpec` is generic in its config, so mypy checks `spec.train(config, ...)`.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .config import parse_config
from .context import RunContext
from .contract import MethodConfig, check_contract
from .errors import ConfigError

if TYPE_CHECKING:
    from ..data import Dataset

C = TypeVar("C", bound=MethodConfig)
TrainFn = Callable[[C, "Dataset", RunContext], dict[str, float]]


@dataclass(frozen=True)
class MethodSpec(Generic[C]):
    """One registered kernel: its name, typed config class and entry point."""

    name: str
    config_cls: type[C]
    train: TrainFn[C]
    summary: str

    def make_config(self, values: Mapping[str, Any]) -> C:
        """Parse and validate `values` (overrides of the paper's defaults)."""
        return parse_config(self.config_cls, values, method=self.name)


_REGISTRY: dict[str, MethodSpec[Any]] = {}


def register_method(name: str, *, config: type[C]) -> Callable[[TrainFn[C]], TrainFn[C]]:
    """Register `train(config, data, ctx)` under `name` with its config class."""
    check_contract(name, config)

    def decorate(fn: TrainFn[C]) -> TrainFn[C]:
        if name in _REGISTRY:
            raise RuntimeError(f"method '{name}' is registered twice")
        doc = (config.__doc__ or sys.modules[fn.__module__].__doc__ or "").strip()
        _REGISTRY[name] = MethodSpec(name, config, fn, doc.splitlines()[0] if doc else "")
        return fn

    return decorate


def unregister_method(name: str) -> None:
    """Remove a method (tests that register a throwaway one put the registry back)."""
    _REGISTRY.pop(name, None)


def get_method(name: str) -> MethodSpec[Any]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown method '{name}'; registered methods: {', '.join(sorted(_REGISTRY))}"
        ) from None


def list_methods(pattern: str = "*") -> list[str]:
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))
