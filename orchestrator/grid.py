"""`auxsearch grid`: cross-dataset grids, the evaluation of the Purified Learning
paper (Tables 1–2): every method × backbone × train domain (× seed) is one
training, tested on every other domain — one training fills its whole test row.

The protocol (`search_spaces/protocols/grid.yaml`, or `--protocol FILE`) names
the default methods and the training settings every method gets (the PL
paper's: SGD 1e-3, momentum 0.9, StepLR 7, 128-d features, 50 epochs, last
epoch), overridden for all alike by `--config`/`--set key=value`, so the table
compares methods, not settings; `--set METHOD.key=value` sets one method's own
hyperparameter (e.g. `--set <method>.critic_clip=0.05`).
Each method turns the grid's roles (target task, task-irrelevant set and
label, optionally a task-relevant set) into its own config through its
`for_grid` hook.

Writes results.parquet (test rows carry their test_domain), grid_matrix.parquet
(method, backbone, train domain, one column per test domain, `_std` with
seeds) and, with `--pca`, pca.parquet and pca.png (the paper's Figure 2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from methods import get_method, list_methods
from methods.core import GridRoles, config_to_dict
from methods.data import Dataset

from . import manifest
from .cells import Cell, Outcome
from .errors import ConfigError, UserInputError
from .inputs import check_seeds
from .options import default, describe
from .protocols import load_grid_protocol
from .results import RESULTS_FILE, ResultsLog
from .runner import Resources
from .stages import StageRunner
from .storage import OutputDir
from .study import exclusive

Echo = Callable[[str], None]
GRID_MATRIX_FILE = "grid_matrix.parquet"
PCA_FILE = "pca.parquet"
PCA_PLOT = "pca.png"


@dataclass(frozen=True)
class GridSettings:
    """Everything that decides which trainings a grid runs."""

    methods: tuple[str, ...]
    train: tuple[str, ...]
    test: tuple[str, ...]
    backbones: tuple[str, ...]
    roles: GridRoles
    protocol: dict[str, Any]  # the protocol's settings, then --config/--set for every method
    per_method: dict[str, dict[str, Any]] = field(default_factory=dict)  # --set METHOD.key=v
    seeds: int = default("grid", "seeds")
    seed: int = default("grid", "seed")
    include_self: bool = default("grid", "include_self")
    pca: int = 0  # principal components recorded (--pca: 10)

    def tests_for(self, train: str) -> list[str]:
        return [t for t in self.test if self.include_self or t != train]

    def identity(self, dataset: Dataset) -> dict[str, Any]:
        return {
            "search": "grid",
            "dataset": dataset.fingerprint,
            "roles": asdict(self.roles),
            "protocol": self.protocol,
            "per_method": self.per_method,
            "test": list(self.test),
            "include_self": self.include_self,
            "pca": self.pca,
        }

    def describe(self) -> dict[str, Any]:
        """What search.json records: the options `options.GRID` marks recorded."""
        return describe("grid", lambda name: getattr(self, name))

    def cell(self, method: str, backbone: str, train: str, seed: int) -> Cell:
        spec = get_method(method)
        values = {
            **self.protocol,
            **self.per_method.get(method, {}),
            **grid_hook(method)(self.roles, train, self.tests_for(train)),
            "backbone": backbone,
            "pca_components": self.pca,
        }
        config = spec.make_config(values)
        tasks, aux = config.run_tasks()
        return Cell(
            id=f"grid:{method}:{backbone}:{train}:seed={seed}",
            stage="grid",
            method=method,
            params=config_to_dict(config),
            seed=seed,
            tasks=tuple(tasks),
            aux=tuple(aux),
            domain=train,
        )


GridHook = Callable[[GridRoles, str, Sequence[str]], dict[str, Any]]


def grid_hook(method: str) -> GridHook:
    """The method's `for_grid`: how its config takes the grid's roles."""
    config_cls = get_method(method).config_cls
    if not config_cls.supports("for_grid"):
        usable = [n for n in list_methods() if get_method(n).config_cls.supports("for_grid")]
        raise UserInputError(
            f"method '{method}' cannot run in a grid; these can: {', '.join(usable)}"
        )
    hook: GridHook = config_cls.for_grid
    return hook


def parse_role(text: str, flag: str) -> tuple[str, str]:
    domain, sep, label = text.partition(":")
    if not sep or not domain or not label:
        raise UserInputError(f"{flag} {text}: expected DOMAIN:LABEL (e.g. irrelevant:bg)")
    return domain, label


def resolve_grid(
    dataset: Dataset,
    *,
    methods: Sequence[str] | None,
    train: Sequence[str] | None,
    test: Sequence[str] | None,
    backbones: Sequence[str],
    overrides: Mapping[str, Any],
    task: str | None = None,
    irrelevant: str | None = None,
    relevant: str | None = None,
    seeds: int = default("grid", "seeds"),
    seed: int = default("grid", "seed"),
    include_self: bool = default("grid", "include_self"),
    pca: int = 0,
    protocol: str | None = None,
) -> GridSettings:
    """Validate a grid completely (every config against the data) before anything runs.

    `protocol`: a grid protocol file (default: the bundled PL protocol)."""
    preset = load_grid_protocol(protocol)
    defaults = dict(dataset.params.get("grid_defaults") or {})  # type: ignore[call-overload]
    methods = tuple(methods or preset.methods)
    train = tuple(train or defaults.get("train") or ())
    test = tuple(test or defaults.get("test") or ())
    task = task or defaults.get("task")
    irrelevant = irrelevant or defaults.get("irrelevant")
    relevant = relevant or defaults.get("relevant")
    for name, values in (
        ("--methods", methods),
        ("--train", train),
        ("--test", test),
        ("--backbones", backbones),
    ):
        if not values:
            raise UserInputError(f"{name} is empty; name at least one")
        if len(set(values)) != len(values):
            raise UserInputError(f"{name} repeats a value")
    for name in (*train, *test):
        dataset.domain(name)  # unknown domain → one sentence listing the domains
    for m in methods:
        grid_hook(m)
    if not task:
        raise UserInputError("no target task; pass --task LABEL")
    irr_domain, irr_label = parse_role(irrelevant, "--irrelevant") if irrelevant else ("", "")
    rel_domain, rel_label = parse_role(relevant, "--relevant") if relevant else ("", "")
    roles = GridRoles(task, irr_domain, irr_label, rel_domain, rel_label)
    check_seeds(seeds, first=seed)
    # `--set key=v` applies to every method; `--set METHOD.key=v` to that method only.
    shared = {k: v for k, v in overrides.items() if "." not in k}
    per_method: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        if "." in key:
            method, _, name = key.partition(".")
            if method not in methods:
                raise UserInputError(
                    f"--set {key}: '{method}' is not one of the grid's methods"
                    f" ({', '.join(methods)})"
                )
            per_method.setdefault(method, {})[name] = value
    settings = GridSettings(
        methods=methods,
        train=train,
        test=test,
        backbones=tuple(backbones),
        roles=roles,
        protocol={**preset.settings, **shared},
        per_method=per_method,
        seeds=seeds,
        seed=seed,
        include_self=include_self,
        pca=pca,
    )
    for t in train:
        if not settings.tests_for(t):
            raise UserInputError(
                f"training on '{t}' leaves nothing to test on; add other --test domains"
                " or --include-self"
            )
    for m in methods:  # a --set of a key the grid sets from its flags would be overruled
        from_flags = {
            "backbone": "--backbones",
            "pca_components": "--pca",
            **{
                k: "--task, --train, --test, --irrelevant or --relevant"
                for k in grid_hook(m)(roles, train[0], settings.tests_for(train[0]))
            },
        }
        for key in (*shared, *per_method.get(m, {})):
            if key in from_flags:
                raise UserInputError(
                    f"--set {key} is set by the grid for each cell; use {from_flags[key]}"
                )
    for m in methods:  # every config the grid will run, checked against the data
        for t in train:
            for b in backbones:
                try:
                    cell = settings.cell(m, b, t, seed)
                except ConfigError as exc:
                    raise ConfigError(f"grid method '{m}': {exc}") from None
                get_method(m).make_config(cell.params).check_data(dataset)
    return settings


def grid_cells(settings: GridSettings) -> list[Cell]:
    """|train| × |backbones| × |methods| trainings per seed."""
    return [
        settings.cell(m, b, t, settings.seed + k)
        for k in range(settings.seeds)
        for m in settings.methods
        for b in settings.backbones
        for t in settings.train
    ]


def cross_accuracies(
    rows: Sequence[Mapping[str, Any]], settings: GridSettings, ids: set[str]
) -> pd.DataFrame:
    """Per cell (method, backbone, train, test, seed), the target task's test accuracy."""
    keep = [
        {
            "method": r["method"],
            "backbone": r["backbone"],
            "train": r["train_domain"],
            "test": r["test_domain"],
            "seed": r["seed"],
            "value": r["value"],
        }
        for r in rows
        if r["trial_id"] in ids
        and r["status"] == "ok"
        and r["split"] == "test"
        and r["metric"] == "acc"
        and r["main_task"] == settings.roles.task
        and r["test_domain"] in settings.tests_for(r["train_domain"])
    ]
    return pd.DataFrame(keep, columns=["method", "backbone", "train", "test", "seed", "value"])


def grid_matrix(acc: pd.DataFrame, settings: GridSettings) -> pd.DataFrame:
    """Wide: method, backbone, train_domain, one column per test domain (+ `_std`)."""
    stats = acc.groupby(["method", "backbone", "train", "test"])["value"].agg(["mean", "std"])
    rows = []
    for m in settings.methods:
        for b in settings.backbones:
            for t in settings.train:
                row: dict[str, Any] = {"method": m, "backbone": b, "train_domain": t}
                for d in settings.test:
                    key = (m, b, t, d)
                    row[d] = float(stats.loc[key, "mean"]) if key in stats.index else None
                    if settings.seeds > 1:
                        std = stats.loc[key, "std"] if key in stats.index else None
                        row[f"{d}_std"] = None if std is None or std != std else float(std)
                rows.append(row)
    return pd.DataFrame(rows)


def pca_table(rows: Sequence[Mapping[str, Any]], ids: set[str]) -> pd.DataFrame:
    """Mean explained-variance ratio per (method, backbone, train, test, component)."""
    keep = [
        {
            "method": r["method"],
            "backbone": r["backbone"],
            "train_domain": r["train_domain"],
            "test_domain": r["test_domain"],
            "component": int(r["metric"].rsplit("_", 1)[1]),
            "ratio": r["value"],
        }
        for r in rows
        if r["trial_id"] in ids
        and r["status"] == "ok"
        and str(r["metric"]).startswith("pca_ratio_")
    ]
    df = pd.DataFrame(
        keep, columns=["method", "backbone", "train_domain", "test_domain", "component", "ratio"]
    )
    keys = ["method", "backbone", "train_domain", "test_domain", "component"]
    return df.groupby(keys, as_index=False)["ratio"].mean()


@dataclass
class GridResult:
    out: OutputDir
    settings: GridSettings
    matrix: pd.DataFrame
    pca: pd.DataFrame | None
    trained: int = 0
    failed: list[str] = field(default_factory=list)

    def files(self) -> list[str]:
        names = [RESULTS_FILE, GRID_MATRIX_FILE, PCA_FILE, PCA_PLOT, manifest.MANIFEST]
        return [self.out.display(n) for n in names if self.out.exists(n)]


def _describe(outcome: Outcome) -> str:
    """`<cell id>: plain 41.2%  coloured 38.0%`: the test accuracy on each test domain."""
    scores = "  ".join(
        f"{k.split('/')[0][5:]} {v * 100:.1f}%"
        for k, v in sorted(outcome.metrics.items())
        if k.startswith("test@") and k.endswith("/mean_acc")
    )
    return f"{outcome.cell.id}: {scores}"


def run_grid(
    dataset: Dataset,
    settings: GridSettings,
    out_location: str,
    *,
    resources: Resources | None = None,
    address: str | None = None,
    retry_failed: bool = False,
    echo: Echo = print,
    warn: Echo | None = None,
) -> GridResult:
    """Run (or resume) every training of the grid; write the matrix (and PCA)."""
    from .plots import pca_png
    from .tables import FRACTION, write_table

    resources = resources or Resources()
    resources.check_for(address)
    out = OutputDir(out_location)
    out.ensure_writable()
    with exclusive(out):
        identity, described = settings.identity(dataset), settings.describe()
        manifest.claim(out, identity, described)
        # the grid's axes (method, backbone, train_domain) are results columns already:
        # it sweeps no setting of its own
        log = ResultsLog(
            out,
            search="grid",
            dataset=dataset.name,
            settings=described,
            identity=identity,
            warn=warn,
        )
        cells = grid_cells(settings)
        with StageRunner(
            dataset,
            out,
            log,
            resources=resources,
            address=address,
            retry_failed=retry_failed,
            echo=echo,
        ) as stages:
            stages.run("grid: every method x backbone x train domain", cells, describe=_describe)
        ids = {c.id for c in cells}
        matrix = grid_matrix(cross_accuracies(log.rows, settings, ids), settings)
        docs = _matrix_docs(settings, FRACTION)
        write_table(out, GRID_MATRIX_FILE, matrix, "grid_matrix/1", log.meta, docs)
        pca = None
        if settings.pca:
            pca = pca_table(log.rows, ids)
            write_table(out, PCA_FILE, pca, "pca/1", log.meta, _pca_docs(FRACTION))
            out.write_bytes(PCA_PLOT, pca_png(pca, settings.methods))
    return GridResult(out, settings, matrix, pca, stages.trained, stages.failed)


def _matrix_docs(settings: GridSettings, fraction: str) -> dict[str, tuple[str, str]]:
    """(unit, description) of grid_matrix.parquet's columns."""
    task = settings.roles.task
    docs = {
        "method": ("", "the method trained"),
        "backbone": ("", "its backbone"),
        "train_domain": ("", "the domain it trained on"),
    }
    for d in settings.test:
        docs[d] = (
            fraction,
            f"test accuracy of the target task {task} on domain {d}, mean over seeds (at"
            " the epoch the method selects); null where not tested or every run failed",
        )
        docs[f"{d}_std"] = (fraction, f"sample standard deviation (ddof=1) over seeds of {d}")
    return docs


def _pca_docs(fraction: str) -> dict[str, tuple[str, str]]:
    return {
        "method": ("", "the method trained"),
        "backbone": ("", "its backbone"),
        "train_domain": ("", "the domain it trained on"),
        "test_domain": ("", "the domain whose test features were analysed"),
        "component": ("", "the principal component's rank (1 = most variance)"),
        "ratio": (fraction, "its explained-variance ratio on the test features, mean over seeds"),
    }


def format_table1(matrix: pd.DataFrame, settings: GridSettings) -> str:
    """The PL paper's Table 1 layout: backbone × train→test rows, one column per method."""
    from .report import format_table

    rows = []
    for b in settings.backbones:
        sub = matrix[matrix["backbone"] == b]
        per_method: dict[str, list[float]] = {m: [] for m in settings.methods}
        for t in settings.train:
            for d in settings.tests_for(t):
                cells = []
                for m in settings.methods:
                    v = sub[(sub["method"] == m) & (sub["train_domain"] == t)][d]
                    value = v.iloc[0] if len(v) else None
                    if value is not None and value == value:
                        per_method[m].append(float(value))
                        cells.append(f"{value * 100:.2f}")
                    else:
                        cells.append("-")
                rows.append([b, f"{t} → {d}", *cells])
        rows.append(
            [b, "average", *(f"{np.mean(v) * 100:.2f}" if v else "-" for v in per_method.values())]
        )
    return format_table(["backbone", "train → test", *settings.methods], rows)
