"""`pairs`, `sweep` and `grid`: the CLI's commands as functions.

Each checks its Python arguments (types and ranges, as the CLI's flag types do),
resolves the dataset and the settings with the orchestrator's own `resolve_*`
(the same refusals as the CLI, before anything is trained or written), runs the
search with its progress lines going to the ``"auxsearch"`` logger, and returns
the search's tables.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from methods.core.errors import UserInputError

from .results import SearchResult, _location, _result

if TYPE_CHECKING:
    from methods.data import Dataset

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
    return _start("pairs", locals())


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
    return _start("sweep", locals())


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
    return _start("grid", locals())


# --- one start for the three ---------------------------------------------------------

_WHAT = {"pairs": "pair search", "sweep": "sweep", "grid": "grid"}


def _start(command: str, arguments: dict[str, Any]) -> SearchResult:
    """Check the arguments against the command's options (`orchestrator.options`),
    start the search where the CLI starts it (`orchestrator.launch`), and return
    its tables. A refusal speaks of the API's arguments, not the CLI's flags."""
    from orchestrator import launch
    from orchestrator.options import check_arguments, python_wording

    where = f"auxsearch.{command}"
    arguments = dict(arguments)
    location = _location(arguments.pop("out"), where)
    sets = _settings(where, arguments.pop("settings"))
    space = arguments.pop("space", None)
    given_dataset = arguments.pop("dataset")
    values = check_arguments(where, command, arguments)
    values.update(out=location, dataset=given_dataset)
    resumed = _held(location)

    def warn(line: str) -> None:
        _say(python_wording(line, command), logging.WARNING)

    voice = launch.Voice(say=_say, warn=warn, note=_say)
    try:
        if command == "sweep":
            started = launch.sweep(values, sets, voice, space=space)
        else:
            started = getattr(launch, command)(values, sets, voice)
    except UserInputError as exc:
        exc.args = (f"{where}: {python_wording(str(exc), command)}",)
        raise
    raw = started.result
    result = _result(location, raw, resumed=resumed, storage=values.get("storage"))
    if command == "sweep":
        # every trial of the study recorded as failed, this call's and earlier ones'
        # (a sweep never trains a failed trial again: the sampler proposes a new one)
        rows = result.results
        result.failed = sorted(set(rows.loc[rows["status"] == "failed", "trial_id"].astype(str)))
    again = " (resumed)" if resumed else ""
    logger.info(
        "%s done: trained %d cell(s)%s; tables in %s", _WHAT[command], raw.trained, again, location
    )
    return result


def _say(line: str, level: int = logging.INFO) -> None:
    """A line of a running search, to the "auxsearch" logger (with any storage
    password hidden, as the CLI's streams hide it)."""
    from orchestrator.redact import redact

    text = redact(line.strip("\n"))
    if text.strip():
        logger.log(level, "%s", text)


def _settings(where: str, settings: object) -> dict[str, Any]:
    """`settings={...}`: the API's --set."""
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise UserInputError(f"{where}: settings={settings!r} is not a mapping of key: value")
    bad = [k for k in settings if not isinstance(k, str) or not k]
    if bad:
        raise UserInputError(f"{where}: settings key {bad[0]!r} is not a setting's name")
    return dict(settings)


def _held(location: str) -> bool:
    """Whether `location` already holds a search (so this call resumes it)."""
    from orchestrator.storage import OutputDir

    try:
        return OutputDir(location).exists("search.json")
    except (OSError, UserInputError):
        return False  # the search says why in one sentence
