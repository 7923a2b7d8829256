"""Printing a pair search: after `pairs` finishes and for `auxsearch results show`."""

from __future__ import annotations

import pandas as pd

from .errors import UserInputError
from .pairs import PairsResult
from .report import format_matrix, format_summary
from .results import read_table
from .storage import OutputDir
from .tables import PAIR_MATRIX_FILE, SUMMARY_FILE


def print_pairs_result(result: PairsResult) -> None:
    print()
    print("Pair matrix: val accuracy (%) of a (row) trained with b (column); diagonal = alone")
    print(format_matrix(result.mean, result.std))
    print()
    print("Summary (the layout of the AAL paper's Table 3; val, test at the λ chosen on val)")
    print(format_summary(result.summary))
    if result.failed:
        print(
            f"\n{len(result.failed)} cell(s) failed: {', '.join(result.failed[:5])}"
            f"{' ...' if len(result.failed) > 5 else ''} (see results.parquet, column error)"
        )
    print(f"\ntrained {result.trained} cell(s){' (resumed)' if result.resumed else ''}; files:")
    for path in result.files():
        print(f"  {path}")


def load_matrix(out: OutputDir) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    table = read_table(out, PAIR_MATRIX_FILE)
    if table is None:
        raise UserInputError(
            f"{out.location} holds no pair search results ({PAIR_MATRIX_FILE} is missing);"
            " give the --out of a finished `auxsearch pairs`"
        )
    df = table.to_pandas().set_index("main")
    names = [c for c in df.columns if not c.endswith("_std")]
    mean = df[names].astype(float)
    std_cols = [f"{n}_std" for n in names if f"{n}_std" in df.columns]
    std = df[std_cols].astype(float).rename(columns=lambda c: c[:-4]) if std_cols else None
    return mean, std


def show_dir(location: str) -> None:
    out = OutputDir(location)
    mean, std = load_matrix(out)
    print("Pair matrix: val accuracy (%) of a (row) trained with b (column); diagonal = alone")
    print(format_matrix(mean, std))
    summary = read_table(out, SUMMARY_FILE)
    if summary is not None:
        print()
        print("Summary (the layout of the AAL paper's Table 3)")
        print(format_summary(pd.DataFrame(summary.to_pylist(), columns=summary.column_names)))
