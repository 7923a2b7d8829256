"""Plain-text tables for the terminal: the pair matrix and the Table 3 summary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _pct(v: Any, signed: bool = False) -> str:
    if _missing(v):
        return "-"
    return f"{float(v) * 100:+.2f}" if signed else f"{float(v) * 100:.2f}"


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return "\n".join(out)


def format_matrix(mean: pd.DataFrame, std: pd.DataFrame | None = None) -> str:
    """Accuracy (%) of row a trained with column b; diagonal = single task."""
    names = list(mean.index)
    rows = []
    for a in names:
        cells = []
        for b in names:
            v = mean.loc[a, b]
            text = _pct(v)
            if std is not None and not math.isnan(std.loc[a, b]):
                text += f"±{std.loc[a, b] * 100:.1f}"
            cells.append(text)
        rows.append([a, *cells])
    return format_table(["a \\ b", *names], rows)


def format_summary(summary: pd.DataFrame) -> str:
    """The layout of the AAL paper's Table 3, in %, plus significance and test."""
    rows = []
    for r in summary.to_dict("records"):
        sig = r["significant"]
        rows.append(
            [
                str(r["attribute"]),
                "-" if _missing(r["neg_partner"]) else str(r["neg_partner"]),
                _pct(r["sin"]),
                _pct(r["mul"]),
                _pct(r["adv"]),
                "-" if _missing(r["lambda"]) else f"{r['lambda']:g}",
                _pct(r["mul_minus_sin"], True),
                _pct(r["adv_minus_sin"], True),
                _pct(r["adv_minus_mul"], True),
                "-" if _missing(sig) else ("yes" if sig else "no"),
                _pct(r["sin_test"]),
                _pct(r["adv_test"]),
                "" if _missing(r["note"]) else str(r["note"]),
            ]
        )
    header = [
        "attribute",
        "neg",
        "sin",
        "mul",
        "adv",
        "λ",
        "mul-sin",
        "adv-sin",
        "adv-mul",
        "signif",
        "sin test",
        "adv test",
        "note",
    ]
    return format_table(header, rows)
