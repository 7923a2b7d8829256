"""What the pair search reports beyond the paper's Table 3 (issue 27): the
test-split gain tests, ties among the partners, validation/test disagreement,
the λ sweep and the adversary's leakage (gains.py, leakage.py for the
statistics).

`extend_summary` appends to `summary_table`'s columns (aal_summary/2):
the paired gain columns of gains.py; `tied_partners` / `partner_tie` (the
partners seed noise cannot tell from the worst); `split_gap` (single-task val
minus test), `split_gap_p`, `gain_split_p`; `leakage` (the far-from-chance
readings at the chosen λ, or "chance"). Ties and disagreements are also
written into `note`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .gains import GAIN_COLUMNS, Arms, by_seed, corrected_alpha, gain_columns, split_check
from .leakage import flagged
from .pair_analysis import Partner, Values, row_test, select_lambda, tied_with_worst

EXTRA_COLUMNS = [
    *GAIN_COLUMNS,
    "tied_partners",
    "partner_tie",
    "split_gap",
    "split_gap_p",
    "gain_split_p",
    "leakage",
]

LAMBDA_COLUMNS = [
    "stage",
    "attribute",
    "partner",
    "lambda",
    "seeds",
    "val_acc",
    "val_acc_std",
    "test_acc",
    "test_acc_std",
    "chosen",
]


# (unit, description) of lambda_sweep.parquet's columns (tables.documented)
LAMBDA_DOCS = {
    "stage": ("", "adversarial, or null (the null control)"),
    "attribute": ("", "the main attribute a"),
    "partner": ("", "its partner(s) b, joined by +"),
    "lambda": ("", "the swept setting (λ) of the runs"),
    "seeds": ("seeds", "seeds with a validation accuracy at this λ"),
    "val_acc": ("fraction (0-1)", "validation accuracy of a, mean over seeds"),
    "val_acc_std": ("fraction (0-1)", "its sample standard deviation (ddof=1) over seeds"),
    "test_acc": ("fraction (0-1)", "test accuracy of a, mean over seeds"),
    "test_acc_std": ("fraction (0-1)", "its sample standard deviation (ddof=1) over seeds"),
    "chosen": ("", "whether validation chose this λ"),
}


@dataclass(frozen=True)
class Stage3Runs:
    """The cell ids of each kind of run the summary reads."""

    stage1: set[str]
    adversarial: set[str]
    null: set[str] | None
    sweep: str


def _at_lambda(
    rows: Sequence[Mapping[str, Any]], stage: str, split: str, ids: set[str], sweep: str
) -> dict[Any, dict[int, float]]:
    return by_seed(
        rows, stage, split, ids, lambda r: (r["main_task"], float(json.loads(r["params"])[sweep]))
    )


def extend_summary(
    summary: pd.DataFrame,
    rows: Sequence[Mapping[str, Any]],
    partners: Mapping[str, Partner],
    pair_val: Values,
    runs: Stage3Runs,
    *,
    sizes: Mapping[str, tuple[int, int]],
    leakage: pd.DataFrame,
    alpha: float,
) -> pd.DataFrame:
    """`summary` with the EXTRA_COLUMNS; `sizes`: attribute → labelled (val, test) examples."""
    attributes = list(summary["attribute"])
    sin = {
        s: by_seed(rows, "single", s, runs.stage1, lambda r: r["main_task"])
        for s in ("val", "test")
    }
    mul = by_seed(rows, "pair", "test", runs.stage1, lambda r: (r["main_task"], r["aux_task"]))
    adv = {
        s: _at_lambda(rows, "adversarial", s, runs.adversarial, runs.sweep) for s in ("val", "test")
    }
    null = _at_lambda(rows, "null", "test", runs.null, runs.sweep) if runs.null else {}
    check_alpha = corrected_alpha(alpha, attributes)
    extra, notes = [], []
    for r in summary.to_dict("records"):
        a = r["attribute"]
        p = partners[a]
        lam, null_lam = _number(r["lambda"]), _number(r.get("null_lambda"))
        worst = p.partners[0] if p.partners else None
        arms = Arms(
            sin=sin["test"].get(a),
            mul=mul.get((a, worst)) if worst else None,
            adv=adv["test"].get((a, lam)) if lam is not None else None,
            null=null.get((a, null_lam)) if null_lam is not None else None,
        )
        cols = gain_columns(arms)
        test = row_test(pair_val, attributes, a)
        tied = (
            tied_with_worst(pair_val, a, test, alpha) if test is not None and p.partners else None
        )
        check = split_check(
            sin["val"].get(a),
            sin["test"].get(a),
            adv["val"].get((a, lam)) if lam is not None else None,
            arms.adv,
            sizes.get(a, (0, 0)),
            check_alpha,
        )
        leaks = None
        if lam is not None and len(leakage):
            at = leakage[leakage["lambda"] == lam]
            leaks = "; ".join(x.split(" ", 1)[1] for x in flagged(at, "adversarial", a)) or "chance"
        note = [r["note"]] if isinstance(r["note"], str) and r["note"] else []
        if tied and test is not None:
            note.append(
                f"partner choice is a tie: {test.worst} vs {', '.join(tied)} within seed noise"
            )
        if check.warning:
            note.append(check.warning)
        notes.append("; ".join(note) or None)
        extra.append(
            {
                **cols,
                "tied_partners": "+".join(tied) if tied else None,
                "partner_tie": None if tied is None else bool(tied),
                "split_gap": check.gap,
                "split_gap_p": check.gap_p,
                "gain_split_p": check.gain_gap_p,
                "leakage": leaks,
            }
        )
    out = pd.concat(
        [summary.reset_index(drop=True), pd.DataFrame(extra, columns=EXTRA_COLUMNS)], axis=1
    )
    out["note"] = notes
    return out


def lambda_sweep_frame(
    rows: Sequence[Mapping[str, Any]], partners: Mapping[str, Partner], runs: Stage3Runs
) -> pd.DataFrame:
    """Per stage, attribute and λ: the val and test accuracy over seeds and whether
    validation chose it."""
    records = []
    stages = [("adversarial", runs.adversarial)] + ([("null", runs.null)] if runs.null else [])
    for stage, ids in stages:
        per = {s: _at_lambda(rows, stage, s, ids, runs.sweep) for s in ("val", "test")}
        val_lists = {k: list(v.values()) for k, v in per["val"].items()}
        for a, lam in sorted(set(per["val"]) | set(per["test"])):
            if not partners.get(a) or not partners[a].partners:
                continue
            val, test = per["val"].get((a, lam), {}), per["test"].get((a, lam), {})
            records.append(
                {
                    "stage": stage,
                    "attribute": a,
                    "partner": "+".join(partners[a].partners),
                    "lambda": lam,
                    "seeds": len(val),
                    "val_acc": _mean(val),
                    "val_acc_std": _sd(val),
                    "test_acc": _mean(test),
                    "test_acc_std": _sd(test),
                    "chosen": select_lambda(val_lists, a) == lam,
                }
            )
    return pd.DataFrame(records, columns=LAMBDA_COLUMNS)


def _number(v: Any) -> float | None:
    """A summary cell as a float; None for a missing one (None or NaN)."""
    return None if v is None or v != v else float(v)


def _mean(v: Mapping[int, float]) -> float | None:
    return float(np.mean(list(v.values()))) if v else None


def _sd(v: Mapping[int, float]) -> float | None:
    return float(np.std(list(v.values()), ddof=1)) if len(v) > 1 else None
