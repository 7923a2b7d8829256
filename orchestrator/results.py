"""results.parquet: one row per (trial, metric), per the results contract.

Columns: search, stage, method, dataset, main_task, aux_task, train_domain,
test_domain, backbone, params (JSON), seed, split, metric, value, epoch,
trial_id, status, wall_s, finished_at, and `error` (the failure message of a
failed trial, whose single row has metric "error" and a null value); then one
typed column per setting the search sweeps (`SweptSetting`: a pair search's λ
`lam`, a sweep's space keys), the value its cell's `params` holds, named
`param_<key>` where the key is one of the columns above. Each column states its
unit and meaning in its field metadata (`unit`, `description`); the schema
version is in the file's metadata under `auxsearch.schema`, beside the search's
(`tables.SearchMeta`).

A metric key `val/acc/red` of a kernel becomes split=val, metric=acc and the
row's main_task=red; aux_task is the partner it was trained with. A metric the
method declares a partner metric (`Metric.partner`: AAL's `val/adv_acc/large`)
keeps the run's main task and names its task as aux_task=large. `test@plain/acc/digit`
(a model scored on another domain's test split) becomes split=test,
test_domain=plain; train_domain is always the domain the model trained on. No NaN is ever stored:
a non-finite value is not a result.

`epoch` is never null (`row_epoch`): a task's metric has the epoch selected for
it; a mean over tasks the latest of its tasks' selected epochs (by then every
part of the value had been seen); a train metric and a metric whose epoch the
run did not record the last epoch trained (the config's `epochs`); a pruned
trial the epoch it was stopped at; a failed trial the epoch it reached, or 0
where that is not known.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, get_type_hints

import pyarrow as pa
import pyarrow.parquet as pq

from methods import get_method

from .cells import Cell, Outcome, partner_metrics, roles, split_seeds
from .curves import CURVES_FILE, curve_rows, curves_table
from .errors import UserInputError, short_reason
from .storage import OutputDir
from .tables import EPOCH, SECONDS, FieldDoc, SearchMeta, stamped

RESULTS_FILE = "results.parquet"
# results/2: finished_at is a UTC timestamp (results/1 held it as ISO text; read alike)
# results/3: one column per swept setting, units in field metadata, epoch never null
# (a resume rewrites an older file as results/3, filling both from `params`)
SCHEMA_VERSION = "results/3"

# What the value of each metric is: accuracies are fractions, never percent.
METRIC_UNITS = {
    "acc": "fraction (0-1) of the task's labelled examples classified correctly",
    "mean_acc": "fraction (0-1): the mean of the selected main tasks' acc",
    "adv_acc": "fraction (0-1): the adversary's accuracy on its partner task (aux_task)",
    "probe_acc": "fraction (0-1): a linear probe's accuracy on the partner task (aux_task)",
    "loss": "mean per-example loss on val/test (cross-entropy in nats for a class task);"
    " on train: the method's training objective as its last epoch reported it",
    "adv_loss": "mean per-example loss of the adversary on its partner task",
    "train/*": "any other train metric (main_loss, cls_loss, ...): a term of the method's"
    " training objective as its last epoch reported it",
    "ccc": "concordance correlation coefficient (-1 to 1) of a continuous label",
    "mse": "mean squared error of a continuous label, in its units squared",
    "pca_ratio_<k>": "fraction (0-1): the explained-variance ratio of the k-th principal"
    " component of the test features",
    "error": "none: a failed trial's row, value null (its message in `error`)",
}

_FIELDS: list[tuple[str, pa.DataType, FieldDoc]] = [
    ("search", pa.string(), ("", "the kind of search: pairs, sweep or grid")),
    ("stage", pa.string(), ("", "the search's stage (single, pair, adversarial, null, ...)")),
    ("method", pa.string(), ("", "the registered method that trained the cell")),
    ("dataset", pa.string(), ("", "the dataset's name")),
    ("main_task", pa.string(), ("", "the task the metric is about ('+'-joined for a mean)")),
    ("aux_task", pa.string(), ("", "the partner or other tasks the run trained with")),
    ("train_domain", pa.string(), ("", "the domain the model trained on")),
    ("test_domain", pa.string(), ("", "the domain whose split the metric was measured on")),
    ("backbone", pa.string(), ("", "the cell's backbone")),
    ("params", pa.string(), ("", "the cell's full resolved config, JSON")),
    ("seed", pa.int64(), ("", "the training seed of the row")),
    ("split", pa.string(), ("", "train, val or test; null on a failed trial's row")),
    ("metric", pa.string(), ("", "the metric's name; its unit in `value`'s metadata")),
    (
        "value",
        pa.float64(),
        (
            "per metric (see `units`); accuracies as fractions 0-1, not percent",
            "the metric at `epoch`; never NaN; null on a failed trial's row",
        ),
    ),
    (
        "epoch",
        pa.int64(),
        (
            EPOCH,
            "never null: a task's metric, the epoch selected for it (on validation);"
            " a mean over tasks, the latest of its tasks' selected epochs (the epoch by"
            " which every part of it had been seen); a train metric or one whose epoch the"
            " run did not record, the last epoch trained; a pruned trial, the epoch it was"
            " stopped at; a failed trial, the epoch it reached, 0 where not known",
        ),
    ),
    ("trial_id", pa.string(), ("", "the cell's stable id (what it trains, never when)")),
    ("status", pa.string(), ("", "ok, pruned (stopped early by the scheduler) or failed")),
    (
        "wall_s",
        pa.float64(),
        (
            SECONDS,
            "the cell's training time (all its seeds); a packed cell's equal share of its"
            " pack's time; a failed one's time until it failed as the driver saw it",
        ),
    ),
    (
        "finished_at",
        pa.timestamp("ms", tz="UTC"),  # Parquet keeps no second unit
        (
            "UTC",
            "when the cell finished, to the second (the driver's clock; in a rebuild from"
            " Ray's records, the trial's last report)",
        ),
    ),
    ("error", pa.string(), ("", "a failed trial's error message; null otherwise")),
]
FIXED_COLUMNS = tuple(name for name, _, _ in _FIELDS)


def _field(name: str, kind: pa.DataType, doc: FieldDoc) -> pa.Field:
    unit, description = doc
    meta = {b"unit": unit.encode()} if unit else {}
    meta[b"description"] = description.encode()
    if name == "value":
        meta[b"units"] = json.dumps(METRIC_UNITS, sort_keys=True).encode()
    return pa.field(name, kind, metadata=meta)


RESULTS_SCHEMA = pa.schema(
    [_field(*f) for f in _FIELDS],
    metadata={"auxsearch.schema": SCHEMA_VERSION},
)

_ARROW_TYPES = {
    "float64": pa.float64(),
    "int64": pa.int64(),
    "bool": pa.bool_(),
    "string": pa.string(),
}


@dataclass(frozen=True)
class SweptSetting:
    """A setting a search sweeps, as a typed column of results.parquet: the value in
    each cell's `params` (null where the config has none, or for a row of a stage
    outside `stages`). `type`: float64, int64, bool or string (other values as JSON)."""

    key: str
    type: str
    description: str = ""
    stages: tuple[str, ...] | None = None  # None: every stage

    @property
    def column(self) -> str:
        return f"param_{self.key}" if self.key in FIXED_COLUMNS else self.key

    def field(self) -> pa.Field:
        return pa.field(
            self.column, _ARROW_TYPES[self.type], metadata={b"description": self.description}
        )

    def value(self, stage: str | None, params: Mapping[str, Any]) -> Any:
        if self.stages is not None and stage not in self.stages:
            return None
        v = params.get(self.key)
        if v is None:
            return None
        number = isinstance(v, int | float) and not isinstance(v, bool)
        if self.type == "float64":
            return float(v) if number and math.isfinite(v) else None
        if self.type == "int64":
            return int(v) if number and math.isfinite(v) and float(v).is_integer() else None
        if self.type == "bool":
            return v if isinstance(v, bool) else None
        return v if isinstance(v, str) else json.dumps(v, sort_keys=True)


def swept_setting(
    key: str,
    values: Sequence[Any],
    *,
    kind: str = "choice",
    method: str | None = None,
    stages: tuple[str, ...] | None = None,
    note: str = "",
) -> SweptSetting:
    """The column of a swept `key` whose values are `values` (a space's `kind`:
    choice, uniform, loguniform or int); its type from them (and from `method`'s
    config, where a float setting takes whole-number choices), its description
    from the config's field doc."""
    present = [v for v in values if v is not None]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in present)
    hint, doc = _config_field(method, key)
    if kind in ("uniform", "loguniform"):
        kind_of = "float64"
    elif kind == "int":
        kind_of = "int64"
    elif present and all(isinstance(v, bool) for v in present):
        kind_of = "bool"
    elif present and numbers and all(isinstance(v, int) for v in present) and hint is not float:
        kind_of = "int64"
    elif present and numbers:
        kind_of = "float64"
    else:
        kind_of = "string"
    what = f" ({doc})" if doc else ""
    description = (
        f"the swept setting `{key}` of the cell's config{what}, the value `params` holds;"
        f" null where the cell's config has no `{key}`"
    )
    if note:
        description += f"; {note}"
    if kind_of == "string":
        description += " (a value that is not text as JSON)"
    return SweptSetting(key, kind_of, description, stages)


def _config_field(method: str | None, key: str) -> tuple[Any, str]:
    """(type hint, doc) of `method`'s config field `key`; (None, "") if unknown."""
    if method is None:
        return None, ""
    try:
        cls = get_method(method).config_cls
        hints = get_type_hints(cls)
    except Exception:  # an unknown method or an unresolvable hint: no help from it
        return None, ""
    for f in dataclasses.fields(cls):
        if f.name == key:
            return hints.get(key), str(f.metadata.get("doc") or "")
    return None, ""


def results_schema(swept: Sequence[SweptSetting] = ()) -> pa.Schema:
    """RESULTS_SCHEMA, then one column per swept setting."""
    return pa.schema([*RESULTS_SCHEMA, *(s.field() for s in swept)], RESULTS_SCHEMA.metadata)


def outcome_rows(
    outcome: Outcome, *, search: str, dataset: str, swept: Sequence[SweptSetting] = ()
) -> list[dict[str, Any]]:
    """The rows one finished, pruned or failed cell contributes (one set per seed)."""
    cell = outcome.cell
    domain = cell.params.get("domain") or cell.domain
    base = {
        "search": search,
        "stage": cell.stage,
        "method": cell.method,
        "dataset": dataset,
        "train_domain": domain,
        "test_domain": domain,
        "backbone": cell.params.get("backbone"),
        "params": cell.params_json(),
        "seed": cell.seed,
        "trial_id": cell.id,
        "status": outcome.status,
        "wall_s": outcome.wall_s,
        "finished_at": _timestamp(outcome.finished_at),
        "error": outcome.error,
        **{s.column: s.value(cell.stage, cell.params) for s in swept},
    }
    if outcome.status == "failed":
        return [
            {
                **base,
                "main_task": "+".join(cell.tasks),
                "aux_task": "+".join(cell.aux) or None,
                "split": None,
                "metric": "error",
                "value": None,
                "epoch": outcome.stopped_epoch or 0,  # the epoch it reached, where known
            }
        ]
    if outcome.status == "pruned":
        seed = outcome.stopped_seed if outcome.stopped_seed is not None else cell.seed
        return _metric_rows(
            {**base, "seed": seed}, cell, outcome.metrics, fixed_epoch=outcome.stopped_epoch
        )
    rows = []
    for seed, metrics in split_seeds(outcome.metrics, cell.seed).items():
        rows += _metric_rows({**base, "seed": seed}, cell, metrics)
    return rows


def last_epoch(params: Mapping[str, Any]) -> int:
    """The last epoch a cell trains: its config's `epochs` (0 if it has none)."""
    try:
        return max(0, int(params.get("epochs") or 0))
    except (TypeError, ValueError):
        return 0


def row_epoch(
    cell: Cell,
    metrics: Mapping[str, float],
    split: str,
    task: str | None,
    fixed_epoch: int | None = None,
) -> int:
    """The epoch of a row (see the module doc): never None."""
    if fixed_epoch is not None:
        return int(fixed_epoch)
    last = last_epoch(cell.params)
    if split == "train":
        return last
    if task is not None:
        chosen = metrics.get(f"epoch/{task}")
        return int(chosen) if chosen is not None else last
    # a mean over tasks: the latest epoch any of them was selected at
    chosen_all = [metrics[f"epoch/{t}"] for t in cell.tasks if f"epoch/{t}" in metrics]
    return int(max(chosen_all)) if chosen_all else last


def _metric_rows(
    base: dict[str, Any], cell: Cell, metrics: dict[str, float], fixed_epoch: int | None = None
) -> list[dict[str, Any]]:
    partner = partner_metrics(cell.method)
    rows = []
    for key, value in sorted(metrics.items()):
        parts = key.split("/", 2)
        # `test@<domain>`: scored on another domain's test split (a cross-dataset test)
        split, _, other_domain = parts[0].partition("@")
        if split not in ("train", "val", "test") or len(parts) < 2 or not math.isfinite(value):
            continue
        metric = parts[1]
        task = parts[2] if len(parts) == 3 else None
        main, aux = roles(cell, task, metric in partner)
        row = {
            **base,
            "main_task": main,
            "aux_task": aux,
            "split": split,
            "metric": metric,
            "value": float(value),
            "epoch": row_epoch(cell, metrics, split, task, fixed_epoch),
        }
        if other_domain:
            row["test_domain"] = other_domain
        rows.append(row)
    return rows


def _timestamp(value: Any) -> datetime | None:
    """A finish time as a UTC datetime; results/1 files and outcomes hold ISO text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


def complete_rows(
    rows: Sequence[dict[str, Any]], swept: Sequence[SweptSetting] = ()
) -> list[dict[str, Any]]:
    """`rows` with what an older file (results/1, results/2) lacks: the swept
    settings' columns, from `params`, and an epoch for a row without one (a mean
    over tasks selected at different epochs: the latest epoch of its cell's other
    val/test rows of that seed; else the last epoch trained; a failed trial's row 0)."""
    latest: dict[tuple[Any, Any], int] = {}
    if any(r.get("epoch") is None for r in rows):
        for r in rows:
            if r.get("epoch") is not None and r.get("split") in ("val", "test"):
                key = (r.get("trial_id"), r.get("seed"))
                latest[key] = max(latest.get(key, 0), int(r["epoch"]))
    out = []
    for r in rows:
        fill: dict[str, Any] = {}
        params: dict[str, Any] | None = None
        if r.get("epoch") is None:
            if r.get("status") == "failed" or r.get("metric") == "error":
                fill["epoch"] = 0
            else:
                params = _params(r)
                key = (r.get("trial_id"), r.get("seed"))
                fill["epoch"] = latest.get(key) or last_epoch(params)
        for setting in swept:
            if setting.column not in r:
                params = _params(r) if params is None else params
                fill[setting.column] = setting.value(r.get("stage"), params)
        out.append({**r, **fill} if fill else r)
    return out


def _params(row: Mapping[str, Any]) -> dict[str, Any]:
    try:
        params = json.loads(row.get("params") or "{}")
    except ValueError:
        return {}
    return params if isinstance(params, dict) else {}


def rows_to_table(rows: Sequence[dict[str, Any]], swept: Sequence[SweptSetting] = ()) -> pa.Table:
    """The rows as results.parquet's table: RESULTS_SCHEMA and the swept columns."""
    rows = [{**r, "finished_at": _timestamp(r.get("finished_at"))} for r in rows]
    return pa.Table.from_pylist(complete_rows(rows, swept), schema=results_schema(swept))


def table_bytes(table: pa.Table, search: SearchMeta | None = None) -> bytes:
    sink = io.BytesIO()
    pq.write_table(stamped(table, search), sink)
    return sink.getvalue()


class DamagedTable(UserInputError):
    """A Parquet file of a search that cannot be read (cut short, overwritten)."""

    def __init__(self, location: str, reason: str):
        self.reason = short_reason(reason)
        super().__init__(
            f"{location} cannot be read ({self.reason}); rerun the search's command with the"
            " same --out to rebuild it from Ray's trial records"
        )


def read_table(out: OutputDir, name: str) -> pa.Table | None:
    if not out.exists(name):
        return None
    try:
        return pq.read_table(io.BytesIO(out.read_bytes(name)))
    except (pa.ArrowException, OSError) as exc:
        raise DamagedTable(out.display(name), str(exc)) from None


StudyRecords = Callable[[], list[Outcome]] | None  # recovery.study_outcomes of a search


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class ResultsLog:
    """results.parquet held in memory, rewritten atomically after every finished cell,
    with curves.parquet beside it for the cells whose methods declare curves.

    `study_records`: the outcomes an Optuna study of the search keeps
    (`recovery.study_outcomes`), used in a rebuild for the cells Ray has no record of.
    Only read here: Ray pickles the log with its callbacks, and the storage holds a
    password."""

    def __init__(
        self,
        out: OutputDir,
        *,
        search: str,
        dataset: str,
        study_records: StudyRecords = None,
        swept: Sequence[SweptSetting] = (),
        settings: Mapping[str, Any] | None = None,
        identity: Mapping[str, Any] | None = None,
        warn: Callable[[str], None] | None = None,
    ):
        """`swept`: the settings the search sweeps, a column each; `settings` and
        `identity`: what the search's search.json holds, in every table's metadata
        (`meta`, for the search's other tables too); `warn`: where the note of a
        rebuilt table goes (default stderr; the Python API's logger)."""
        self.out, self.search, self.dataset = out, search, dataset
        self.warn = warn or _to_stderr
        self.swept = tuple(swept)
        self.meta = SearchMeta(search, settings, identity)
        self._outcomes: dict[str, Outcome] = {}  # recorded by this process
        self.curves: list[dict[str, Any]] = self._read_curves(study_records)
        try:
            existing = read_table(out, RESULTS_FILE)
        except DamagedTable as exc:
            self.rows: list[dict[str, Any]] = self._rebuild(exc, study_records)
            return
        self.rows = complete_rows(existing.to_pylist(), self.swept) if existing else []

    def _rows_of(self, outcome: Outcome) -> list[dict[str, Any]]:
        return outcome_rows(outcome, search=self.search, dataset=self.dataset, swept=self.swept)

    def _write_results(self) -> None:
        table = rows_to_table(self.rows, self.swept)
        self.out.write_bytes(RESULTS_FILE, table_bytes(table, self.meta))

    def _read_curves(self, study_records: StudyRecords) -> list[dict[str, Any]]:
        """The curves recorded so far; a damaged curves.parquet is kept aside and
        rebuilt from Ray's trial records, as results.parquet is."""
        try:
            table = read_table(self.out, CURVES_FILE)
        except DamagedTable as exc:
            aside = self._set_aside(CURVES_FILE)
            outcomes, _ = self._other_records(study_records)
            rows = [r for o in outcomes for r in curve_rows(o, search=self.search)]
            self.out.write_bytes(CURVES_FILE, table_bytes(curves_table(rows), self.meta))
            self.warn(
                f"auxsearch: {self.out.display(CURVES_FILE)} could not be read ({exc.reason});"
                f" kept it as {aside} and rebuilt it from Ray's trial records"
            )
            return rows
        return table.to_pylist() if table is not None else []

    def _other_records(self, study_records: StudyRecords) -> tuple[list[Outcome], int]:
        """Ray's records of the cells, and the study's of those Ray lacks (ray/ gone);
        how many came from the study."""
        from .recovery import best_outcomes, rebuild_outcomes

        ray = best_outcomes(rebuild_outcomes(self.out, prunable=self.search == "sweep"))
        held = {o.cell.id for o in ray}
        study = study_records() if study_records is not None else []
        extra = best_outcomes(o for o in study if o.cell.id not in held)
        return sorted(ray + extra, key=lambda o: o.cell.id), len(extra)

    def _set_aside(self, name: str) -> str:
        """Copy a damaged file to `<name>.damaged-<time>`, untouched; its new name."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        aside = f"{name}.damaged-{stamp}"
        self.out.write_bytes(aside, self.out.read_bytes(name))
        return aside

    def _rebuild(self, damage: DamagedTable, study_records: StudyRecords) -> list[dict[str, Any]]:
        """A results.parquet that cannot be read is kept aside, untouched, and
        rebuilt from Ray's trial records and the study's; cells without one train again."""
        aside = self._set_aside(RESULTS_FILE)
        outcomes, from_study = self._other_records(study_records)
        self.rows = [r for o in outcomes for r in self._rows_of(o)]
        self.curves = [row for o in outcomes for row in curve_rows(o, search=self.search)]
        self._write_curves()
        self._write_results()
        source = " and the Optuna study" if from_study else ""
        self.warn(
            f"auxsearch: {self.out.display(RESULTS_FILE)} could not be read ({damage.reason});"
            f" kept it as {aside} and rebuilt {len(outcomes)} cell(s) from Ray's trial records"
            f"{source} (cells without one train again)"
        )
        return self.rows

    def _write_curves(self) -> None:
        if self.curves or self.out.exists(CURVES_FILE):
            table = curves_table(self.curves)
            self.out.write_bytes(CURVES_FILE, table_bytes(table, self.meta))

    def outcome(self, cell_id: str) -> Outcome | None:
        """The outcome this process recorded for the cell, if any."""
        return self._outcomes.get(cell_id)

    def finished(self) -> dict[str, str]:
        """trial_id → status of every cell already recorded."""
        return {r["trial_id"]: r["status"] for r in self.rows}

    def record(self, outcome: Outcome) -> None:
        # A failed cell retried later replaces its failure row; an ok cell is never rewritten.
        # Curves first: a driver killed between the two writes leaves a cell's curves
        # without its results rows, so the cell trains again and its curves are replaced.
        cell_id = outcome.cell.id
        new_curves = curve_rows(outcome, search=self.search)
        if new_curves or any(r["trial_id"] == cell_id for r in self.curves):
            self.curves = [r for r in self.curves if r["trial_id"] != cell_id] + new_curves
            self._write_curves()
        self.rows = [r for r in self.rows if r["trial_id"] != cell_id]
        self.rows.extend(self._rows_of(outcome))
        self._write_results()
        self._outcomes[cell_id] = outcome
