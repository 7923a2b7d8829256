"""The wide tables users pull (pair_matrix.parquet, aal_summary.parquet, a grid's
tables) and their plots.

pair_matrix.parquet: column `main`, then one float column per attribute; row a,
column b = mean validation accuracy of a trained with b; the diagonal is the
single-task accuracy; with several seeds also `<b>_std` columns. A cell whose
runs all failed is null, never NaN. Metadata: schema version, seeds, split.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .figures import png_bytes, pyplot
from .storage import OutputDir

PAIR_MATRIX_FILE = "pair_matrix.parquet"
SUMMARY_FILE = "aal_summary.parquet"
HEATMAP_FILE = "pair_heatmap.png"


def _float_array(values: Sequence[float | None]) -> pa.Array:
    clean = [None if v is None or not np.isfinite(v) else float(v) for v in values]
    return pa.array(clean, type=pa.float64())


def pair_matrix_table(mean: pd.DataFrame, std: pd.DataFrame | None, seeds: int) -> pa.Table:
    columns: dict[str, pa.Array] = {"main": pa.array(list(mean.index), type=pa.string())}
    for b in mean.columns:
        columns[b] = _float_array(mean[b].tolist())
    if std is not None:
        for b in std.columns:
            columns[f"{b}_std"] = _float_array(std[b].tolist())
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
        if col in ("attribute", "neg_partner", "note"):
            arrays.append(
                pa.array(
                    [None if v is None or v != v else str(v) for v in values], type=pa.string()
                )
            )
            fields.append(pa.field(col, pa.string()))
        elif col == "significant":
            arrays.append(
                pa.array(
                    [None if v is None or v != v else bool(v) for v in values], type=pa.bool_()
                )
            )
            fields.append(pa.field(col, pa.bool_()))
        elif col == "seeds":
            arrays.append(pa.array([int(v) for v in values], type=pa.int64()))
            fields.append(pa.field(col, pa.int64()))
        else:
            arrays.append(_float_array(values))
            fields.append(pa.field(col, pa.float64()))
    schema = pa.schema(fields, metadata={"auxsearch.schema": "aal_summary/1"})
    return pa.Table.from_arrays(arrays, schema=schema)


def write_parquet(out: OutputDir, name: str, table: pa.Table) -> None:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    out.write_bytes(name, sink.getvalue())


def heatmap_png(mean: pd.DataFrame, partners: dict[str, list[str]]) -> bytes:
    """Row minus its diagonal, in accuracy points; chosen partners boxed."""
    plt = pyplot()
    from matplotlib.patches import Rectangle

    names = list(mean.index)
    values = mean.to_numpy(dtype=float)
    delta = (values - np.diag(values)[:, None]) * 100.0
    np.fill_diagonal(delta, np.nan)
    finite = delta[np.isfinite(delta)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    limit = max(limit, 1e-3)
    size = 1.2 + 0.55 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(delta, cmap="RdBu", vmin=-limit, vmax=limit)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("trained with (b)")
    ax.set_ylabel("main attribute (a)")
    ax.set_title("val accuracy of a with b minus a alone (points)")
    if len(names) <= 16:
        for i in range(len(names)):
            for j in range(len(names)):
                if np.isfinite(delta[i, j]):
                    dark = abs(delta[i, j]) > 0.6 * limit
                    ax.text(
                        j,
                        i,
                        f"{delta[i, j]:+.1f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if dark else "black",
                    )
    for i, a in enumerate(names):
        for b in partners.get(a, []):
            j = names.index(b)
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2, ec="black"))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return png_bytes(fig, dpi=110)


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


def pca_png(pca: pd.DataFrame, methods: Sequence[str]) -> bytes:
    """Stacked bars per method: the share of test-feature variance in PC1, PC2, the
    next components and the rest (the PL paper's Figure 2), one panel per backbone."""
    plt = pyplot()

    backbones = sorted(pca["backbone"].unique()) if len(pca) else []
    fig, axes = plt.subplots(
        1,
        max(1, len(backbones)),
        figsize=(2 + 1.2 * len(methods) * max(1, len(backbones)), 4),
        squeeze=False,
    )
    for ax, backbone in zip(axes[0], backbones, strict=False):
        sub = pca[pca["backbone"] == backbone]
        # average over train→test pairs, per method and component
        mean = sub.groupby(["method", "component"])["ratio"].mean()
        shown = [m for m in methods if m in mean.index.get_level_values(0)]
        pc1 = np.array([mean.get((m, 1), 0.0) for m in shown])
        pc2 = np.array([mean.get((m, 2), 0.0) for m in shown])
        more = np.array([sum(v for (mm, c), v in mean.items() if mm == m and c > 2) for m in shown])
        rest = np.clip(1.0 - pc1 - pc2 - more, 0.0, 1.0)
        x = np.arange(len(shown))
        ax.bar(x, pc1, color="#1b5e20", label="PC 1")
        ax.bar(x, pc2, bottom=pc1, color="#43a047", label="PC 2")
        ax.bar(x, more, bottom=pc1 + pc2, color="#a5d6a7", label="next PCs")
        ax.bar(x, rest, bottom=pc1 + pc2 + more, color="#eeeeee", label="rest")
        ax.set_xticks(x, shown, rotation=30, ha="right")
        ax.set_ylim(0, 1)
        ax.set_title(str(backbone))
        ax.set_ylabel("share of test-feature variance")
    axes[0][0].legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return png_bytes(fig, dpi=110)
