"""Plain-text tables for the terminal: the pair matrix and the Table 3 summary."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def pct(v: Any, signed: bool = False) -> str:
    """An accuracy in %, two decimals; "-" when missing."""
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
            text = pct(v)
            if std is not None and not math.isnan(std.loc[a, b]):
                text += f"±{std.loc[a, b] * 100:.1f}"
            cells.append(text)
        rows.append([a, *cells])
    return format_table(["a \\ b", *names], rows)


def format_summary(summary: pd.DataFrame) -> str:
    """The layout of the AAL paper's Table 3, in %: test first (at the λ and epochs
    chosen on validation), then validation, the selection-corrected significance and,
    with a null control, its gain over single-task training. Columns a summary of an
    older version lacks show as "-"."""
    has_null = "null_test" in summary and summary["null_test"].notna().any()
    rows = []
    for r in summary.to_dict("records"):
        sig = r["significant"]
        p = r.get("p_holm")
        rows.append(
            [
                str(r["attribute"]),
                "-" if _missing(r["neg_partner"]) else str(r["neg_partner"]),
                "-" if _missing(r["lambda"]) else f"{r['lambda']:g}",
                pct(r.get("sin_test")),
                pct(r.get("mul_test")),
                pct(r.get("adv_test")),
                pct(r.get("mul_minus_sin_test"), True),
                pct(r.get("adv_minus_sin_test"), True),
                pct(r.get("adv_minus_mul_test"), True),
                pct(r.get("adv_minus_sin"), True),
                "-" if _missing(p) else f"{p:.3f}",
                "-" if _missing(sig) else ("yes" if sig else "no"),
                *([pct(r.get("null_minus_sin_test"), True)] if has_null else []),
                "" if _missing(r["note"]) else str(r["note"]),
            ]
        )
    header = [
        "attribute",
        "neg",
        "λ",
        "sin",
        "mul",
        "adv",
        "mul-sin",
        "adv-sin",
        "adv-mul",
        "val adv-sin",
        "p (Holm)",
        "signif",
        *(["null-sin"] if has_null else []),
        "note",
    ]
    return format_table(header, rows)


def failed_cells_note(failed: list[str]) -> str:
    """What failed and how to train it again, in one sentence."""
    shown = ", ".join(failed[:5]) + (", ..." if len(failed) > 5 else "")
    return (
        f"{len(failed)} cell(s) failed: {shown} (errors in results.parquet, column error);"
        " rerun the same command with --retry-failed to train them again"
    )


def format_adaptive(rows: Mapping[str, Any]) -> str:
    """One line per row of `--seeds auto`: settled or open, the decision, its p-value,
    the probability that --max-seeds seeds find it significant, and the seeds its
    diagonal got."""
    body = [
        [
            r.attribute,
            "settled" if r.settled else "open",
            r.decision,
            r.partner or "-",
            "-" if r.p_holm is None else f"{r.p_holm:.3f}",
            "-" if r.p_negative is None else f"{r.p_negative:.2f}",
            str(r.seeds),
            r.why,
        ]
        for r in rows.values()
    ]
    return format_table(
        ["attribute", "row", "decision", "worst", "p (Holm)", "P(sig. at max)", "seeds", "why"],
        body,
    )
