"""Every setting of `pairs`, `sweep` and `grid`, declared once.

Each `Option` names one setting (its Python name; its flag is the same name with
dashes), the values it takes (a kind from `flag_types`, a set of choices, or a
switch), its default and its help. Everything else is built from these tables:

- the command line: `add_options` writes each command's argparse flags;
- the Python API: `check_arguments` checks `auxsearch.pairs(...)`'s keyword
  arguments with the same kinds, so both refuse the same values in the same words
  (`python_wording` turns a message's `--min-seeds` into `min_seeds`);
- the searches' defaults: `default(command, name)` is what `PairsSettings`,
  `resolve_settings` and the API's signatures take (a test checks the signatures);
- what search.json records of a search (`recorded`, read by each settings'
  `describe()`), and which options go only with another's value (`goes_with`,
  checked in one place).
"""

from __future__ import annotations

import argparse
import numbers
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from methods import list_methods
from methods.core.errors import UserInputError

from . import flag_types as ft


@dataclass(frozen=True)
class Option:
    """One setting of a command. `default` is what argparse stores when the flag is
    absent; `implied` is the value a search then uses when `default` is None only
    because "not given" must stay visible (`--min-seeds` goes with `--seeds auto`)."""

    name: str
    help: str
    kind: Any = None  # a flag_types kind (Whole, Real, RealList, names), or None: text
    default: Any = None
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    switch: bool = False  # a flag without a value: True when given
    path: bool = False  # text that names a file (the API also takes os.PathLike)
    required: bool = False
    recorded: bool = False  # part of what search.json records (`describe()`)
    goes_with: tuple[str, Any] | None = None  # only with this option at this value
    implied: Any = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def value(self) -> Any:
        """What a search uses when the option is not given."""
        return self.implied if self.default is None else self.default

    def add_to(self, group: Any) -> None:
        if self.switch:
            group.add_argument(self.flag, action="store_true", help=self.help)
            return
        extra: dict[str, Any] = {}
        if self.choices:
            extra["choices"] = self.choices
        elif self.kind is not None:
            extra["type"] = self.kind
        if self.metavar:
            extra["metavar"] = self.metavar
        if self.required:
            extra["required"] = True
        shown = self.help
        if self.implied is not None and "default" not in shown:
            shown = f"{shown} (default {_shown(self.implied)})"
        group.add_argument(self.flag, default=self.default, help=shown, **extra)

    def check(self, where: str, value: object) -> Any:
        """A Python argument checked as the flag's type checks its text; None stays
        None (not given)."""
        if value is None:
            return None
        if self.switch:
            if not isinstance(value, bool):
                raise _refused(where, self.name, value, "use True or False")
            return value
        if self.choices:
            if value not in self.choices:
                raise UserInputError(
                    f"{where}: {self.name}={value!r}: choose {' or '.join(self.choices)}"
                )
            return value
        if self.kind is None:
            return _text(where, self.name, value, path=self.path)
        if self.kind is ft.names:
            return _names(where, self.name, value)
        if isinstance(self.kind, ft.RealList):
            return _reals(where, self.name, value, self.kind.each)
        if isinstance(self.kind, ft.Whole):
            return _whole(where, self.name, value, self.kind)
        if isinstance(self.kind, ft.Real):
            return _real(where, self.name, value, self.kind)
        raise AssertionError(f"option {self.name}: unknown kind {self.kind!r}")


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


# --- the tables -----------------------------------------------------------------------

DATA = (
    Option(
        "dataset",
        "built-in dataset (shapes, digits, digit_domains, digit_pair, digit_transfer,"
        " noisy_digits, noisy_plane, noisy_sets), or with --data-root one read from disk"
        " (celeba, mnist, svhn, cifar10, mnist_m, image_csv; join several with +); options"
        " after a colon: e.g. shapes:n=2000,image_size=24 or celeba:crop=178,size=64",
        metavar="NAME[:k=v,...]",
    ),
    Option(
        "data_root",
        "the folder holding a real dataset as distributed (README: 'Real datasets,"
        " as distributed'); images are decoded once into DIR/.auxsearch-cache",
        metavar="DIR",
        path=True,
    ),
    Option("data", "your own data as an .npz (see README)", metavar="FILE.npz", path=True),
)

METHOD = (
    Option("config", "a YAML mapping of config values", metavar="FILE.yaml", path=True),
    # the API takes these as `settings={...}`: see `API_NAMES`
    Option(
        "set",
        "override one config value (repeatable), e.g. --set lr=0.001",
        metavar="KEY=VALUE",
    ),
)

RAY = (
    Option(
        "address",
        "join this Ray cluster ('auto', or RAY_ADDRESS); default: start Ray on this machine",
    ),
    Option(
        "cpus_per_trial",
        "CPUs per trial, also its torch threads (default 1)",
        kind=ft.CPUS,
        default=1.0,
        metavar="N",
    ),
    Option(
        "gpus_per_trial",
        "GPUs per trial, fractions allowed (0.25 packs 4 trials per GPU;"
        " Ray does not cap GPU memory)",
        kind=ft.GPUS,
        default=0.0,
        metavar="F",
    ),
    Option(
        "max_concurrent",
        "at most N trials at once (default: as resources allow)",
        kind=ft.COUNT,
        metavar="N",
    ),
    Option(
        "max_failures",
        "retries of a trial that raises or diverges (default 1)",
        kind=ft.RETRIES,
        default=1,
        metavar="N",
    ),
)

PACK = Option(
    "pack",
    "train up to N cells of the same settings and seed in one trial as one fused"
    " network, with the results they get apart (a pair search's single, pair and λ"
    " runs on small_cnn or resnet18/34); auto: 1 on CPUs, on a GPU as many as fit"
    " its memory, up to 64 (default auto)",
    kind=ft.PACK,
    default="auto",
    metavar="N|auto",
)

OUT = Option(
    "out", "where results go; rerun with the same --out to resume", metavar="DIR|URI", required=True
)

_RETRY = "train again the cells recorded as failed"

PAIRS = (
    Option(
        "attributes",
        "attributes to pair (default: every binary attribute)",
        kind=ft.names,
        metavar="A,B,...",
        recorded=True,
    ),
    Option("backbone", "feature extractor (default: the paper's resnet18)"),
    Option("epochs", "epochs per run (default: the paper's 6)", kind=ft.COUNT),
    Option(
        "lambdas",
        "λ values of stage 3 (default: 0.01,0.1,0.3,0.5,1.0)",
        kind=ft.LAMBDAS,
        metavar="L1,L2,...",
        recorded=True,
    ),
    Option(
        "seeds",
        "seeds per cell; with K ≥ 2 cells hold mean and std; auto: from --min-seeds,"
        " more seeds only for the cells an undecided row depends on, up to --max-seeds",
        kind=ft.SEEDS_OR_AUTO,
        default=1,
        metavar="K|auto",
        recorded=True,
    ),
    Option(
        "min_seeds",
        "--seeds auto: seeds every cell gets",
        kind=ft.COUNT,
        metavar="K",
        recorded=True,
        goes_with=("seeds", "auto"),
        implied=2,
    ),
    Option(
        "max_seeds",
        "--seeds auto: the most a cell gets",
        kind=ft.COUNT,
        metavar="K",
        recorded=True,
        goes_with=("seeds", "auto"),
        implied=5,
    ),
    Option(
        "certainty",
        "--seeds auto: a row settles when --max-seeds seeds would give its verdict with"
        " this probability",
        kind=ft.CERTAINTY,
        metavar="P",
        recorded=True,
        goes_with=("seeds", "auto"),
        implied=0.9,
    ),
    Option("seed", "first seed (default 0)", kind=ft.SEED, default=0, recorded=True),
    Option(
        "adversaries",
        "adversary per attribute: the worst partner (paper) or all negative ones",
        choices=("worst", "all"),
        default="worst",
        recorded=True,
    ),
    Option(
        "alpha",
        "significance level of the negative-transfer test over seeds",
        kind=ft.PROBABILITY,
        default=0.05,
        recorded=True,
    ),
    Option(
        "require_significant",
        "skip partners whose negative transfer is within seed noise",
        switch=True,
        default=False,
        recorded=True,
    ),
    Option(
        "null_control",
        "also train stage 3 with the partner's labels shuffled: the gain that choosing"
        " λ and epoch alone produces",
        switch=True,
        default=False,
        recorded=True,
    ),
    Option(
        "lambda_search",
        "stage 3: every λ at every seed (grid, the paper's sweep), or successive halving"
        " over λ seed by seed, the λ values worse on validation dropped after each seed",
        choices=("grid", "halving"),
        default="grid",
        recorded=True,
    ),
    Option(
        "reduction_factor",
        "--lambda-search halving: the best 1/N of the λ values go on after each seed",
        kind=ft.Whole(low=2),
        metavar="N",
        recorded=True,
        goes_with=("lambda_search", "halving"),
        implied=2,
    ),
    Option("retry_failed", _RETRY, switch=True, default=False),
    Option(
        "storage",
        "Optuna storage of the stage-3 λ study (default: optuna.db inside --out)",
        metavar="URL",
    ),
)

METHOD_NAME = Option("method", "a registered method: " + ", ".join(list_methods()), required=True)

SWEEP_TOP = (
    METHOD_NAME,
    Option(
        "space",
        "search space (default: the bundled search_spaces/<method>.yaml)",
        metavar="FILE.yaml",
        path=True,
    ),
    Option(
        "trials",
        "trials in the study in all (a rerun continues up to N; --sampler grid: the grid's size)",
        kind=ft.COUNT,
        metavar="N",
    ),
)

SWEEP = (
    Option(
        "storage",
        "Optuna RDB storage (default: sqlite file optuna.db inside --out)",
        metavar="URL",
    ),
    Option("study", "study name (default: <method>-sweep)"),
    Option(
        "sampler",
        "how Optuna proposes trials; grid runs every point of a space of"
        " choices (e.g. to compare a method's modes)",
        choices=("tpe", "random", "grid"),
        default="tpe",
    ),
    Option(
        "scheduler",
        "asha stops weak trials early (their Optuna state: PRUNED); fifo runs every"
        " trial to its end",
        choices=("asha", "fifo"),
        default="asha",
    ),
    Option(
        "grace_period",
        "ASHA: epochs a trial runs before it can be stopped (default 1)",
        kind=ft.COUNT,
        default=1,
        metavar="N",
    ),
    Option(
        "metric",
        "the objective (default: val/mean_acc, the mean val"
        " accuracy of the main tasks at their selected epochs)",
    ),
    Option(
        "mode",
        "whether --metric is better higher (max) or lower (min)",
        choices=("max", "min"),
        default="max",
    ),
    Option(
        "seeds",
        "seeds per trial, trained in turn; the score is their mean",
        kind=ft.COUNT,
        default=1,
        metavar="K",
    ),
    Option("seed", "first seed; also seeds TPE", kind=ft.SEED, default=0),
)

GRID = (
    Option(
        "methods",
        "registered methods that take a grid's roles (default: the protocol's)",
        kind=ft.names,
        metavar="M1,M2,...",
        recorded=True,
    ),
    Option(
        "protocol",
        "the grid's methods and shared training settings (default: the Purified"
        " Learning paper's, search_spaces/protocols/grid.yaml)",
        metavar="FILE.yaml",
        path=True,
    ),
    Option("train", "train domains", kind=ft.names, metavar="D1,D2,...", recorded=True),
    Option("test", "test domains", kind=ft.names, metavar="D1,D2,..."),
    Option(
        "backbones",
        "feature extractors, each a grid column of its own",
        kind=ft.names,
        default=["resnet18"],
        metavar="B1,B2,...",
        recorded=True,
    ),
    Option("task", "the target label column"),
    Option(
        "irrelevant",
        "the task-irrelevant set and its label (e.g. irrelevant:bg)",
        metavar="DOMAIN:LABEL",
    ),
    Option(
        "relevant",
        "a task-relevant set, for methods that pre-train on one or take it as source",
        metavar="DOMAIN:LABEL",
    ),
    Option(
        "seeds",
        "seeds per cell; the table shows the mean",
        kind=ft.COUNT,
        default=1,
        metavar="K",
        recorded=True,
    ),
    Option("seed", "first seed", kind=ft.SEED, default=0, recorded=True),
    Option(
        "include_self",
        "also test on the train domain (its own test split)",
        switch=True,
        default=False,
    ),
    Option(
        "pca",
        "record the explained-variance ratio of the top 10 principal"
        " components of the test features (PL Figure 2)",
        switch=True,
        default=False,
    ),
    Option("retry_failed", _RETRY, switch=True, default=False),
)

# (group title or None, options), in the order `--help` shows them
Sections = tuple[tuple[str | None, tuple[Option, ...]], ...]
COMMANDS: dict[str, Sections] = {
    "pairs": (
        ("data", DATA),
        ("pair search", PAIRS),
        ("method settings", METHOD),
        ("Ray", (*RAY, PACK)),
        (None, (OUT,)),
    ),
    "sweep": (
        (None, SWEEP_TOP),
        ("data", DATA),
        ("method settings", METHOD),
        ("search", SWEEP),
        ("Ray", RAY),
        (None, (OUT,)),
    ),
    "grid": (
        ("grid", GRID),
        ("data", DATA),
        ("method settings", METHOD),
        ("Ray", RAY),
        (None, (OUT,)),
    ),
    # `auxsearch run`'s shared part (its --device, --threads, --json and --out are its own)
    "run": (
        (None, (METHOD_NAME,)),
        ("data", DATA),
        ("method settings", METHOD),
        (None, (Option("seed", "the training's seed", kind=ft.SEED, default=0),)),
    ),
}

# Where the API's keyword differs from the flag: `--set k=v` is `settings={k: v}`.
API_NAMES = {"set": "settings"}


def options(command: str) -> dict[str, Option]:
    return {o.name: o for _, group in COMMANDS[command] for o in group}


def default(command: str, name: str) -> Any:
    """The value a search uses for an option not given."""
    value = options(command)[name].value()
    return list(value) if isinstance(value, list) else value


def recorded(command: str) -> list[Option]:
    return [o for o in options(command).values() if o.recorded]


def describe(command: str, value_of: Any) -> dict[str, Any]:
    """What search.json records of a search: each recorded option's value
    (`value_of(name)`), an option that goes with another's value only then."""
    shown: dict[str, Any] = {}
    for option in recorded(command):
        if option.goes_with is not None:
            other, wanted = option.goes_with
            if value_of(other) != wanted:
                continue
        value = value_of(option.name)
        shown[option.name] = list(value) if isinstance(value, tuple) else value
    return shown


def check_goes_with(command: str, given: Mapping[str, Any]) -> None:
    """An option given without the value of another it goes with (`--min-seeds`
    without `--seeds auto`) is refused: it would be silently ignored."""
    table = options(command)
    by_other: dict[tuple[str, Any], list[Option]] = {}
    for option in table.values():
        if option.goes_with is not None:
            by_other.setdefault(option.goes_with, []).append(option)
    for (other, wanted), group in by_other.items():
        stray = [o for o in group if given.get(o.name) is not None]
        if stray and given.get(other, table[other].value()) != wanted:
            flags = [o.flag for o in group]
            joined = flags[0] if len(flags) == 1 else ", ".join(flags[:-1]) + " and " + flags[-1]
            verb = "goes" if len(flags) == 1 else "go"
            raise UserInputError(f"{joined} {verb} with {table[other].flag} {wanted}")


def add_options(parser: argparse.ArgumentParser, command: str) -> None:
    """The command's flags, in its groups."""
    for title, group in COMMANDS[command]:
        target: Any = parser.add_argument_group(title) if title else parser
        for option in group:
            if option.name == "set":
                target.add_argument(
                    option.flag,
                    action="append",
                    metavar=option.metavar,
                    default=[],
                    help=option.help,
                )
            else:
                option.add_to(target)


def check_arguments(where: str, command: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The API's keyword arguments (by option name) checked as the flags check their
    text; an option not among `arguments` takes its default."""
    table = options(command)
    checked = {}
    for name, option in table.items():
        if name in ("set", "out"):
            continue  # `settings=` (a mapping) and `out` are checked where they are used
        value = arguments.get(name, option.default)
        checked[name] = option.check(where, value)
    return checked


def python_wording(message: str, command: str) -> str:
    """A message written for the command line, in the API's words: `--seeds auto`
    becomes `seeds='auto'`, `--min-seeds` `min_seeds`, `--set/--config`
    `settings/config`."""
    table = options(command)
    by_flag = {o.flag: o for o in table.values()}

    def swap(match: re.Match[str]) -> str:
        option = by_flag.get(match.group(1))
        if option is None:
            return match.group(0)
        name = API_NAMES.get(option.name, option.name)
        value = match.group(2)
        if value is None:
            return name
        if _NUMBER.fullmatch(value):
            return f"{name}={value}"
        if value in option.choices or (
            isinstance(option.kind, ft.Whole) and value in option.kind.extra
        ):
            return f"{name}={value!r}"
        return f"{name} {value}"

    return _FLAG.sub(swap, message)


_FLAG = re.compile(r"(--[a-z][a-z-]*)(?: ([^\s,;:()]+))?")
_NUMBER = re.compile(r"[-+]?(\d[\d_]*\.?\d*(e[-+]?\d+)?|\.\d+|nan|inf)", re.IGNORECASE)


# --- Python values, checked as the flag types check text ------------------------------


def _refused(where: str, name: str, value: object, allowed: str) -> UserInputError:
    return UserInputError(f"{where}: {name}={value!r} is not allowed; {allowed}")


def _convert(where: str, name: str, kind: Any, text: str) -> Any:
    try:
        return kind(text)
    except argparse.ArgumentTypeError as exc:
        raise UserInputError(f"{where}: {name}={exc}") from None


def _whole(where: str, name: str, value: object, kind: ft.Whole) -> int | str:
    if isinstance(value, str) and value in kind.extra:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _refused(where, name, value, f"use {kind.describe()}")
    result: int | str = _convert(where, name, kind, str(int(value)))
    return result


def _real(where: str, name: str, value: object, kind: ft.Real) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _refused(where, name, value, f"use {kind.describe()}")
    result: float = _convert(where, name, kind, repr(float(value)))
    return result


def _reals(where: str, name: str, value: object, each: ft.Real) -> list[float]:
    if isinstance(value, str):  # "0.1,1", as the flag takes it
        return [float(_convert(where, name, each, v)) for v in _text_list(where, name, value)]
    items = [value] if isinstance(value, numbers.Real) else value
    if not isinstance(items, Sequence):
        raise UserInputError(f"{where}: {name}={value!r} is not a list of numbers")
    return [_real(where, name, v, each) for v in items]


def _text_list(where: str, name: str, value: str) -> list[str]:
    try:
        return list(ft.names(value))
    except argparse.ArgumentTypeError as exc:
        raise UserInputError(f"{where}: {name}={exc}") from None


def _names(where: str, name: str, value: object) -> list[str]:
    """A list of names, or one string of them separated by commas ("red,large")."""
    if isinstance(value, str):
        return _text_list(where, name, value)
    if not isinstance(value, Sequence) or not all(isinstance(v, str) and v for v in value):
        raise UserInputError(f"{where}: {name}={value!r} is not a list of names")
    return [str(v) for v in value]


def _text(where: str, name: str, value: object, *, path: bool = False) -> str:
    if path and isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise UserInputError(
            f"{where}: {name}={value!r} is not "
            + ("a path" if path else "allowed; give a non-empty string")
        )
    if not value.strip():
        raise _refused(where, name, value, "give a non-empty string")
    return value
