"""The explicit method registry: a dict filled by a decorator at import time.

    @register_method("aal", config=AALConfig)
    def train(config: AALConfig, data: Dataset, ctx: RunContext) -> dict[str, float]: ...

A duplicate name is an error (two kernels cannot answer to one name); an
unknown name fails listing the registered ones; `list_methods("m*")` filters.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .config import parse_config
from .errors import ConfigError

TrainFn = Callable[[Any, Any, Any], dict[str, float]]


@dataclass(frozen=True)
class MethodSpec:
    """One registered kernel: its name, typed config class and entry point."""

    name: str
    config_cls: type
    train: TrainFn
    summary: str

    def make_config(self, values: Mapping[str, Any]) -> Any:
        """Parse and validate `values` (overrides of the paper's defaults)."""
        return parse_config(self.config_cls, values, method=self.name)


_REGISTRY: dict[str, MethodSpec] = {}


def register_method(name: str, *, config: type) -> Callable[[TrainFn], TrainFn]:
    """Register `train(config, data, ctx)` under `name` with its config class."""

    def decorate(fn: TrainFn) -> TrainFn:
        if name in _REGISTRY:
            raise RuntimeError(f"method '{name}' is registered twice")
        doc = (config.__doc__ or sys.modules[fn.__module__].__doc__ or "").strip()
        _REGISTRY[name] = MethodSpec(name, config, fn, doc.splitlines()[0] if doc else "")
        return fn

    return decorate


def get_method(name: str) -> MethodSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown method '{name}'; registered methods: {', '.join(sorted(_REGISTRY))}"
        ) from None


def list_methods(pattern: str = "*") -> list[str]:
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))
