"""Typed, validated method configs.

Every kernel's config is a frozen dataclass whose field defaults are the paper's
settings. `parse_config` builds one from a plain mapping (YAML, `--set k=v`,
a Ray Tune trial config) and rejects, in one sentence, unknown keys, wrong
types, out-of-range numbers and values outside a field's choices, before any
training starts. Field metadata carries the paper's symbol and bounds:

    lam: float = field(default=0.1, metadata=meta("λ of eq. 6", min=0.0))
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from .errors import ConfigError

C = TypeVar("C")


def meta(
    doc: str,
    *,
    min: float | None = None,
    max: float | None = None,
    min_exclusive: bool = False,
    choices: tuple[Any, ...] | None = None,
) -> dict[str, Any]:
    """Field metadata: the paper's meaning of a field and its allowed range."""
    return {
        "doc": doc,
        "min": min,
        "max": max,
        "min_exclusive": min_exclusive,
        "choices": choices,
    }


def config_keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def parse_config(
    cls: type[C], values: Mapping[str, Any], *, method: str = "", check: bool = True
) -> C:
    """Build and validate a config dataclass from a mapping of overrides.

    `check=False` skips the config's cross-field `check()` (e.g. "a task is
    required"), to validate single values such as a search space's bounds.
    """
    who = f"method '{method}'" if method else cls.__name__
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown config key '{unknown[0]}' for {who}; valid keys: {', '.join(sorted(known))}"
        )
    hints = get_type_hints(cls)
    kwargs = {}
    for name, raw in values.items():
        kwargs[name] = _coerce(raw, hints[name], f"{name}", who)
        _check_bounds(known[name], kwargs[name], who)
    try:
        config = cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:  # __post_init__ checks of a subclass
        raise ConfigError(f"{who}: {exc}") from None
    cross_check = getattr(config, "check", None)
    if check and cross_check is not None:
        cross_check()
    return config


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config (tuples become lists)."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is tuple:
        item = get_args(tp)[0]
        plural = {int: "integers", float: "numbers", str: "strings"}.get(item)
        return f"a list of {plural or _type_name(item)}"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(value: Any, tp: Any, key: str, who: str) -> Any:
    def bad() -> ConfigError:
        return ConfigError(f"{who}: {key}={value!r} is not valid; expected {_type_name(tp)}")

    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None and len(args) < len(get_args(tp)):
            return None
        for arg in args:
            try:
                return _coerce(value, arg, key, who)
            except ConfigError:
                continue
        raise bad()
    if origin is typing.Literal:
        if value in get_args(tp):
            return value
        raise bad()
    if origin is tuple:
        (item_tp, *_rest) = get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise bad()
        return tuple(_coerce(v, item_tp, key, who) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad()
    if tp in (int, float) and isinstance(value, str):
        # YAML 1.1 reads `1e-4` (no dot) as a string; a number is what was meant
        try:
            value = float(value)
        except ValueError:
            raise bad() from None
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad()
        if isinstance(value, float) and not value.is_integer():
            raise bad()
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad()
        if not math.isfinite(value):
            raise ConfigError(f"{who}: {key}={value!r} is not a finite number")
        return float(value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad()
    raise bad()


def _check_bounds(f: dataclasses.Field[Any], value: Any, who: str) -> None:
    md = f.metadata
    items = value if isinstance(value, tuple) else (value,)
    for v in items:
        if v is None:
            continue
        choices = md.get("choices")
        if choices is not None and v not in choices:
            allowed = ", ".join(str(c) for c in choices)
            raise ConfigError(f"{who}: {f.name}={v!r} is not allowed; choose one of {allowed}")
        lo, hi = md.get("min"), md.get("max")
        if isinstance(v, int | float) and not isinstance(v, bool):
            if lo is not None and (v < lo or (md.get("min_exclusive") and v == lo)):
                rel = ">" if md.get("min_exclusive") else "≥"
                raise ConfigError(f"{who}: {f.name}={v:g} is out of range; it must be {rel} {lo:g}")
            if hi is not None and v > hi:
                raise ConfigError(f"{who}: {f.name}={v:g} is out of range; it must be ≤ {hi:g}")
