"""The Parquet tables users pull (pair_matrix.parquet, aal_summary.parquet, a grid's
tables, a kernel's artifacts), written atomically through `OutputDir`.

pair_matrix.parquet: column `main`, then one float column per attribute; row a,
column b = mean validation accuracy of a trained with b; the diagonal is the
single-task accuracy; with several seeds also `<b>_std` columns, and with
`--seeds auto` `<b>_n` (the seeds of each cell). A cell whose runs all failed
is null, never NaN. Metadata: schema version, seeds (`auto:MIN-MAX` when
adaptive), split. adaptive_seeds.parquet: each row's decision under `--seeds
auto` (settled, negative/none/failed, partner, Holm p, the diagonal's seeds).

Every table a search writes describes itself (issue 29): each column whose
number has a unit or a meaning to state carries Arrow field metadata `unit` and
`description` (`documented`), and the file's key-value metadata holds, beside
`auxsearch.schema`, the kind of search (`auxsearch.search`: pairs, sweep or
grid) and what its search.json holds (`auxsearch.settings`, `auxsearch.identity`,
JSON, storage passwords already replaced by ***): `SearchMeta`, stamped by
`write_parquet`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .adaptive_seeds import RowState
from .gains import GAIN_CONFIDENCE
from .redact import redact
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


SEARCH_KEY = "auxsearch.search"
SETTINGS_KEY = "auxsearch.settings"
IDENTITY_KEY = "auxsearch.identity"

# Units of the numbers the tables hold: accuracies are fractions, never percent.
FRACTION = "fraction (0-1)"
FRACTION_DIFF = "difference of fractions (0.01 = 1 percentage point)"
PROBABILITY = "probability (0-1)"
SEEDS = "seeds"
EPOCH = "epoch (1-based)"
SECONDS = "seconds"

# A column's (unit, description); "" where no unit applies.
FieldDoc = tuple[str, str]
Docs = Mapping[str, FieldDoc] | Callable[[str], FieldDoc | None]


@dataclass(frozen=True)
class SearchMeta:
    """What a search's tables say of the search that wrote them: its kind and what
    its search.json holds (`settings`, `identity`), as file key-value metadata."""

    search: str  # pairs | sweep | grid
    settings: Mapping[str, Any] | None = None
    identity: Mapping[str, Any] | None = None

    def metadata(self) -> dict[str, str]:
        out = {SEARCH_KEY: self.search}
        for key, value in ((SETTINGS_KEY, self.settings), (IDENTITY_KEY, self.identity)):
            if value is not None:  # JSON as search.json holds it, a password never
                out[key] = redact(json.dumps(value, sort_keys=True, default=str))
        return out


def stamped(table: pa.Table, search: SearchMeta | None) -> pa.Table:
    """`table` with the search's key-value metadata beside what its schema holds."""
    if search is None:
        return table
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    return table.replace_schema_metadata({**meta, **search.metadata()})


def documented(table: pa.Table, docs: Docs) -> pa.Table:
    """`table` with a `unit` (where one applies) and a `description` in the field
    metadata of each column `docs` names (a mapping, or a function of the name)."""
    lookup = docs if callable(docs) else docs.get
    fields = []
    for f in table.schema:
        doc = lookup(f.name)
        if doc is not None:
            unit, description = doc
            meta = dict(f.metadata or {})
            if unit:
                meta[b"unit"] = unit.encode()
            meta[b"description"] = description.encode()
            f = f.with_metadata(meta)
        fields.append(f)
    schema = pa.schema(fields, metadata=table.schema.metadata)
    return pa.Table.from_arrays(list(table.columns), schema=schema)


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
    table = pa.table(columns).replace_schema_metadata(meta)
    return documented(table, _matrix_docs(list(mean.columns)))


def _matrix_docs(attributes: Sequence[str]) -> Callable[[str], FieldDoc | None]:
    names = set(attributes)

    def doc(name: str) -> FieldDoc | None:
        if name == "main":
            return "", "the row's attribute a, the main task whose accuracy the row holds"
        if name in names:
            return FRACTION, (
                f"validation accuracy of the row's attribute trained together with {name}"
                " (on the diagonal: trained alone), mean over seeds, each run at its epoch"
                " chosen on validation; null where every run of the cell failed"
            )
        base, _, suffix = name.rpartition("_")
        if base in names and suffix == "std":
            return FRACTION, f"sample standard deviation (ddof=1) over seeds of column {base}"
        if base in names and suffix == "n":
            return SEEDS, f"seeds recorded for column {base} (--seeds auto)"
        return None

    return doc


_ARM = {
    "sin": "the attribute trained alone (stage 1)",
    "mul": "the attribute trained together with neg_partner (stage 1)",
    "adv": "the attribute trained adversarially against neg_partner at `lambda` (stage 3)",
    "null": "the null control at `null_lambda` (the partner's labels shuffled)",
}


def _summary_doc(name: str) -> FieldDoc | None:
    """aal_summary.parquet's columns: accuracies are fractions, differences are
    differences of fractions, each arm at its own λ and epoch chosen on validation."""
    fixed: dict[str, FieldDoc] = {
        "attribute": ("", "the main attribute a of the row"),
        "neg_partner": (
            "",
            "the partner(s) chosen in stage 2 (most negative transfer on validation),"
            " joined by +; null when a has none",
        ),
        "lambda": ("", "the swept setting of the adversarial runs (λ) chosen on validation"),
        "null_lambda": ("", "the null control's λ, chosen on validation alike"),
        "significant": ("", "neg_partner's negative transfer is significant (p_holm < alpha)"),
        "p_value": (PROBABILITY, "one-sided Welch t-test p that neg_partner lowers a (raw)"),
        "p_holm": (PROBABILITY, "p_value Holm-corrected over the row's M-1 partners"),
        "seeds": (SEEDS, "seeds of the single-task run of a"),
        "gain_seeds": (SEEDS, "seeds both arms of adv_minus_sin_test finished"),
        "note": ("", "why a row has no result, ties and validation/test disagreements"),
        "tied_partners": ("", "partners seed noise cannot tell from neg_partner, joined by +"),
        "partner_tie": ("", "whether tied_partners is not empty; null without a test"),
        "split_gap": (FRACTION_DIFF, "single-task validation minus test accuracy of a"),
        "split_gap_p": (PROBABILITY, "two-proportion p of split_gap"),
        "gain_split_p": (PROBABILITY, "paired p that the gain over sin differs between splits"),
        "leakage": ("", "far-from-chance readings of the partner at `lambda`, or chance"),
    }
    if name in fixed:
        return fixed[name]
    level = f"{GAIN_CONFIDENCE:.0%}"
    for stem, what in (
        ("adv_minus_sin_test", "adv_test minus sin_test"),
        ("adv_minus_null_test", "adv_test minus null_test"),
    ):
        if name == f"{stem}_low" or name == f"{stem}_high":
            side = "lower" if name.endswith("_low") else "upper"
            return FRACTION_DIFF, f"{side} end of the {level} paired t interval of {what}"
        if name == f"{stem}_p":
            return PROBABILITY, f"two-sided paired (by seed) t-test p of {what}"
    split = "test" if name.endswith("_test") or name.endswith("_test_std") else "validation"
    base = name.removesuffix("_std").removesuffix("_test")
    if "_minus_" in base:
        x, _, y = base.partition("_minus_")
        return FRACTION_DIFF, f"{split} accuracy of {x} minus that of {y}, means over seeds"
    if base in _ARM:
        if name.endswith("_std"):
            return FRACTION, f"sample standard deviation (ddof=1) over seeds of {split} {base}"
        return FRACTION, f"{split} accuracy of {_ARM[base]}, mean over seeds"
    return None


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
    return documented(pa.Table.from_arrays(arrays, schema=schema), _summary_doc)


def write_parquet(
    out: OutputDir, name: str, table: pa.Table, search: SearchMeta | None = None
) -> None:
    """Write `table` atomically; a search's table also carries the search's
    metadata (`SearchMeta`)."""
    sink = io.BytesIO()
    pq.write_table(stamped(table, search), sink)
    out.write_bytes(name, sink.getvalue())


def frame_table(df: pd.DataFrame, schema: str, docs: Docs | None = None) -> pa.Table:
    """A DataFrame as an Arrow table: NaN → null, plain strings, schema version in
    metadata, and the `docs` of its columns in their field metadata."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    fields = [
        pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) else f
        for f in table.schema
    ]
    table = table.cast(pa.schema(fields)).replace_schema_metadata({"auxsearch.schema": schema})
    return table if docs is None else documented(table, docs)


def write_table(
    out: OutputDir,
    name: str,
    df: pd.DataFrame,
    schema: str,
    search: SearchMeta | None = None,
    docs: Docs | None = None,
) -> None:
    write_parquet(out, name, frame_table(df, schema, docs), search)


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
    return documented(pa.Table.from_pylist(records, schema=schema), ADAPTIVE_DOCS)


ADAPTIVE_DOCS: dict[str, FieldDoc] = {
    "attribute": ("", "the matrix row (main attribute) the decision is about"),
    "settled": ("", "whether the row's decision is final: no more seeds are spent on it"),
    "decision": ("", "negative (a significantly negative partner), none, or failed"),
    "partner": ("", "the row's worst partner"),
    "p_holm": (PROBABILITY, "Holm-corrected p that the worst partner lowers the attribute"),
    "p_negative_at_max": (
        PROBABILITY,
        "estimated probability that --max-seeds seeds find the worst partner significant",
    ),
    "seeds": (SEEDS, "seeds the row's single-task cell (the diagonal) holds"),
    "why": ("", "why the row settled or stays open"),
}
