"""Plain-text tables for the terminal: the pair matrix and the Table 3 summary."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .gains import GAIN_CONFIDENCE


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


def _interval(r: Mapping[str, Any], name: str) -> str:
    """`+2.60 [-0.41, +5.61]`: a gain and its interval, in points."""
    gain, low, high = r.get(name), r.get(f"{name}_low"), r.get(f"{name}_high")
    if _missing(gain):
        return "-"
    if _missing(low) or _missing(high):
        return pct(gain, True)
    return f"{pct(gain, True)} [{pct(low, True)}, {pct(high, True)}]"


def _p(v: Any) -> str:
    return "-" if _missing(v) else f"{float(v):.3f}"


def format_gains(summary: pd.DataFrame, confidence: float = GAIN_CONFIDENCE) -> str | None:
    """The test-split verdict per attribute with a partner: the paired (by seed)
    gain over single-task training and over the null control with its interval
    and p, every arm's test spread, the partner tie and the leakage at the chosen
    λ; None for a summary written before these columns (aal_summary/1)."""
    if "adv_minus_sin_test_p" not in summary:
        return None
    has_null = summary["null_test"].notna().any()
    rows = []
    for r in summary.to_dict("records"):
        if _missing(r["neg_partner"]):
            continue
        tie = r.get("partner_tie")
        rows.append(
            [
                str(r["attribute"]),
                str(r["neg_partner"]),
                "-" if _missing(r.get("gain_seeds")) else str(int(r["gain_seeds"])),
                _interval(r, "adv_minus_sin_test"),
                _p(r.get("adv_minus_sin_test_p")),
                *(
                    [_interval(r, "adv_minus_null_test"), _p(r.get("adv_minus_null_test_p"))]
                    if has_null
                    else []
                ),
                "/".join(
                    pct(r.get(f"{arm}_test_std"))
                    for arm in ("sin", "adv", *(("null",) if has_null else ()))
                ),
                "-" if _missing(tie) else (f"yes: {r['tied_partners']}" if tie else "no"),
                "-" if _missing(r.get("leakage")) else str(r["leakage"]),
            ]
        )
    if not rows:
        return None
    ci = f"{confidence * 100:g}% CI"
    header = [
        "attribute",
        "neg",
        "seeds",
        f"adv-sin [{ci}]",
        "p",
        *([f"adv-null [{ci}]", "p"] if has_null else []),
        "test std " + ("sin/adv/null" if has_null else "sin/adv"),
        "partner tie",
        "leakage at λ",
    ]
    return format_table(header, rows)


def format_lambda_sweep(sweep: pd.DataFrame, leakage: pd.DataFrame | None) -> str:
    """One line per stage, attribute and λ: val and test accuracy (the chosen λ
    starred) and each leakage reading (%) with its verdict when it is not chance."""
    readings: dict[tuple[Any, ...], dict[str, str]] = {}
    names: list[str] = []
    if leakage is not None:
        for r in leakage.to_dict("records"):
            name = f"{r['metric']} {r['split']}"
            if name not in names:
                names.append(name)
            text = pct(r["mean"])
            if r["verdict"] != "chance":
                text += f" {r['verdict']}"
            readings.setdefault((r["stage"], r["attribute"], r["lambda"]), {})[name] = text
    rows = []
    for r in sweep.to_dict("records"):
        found = readings.get((r["stage"], r["attribute"], r["lambda"]), {})
        rows.append(
            [
                f"{r['attribute']} vs {r['partner']}",
                "adversarial" if r["stage"] == "adversarial" else "null control",
                f"{r['lambda']:g}{'*' if r['chosen'] else ''}",
                pct(r["val_acc"]),
                pct(r["test_acc"]),
                *(found.get(n, "-") for n in names),
            ]
        )
    return format_table(["attribute", "run", "λ", "val", "test", *names], rows)
