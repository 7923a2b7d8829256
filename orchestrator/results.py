"""results.parquet: one row per (trial, metric), per the results contract.

Columns: search, stage, method, dataset, main_task, aux_task, train_domain,
test_domain, backbone, params (JSON), seed, split, metric, value, epoch,
trial_id, status, wall_s, finished_at, and `error` (the failure message of a
failed trial, whose single row has metric "error" and a null value). The schema
version is in the file's metadata under `auxsearch.schema`.

A metric key `val/acc/red` of a kernel becomes split=val, metric=acc and the
row's main_task=red; aux_task is the partner it was trained with. A metric the
method declares a partner metric (`Metric.partner`: AAL's `val/adv_acc/large`)
keeps the run's main task and names its task as aux_task=large. `test@plain/acc/digit`
(a model scored on another domain's test split) becomes split=test,
test_domain=plain; train_domain is always the domain the model trained on. No NaN is ever stored:
a non-finite value is not a result.
"""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .cells import Cell, Outcome, partner_metrics, roles, split_seeds
from .curves import CURVES_FILE, curve_rows, curves_table
from .errors import UserInputError, short_reason
from .storage import OutputDir

RESULTS_FILE = "results.parquet"
# results/2: finished_at is a UTC timestamp (results/1 held it as ISO text; read alike)
SCHEMA_VERSION = "results/2"

RESULTS_SCHEMA = pa.schema(
    [
        ("search", pa.string()),
        ("stage", pa.string()),
        ("method", pa.string()),
        ("dataset", pa.string()),
        ("main_task", pa.string()),
        ("aux_task", pa.string()),
        ("train_domain", pa.string()),
        ("test_domain", pa.string()),
        ("backbone", pa.string()),
        ("params", pa.string()),
        ("seed", pa.int64()),
        ("split", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("epoch", pa.int64()),
        ("trial_id", pa.string()),
        ("status", pa.string()),
        ("wall_s", pa.float64()),
        ("finished_at", pa.timestamp("ms", tz="UTC")),  # Parquet keeps no second unit
        ("error", pa.string()),
    ],
    metadata={"auxsearch.schema": SCHEMA_VERSION},
)


def outcome_rows(outcome: Outcome, *, search: str, dataset: str) -> list[dict[str, Any]]:
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
                "epoch": None,
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


def _metric_rows(
    base: dict[str, Any], cell: Cell, metrics: dict[str, float], fixed_epoch: int | None = None
) -> list[dict[str, Any]]:
    partner = partner_metrics(cell.method)
    rows = []
    last_epoch = int(cell.params.get("epochs", 0)) or None
    for key, value in sorted(metrics.items()):
        parts = key.split("/", 2)
        # `test@<domain>`: scored on another domain's test split (a cross-dataset test)
        split, _, other_domain = parts[0].partition("@")
        if split not in ("train", "val", "test") or len(parts) < 2 or not math.isfinite(value):
            continue
        metric = parts[1]
        task = parts[2] if len(parts) == 3 else None
        main, aux = roles(cell, task, metric in partner)
        epoch: float | None
        if fixed_epoch is not None:
            epoch = fixed_epoch
        elif split == "train":
            epoch = last_epoch
        elif task is not None:
            epoch = metrics.get(f"epoch/{task}")
        else:  # a mean over tasks: its epoch when they all share one
            chosen = {metrics.get(f"epoch/{t}") for t in cell.tasks}
            epoch = chosen.pop() if len(chosen) == 1 else None
        row = {
            **base,
            "main_task": main,
            "aux_task": aux,
            "split": split,
            "metric": metric,
            "value": float(value),
            "epoch": int(epoch) if epoch is not None else None,
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


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    rows = [{**r, "finished_at": _timestamp(r.get("finished_at"))} for r in rows]
    return pa.Table.from_pylist(rows, schema=RESULTS_SCHEMA)


def table_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
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
    ):
        self.out, self.search, self.dataset = out, search, dataset
        self._outcomes: dict[str, Outcome] = {}  # recorded by this process
        self.curves: list[dict[str, Any]] = self._read_curves(study_records)
        try:
            existing = read_table(out, RESULTS_FILE)
        except DamagedTable as exc:
            self.rows: list[dict[str, Any]] = self._rebuild(exc, study_records)
            return
        self.rows = existing.to_pylist() if existing is not None else []

    def _read_curves(self, study_records: StudyRecords) -> list[dict[str, Any]]:
        """The curves recorded so far; a damaged curves.parquet is kept aside and
        rebuilt from Ray's trial records, as results.parquet is."""
        try:
            table = read_table(self.out, CURVES_FILE)
        except DamagedTable as exc:
            aside = self._set_aside(CURVES_FILE)
            outcomes, _ = self._other_records(study_records)
            rows = [r for o in outcomes for r in curve_rows(o, search=self.search)]
            self.out.write_bytes(CURVES_FILE, table_bytes(curves_table(rows)))
            print(
                f"auxsearch: {self.out.display(CURVES_FILE)} could not be read ({exc.reason});"
                f" kept it as {aside} and rebuilt it from Ray's trial records",
                file=sys.stderr,
                flush=True,
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
        search, dataset = self.search, self.dataset
        rows = [r for o in outcomes for r in outcome_rows(o, search=search, dataset=dataset)]
        self.curves = [row for o in outcomes for row in curve_rows(o, search=self.search)]
        self._write_curves()
        self.out.write_bytes(RESULTS_FILE, table_bytes(rows_to_table(rows)))
        source = " and the Optuna study" if from_study else ""
        print(
            f"auxsearch: {self.out.display(RESULTS_FILE)} could not be read ({damage.reason});"
            f" kept it as {aside} and rebuilt {len(outcomes)} cell(s) from Ray's trial records"
            f"{source} (cells without one train again)",
            file=sys.stderr,
            flush=True,
        )
        return rows

    def _write_curves(self) -> None:
        if self.curves or self.out.exists(CURVES_FILE):
            self.out.write_bytes(CURVES_FILE, table_bytes(curves_table(self.curves)))

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
        self.rows.extend(outcome_rows(outcome, search=self.search, dataset=self.dataset))
        self.out.write_bytes(RESULTS_FILE, table_bytes(rows_to_table(self.rows)))
        self._outcomes[cell_id] = outcome
