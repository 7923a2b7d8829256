"""Declarative search spaces: one YAML file per method in `search_spaces/`.

    method: <name>              # optional; must match --method when present
    fixed:                      # config values every trial uses
      epochs: 6
    space:                      # what the sweep searches
      lam: {choice: [0.01, 0.1, 0.3, 0.5, 1.0]}
      lr: {loguniform: [1.0e-5, 1.0e-3]}
      weight_decay: {uniform: [0.0, 1.0e-3]}
      batch_size: {int: [32, 128]}

One loader turns a file into the Optuna search space (`to_optuna`) that Ray
Tune's OptunaSearch samples a sweep's trials from. Every key is checked against
the method's typed config — its name, the kind that suits its type, each bound
and choice as a value of that field — so a broken file stops with one sentence
naming the file, the key and the problem, before Ray or Optuna start.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

from methods import get_method
from methods.core import ConfigError, config_keys, parse_config

from .errors import UserInputError
from .input_files import read_text

KINDS = ("choice", "uniform", "loguniform", "int")
TOP_KEYS = ("method", "fixed", "space")
Scalar = bool | int | float | str


class SpaceError(UserInputError):
    """A search-space file that cannot be used."""


@dataclass(frozen=True)
class Param:
    """One searched key: its kind and its choices or [low, high] bounds (inclusive)."""

    name: str
    kind: Literal["choice", "uniform", "loguniform", "int"]
    values: tuple[Any, ...]

    @property
    def low(self) -> Any:
        return self.values[0]

    @property
    def high(self) -> Any:
        return self.values[1]

    def describe(self) -> dict[str, list[Any]]:
        return {self.kind: list(self.values)}


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space for one method."""

    method: str
    fixed: dict[str, Any]
    params: dict[str, Param] = field(default_factory=dict)
    source: str = ""

    def to_optuna(self) -> dict[str, Any]:
        """Optuna distributions of the searched keys (the fixed values are not searched)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        out: dict[str, Any] = {}
        for p in self.params.values():
            if p.kind == "choice":
                out[p.name] = CategoricalDistribution(list(p.values))
            elif p.kind == "int":
                out[p.name] = IntDistribution(p.low, p.high)
            else:
                out[p.name] = FloatDistribution(p.low, p.high, log=p.kind == "loguniform")
        return out

    def describe(self) -> dict[str, Any]:
        """A JSON-ready form, stored with a sweep's results."""
        return {
            "method": self.method,
            "fixed": self.fixed,
            "space": {k: p.describe() for k, p in self.params.items()},
        }


def bundled_space_path(method: str) -> Path:
    """The search_spaces/<method>.yaml shipped with auxsearch."""
    return Path(str(resources.files("search_spaces") / f"{method}.yaml"))


def load_space(path: str | Path, method: str) -> SearchSpace:
    """Read and validate a search-space file for `method`."""
    path = Path(path)
    where = str(path)
    text = read_text(
        path, f"search space {where}", "give a YAML file; copy one from search_spaces/", SpaceError
    )
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise SpaceError(f"{where} is not valid YAML ({reason})") from None
    return parse_space(doc or {}, method, where)


def parse_space(doc: Any, method: str, where: str = "search space") -> SearchSpace:
    if not isinstance(doc, dict):
        raise SpaceError(f"{where}: expected a mapping with keys {', '.join(TOP_KEYS)}")
    unknown = sorted(set(doc) - set(TOP_KEYS))
    if unknown:
        raise SpaceError(
            f"{where}: unknown top-level key '{unknown[0]}'; allowed: {', '.join(TOP_KEYS)}"
        )
    if doc.get("method") not in (None, method):
        raise SpaceError(f"{where}: written for method '{doc['method']}', not '{method}'")
    spec = get_method(method)
    cls = spec.config_cls
    fixed = doc.get("fixed") or {}
    space = doc.get("space") or {}
    for name, section in (("fixed", fixed), ("space", space)):
        if not isinstance(section, dict):
            raise SpaceError(f"{where}: '{name}' must be a mapping of config keys")
    keys = config_keys(cls)
    for key in [*fixed, *space]:
        if key not in keys:
            raise SpaceError(
                f"{where}: key '{key}' is not a setting of method '{method}'; its settings:"
                f" {', '.join(keys)}"
            )
    both = sorted(set(fixed) & set(space))
    if both:
        raise SpaceError(f"{where}: key '{both[0]}' is both fixed and searched; keep one")
    try:
        fixed_values = dataclasses.asdict(parse_config(cls, fixed, method=method, check=False))
    except ConfigError as exc:
        raise SpaceError(f"{where}: fixed: {_strip(exc, method)}") from None
    fixed = {k: _jsonable(fixed_values[k]) for k in fixed}
    hints = get_type_hints(cls)
    params = {
        key: _param(cls, method, where, key, entry, hints[key]) for key, entry in space.items()
    }
    if not space:
        raise SpaceError(
            f"{where}: 'space' names no setting to search; add at least one (a choice of one"
            " value, e.g. `lr: {choice: [0.001]}`, runs a single point)"
        )
    return SearchSpace(method=method, fixed=fixed, params=params, source=where)


def _param(cls: type, method: str, where: str, key: str, entry: Any, tp: Any) -> Param:
    at = f"{where}: space.{key}"
    if not isinstance(entry, dict) or len(entry) != 1:
        raise SpaceError(
            f"{at} must be one of {{choice: [...]}}, {{uniform: [low, high]}},"
            " {loguniform: [low, high]}, {int: [low, high]}"
        )
    ((kind, values),) = entry.items()
    if kind not in KINDS:
        raise SpaceError(f"{at}: unknown kind '{kind}'; use one of {', '.join(KINDS)}")
    if not isinstance(values, list):
        raise SpaceError(f"{at}: {kind} needs a list, got {values!r}")
    base = _base_type(tp)
    if kind == "choice":
        if not values:
            raise SpaceError(f"{at}: choice is empty; give at least one value")
        if any(isinstance(v, list | dict) for v in values):
            raise SpaceError(f"{at}: choices must be single values (numbers, strings, true/false)")
        if len(set(map(repr, values))) != len(values):
            raise SpaceError(f"{at}: choice repeats a value")
    else:
        if len(values) != 2 or not all(_is_number(v) for v in values):
            raise SpaceError(f"{at}: {kind} needs [low, high] numbers, got {values!r}")
        low, high = values
        if low > high:
            raise SpaceError(f"{at}: low {low} > high {high}")
        if kind == "loguniform" and low <= 0:
            raise SpaceError(f"{at}: loguniform bounds must be > 0, got low {low}")
        if kind == "int" and not all(float(v).is_integer() for v in values):
            raise SpaceError(f"{at}: int bounds must be integers, got {values!r}")
        if kind == "int" and base is not int:
            raise SpaceError(f"{at}: '{key}' is not an integer setting; use uniform or choice")
        if kind != "int" and base is not float:
            raise SpaceError(
                f"{at}: '{key}' is not a real-valued setting; use "
                + ("int" if base is int else "choice")
            )
        values = [int(v) for v in values] if kind == "int" else [float(v) for v in values]
    for v in values:  # every bound and choice must be a valid value of the field
        try:
            parse_config(cls, {key: v}, method=method, check=False)
        except ConfigError as exc:
            raise SpaceError(f"{at}: {_strip(exc, method)}") from None
    return Param(key, kind, tuple(values))


def _base_type(tp: Any) -> Any:
    origin = get_origin(tp)
    if origin is Literal:
        return type(get_args(tp)[0])
    return tp


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _strip(exc: Exception, method: str) -> str:
    return str(exc).removeprefix(f"method '{method}': ")
