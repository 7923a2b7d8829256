"""Rebuilding a damaged results.parquet from Ray Tune's own trial records and
from the Optuna study.

results.parquet is written atomically, so it is damaged only from outside (a
disk that filled, a copy cut short, an edit). The search's other record of
every trial is Ray Tune's experiment folder `ray/` inside `--out`: per trial,
`params.json` holds the cell (its config) and `result.json` one line per
report, the last carrying the kernel's final metrics, or `error.txt` the
failure. From them the outcome of every cell that finished is rebuilt exactly
as the driver recorded it.

A search whose trials are an Optuna study (a sweep, pairs' stage 3) keeps a
third record: each finished trial carries its cell's outcome as a system
attribute (`OUTCOME_ATTR`, written just before the trial is told), so with
`ray/` gone too those cells come back from the study instead of training again
beside a trial the study already holds. A cell neither has a record of is
trained again on resume.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import pyarrow.fs as pafs

from .cells import FINAL_KEY, WALL_KEY, Cell, Outcome, trial_metrics
from .storage import OutputDir

# a cell found in several trials (failed, then retried): the best record wins
_RANK = {"ok": 2, "pruned": 1, "failed": 0}

OUTCOME_ATTR = "auxsearch_outcome"  # a finished Optuna trial's system attribute


def best_outcomes(outcomes: Iterable[Outcome]) -> list[Outcome]:
    """One outcome per cell: the best status, the later one on a tie."""
    best: dict[str, Outcome] = {}
    for outcome in outcomes:
        held = best.get(outcome.cell.id)
        if held is None or _RANK[outcome.status] >= _RANK[held.status]:
            best[outcome.cell.id] = outcome
    return list(best.values())


def outcome_record(outcome: Outcome) -> dict[str, Any]:
    """An outcome as JSON for the study (a non-finite metric is no result: left out)."""
    return {
        "cell": outcome.cell.to_dict(),
        "status": outcome.status,
        "metrics": {k: v for k, v in outcome.metrics.items() if math.isfinite(v)},
        "wall_s": outcome.wall_s,
        "finished_at": outcome.finished_at,
        "error": outcome.error,
        "attempts": outcome.attempts,
        "stopped_epoch": outcome.stopped_epoch,
        "stopped_seed": outcome.stopped_seed,
    }


def outcome_from_record(record: Any) -> Outcome | None:
    """The outcome `outcome_record` wrote, or None for anything else."""
    try:
        if record["status"] not in _RANK:
            return None
        return Outcome(
            cell=Cell.from_dict(record["cell"]),
            status=record["status"],
            metrics={str(k): float(v) for k, v in record["metrics"].items()},
            wall_s=float(record["wall_s"]),
            finished_at=str(record["finished_at"]),
            error=record.get("error"),
            attempts=int(record.get("attempts", 1)),
            stopped_epoch=record.get("stopped_epoch"),
            stopped_seed=record.get("stopped_seed"),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def study_outcomes(storage: Any, study_name: str) -> list[Outcome]:
    """The outcomes the finished trials of a study carry, in trial order (trials of an
    auxsearch that did not write them carry none)."""
    from optuna.trial import TrialState

    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return []
    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    trials = storage.get_all_trials(study_id, deepcopy=False, states=finished)
    found = [outcome_from_record(t.system_attrs.get(OUTCOME_ATTR)) for t in trials]
    return [o for o in found if o is not None]


def rebuild_outcomes(out: OutputDir, *, prunable: bool) -> list[Outcome]:
    """Every cell's outcome that Ray's trial folders under `out` record.

    `prunable`: trials of a search with a scheduler (a sweep) that stopped
    before their final report were pruned, not failed."""
    root = out.ray_storage() if out.local else out.ray_storage().split("://", 1)[1]
    try:
        infos = out.fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except OSError:
        return []
    trial_dirs = sorted(
        {i.path.rsplit("/", 1)[0] for i in infos if i.path.endswith("/params.json")}
    )
    # experiment folders are named by start time: later wins ties
    found = (_outcome(out.fs, folder, prunable) for folder in trial_dirs)
    return best_outcomes(o for o in found if o is not None)


def _outcome(fs: pafs.FileSystem, folder: str, prunable: bool) -> Outcome | None:
    try:
        cell = Cell.from_dict(json.loads(json.loads(_read(fs, f"{folder}/params.json"))["cell"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    results = []
    for line in _lines(fs, f"{folder}/result.json"):
        try:
            results.append(json.loads(line))
        except ValueError:  # a line cut short when the driver stopped
            continue
    last: dict[str, Any] = results[-1] if results else {}
    finished = _finished_at(last)
    metrics = trial_metrics(last)
    if last.get(FINAL_KEY):
        return Outcome(cell, "ok", metrics, round(float(last.get(WALL_KEY, 0.0)), 3), finished)
    error = [ln.strip() for ln in _lines(fs, f"{folder}/error.txt") if ln.strip()]
    if error:
        return Outcome(cell, "failed", {}, 0.0, finished, error=error[-1][:2000])
    if prunable and metrics:
        return Outcome(
            cell,
            "pruned",
            metrics,
            round(float(last.get("time_total_s", 0.0)), 3),
            finished,
            stopped_epoch=int(last["epoch"]) if "epoch" in last else None,
            stopped_seed=int(last["seed"]) if "seed" in last else None,
        )
    return None  # still running when the driver stopped: trained again on resume


def _read(fs: pafs.FileSystem, path: str) -> str:
    with fs.open_input_stream(path) as f:
        return bytes(f.read()).decode("utf-8", errors="replace")


def _lines(fs: pafs.FileSystem, path: str) -> list[str]:
    try:
        text = _read(fs, path)
    except OSError:
        return []
    return [ln for ln in text.splitlines() if ln.strip()]


def _finished_at(result: dict[str, Any]) -> str:
    stamp = result.get("timestamp")
    when = (
        datetime.fromtimestamp(float(stamp), timezone.utc)
        if isinstance(stamp, int | float)
        else datetime.now(timezone.utc)
    )
    return when.isoformat(timespec="seconds")
