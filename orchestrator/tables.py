"""The Parquet tables users pull (pair_matrix.parquet, aal_summary.parquet, a grid's
tables, a kernel's artifacts), written atomically through `OutputDir`.

pair_matrix.parquet: column `main`, then one float column per attribute; row a,
column b = mean validation accuracy of a trained with b; the diagonal is the
single-task accuracy; with several seeds also `<b>_std` columns, and with
`--seeds auto` `<b>_n` (the seeds of each cell). A cell whose runs all failed
is null, never NaN. Metadata: schema version, seeds (`auto:MIN-MAX` when
adaptive), split. adaptive_seeds.parquet: each row's decision under `--seeds
auto` (settled, negative/none/failed, partner, Holm p, the diagonal's seeds).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .adaptive_seeds import RowState
from .storage import OutputDir

PAIR_MATRIX_FILE = "pair_matrix.parquet"
SUMMARY_FILE = "aal_summary.parquet"
HEATMAP_FILE = "pair_heatmap.png"
ADAPTIVE_FILE = "adaptive_seeds.parquet"
LAMBDA_SWEEP_FILE = "lambda_sweep.parquet"
LEAKAGE_FILE = "leakage.parquet"
LEAKAGE_CURVES_FILE = "leakage_curves.parquet"
LAMBDA_PLOT_FILE = "lambda_sweep.png"

_SUMMARY_STRINGS = ("attribute", "neg_partner", "note", "tied_partners", "leakage")
_SUMMARY_BOOLS = ("significant", "partner_tie")
_SUMMARY_INTS = ("seeds", "gain_seeds")


def _float_array(values: Sequence[float | None]) -> pa.Array:
    clean = [None if v is None or not np.isfinite(v) else float(v) for v in values]
    return pa.array(clean, type=pa.float64())


def pair_matrix_table(
    mean: pd.DataFrame,
    std: pd.DataFrame | None,
    seeds: int | str,
    counts: pd.DataFrame | None = None,
) -> pa.Table:
    """The matrix, `<b>_std` columns with several seeds, and `<b>_n` (seeds each cell
    holds) when they differ by cell (`--seeds auto`)."""
    columns: dict[str, pa.Array] = {"main": pa.array(list(mean.index), type=pa.string())}
    for b in mean.columns:
        columns[b] = _float_array(mean[b].tolist())
    if std is not None:
        for b in std.columns:
            columns[f"{b}_std"] = _float_array(std[b].tolist())
    if counts is not None:
        for b in counts.columns:
            columns[f"{b}_n"] = pa.array(
                [None if v != v else int(v) for v in counts[b].tolist()], type=pa.int64()
            )
    meta = {
        "auxsearch.schema": "pair_matrix/1",
        "split": "val",
        "metric": "acc",
        "seeds": str(seeds),
    }
    return pa.table(columns).replace_schema_metadata(meta)


def summary_arrow(summary: pd.DataFrame) -> pa.Table:
    fields = []
    arrays = []
    for col in summary.columns:
        values = summary[col].tolist()
        if col in _SUMMARY_STRINGS:
            arrays.append(
                pa.array(
                    [None if v is None or v != v else str(v) for v in values], type=pa.string()
                )
            )
            fields.append(pa.field(col, pa.string()))
        elif col in _SUMMARY_BOOLS:
            arrays.append(
                pa.array(
                    [None if v is None or v != v else bool(v) for v in values], type=pa.bool_()
                )
            )
            fields.append(pa.field(col, pa.bool_()))
        elif col in _SUMMARY_INTS:
            arrays.append(
                pa.array([None if v is None or v != v else int(v) for v in values], pa.int64())
            )
            fields.append(pa.field(col, pa.int64()))
        else:
            arrays.append(_float_array(values))
            fields.append(pa.field(col, pa.float64()))
    # schema 2 appended the test-split gain tests, ties, split check and leakage
    schema = pa.schema(fields, metadata={"auxsearch.schema": "aal_summary/2"})
    return pa.Table.from_arrays(arrays, schema=schema)


def write_parquet(out: OutputDir, name: str, table: pa.Table) -> None:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    out.write_bytes(name, sink.getvalue())


def frame_table(df: pd.DataFrame, schema: str) -> pa.Table:
    """A DataFrame as an Arrow table: NaN → null, plain strings, schema version in metadata."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    fields = [
        pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields)).replace_schema_metadata({"auxsearch.schema": schema})


def write_table(out: OutputDir, name: str, df: pd.DataFrame, schema: str) -> None:
    write_parquet(out, name, frame_table(df, schema))


def columns_table(columns: Mapping[str, np.ndarray]) -> pa.Table:
    """A table of equal-length named columns (a kernel's artifact, a run's history)."""
    return pa.table({k: np.asarray(v) for k, v in columns.items()})


def adaptive_table(rows: Mapping[str, RowState]) -> pa.Table:
    """`--seeds auto`: each row's decision, whether it settled, its seeds, and the
    probability that `--max-seeds` seeds would find its worst partner significant
    (schema 2 added `p_negative_at_max`)."""
    records = [
        {
            "attribute": r.attribute,
            "settled": r.settled,
            "decision": r.decision,
            "partner": r.partner,
            "p_holm": r.p_holm,
            "p_negative_at_max": r.p_negative,
            "seeds": r.seeds,
            "why": r.why,
        }
        for r in rows.values()
    ]
    schema = pa.schema(
        [
            ("attribute", pa.string()),
            ("settled", pa.bool_()),
            ("decision", pa.string()),
            ("partner", pa.string()),
            ("p_holm", pa.float64()),
            ("p_negative_at_max", pa.float64()),
            ("seeds", pa.int64()),
            ("why", pa.string()),
        ],
        metadata={"auxsearch.schema": "adaptive_seeds/2"},
    )
    return pa.Table.from_pylist(records, schema=schema)
