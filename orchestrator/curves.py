"""curves.parquet: every epoch's value of the metrics a method declares `curve=True`.

results.parquet holds one row per (trial, metric) at the selected epoch; a
curve metric's path over training (an adversary pushed to chance, or through
it to the other side) is kept here instead, one row per (trial, seed, epoch,
split, metric, task). Rows name their cell by `trial_id` (join results.parquet
on it for the cell's params) and take their main/aux roles as results rows do.
Written only by searches whose methods declare curves.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa

from methods.core.selection import CURVE_PREFIX

from .cells import Outcome, partner_metrics, roles, split_seeds
from .tables import EPOCH, FieldDoc, documented

CURVES_FILE = "curves.parquet"

CURVES_SCHEMA = pa.schema(
    [
        ("search", pa.string()),
        ("stage", pa.string()),
        ("method", pa.string()),
        ("trial_id", pa.string()),
        ("seed", pa.int64()),
        ("main_task", pa.string()),
        ("aux_task", pa.string()),
        ("train_domain", pa.string()),
        ("test_domain", pa.string()),
        ("split", pa.string()),
        ("metric", pa.string()),
        ("epoch", pa.int64()),
        ("value", pa.float64()),
    ],
    metadata={"auxsearch.schema": "curves/1"},
)

CURVES_DOCS: dict[str, FieldDoc] = {
    "trial_id": ("", "the cell's id; join results.parquet on it for the cell's params"),
    "seed": ("", "the training seed"),
    "main_task": ("", "the run's main task"),
    "aux_task": ("", "the partner task the metric measures"),
    "split": ("", "val or test"),
    "metric": ("", "the curve metric (AAL: adv_acc, probe_acc)"),
    "epoch": (EPOCH, "the epoch whose value the row holds: every epoch, not a selection"),
    "value": (
        "as results.parquet's `value` for the metric; accuracies as fractions 0-1",
        "the metric's value at `epoch`; never NaN",
    ),
}
CURVES_SCHEMA = documented(CURVES_SCHEMA.empty_table(), CURVES_DOCS).schema


def curve_rows(outcome: Outcome, *, search: str) -> list[dict[str, Any]]:
    """The curve rows of one finished cell (none for a failed or pruned one)."""
    if outcome.status != "ok":
        return []
    cell = outcome.cell
    domain = cell.params.get("domain") or cell.domain
    partner = partner_metrics(cell.method)
    rows = []
    for seed, metrics in split_seeds(outcome.metrics, cell.seed).items():
        for key, value in sorted(metrics.items()):
            if not key.startswith(CURVE_PREFIX) or not math.isfinite(value):
                continue
            epoch, split_key, metric, task = key[len(CURVE_PREFIX) :].split("/", 3)
            split, _, other_domain = split_key.partition("@")
            main, aux = roles(cell, task, metric in partner)
            rows.append(
                {
                    "search": search,
                    "stage": cell.stage,
                    "method": cell.method,
                    "trial_id": cell.id,
                    "seed": seed,
                    "main_task": main,
                    "aux_task": aux,
                    "train_domain": domain,
                    "test_domain": other_domain or domain,
                    "split": split,
                    "metric": metric,
                    "epoch": int(epoch),
                    "value": float(value),
                }
            )
    return rows


def curves_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=CURVES_SCHEMA)
