"""Printing searches: a pair search after `pairs`, and `auxsearch results show DIR`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import pandas as pd

from .errors import UserInputError
from .grid import GRID_MATRIX_FILE
from .manifest import MANIFEST
from .pair_analysis import matrix, pair_values
from .pairs import PairsResult
from .report import (
    failed_cells_note,
    format_adaptive,
    format_gains,
    format_lambda_sweep,
    format_matrix,
    format_summary,
    format_table,
    pct,
)
from .results import RESULTS_FILE, read_table
from .storage import OutputDir
from .study import open_storage
from .tables import LAMBDA_SWEEP_FILE, LEAKAGE_FILE, PAIR_MATRIX_FILE, SUMMARY_FILE

Say = Callable[[str], None]


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def print_pairs_result(result: PairsResult, say: Say = print, warn: Say = _to_stderr) -> None:
    """The pair matrix, the AAL summary, stage 3's λ sweep and the files, to `say`;
    failed cells and val/test disagreements to `warn`."""
    say("")
    say("Pair matrix: val accuracy (%) of a (row) trained with b (column); diagonal = alone")
    say(format_matrix(result.mean, result.std))
    say("")
    say(
        "Summary (the layout of the AAL paper's Table 3): test accuracy (%) at the λ and"
        " epochs chosen on val; 'val adv-sin' is selected on the split it reports"
    )
    say(format_summary(result.summary))
    _print_stage3(result.summary, result.lambda_sweep, result.leakage, say, warn)
    if result.rows is not None:
        say("")
        say("Adaptive seeds (--seeds auto): each row's decision after its last round")
        say(format_adaptive(result.rows))
    if result.failed:
        warn(f"\n{failed_cells_note(result.failed)}")
    say(f"\ntrained {result.trained} cell(s){' (resumed)' if result.resumed else ''}; files:")
    for path in result.files():
        say(f"  {path}")


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
    """Print what a search directory holds: a pair search's tables, a grid's matrix
    or a sweep's trials; a search still running shows what is recorded so far."""
    out = OutputDir(location, flag="results show")
    kind = _search_kind(out)
    if kind == "sweep":
        show_sweep(out)
        return
    if kind == "grid":
        show_grid(out)
        return
    if kind and not out.exists(PAIR_MATRIX_FILE) and out.exists(RESULTS_FILE):
        show_running_pairs(out)
        return
    mean, std = load_matrix(out)
    print("Pair matrix: val accuracy (%) of a (row) trained with b (column); diagonal = alone")
    print(format_matrix(mean, std))
    summary = read_table(out, SUMMARY_FILE)
    if summary is not None:
        print()
        print("Summary (the layout of the AAL paper's Table 3): test at the choices made on val")
        frame = pd.DataFrame(summary.to_pylist(), columns=summary.column_names)
        print(format_summary(frame))
        sweep, leakage = read_table(out, LAMBDA_SWEEP_FILE), read_table(out, LEAKAGE_FILE)
        _print_stage3(
            frame,
            sweep.to_pandas() if sweep is not None else None,
            leakage.to_pandas() if leakage is not None else None,
        )


def _print_stage3(
    summary: pd.DataFrame,
    sweep: pd.DataFrame | None,
    leakage: pd.DataFrame | None,
    say: Say = print,
    warn: Say = _to_stderr,
) -> None:
    """The gain test on test, the λ sweep with the adversary's leakage, and the
    val/test disagreement warnings (to `warn`)."""
    gains = format_gains(summary)
    if gains is not None:
        say("")
        say(
            "Gain on test (points), paired by seed, each arm at its own λ chosen on val;"
            " leakage: the partner read far from chance at the chosen λ"
        )
        say(gains)
    if sweep is not None and len(sweep):
        say("")
        say(
            "λ sweep: accuracy (%) of the attribute, * = chosen on val; the partner's"
            " accuracy (%) at the selected epoch, marked where far from chance"
            " (reads: the features carry it; inverted: read backwards)"
        )
        say(format_lambda_sweep(sweep, leakage))
    for r in summary.to_dict("records"):
        note = r.get("note")
        if isinstance(note, str) and "val and test disagree" in note:
            warning = note[note.index("val and test disagree") :]
            warn(f"auxsearch: warning: {r['attribute']}: {warning}")


def show_running_pairs(out: OutputDir) -> None:
    """A pair search before its matrix is written: the cells recorded so far."""
    settings = json.loads(out.read_bytes(MANIFEST))["settings"]
    rows = _results_rows(out)
    cells = {(r["trial_id"], r["seed"]): (r["stage"], r["status"]) for r in rows}
    by_stage: dict[str, list[str]] = {}
    for stage, status in cells.values():
        by_stage.setdefault(stage, []).append(status)
    counts = ", ".join(
        f"{stage} {len(s)}" + (f" ({s.count('failed')} failed)" if "failed" in s else "")
        for stage, s in sorted(by_stage.items())
    )
    print(
        f"{out.location}: a pair search still running (or stopped before stage 2);"
        f" cells recorded so far: {counts or 'none'}"
    )
    mean = matrix(pair_values(rows, "val"), settings["attributes"])
    print("Pair matrix so far: val accuracy (%), '-' not yet trained")
    print(format_matrix(mean))


def show_grid(out: OutputDir) -> None:
    """A grid's test accuracy (%) per method x backbone x train domain."""
    table = read_table(out, GRID_MATRIX_FILE)
    if table is None:
        rows = _results_rows(out)
        done = len({(r["trial_id"], r["seed"]) for r in rows})
        print(
            f"{out.location}: a grid still running (or stopped); {done} training(s) recorded"
            f" so far, its matrix ({GRID_MATRIX_FILE}) is written when every cell has run"
        )
        return
    df = table.to_pandas()
    keys = ["method", "backbone", "train_domain"]
    tests = [c for c in df.columns if c not in keys and not c.endswith("_std")]
    body = [
        [*(str(r[k]) for k in keys), *(pct(r[t]) for t in tests)] for r in df.to_dict("records")
    ]
    print("Grid: test accuracy (%) of the target task, mean over seeds; '-' not tested")
    print(format_table(["method", "backbone", "train", *(f"→ {t}" for t in tests)], body))


def _results_rows(out: OutputDir) -> list[dict[str, Any]]:
    table = read_table(out, RESULTS_FILE)
    return [] if table is None else table.to_pylist()


def _search_kind(out: OutputDir) -> str | None:
    if not out.exists(MANIFEST):
        return None
    try:
        return str(json.loads(out.read_bytes(MANIFEST))["identity"]["search"])
    except (ValueError, KeyError, TypeError):
        return None


def show_sweep(out: OutputDir) -> None:
    """The study's trials, best first: state, objective, parameters, and each task's
    test accuracy from results.parquet (mean ± std over the trial's seeds)."""
    import optuna

    manifest = json.loads(out.read_bytes(MANIFEST))
    identity, settings = manifest["identity"], manifest["settings"]
    study = optuna.load_study(
        study_name=identity["study"], storage=open_storage(settings["storage"])
    )
    sign = -1.0 if identity["mode"] == "max" else 1.0
    trials = sorted(
        study.get_trials(deepcopy=False),
        key=lambda t: (t.value is None, sign * (t.value or 0.0), t.number),
    )
    names = sorted({k for t in trials for k in t.params})
    tests = _test_accuracies(out)
    tasks = sorted({task for per in tests.values() for task in per})
    rows = [
        [
            f"#{t.number}",
            t.state.name.lower(),
            "-" if t.value is None else f"{t.value:.4f}",
            *(_fmt(t.params.get(k)) for k in names),
            *(tests.get(t.user_attrs.get("cell", ""), {}).get(task, "-") for task in tasks),
        ]
        for t in trials
    ]
    print(
        f"study '{identity['study']}' ({identity['method']}, {identity['metric']},"
        f" {identity['mode']}) in {settings['storage']}"
    )
    print(
        format_table(
            ["trial", "state", identity["metric"], *names, *(f"test {task} %" for task in tasks)],
            rows,
        )
    )


def _test_accuracies(out: OutputDir) -> dict[str, dict[str, str]]:
    """cell id → task → "mean ± std" of its test accuracy (on the task's own dataset)."""
    table = read_table(out, RESULTS_FILE)
    if table is None:
        return {}
    df = table.to_pandas()
    df = df[(df["split"] == "test") & (df["metric"] == "acc") & (df["status"] == "ok")]
    own = df[df["train_domain"] == df["test_domain"]]
    # a task of another dataset (e.g. MTL-SA's task B) is tested on that dataset
    other = df[(df["train_domain"] != df["test_domain"]) & ~df["main_task"].isin(own["main_task"])]
    out_map: dict[str, dict[str, str]] = {}
    for (cell, task), values in pd.concat([own, other]).groupby(["trial_id", "main_task"])["value"]:
        mean = values.mean() * 100
        text = f"{mean:.1f}" if len(values) < 2 else f"{mean:.1f} ± {values.std() * 100:.1f}"
        out_map.setdefault(str(cell), {})[str(task)] = text
    return out_map


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)
