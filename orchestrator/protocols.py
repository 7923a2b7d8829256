"""Search protocols, read from `search_spaces/protocols/`: which registered methods
a pair search or a grid trains, and with which settings.

The orchestrator knows no method by name. What "the AAL paper's pair search"
(`pairs.yaml`: the single, pair and adversarial methods and the setting its λ
sweep varies) and "the Purified Learning paper's grid" (`grid.yaml`: the
methods of its Table 1 and the training protocol they all share) mean lives in
these files; each method takes part through its contract hooks (`for_tasks`,
`for_grid`). A user copies a file and passes it with `--protocol FILE`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from methods import get_method
from methods.core import ConfigError, TrainConfig, config_to_dict, parse_config

from .errors import UserInputError
from .input_files import read_text


class ProtocolError(UserInputError):
    """A protocol file that cannot be used."""


@dataclass(frozen=True)
class PairsProtocol:
    """The methods of a pair search: `single` trains one attribute alone, `pair` two
    together, `adversarial` one against its partners at each value of `sweep`."""

    single: str
    pair: str
    adversarial: str
    sweep: str
    null_control: dict[str, Any] = dataclasses.field(default_factory=dict)
    source: str = ""

    def owned_keys(self) -> set[str]:
        """The settings the search itself sets (task names, the swept value, the null
        control's)."""
        keys = {self.sweep, *self.null_control}
        for method, main, aux in (
            (self.single, ["a"], []),
            (self.pair, ["a", "b"], []),
            (self.adversarial, ["a"], ["b"]),
        ):
            keys |= set(get_method(method).config_cls.for_tasks(main, aux))
        return keys


@dataclass(frozen=True)
class GridProtocol:
    """The methods of a grid and the training settings every one of them gets."""

    methods: tuple[str, ...]
    settings: dict[str, Any]
    source: str = ""


def bundled_protocol_path(name: str) -> Path:
    """search_spaces/protocols/<name>.yaml, shipped with auxsearch."""
    return Path(str(resources.files("search_spaces") / "protocols" / f"{name}.yaml"))


def _read(
    path: str | Path, keys: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    path = Path(path)
    text = read_text(
        path,
        f"protocol {path}",
        "give a YAML file; copy one from search_spaces/protocols/",
        ProtocolError,
    )
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProtocolError(f"{path} is not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(doc, dict):
        raise ProtocolError(f"{path}: expected a mapping with keys {', '.join(keys)}")
    unknown = sorted(set(doc) - set(keys) - set(optional))
    if unknown:
        allowed = ", ".join((*keys, *optional))
        raise ProtocolError(f"{path}: unknown key '{unknown[0]}'; allowed: {allowed}")
    missing = [k for k in keys if k not in doc]
    if missing:
        raise ProtocolError(f"{path}: '{missing[0]}' is missing")
    return doc


def _method(path: Path | str, key: str, name: Any, hook: str) -> str:
    if not isinstance(name, str):
        raise ProtocolError(f"{path}: {key} must name a registered method, got {name!r}")
    try:
        cls = get_method(name).config_cls
    except ConfigError as exc:
        raise ProtocolError(f"{path}: {key}: {exc}") from None
    if not cls.supports(hook):
        raise ProtocolError(
            f"{path}: {key}: method '{name}' does not implement {hook}(), which this protocol needs"
        )
    return name


def load_pairs_protocol(path: str | Path | None = None) -> PairsProtocol:
    """A pair-search protocol (the bundled `pairs.yaml` when no path is given)."""
    where = path or bundled_protocol_path("pairs")
    doc = _read(where, ("single", "pair", "adversarial", "sweep"), ("null_control",))
    methods = {k: _method(where, k, doc[k], "for_tasks") for k in ("single", "pair", "adversarial")}
    adversarial = get_method(methods["adversarial"]).config_cls
    names = [f.name for f in dataclasses.fields(adversarial)]
    if doc["sweep"] not in names:
        raise ProtocolError(
            f"{where}: sweep '{doc['sweep']}' is not a setting of method"
            f" '{methods['adversarial']}'; its settings: {', '.join(names)}"
        )
    null = doc.get("null_control") or {}
    if not isinstance(null, dict):
        raise ProtocolError(f"{where}: null_control must be a mapping of the adversarial settings")
    try:
        parse_config(adversarial, null, method=methods["adversarial"], check=False)
    except ConfigError as exc:
        raise ProtocolError(f"{where}: null_control: {exc}") from None
    return PairsProtocol(**methods, sweep=doc["sweep"], null_control=null, source=str(where))


def load_grid_protocol(path: str | Path | None = None) -> GridProtocol:
    """A grid protocol (the bundled `grid.yaml` when no path is given)."""
    where = path or bundled_protocol_path("grid")
    doc = _read(where, ("methods", "settings"))
    methods = doc["methods"]
    if not isinstance(methods, list) or not methods:
        raise ProtocolError(f"{where}: methods must be a non-empty list of registered methods")
    settings = doc["settings"] or {}
    if not isinstance(settings, dict):
        raise ProtocolError(f"{where}: settings must be a mapping of training settings")
    try:  # shared training settings only: every method of the grid takes them
        resolved = config_to_dict(parse_config(TrainConfig, settings, method="", check=False))
    except ConfigError as exc:
        raise ProtocolError(f"{where}: settings: {exc}") from None
    return GridProtocol(
        methods=tuple(_method(where, "methods", m, "for_grid") for m in methods),
        settings={k: resolved[k] for k in settings},
        source=str(where),
    )
