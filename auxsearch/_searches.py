"""`pairs`, `sweep` and `grid`: the CLI's commands as functions.

Each checks its Python arguments (types and ranges, as the CLI's flag types do),
resolves the dataset and the settings with the orchestrator's own `resolve_*`
(the same refusals as the CLI, before anything is trained or written), runs the
search with its progress lines going to the ``"auxsearch"`` logger, and returns
the search's tables.
"""

from __future__ import annotations

import argparse
import logging
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from methods.core.errors import UserInputError

from .results import SearchResult, _location, _result

if TYPE_CHECKING:
    from methods.data import Dataset
    from orchestrator.runner import Resources

logger = logging.getLogger("auxsearch")

PathLike = str | os.PathLike[str]


def pairs(
    dataset: str | Dataset | None = None,
    *,
    out: PathLike,
    attributes: Sequence[str] | str | None = None,
    lambdas: Sequence[float] | float | None = None,
    seeds: int | Literal["auto"] = 1,
    epochs: int | None = None,
    backbone: str | None = None,
    settings: Mapping[str, Any] | None = None,
    config: PathLike | None = None,
    data: PathLike | None = None,
    data_root: PathLike | None = None,
    seed: int = 0,
    min_seeds: int | None = None,
    max_seeds: int | None = None,
    certainty: float | None = None,
    adversaries: Literal["worst", "all"] = "worst",
    alpha: float = 0.05,
    require_significant: bool = False,
    null_control: bool = False,
    lambda_search: Literal["grid", "halving"] = "grid",
    reduction_factor: int | None = None,
    retry_failed: bool = False,
    storage: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    max_concurrent: int | None = None,
    max_failures: int = 1,
    pack: int | Literal["auto"] = "auto",
    address: str | None = None,
) -> SearchResult:
    """The AAL pair search end to end, as ``auxsearch pairs`` (README, "The AAL pair
    search"): stage 1's single and pair runs fill the pair matrix, stage 2 picks
    each attribute's most negative partner, stage 3 trains against it over λ.

    Rerunning with the same ``out`` resumes: only cells not yet recorded train.

    Args:
        dataset: a built-in dataset with options (``"shapes:n=2000,image_size=24"``),
            a format read from ``data_root`` (``"celeba:size=64"``), or a
            ``methods.data.Dataset``.
        out: where the tables go: a directory, ``s3://bucket/path`` or ``gs://...``.
        attributes: the attributes to pair (default: every binary attribute).
        lambdas: stage 3's λ values (default: the paper's 0.01, 0.1, 0.3, 0.5, 1.0).
        seeds: seeds per cell, or ``"auto"`` (more seeds only where a row is still
            undecided, between ``min_seeds`` and ``max_seeds``).
        epochs: epochs per run (default: the paper's 6).
        backbone: the feature extractor (default: the paper's ``resnet18``).
        settings: any training setting, as ``--set key=value`` gives it
            (``{"lr": 1e-3, "batch_size": 32}``); on top of ``config``.
        config: a YAML file of settings, as ``--config``.
        data: your own data as an ``.npz`` (instead of ``dataset``).
        data_root: the folder a real dataset is read from.
        storage: the Optuna storage URL of the stage-3 λ study (default: ``optuna.db``
            inside ``out``; needed when ``out`` is a URI).
        cpus_per_trial, gpus_per_trial, max_concurrent, max_failures, pack,
        address: Ray, as the flags of the same names (``address="auto"`` joins a
            cluster).

    The rest are the flags of the same names (``auxsearch pairs --help``).

    Returns:
        The search's tables (`SearchResult.matrix`, `.summary`, `.results`, ...) and
        what this call trained; failed cells are listed in ``.failed``, not raised.

    Raises:
        UserInputError: a bad argument, dataset, setting or ``out``, before anything
            is trained or written.
        SearchInterrupted: the search stopped before its cells finished (rerun to resume).
    """
    where = "auxsearch.pairs"
    location = _location(out, where)
    chosen_seeds = _whole(where, "seeds", seeds, _ft().SEEDS_OR_AUTO)
    overrides = _merge(
        where,
        _overrides(where, config, settings),
        {
            "backbone": _text(where, "backbone", backbone),
            "epochs": _whole(where, "epochs", epochs, _ft().COUNT),
        },
    )
    resources = _resources(
        where, cpus_per_trial, gpus_per_trial, max_concurrent, max_failures, pack
    )
    names = _names(where, "attributes", attributes)
    lams = _reals(where, "lambdas", lambdas, _ft().LAMBDAS.each)
    checked = {
        "seed": _whole(where, "seed", seed, _ft().SEED),
        "min_seeds": _whole(where, "min_seeds", min_seeds, _ft().COUNT),
        "max_seeds": _whole(where, "max_seeds", max_seeds, _ft().COUNT),
        "certainty": _real(where, "certainty", certainty, _ft().CERTAINTY),
        "alpha": _real(where, "alpha", alpha, _ft().PROBABILITY),
        "reduction_factor": _whole(where, "reduction_factor", reduction_factor, _ft().Whole(low=2)),
    }
    _choice(where, "adversaries", adversaries, ("worst", "all"))
    _choice(where, "lambda_search", lambda_search, ("grid", "halving"))
    flags = {
        name: _flag(where, name, value)
        for name, value in (
            ("require_significant", require_significant),
            ("null_control", null_control),
            ("retry_failed", retry_failed),
        )
    }
    storage = _text(where, "storage", storage)
    address = _text(where, "address", address)

    from orchestrator.pairs import run_pairs
    from orchestrator.pairs_plan import resolve_settings

    resolved_data = _dataset(where, dataset, data, data_root)
    resolved = resolve_settings(
        resolved_data,
        attributes=names,
        overrides=overrides,
        lambdas=lams,
        seeds=chosen_seeds,
        seed=checked["seed"],
        adversaries=adversaries,
        alpha=checked["alpha"],
        require_significant=flags["require_significant"],
        null_control=flags["null_control"],
        min_seeds=checked["min_seeds"],
        max_seeds=checked["max_seeds"],
        certainty=checked["certainty"],
        lambda_search=lambda_search,
        reduction_factor=checked["reduction_factor"],
    )
    raw = run_pairs(
        resolved_data,
        resolved,
        location,
        resources=resources,
        address=address,
        retry_failed=flags["retry_failed"],
        storage=storage,
        echo=_echo,
    )
    _finished("pair search", raw.trained, raw.failed, raw.resumed, location)
    return _result(location, raw, resumed=raw.resumed, storage=storage)


def sweep(
    method: str,
    dataset: str | Dataset | None = None,
    *,
    out: PathLike,
    trials: int | None = None,
    space: PathLike | Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    config: PathLike | None = None,
    data: PathLike | None = None,
    data_root: PathLike | None = None,
    metric: str | None = None,
    mode: Literal["max", "min"] = "max",
    sampler: Literal["tpe", "random", "grid"] = "tpe",
    scheduler: Literal["asha", "fifo"] = "asha",
    grace_period: int = 1,
    seeds: int = 1,
    seed: int = 0,
    storage: str | None = None,
    study: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    max_concurrent: int | None = None,
    max_failures: int = 1,
    address: str | None = None,
) -> SearchResult:
    """Any registered method over a search space, as ``auxsearch sweep`` (README,
    "Sweeps"): Ray Tune with Optuna's sampler (TPE by default) and ASHA, the study in
    an RDB storage (``optuna.db`` inside ``out`` by default) that optuna-dashboard reads.

    Rerunning with the same ``out`` continues the study up to ``trials``.

    Args:
        method: a registered method (``methods.list_methods()``).
        dataset, data, data_root, out, settings, config: as for `pairs`; ``settings``
            and ``config`` override the space's ``fixed`` values.
        trials: trials in the study in all (``sampler="grid"``: the grid's size).
        space: a search-space YAML file, or the same mapping (``{"fixed": {...},
            "space": {"lam": {"choice": [0.1, 1.0]}}}``); default: the method's
            bundled ``search_spaces/<method>.yaml``.
        metric, mode: the objective (default ``val/mean_acc``, maximised).
        sampler, scheduler, grace_period: how Optuna proposes trials and whether ASHA
            stops weak ones early.
        seeds, seed: seeds per trial (scored by their mean) and the first seed.
        storage, study: the Optuna storage URL and study name.

    Returns:
        The search's tables: `SearchResult.trials` (the study's trials),
        ``.results``; ``.raw.best`` is the best trial.

    Raises:
        UserInputError: a bad argument, method, space, setting or ``out``, before
            anything is trained or written.
    """
    where = "auxsearch.sweep"
    location = _location(out, where)
    name = _text(where, "method", method)
    overrides = _overrides(where, config, settings)
    resources = _resources(where, cpus_per_trial, gpus_per_trial, max_concurrent, max_failures)
    n_trials = _whole(where, "trials", trials, _ft().COUNT)
    checked = {
        "grace_period": _whole(where, "grace_period", grace_period, _ft().COUNT),
        "seeds": _whole(where, "seeds", seeds, _ft().COUNT),
        "seed": _whole(where, "seed", seed, _ft().SEED),
    }
    _choice(where, "mode", mode, ("max", "min"))
    _choice(where, "sampler", sampler, ("tpe", "random", "grid"))
    _choice(where, "scheduler", scheduler, ("asha", "fifo"))
    metric = _text(where, "metric", metric)
    storage = _text(where, "storage", storage)
    study = _text(where, "study", study)
    address = _text(where, "address", address)

    from methods import get_method
    from orchestrator.spaces import bundled_space_path, load_space, parse_space
    from orchestrator.sweep import resolve_sweep, run_sweep

    if name is None:
        raise UserInputError(f"{where}: give method= (a registered method)")
    get_method(name)
    if isinstance(space, Mapping):
        searched = parse_space(dict(space), name, "space=")
    elif space is None or isinstance(space, str | os.PathLike):
        searched = load_space(os.fspath(space) if space else bundled_space_path(name), name)
    else:
        raise UserInputError(
            f"{where}: space={space!r} is neither a YAML file nor a mapping of fixed/space"
        )
    resolved_data = _dataset(where, dataset, data, data_root)
    resolved = resolve_sweep(
        resolved_data,
        method=name,
        space=searched,
        overrides=overrides,
        trials=None if n_trials is None else int(n_trials),
        metric=metric,
        mode=mode,
        scheduler=scheduler,
        sampler=sampler,
        grace_period=int(checked["grace_period"] or 1),
        seeds=int(checked["seeds"] or 1),
        seed=int(checked["seed"] or 0),
        study=study or "",
    )
    resumed = _held(location)
    raw = run_sweep(
        resolved_data,
        resolved,
        location,
        storage=storage,
        resources=resources,
        address=address,
        echo=_echo,
    )
    if raw.best:
        logger.info(
            "best: trial #%s, %s %.4f (%s)",
            raw.best["number"],
            resolved.metric,
            raw.best["value"],
            ", ".join(f"{k}={v}" for k, v in raw.best["params"].items()),
        )
    result = _result(location, raw, resumed=resumed, storage=storage)
    # every trial of the study recorded as failed, this call's and earlier ones'
    # (a sweep never trains a failed trial again: the sampler proposes a new one)
    rows = result.results
    result.failed = sorted(set(rows.loc[rows["status"] == "failed", "trial_id"].astype(str)))
    _finished("sweep", raw.trained, result.failed, resumed, location)
    return result


def grid(
    dataset: str | Dataset | None = None,
    *,
    out: PathLike,
    methods: Sequence[str] | str | None = None,
    train: Sequence[str] | str | None = None,
    test: Sequence[str] | str | None = None,
    backbones: Sequence[str] | str = ("resnet18",),
    task: str | None = None,
    irrelevant: str | None = None,
    relevant: str | None = None,
    seeds: int = 1,
    seed: int = 0,
    include_self: bool = False,
    pca: bool = False,
    protocol: PathLike | None = None,
    settings: Mapping[str, Any] | None = None,
    config: PathLike | None = None,
    data: PathLike | None = None,
    data_root: PathLike | None = None,
    retry_failed: bool = False,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    max_concurrent: int | None = None,
    max_failures: int = 1,
    address: str | None = None,
) -> SearchResult:
    """A cross-dataset grid, as ``auxsearch grid`` (README, "Cross-dataset grids"):
    every method × backbone × train domain (× seed) trained once and tested on
    every test domain.

    Args:
        dataset, data, data_root, out, config, address and the Ray arguments: as
            for `pairs`.
        methods: registered methods that take a grid's roles (default: the protocol's).
        train, test: train and test domains (default: the dataset's own).
        backbones: feature extractors, each a grid column of its own.
        task, irrelevant, relevant: the target label, and the task-irrelevant and
            task-relevant sets as ``"DOMAIN:LABEL"`` (default: the dataset's own).
        seeds, seed: seeds per cell (the table shows the mean) and the first seed.
        include_self: also test on the train domain's own test split.
        pca: also record the features' explained-variance ratios (``pca.parquet``).
        protocol: a grid protocol file (default: the Purified Learning paper's).
        settings: settings for every method (``{"lr": 1e-3}``), or for one
            (``{"purified.critic_clip": 0.05}``), as ``--set``.

    Returns:
        The search's tables: `SearchResult.grid`, ``.grid_std``, ``.results``.

    Raises:
        UserInputError: a bad argument, dataset, setting or ``out``, before anything
            is trained or written.
        SearchInterrupted: the grid stopped before its cells finished (rerun to resume).
    """
    where = "auxsearch.grid"
    location = _location(out, where)
    overrides = _overrides(where, config, settings)
    resources = _resources(where, cpus_per_trial, gpus_per_trial, max_concurrent, max_failures)
    lists = {
        name: _names(where, name, value)
        for name, value in (("methods", methods), ("train", train), ("test", test))
    }
    chosen_backbones = _names(where, "backbones", backbones)
    if not chosen_backbones:
        raise UserInputError(f"{where}: backbones is empty; give at least one")
    texts = {
        name: _text(where, name, value)
        for name, value in (("task", task), ("irrelevant", irrelevant), ("relevant", relevant))
    }
    checked = {
        "seeds": _whole(where, "seeds", seeds, _ft().COUNT),
        "seed": _whole(where, "seed", seed, _ft().SEED),
    }
    flags = {
        name: _flag(where, name, value)
        for name, value in (
            ("include_self", include_self),
            ("pca", pca),
            ("retry_failed", retry_failed),
        )
    }
    protocol_file = _path(where, "protocol", protocol)
    address = _text(where, "address", address)

    from orchestrator.grid import resolve_grid, run_grid

    resolved_data = _dataset(where, dataset, data, data_root)
    resolved = resolve_grid(
        resolved_data,
        methods=lists["methods"],
        train=lists["train"],
        test=lists["test"],
        backbones=chosen_backbones,
        overrides=overrides,
        task=texts["task"],
        irrelevant=texts["irrelevant"],
        relevant=texts["relevant"],
        seeds=int(checked["seeds"] or 1),
        seed=int(checked["seed"] or 0),
        include_self=flags["include_self"],
        pca=10 if flags["pca"] else 0,
        protocol=protocol_file,
    )
    resumed = _held(location)
    raw = run_grid(
        resolved_data,
        resolved,
        location,
        resources=resources,
        address=address,
        retry_failed=flags["retry_failed"],
        echo=_echo,
    )
    _finished("grid", raw.trained, raw.failed, resumed, location)
    return _result(location, raw, resumed=resumed)


# --- progress -----------------------------------------------------------------------


def _echo(line: str) -> None:
    """A progress line of a running search, to the "auxsearch" logger (with any
    storage password hidden, as the CLI's streams hide it)."""
    from orchestrator.redact import redact

    text = redact(line.strip("\n"))
    if text.strip():
        logger.info("%s", text)


def _finished(what: str, trained: int, failed: list[str], resumed: bool | None, out: str) -> None:
    if failed:
        shown = ", ".join(failed[:5]) + (", ..." if len(failed) > 5 else "")
        retry = "" if what == "sweep" else "; call again with retry_failed=True to train them again"
        logger.warning(
            "%d cell(s) failed: %s (their errors: the results table, column error)%s",
            len(failed),
            shown,
            retry,
        )
    again = " (resumed)" if resumed else ""
    logger.info("%s done: trained %d cell(s)%s; tables in %s", what, trained, again, out)


# --- the dataset ----------------------------------------------------------------------


def _dataset(
    where: str, dataset: object, data: PathLike | None, data_root: PathLike | None
) -> Dataset:
    """`dataset` (a spec or a Dataset), or `data` (an .npz), or a disk format under
    `data_root`; what `--dataset`, `--data` and `--data-root` give the CLI."""
    from methods.data import Dataset
    from orchestrator.inputs import parse_dataset_spec, resolve_dataset

    data_file = _path(where, "data", data)
    root = _path(where, "data_root", data_root)
    if isinstance(dataset, Dataset):
        if data_file or root:
            raise UserInputError(
                f"{where}: a Dataset object takes neither data= nor data_root=; give one of them"
            )
        return dataset
    if dataset is not None and not isinstance(dataset, str):
        raise UserInputError(
            f"{where}: dataset={dataset!r} is neither a dataset name (e.g. 'shapes:n=2000')"
            " nor a methods.data.Dataset"
        )
    if dataset and root and not data_file:
        from methods.data.formats import is_disk_format, load_from_disk

        name, options = parse_dataset_spec(dataset)
        if is_disk_format(name):  # its decoding progress to the logger, not stderr
            return load_from_disk(name, root, options, echo=_echo)
    return resolve_dataset(dataset or None, data_file, root)


# --- arguments, checked as the CLI's flag types check them ----------------------------


def _ft() -> Any:
    from orchestrator import flag_types

    return flag_types


def _convert(where: str, name: str, kind: Any, text: str) -> Any:
    try:
        return kind(text)
    except argparse.ArgumentTypeError as exc:
        raise UserInputError(f"{where}: {name}={exc}") from None


def _whole(where: str, name: str, value: object, kind: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str) and value in kind.extra:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UserInputError(f"{where}: {name}={value!r} is not allowed; use {kind.describe()}")
    return _convert(where, name, kind, str(int(value)))


def _real(where: str, name: str, value: object, kind: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UserInputError(f"{where}: {name}={value!r} is not allowed; use {kind.describe()}")
    result: float = _convert(where, name, kind, repr(float(value)))
    return result


def _reals(where: str, name: str, value: object, each: Any) -> list[float] | None:
    if value is None:
        return None
    if isinstance(value, str):  # "0.1,1", as the flag takes it
        return [float(_convert(where, name, each, v)) for v in _text_list(where, name, value)]
    items = [value] if isinstance(value, numbers.Real) else value
    if not isinstance(items, Sequence):
        raise UserInputError(f"{where}: {name}={value!r} is not a list of numbers")
    values = [_real(where, name, v, each) for v in items]
    return [v for v in values if v is not None]


def _text_list(where: str, name: str, value: str) -> list[str]:
    try:
        return list(_ft().names(value))
    except argparse.ArgumentTypeError as exc:
        raise UserInputError(f"{where}: {name}={exc}") from None


def _names(where: str, name: str, value: object) -> list[str] | None:
    """A list of names, or one string of them separated by commas ("red,large")."""
    if value is None:
        return None
    if isinstance(value, str):
        return _text_list(where, name, value)
    if not isinstance(value, Sequence) or not all(isinstance(v, str) and v for v in value):
        raise UserInputError(f"{where}: {name}={value!r} is not a list of names")
    return [str(v) for v in value]


def _text(where: str, name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise UserInputError(f"{where}: {name}={value!r} is not allowed; give a non-empty string")
    return value


def _path(where: str, name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike):
        raise UserInputError(f"{where}: {name}={value!r} is not a path")
    return _text(where, name, os.fspath(value))


def _flag(where: str, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise UserInputError(f"{where}: {name}={value!r} is not allowed; use True or False")
    return value


def _choice(where: str, name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserInputError(f"{where}: {name}={value!r}: choose {' or '.join(choices)}")


def _overrides(
    where: str, config: PathLike | None, settings: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The config file's values with `settings` on top, as --config and --set."""
    from orchestrator.inputs import load_config_file

    if settings is not None and not isinstance(settings, Mapping):
        raise UserInputError(f"{where}: settings={settings!r} is not a mapping of key: value")
    bad = [k for k in settings or {} if not isinstance(k, str) or not k]
    if bad:
        raise UserInputError(f"{where}: settings key {bad[0]!r} is not a setting's name")
    return {**load_config_file(_path(where, "config", config)), **dict(settings or {})}


def _merge(where: str, overrides: dict[str, Any], named: Mapping[str, Any]) -> dict[str, Any]:
    """`overrides` with the settings given as their own arguments (backbone=, epochs=);
    one given both ways with different values is refused: neither silently wins."""
    merged = dict(overrides)
    for key, value in named.items():
        if value is None:
            continue
        if key in merged and merged[key] != value:
            raise UserInputError(
                f"{where}: {key}={value!r} and {key}={merged[key]!r} from settings/config"
                " disagree; give the value once"
            )
        merged[key] = value
    return merged


def _resources(
    where: str,
    cpus: object,
    gpus: object,
    concurrent: object,
    failures: object,
    pack: object = "auto",
) -> Resources:
    from orchestrator.runner import Resources

    ft = _ft()
    cpus_per_trial = _real(where, "cpus_per_trial", cpus, ft.CPUS)
    gpus_per_trial = _real(where, "gpus_per_trial", gpus, ft.GPUS)
    retries = _whole(where, "max_failures", failures, ft.RETRIES)
    packed = _whole(where, "pack", pack, ft.PACK)
    return Resources(
        1.0 if cpus_per_trial is None else cpus_per_trial,
        0.0 if gpus_per_trial is None else gpus_per_trial,
        _whole(where, "max_concurrent", concurrent, ft.COUNT),
        1 if retries is None else int(retries),
        pack="auto" if packed is None else packed,
    )


def _held(location: str) -> bool:
    """Whether `location` already holds a search (so this call resumes it)."""
    from orchestrator.storage import OutputDir

    try:
        return OutputDir(location).exists("search.json")
    except (OSError, UserInputError):
        return False  # run_* says why in one sentence
