"""Where `pairs`, `sweep` and `grid` start, for the command line and the Python API
alike.

Both hand over the option values `options.py` declares (argparse's, or the API's
keyword arguments checked by `options.check_arguments`). Here, in one place, they
become the dataset, the method settings, Ray's resources and the search's own
settings (each `resolve_*` refuses what a search cannot run, before anything is
trained or written); then the search runs, and its summary goes to a `Voice`:
the terminal for the CLI, the "auxsearch" logger for the API.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import UserInputError

if TYPE_CHECKING:
    from methods.data import Dataset

    from .grid import GridResult, GridSettings
    from .runner import Resources
    from .sweep import SweepResult, SweepSettings

Say = Callable[[str], None]


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Voice:
    """Where a search's lines go: `say` its progress and summary, `warn` what went
    wrong (failed cells), `note` side remarks such as a dataset's decoding."""

    say: Say = print
    warn: Say = _to_stderr
    note: Say = _to_stderr


@dataclass
class Started:
    """A search that ran: its result and the settings it ran with."""

    result: Any
    settings: Any


def resources(values: Mapping[str, Any]) -> Resources:
    from .runner import Resources

    return Resources(
        values["cpus_per_trial"],
        values["gpus_per_trial"],
        values["max_concurrent"],
        values["max_failures"],
        pack=values.get("pack", "auto"),
    )


def dataset(values: Mapping[str, Any], voice: Voice) -> Dataset:
    """`dataset` (a spec, or a `methods.data.Dataset` from the API), `data` (an .npz)
    or a disk format under `data_root`."""
    from methods.data import Dataset

    from .inputs import resolve_dataset

    given = values.get("dataset")
    if isinstance(given, Dataset):
        if values.get("data") or values.get("data_root"):
            raise UserInputError(
                "a Dataset object takes neither --data nor --data-root; give one of them"
            )
        return given
    if given is not None and not isinstance(given, str):
        raise UserInputError(
            f"dataset={given!r} is neither a dataset name (e.g. 'shapes:n=2000') nor a"
            " methods.data.Dataset"
        )
    return resolve_dataset(given or None, values.get("data"), values.get("data_root"), voice.note)


def method_settings(values: Mapping[str, Any], sets: Mapping[str, Any]) -> dict[str, Any]:
    """The --config file's values with `sets` (--set, or the API's settings=) on top."""
    from .inputs import load_config_file

    return {**load_config_file(values.get("config")), **dict(sets)}


def pairs(values: Mapping[str, Any], sets: Mapping[str, Any], voice: Voice) -> Started:
    from .inputs import merge_flags
    from .pairs import run_pairs
    from .pairs_plan import resolve_settings
    from .show import print_pairs_result

    overrides = merge_flags(
        method_settings(values, sets),
        {key: (f"--{key}", values[key]) for key in ("backbone", "epochs")},
    )
    chosen_resources = resources(values)
    data = dataset(values, voice)
    settings = resolve_settings(
        data,
        attributes=values["attributes"],
        overrides=overrides,
        **_given(values, *_PAIRS_SEARCH),
    )
    result = run_pairs(
        data,
        settings,
        values["out"],
        retry_failed=values["retry_failed"],
        storage=values["storage"],
        **_on_ray(values, chosen_resources, voice),
    )
    print_pairs_result(result, say=voice.say, warn=voice.warn)
    return Started(result, settings)


# each search's own settings, handed to its resolve_* by name
_PAIRS_SEARCH = (
    "lambdas", "seeds", "seed", "adversaries", "alpha", "require_significant", "null_control",
    "min_seeds", "max_seeds", "certainty", "lambda_search", "reduction_factor",
)  # fmt: skip
_SWEEP_SEARCH = (
    "trials", "metric", "mode", "scheduler", "sampler", "grace_period", "seeds", "seed",
)  # fmt: skip
_GRID_SEARCH = (
    "methods", "train", "test", "backbones", "task", "irrelevant", "relevant", "seeds", "seed",
    "include_self", "protocol",
)  # fmt: skip


def sweep(
    values: Mapping[str, Any],
    sets: Mapping[str, Any],
    voice: Voice,
    space: str | os.PathLike[str] | Mapping[str, Any] | None = None,
) -> Started:
    """`space`: the API's mapping (or path); the CLI's `--space` is in `values`."""
    from methods import get_method

    from .spaces import bundled_space_path, load_space, parse_space
    from .sweep import resolve_sweep, run_sweep

    method = values["method"]
    if method is None:
        raise UserInputError("give --method (a registered method)")
    get_method(method)
    chosen_resources = resources(values)
    given = space if space is not None else values.get("space")
    if isinstance(given, Mapping):
        searched = parse_space(dict(given), method, "space=")
    elif given is None or isinstance(given, str | os.PathLike):
        searched = load_space(os.fspath(given) if given else bundled_space_path(method), method)
    else:
        raise UserInputError(f"space={given!r} is neither a YAML file nor a mapping of fixed/space")
    data = dataset(values, voice)
    settings = resolve_sweep(
        data,
        method=method,
        space=searched,
        overrides=method_settings(values, sets),
        **_given(values, *_SWEEP_SEARCH),
        study=values["study"] or "",
    )
    result = run_sweep(
        data,
        settings,
        values["out"],
        storage=values["storage"],
        **_on_ray(values, chosen_resources, voice),
    )
    print_sweep_result(result, settings, values["storage"] or values["out"], voice)
    return Started(result, settings)


def grid(values: Mapping[str, Any], sets: Mapping[str, Any], voice: Voice) -> Started:
    from .grid import resolve_grid, run_grid

    chosen_resources = resources(values)
    data = dataset(values, voice)
    settings = resolve_grid(
        data,
        overrides=method_settings(values, sets),
        pca=10 if values["pca"] else 0,
        **_given(values, *_GRID_SEARCH),
    )
    result = run_grid(
        data,
        settings,
        values["out"],
        retry_failed=values["retry_failed"],
        **_on_ray(values, chosen_resources, voice),
    )
    print_grid_result(result, settings, voice)
    return Started(result, settings)


def _given(values: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """The options a `resolve_*` takes by the same names."""
    return {name: values[name] for name in names}


def _on_ray(values: Mapping[str, Any], chosen: Resources, voice: Voice) -> dict[str, Any]:
    """What every run_* takes alike: the resources, the cluster, the progress lines."""
    return {
        "resources": chosen,
        "address": values["address"],
        "echo": voice.say,
        "warn": voice.warn,
    }


# --- what a finished search tells its user --------------------------------------------


def print_sweep_result(
    result: SweepResult, settings: SweepSettings, where: str, voice: Voice
) -> None:
    """The study's trial counts, its best trial, the files, and how to browse it."""
    from .redact import redact

    counts = ", ".join(f"{n.lower()} {c}" for n, c in result.counts.items())
    voice.say(f"\nstudy '{result.study_name}': {counts}")
    if result.best:
        params = ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in result.best["params"].items()
        )
        voice.say(
            f"best: trial #{result.best['number']} ({params}): {settings.metric}"
            f" {result.best['value']:.4f}"
        )
    voice.say(f"trained {result.trained} trial(s); files:")
    for path in result.files():
        voice.say(f"  {path}")
    voice.say(f"watch or browse it: auxsearch dashboard {redact(where)}")
    failed = result.counts.get("FAIL", 0)
    if failed:
        voice.warn(f"{failed} trial(s) failed; their errors are in results.parquet (column error)")


def print_grid_result(result: GridResult, settings: GridSettings, voice: Voice) -> None:
    """The PL paper's Table 1 layout, failed cells, and the files."""
    from .grid import format_table1
    from .report import failed_cells_note

    voice.say(
        f"\ntest accuracy (%) of '{settings.roles.task}', mean over {settings.seeds} seed(s)"
        " (the layout of the PL paper's Table 1)"
    )
    voice.say(format_table1(result.matrix, settings))
    if result.failed:
        voice.warn(f"\n{failed_cells_note(result.failed)}")
    voice.say(f"\ntrained {result.trained} model(s); files:")
    for path in result.files():
        voice.say(f"  {path}")
