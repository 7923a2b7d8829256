"""`auxsearch pairs`: the pair search end to end (the AAL paper's §3.3 and Table 3;
its methods come from `search_spaces/protocols/pairs.yaml`).

Stage 1 trains the single-task and pair runs on Ray Tune and fills the pair
matrix; stage 2 picks each attribute's most negative partner; stage 3 trains
the adversarial runs over the λ sweep, picks λ and epoch on validation and
reports test. Every finished cell is recorded in results.parquet the moment it
finishes; a rerun with the same --out trains only the cells still missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from methods.data import Dataset
from methods.data.dataset import Domain

from . import manifest
from .adaptive_seeds import CellKey, RowState, run_rounds
from .cells import Cell, Outcome
from .curves import CURVES_FILE
from .lambda_halving import survivors
from .leakage import CURVE_DOCS, LEAKAGE_DOCS, chance_bands, leakage_frames, leakage_metrics
from .pair_analysis import (
    Partner,
    Values,
    adversarial_values,
    choose_partners,
    matrix,
    pair_values,
    summary_table,
)
from .pairs_plan import (
    PairsSettings,
    seed_values,
    stage1_cells,
    stage1_cells_for,
    stage1_id,
    stage1_keys,
    stage3_cells,
)
from .plots import heatmap_png, lambda_sweep_png
from .recovery import OUTCOME_ATTR, outcome_record, study_outcomes
from .redact import redact
from .results import RESULTS_FILE, ResultsLog, SweptSetting, swept_setting
from .runner import Resources
from .stage3_report import LAMBDA_DOCS, Stage3Runs, extend_summary, lambda_sweep_frame
from .stages import StageRunner, val_scores
from .storage import OutputDir
from .study import (
    STORAGE_FILE,
    claim_study,
    default_study_name,
    exclusive,
    open_storage,
    storage_url,
)
from .tables import (
    ADAPTIVE_FILE,
    HEATMAP_FILE,
    LAMBDA_PLOT_FILE,
    LAMBDA_SWEEP_FILE,
    LEAKAGE_CURVES_FILE,
    LEAKAGE_FILE,
    PAIR_MATRIX_FILE,
    SUMMARY_FILE,
    adaptive_table,
    pair_matrix_table,
    summary_arrow,
    write_parquet,
    write_table,
)

Echo = Callable[[str], None]

# a log study's λ, in the runs whose λ set holds 0 (LambdaStudy.lambda_param)
LINEAR_SUFFIX = "_linear"


@dataclass
class PairsResult:
    out: OutputDir
    mean: pd.DataFrame
    std: pd.DataFrame | None
    partners: dict[str, Partner]
    summary: pd.DataFrame
    trained: int = 0
    failed: list[str] = field(default_factory=list)
    resumed: bool = False
    rows: dict[str, RowState] | None = None  # `--seeds auto`: each row's decision
    lambda_sweep: pd.DataFrame | None = None  # per attribute and λ: val/test accuracy
    leakage: pd.DataFrame | None = None  # per λ: the adversary's reading of its partner

    def files(self) -> list[str]:
        names = [
            RESULTS_FILE,
            PAIR_MATRIX_FILE,
            SUMMARY_FILE,
            HEATMAP_FILE,
            LAMBDA_SWEEP_FILE,
            LEAKAGE_FILE,
            LEAKAGE_CURVES_FILE,
            LAMBDA_PLOT_FILE,
            CURVES_FILE,
            ADAPTIVE_FILE,
            manifest.MANIFEST,
            STORAGE_FILE,
        ]
        return [self.out.display(n) for n in names if self.out.exists(n)]


def _describer(sweep: str) -> Callable[[Outcome], str]:
    """Progress lines such as `adversarial red vs large λ=0.1 seed 0: val red 91.0%`."""

    def describe(outcome: Outcome) -> str:
        cell = outcome.cell
        what = f"{cell.stage:<11} {'+'.join(cell.tasks)}"
        if cell.aux:
            what += f" vs {'+'.join(cell.aux)} λ={cell.params.get(sweep):g}"
        return f"{what} seed {cell.seed}: val {val_scores(outcome)}"

    return describe


@dataclass
class LambdaStudy:
    """Stage 3 as an Optuna study: one trial per (attribute, λ, seed) cell, enqueued
    as a fixed grid, so the λ sweep is watched and browsed like any sweep."""

    settings: PairsSettings
    dataset: str
    storage: Any  # an Optuna RDBStorage
    name: str
    results: ResultsLog

    # λ's scale in the dashboard. Optuna compares every distribution it records for a
    # parameter name with the one the study already holds: a float range may move
    # (only `log` must match) but a categorical's choices may not, so λ is a float
    # range, never a choice (a longer --lambdas would be refused). The paper's λ are
    # spread over decades (0.01 … 1), so λ is recorded on a log scale, which the
    # dashboard's plots and importances then use; a log range cannot hold λ = 0.
    # The scale of a study is settled by its first λ trial and never changes:
    # - a new study: log when every λ > 0, linear when its λ set holds 0;
    # - a study that holds λ linear (begun with λ = 0, or written by auxsearch
    #   before λ had a log scale) stays linear under any later λ set;
    # - a log study rerun with λ = 0 among its λs records that run's trials under
    #   the linear companion `<sweep>_linear`: the only change of λ set that cannot
    #   stay on the study's scale, and its earlier trials keep theirs.
    # Trials of one run always share one space (CellSearch asks for every key of it),
    # so λ = 0 cannot be left out of one trial's λ alone. A conditional λ would also
    # drop λ from Optuna's importances, which use only the keys every trial holds.
    _lambda_key: tuple[str, bool] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def lambda_param(self) -> tuple[str, bool]:
        """The name this run records λ under in the study, and whether on a log scale."""
        if self._lambda_key is None:
            sweep = self.settings.protocol.sweep
            positive = min(self.settings.lambdas) > 0
            held = self._held_log(sweep)
            if held is None:  # no λ trial yet: the study takes this run's scale
                self._lambda_key = (sweep, positive)
            elif held and not positive:
                self._lambda_key = (f"{sweep}{LINEAR_SUFFIX}", False)
            else:
                self._lambda_key = (sweep, held)
        return self._lambda_key

    def _held_log(self, name: str) -> bool | None:
        """The log flag of the distribution the study holds for `name`; None: none."""
        try:
            study_id = self.storage.get_study_id_from_name(self.name)
        except KeyError:
            return None
        for t in self.storage.get_all_trials(study_id, deepcopy=False):
            dist = t.distributions.get(name)
            if dist is not None:
                return bool(getattr(dist, "log", False))
        return None

    def space(self) -> dict[str, Any]:
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        lams = self.settings.lambdas
        seeds = seed_values(self.settings)
        name, log = self.lambda_param()
        # Optuna refuses a parameter whose distribution changes kind or choices
        # between runs of a study: keep them stable across reruns and extensions.
        return {
            "main": CategoricalDistribution(sorted(self.settings.attributes)),
            name: FloatDistribution(min(lams), max(lams), log=log),
            "seed": IntDistribution(min(seeds), max(seeds)),
        }

    def lambda_of(self, params: Mapping[str, Any]) -> float:
        """A trial's λ, under whichever name its run recorded it."""
        sweep = self.settings.protocol.sweep
        key = sweep if sweep in params else f"{sweep}{LINEAR_SUFFIX}"
        return float(params[key])

    def user_attrs(self) -> dict[str, Any]:
        return {
            "method": self.settings.protocol.adversarial,
            "dataset": self.dataset,
            "search": "pairs stage 3",
        }

    def log(self, outcome: Outcome) -> None:
        """With packs, stage 3 trains as a grid; each recorded cell becomes a finished
        trial of the study here (once), so the dashboard still shows the sweep."""
        import optuna
        from optuna.trial import TrialState

        study = optuna.load_study(study_name=self.name, storage=self.storage)
        cell = outcome.cell
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
        if any(t.user_attrs.get("cell") == cell.id for t in done):
            return
        value = outcome.metrics.get("val/mean_acc")
        ok = outcome.status == "ok" and value is not None
        sweep = self.settings.protocol.sweep
        lam = self.lambda_param()[0]
        study.add_trial(
            optuna.trial.create_trial(
                params={"main": cell.tasks[0], lam: float(cell.params[sweep]), "seed": cell.seed},
                distributions=self.space(),
                value=value if ok else None,
                state=TrialState.COMPLETE if ok else TrialState.FAIL,
                user_attrs={
                    **self.user_attrs(),
                    "cell": cell.id,
                    "tasks": list(cell.tasks),
                    "aux": list(cell.aux),
                    "seeds": [cell.seed],
                },
                system_attrs={OUTCOME_ATTR: outcome_record(outcome)},
            )
        )

    def searcher(self, todo: list[Cell]) -> Any:
        from .searcher import CellSearch

        sweep = self.settings.protocol.sweep
        by_point = {(c.tasks[0], float(c.params[sweep]), c.seed): c for c in todo}
        space = self.space()
        lam_key = self.lambda_param()[0]
        retrain = self._finished_unrecorded(todo)

        def cell_of(params: dict[str, Any], number: int) -> Cell:
            # a trial retrained from an earlier run may hold λ under the other name
            return by_point[(params["main"], self.lambda_of(params), int(params["seed"]))]

        return CellSearch(
            space=space,
            metric="val/mean_acc",
            mode="max",
            storage=self.storage,
            study_name=self.name,
            make_cell=cell_of,
            user_attrs=self.user_attrs(),
            points=[
                {"main": m, lam_key: lam, "seed": s}
                for (m, lam, s), c in by_point.items()
                if c.id not in retrain
            ],
            outcome_of=self.results.outcome,
            retrain=list(retrain.values()),
        )

    def _finished_unrecorded(self, todo: list[Cell]) -> dict[str, Any]:
        """cell id → the study's finished trial of each cell of `todo` that
        results.parquet lacks (its records gone: trained again as that trial); a
        cell recorded as failed and retried gets a new trial, as a retry does."""
        import optuna
        from optuna.trial import TrialState

        recorded = self.results.finished()
        missing = {c.id for c in todo if c.id not in recorded}
        rank = {TrialState.FAIL: 0, TrialState.PRUNED: 1, TrialState.COMPLETE: 2}
        study = optuna.load_study(study_name=self.name, storage=self.storage)
        held: dict[str, Any] = {}
        for t in study.get_trials(deepcopy=False, states=tuple(rank)):
            cell = t.user_attrs.get("cell")
            if cell in missing and (cell not in held or rank[t.state] > rank[held[cell].state]):
                held[cell] = t
        return held


def run_pairs(
    dataset: Dataset,
    settings: PairsSettings,
    out_location: str,
    *,
    resources: Resources | None = None,
    address: str | None = None,
    retry_failed: bool = False,
    storage: str | None = None,
    echo: Echo = print,
    warn: Echo | None = None,
) -> PairsResult:
    """Run (or resume) the three stages; return the matrices and the summary."""
    resources = resources or Resources()
    resources.check_for(address)
    out = OutputDir(out_location)
    study_url = storage_url(out, storage)
    rdb = open_storage(study_url) if storage else None  # reach a database before writing
    identity = {**settings.identity(dataset), "storage": redact(storage or "inside --out")}
    study_name = default_study_name(
        f"{settings.protocol.adversarial}-lambda", identity, shared=bool(storage)
    )
    if rdb is not None:  # a study in a shared database must be this search's
        claim_study(rdb, study_name, identity, study_url)
    out.ensure_writable()
    with exclusive(out):
        described = settings.describe()
        resumed = manifest.claim(out, identity, described)
        if rdb is None:  # the SQLite file inside --out, created now that --out is ours
            rdb = open_storage(study_url)
            claim_study(rdb, study_name, identity, study_url)
        log = ResultsLog(
            out,
            search="pairs",
            dataset=dataset.name,
            study_records=lambda: study_outcomes(rdb, study_name),
            swept=[swept_column(settings)],
            settings=described,
            identity=identity,
            warn=warn,
        )
        lambda_study = LambdaStudy(settings, dataset.name, rdb, study_name, log)
        with StageRunner(
            dataset,
            out,
            log,
            resources=resources,
            address=address,
            retry_failed=retry_failed,
            echo=echo,
        ) as stages:
            result = _run_stages(dataset, settings, out, log, stages, lambda_study, echo)
    result.resumed = resumed
    return result


def swept_column(settings: PairsSettings) -> SweptSetting:
    """results.parquet's column of the protocol's swept setting (AAL's λ, `lam`): the
    value of each stage-3 cell, null for stage 1 (which sweeps nothing)."""
    return swept_setting(
        settings.protocol.sweep,
        settings.lambdas,
        method=settings.protocol.adversarial,
        stages=("adversarial", "null"),
        note="null on stage-1 rows (single and pair runs), which sweep nothing",
    )


def _run_stages(
    dataset: Dataset,
    settings: PairsSettings,
    out: OutputDir,
    log: ResultsLog,
    stages: StageRunner,
    lambda_study: LambdaStudy,
    echo: Echo,
) -> PairsResult:
    describe = _describer(settings.protocol.sweep)
    sweep = settings.protocol.sweep
    rows: dict[str, RowState] | None = None
    if settings.adaptive is None:
        stage1 = stage1_cells(settings)
        stages.run("stage 1: single-task and pair runs", stage1, describe=describe)
    else:
        stage1, rows = _adaptive_stage1(settings, log, stages, describe, echo)
    ids1 = {c.id for c in stage1}
    failed1 = [c.id for c in stage1 if c.id in stages.failed]
    if failed1:
        echo(
            f"stage 2 works from a partial matrix: {len(failed1)} of {len(stage1)} stage-1"
            f" cell(s) failed ({', '.join(failed1[:3])}{', ...' if len(failed1) > 3 else ''})"
        )
    val = pair_values(log.rows, "val", ids1)
    test = pair_values(log.rows, "test", ids1)
    partners = choose_partners(
        val,
        settings.attributes,
        mode=settings.adversaries,
        alpha=settings.alpha,
        require_significant=settings.require_significant,
    )
    with_partner = [a for a in settings.attributes if partners[a].partners]
    echo(
        f"stage 2: {len(with_partner)} of {len(settings.attributes)} attributes have a"
        " negative partner: "
        + (", ".join(f"{a}~{'+'.join(partners[a].partners)}" for a in with_partner) or "none")
    )
    # the same machinery as `auxsearch sweep`: an Optuna study, watched live
    adv_ids = _stage3(
        "stage 3: adversarial runs over λ", settings, partners, log, stages, lambda_study, echo
    )
    null_val = null_test = None
    null_ids: set[str] | None = None
    if settings.null_control:
        null_ids = _stage3(
            "stage 3b: null control, the partner's labels shuffled",
            settings,
            partners,
            log,
            stages,
            None,
            echo,
            null=True,
        )
        null_val = adversarial_values(log.rows, "val", null_ids, sweep, stage="null")
        null_test = adversarial_values(log.rows, "test", null_ids, sweep, stage="null")

    mean = matrix(val, settings.attributes)
    std = matrix(val, settings.attributes, "std") if settings.seeds > 1 else None
    counts = matrix(val, settings.attributes, "count") if rows is not None else None
    summary = summary_table(
        settings.attributes,
        partners,
        val,
        test,
        adversarial_values(log.rows, "val", adv_ids, sweep),
        adversarial_values(log.rows, "test", adv_ids, sweep),
        null_val,
        null_test,
    )
    auto = settings.adaptive
    seeds_meta = f"auto:{auto.min_seeds}-{auto.max_seeds}" if auto else settings.seeds
    meta = log.meta
    write_parquet(out, PAIR_MATRIX_FILE, pair_matrix_table(mean, std, seeds_meta, counts), meta)
    runs = Stage3Runs(ids1, adv_ids, null_ids, sweep)
    sweep_frame = lambda_sweep_frame(log.rows, partners, runs)
    domain = dataset.domain(settings.domain)
    bands = chance_bands(domain, [b for p in partners.values() for b in p.partners])
    leakage, leakage_curves = leakage_frames(
        log.rows,
        log.curves,
        ids=adv_ids | (null_ids or set()),
        sweep=sweep,
        metrics=leakage_metrics(settings.protocol.adversarial),
        bands=bands,
        alpha=settings.alpha,
    )
    summary = extend_summary(
        summary,
        log.rows,
        partners,
        val,
        runs,
        sizes={a: _labelled(domain, a) for a in settings.attributes},
        leakage=leakage,
        alpha=settings.alpha,
    )
    write_parquet(out, SUMMARY_FILE, summary_arrow(summary), meta)
    if rows is not None:
        write_parquet(out, ADAPTIVE_FILE, adaptive_table(rows), meta)
    out.write_bytes(HEATMAP_FILE, heatmap_png(mean, {a: p.partners for a, p in partners.items()}))
    if len(sweep_frame):
        write_table(out, LAMBDA_SWEEP_FILE, sweep_frame, "lambda_sweep/1", meta, LAMBDA_DOCS)
        write_table(out, LEAKAGE_FILE, leakage, "leakage/1", meta, LEAKAGE_DOCS)
        write_table(out, LEAKAGE_CURVES_FILE, leakage_curves, "leakage_curves/1", meta, CURVE_DOCS)
        single = {
            a: (summary_value(summary, a, "sin"), summary_value(summary, a, "sin_test"))
            for a in settings.attributes
        }
        out.write_bytes(LAMBDA_PLOT_FILE, lambda_sweep_png(sweep_frame, leakage, single))
    return PairsResult(
        out,
        mean,
        std,
        partners,
        summary,
        stages.trained,
        stages.failed,
        rows=rows,
        lambda_sweep=sweep_frame,
        leakage=leakage,
    )


def _labelled(domain: Domain, attribute: str) -> tuple[int, int]:
    """The labelled (val, test) examples of an attribute: the split sizes its
    accuracies are measured on."""
    column = domain.column(attribute)
    val, test = (int((column[domain.indices(s)] >= 0).sum()) for s in ("val", "test"))
    return val, test


def summary_value(summary: pd.DataFrame, attribute: str, column: str) -> float | None:
    value = summary.loc[summary["attribute"] == attribute, column]
    return None if value.empty or value.iloc[0] != value.iloc[0] else float(value.iloc[0])


def _stage3(
    label: str,
    settings: PairsSettings,
    partners: dict[str, Partner],
    log: ResultsLog,
    stages: StageRunner,
    study: LambdaStudy | None,
    echo: Echo,
    *,
    null: bool = False,
) -> set[str]:
    """Stage 3 (or its null control): the λ × seed grid, or successive halving over
    λ seed by seed (`--lambda-search halving`, lambda_halving.py). Returns the ids
    of the cells λ is selected among: every cell of the grid; halving's finalists."""
    sweep = settings.protocol.sweep
    describe = _describer(sweep)
    searcher_for = study.searcher if study is not None else None
    on_recorded = None
    if study is not None and stages.resources.pack_size() > 1:
        # packs train a grid of cells: the study hears of each as it is recorded
        searcher_for, on_recorded = None, study.log
    if settings.lambda_search == "grid":
        cells = stage3_cells(settings, partners, null=null)
        stages.run(
            label, cells, searcher_for=searcher_for, describe=describe, on_recorded=on_recorded
        )
        return {c.id for c in cells}
    race = {a: list(settings.lambdas) for a in settings.attributes if partners[a].partners}
    seeds = seed_values(settings)
    ids: set[str] = set()
    name, _, what = label.partition(": ")
    for round_no, seed in enumerate(seeds, 1):
        cells = stage3_cells(settings, partners, null=null, race=race, seeds=[seed])
        running = sum(len(v) for v in race.values())
        stages.run(
            f"{name} round {round_no}: {what}, seed {seed} of {running} λ value(s)",
            cells,
            searcher_for=searcher_for,
            describe=describe,
            on_recorded=on_recorded,
        )
        ids |= {c.id for c in cells}
        if round_no == len(seeds) or not race:
            break
        values = adversarial_values(
            log.rows, "val", ids, sweep, stage="null" if null else "adversarial"
        )
        race = survivors(values, race, settings.reduction_factor)
        echo(
            f"  round {round_no}: "
            + "; ".join(f"{a} keeps λ {','.join(f'{x:g}' for x in v)}" for a, v in race.items())
        )
    return {c.id for c in stage3_cells(settings, partners, null=null, race=race)}


def _adaptive_stage1(
    settings: PairsSettings,
    log: ResultsLog,
    stages: StageRunner,
    describe: Callable[[Outcome], str],
    echo: Echo,
) -> tuple[list[Cell], dict[str, RowState]]:
    """Stage 1 in rounds (`--seeds auto`): every cell at the minimum, then one more
    seed per round for the cells an open row depends on (adaptive_seeds.py). A rerun
    starts from the seeds already recorded, so a killed driver loses no round."""
    cfg = settings.adaptive
    assert cfg is not None
    done = log.finished()
    seeds: dict[CellKey, int] = {}
    for key in stage1_keys(settings):
        have = 0  # seeds already recorded, counted from the first
        while have < cfg.max_seeds and stage1_id(key, settings.seed + have) in done:
            have += 1
        seeds[key] = max(cfg.min_seeds, have)
    cells: list[Cell] = []

    def play(round_no: int, seeds: Mapping[CellKey, int]) -> Values:
        nonlocal cells
        cells = stage1_cells_for(settings, seeds)
        stages.run(
            f"stage 1 round {round_no}: single-task and pair runs, {min(seeds.values())}"
            f"–{max(seeds.values())} seeds per cell",
            cells,
            describe=describe,
        )
        return pair_values(log.rows, "val", {c.id for c in cells})

    rows: dict[str, RowState] = {}
    for round_no, rows, more in run_rounds(settings.attributes, seeds, cfg, play):
        settled = sum(r.settled for r in rows.values())
        echo(
            f"  round {round_no}: {settled} of {len(rows)} row(s) settled;"
            + (f" {len(more)} cell(s) get another seed" if more else " done")
        )
    return cells, rows
