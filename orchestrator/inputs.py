"""Turning the flags every command shares into validated objects.

- data: `--dataset NAME[:key=value,...]` (a built-in, with options such as
  `shapes:n=2000,image_size=24`; or a format read from `--data-root DIR`, such
  as `celeba:size=64`) or `--data FILE.npz`;
- method settings: `--config FILE.yaml` (a mapping), then repeated
  `--set key=value` overrides, each value read as YAML (`3`, `0.1`, `[a, b]`).

Every problem is a `UserInputError` naming the bad value.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from methods.data import Dataset, load_dataset, load_npz
from methods.data.formats import FORMATS, is_disk_format, load_from_disk

from .errors import UserInputError
from .flag_types import SEED_MAX
from .input_files import read_text


def parse_value(text: str) -> Any:
    """A `--set` value read as YAML (`3`, `0.1`, `[a, b]`, `true`); `1e-4`, which YAML
    1.1 leaves a string, is a number."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value) if value.strip().lower() not in ("nan", "inf", "-inf") else value
        except ValueError:
            return value
    return value


def parse_dataset_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """`shapes:n=2000,image_size=24` → ("shapes", {"n": 2000, "image_size": 24})."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UserInputError(
                f"--dataset {spec}: option '{item}' is not key=value (e.g. shapes:n=2000)"
            )
        options[key.strip()] = parse_value(value.strip())
    return name.strip(), options


def resolve_dataset(
    dataset: str | None,
    data: str | None,
    data_root: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> Dataset:
    """The data a command names. `echo` takes the progress lines of decoding a disk
    format's images the first time (default: stderr)."""
    if dataset and data:
        raise UserInputError("give either --dataset NAME or --data FILE.npz, not both")
    if data:
        if data_root:
            raise UserInputError("--data-root goes with --dataset NAME, not with --data FILE.npz")
        if Path(data).is_dir():
            raise UserInputError(f"--data {data} is a directory; give a .npz file np.savez wrote")
        if not data.endswith(".npz"):
            raise UserInputError(f"--data {data}: expected a .npz file (see the data contract)")
        return load_npz(data)
    if not dataset:
        raise UserInputError("no data given; pass --dataset NAME (e.g. shapes) or --data FILE.npz")
    name, options = parse_dataset_spec(dataset)
    if is_disk_format(name):
        if not data_root:
            raise UserInputError(
                f"--dataset {name} is read from disk; add --data-root DIR, the folder that"
                " holds it as distributed (see README, 'Real datasets, as distributed')"
            )
        return load_from_disk(name, data_root, options, echo=echo or _echo)
    if data_root:
        raise UserInputError(
            f"--dataset {name} is built in and takes no --data-root; formats read from disk:"
            f" {', '.join(sorted(FORMATS))}"
        )
    return load_dataset(name, options)


def _echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UserInputError(f"--set {item}: expected key=value (e.g. --set lr=0.001)")
        out[key.strip()] = parse_value(value)
    return out


def load_config_file(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    text = read_text(path, f"--config {path}", "give a YAML file of key: value")
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = str(exc).replace("\n", " ")
        raise UserInputError(f"--config {path} is not valid YAML ({reason})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UserInputError(f"--config {path} must hold a mapping of key: value")
    return loaded


def method_overrides(config_file: str | None, sets: list[str] | None) -> dict[str, Any]:
    """Config file first, `--set` on top."""
    return {**load_config_file(config_file), **parse_sets(sets)}


def merge_flags(overrides: dict[str, Any], flags: Mapping[str, tuple[str, Any]]) -> dict[str, Any]:
    """`overrides` (from --config/--set) with the settings dedicated flags give
    (key → (flag, value); None: not given). A key given both ways with different
    values is refused: neither silently wins."""
    merged = dict(overrides)
    for key, (flag, value) in flags.items():
        if value is None:
            continue
        if key in merged and merged[key] != value:
            raise UserInputError(
                f"{flag} {value} and {key}={merged[key]} from --set/--config disagree;"
                " give the value once"
            )
        merged[key] = value
    return merged


def check_seeds(seeds: int, flag: str = "--seeds", *, first: int = 0) -> None:
    """Seeds per cell or trial: a whole number, 1 or more (every search checks it here);
    the seeds first, first + 1, ... must all fit NumPy's seed range."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise UserInputError(f"{flag} {seeds} is not allowed; use a whole number, 1 or more")
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise UserInputError(f"--seed {first} is not allowed; use a whole number, 0 or more")
    if first + seeds - 1 > SEED_MAX:
        raise UserInputError(
            f"--seed {first} with {flag} {seeds} reaches seed {first + seeds - 1}, past the"
            f" largest seed {SEED_MAX}; use --seed {SEED_MAX - seeds + 1} or less"
        )
