"""Rebuilding a damaged results.parquet from Ray Tune's own trial records.

results.parquet is written atomically, so it is damaged only from outside (a
disk that filled, a copy cut short, an edit). The search's other record of
every trial is Ray Tune's experiment folder `ray/` inside `--out`: per trial,
`params.json` holds the cell (its config) and `result.json` one line per
report, the last carrying the kernel's final metrics, or `error.txt` the
failure. From them the outcome of every cell that finished is rebuilt exactly
as the driver recorded it; a cell Ray has no finished record of is trained
again on resume.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pyarrow.fs as pafs

from .cells import FINAL_KEY, WALL_KEY, Cell, Outcome, trial_metrics
from .storage import OutputDir

# a cell found in several trials (failed, then retried): the best record wins
_RANK = {"ok": 2, "pruned": 1, "failed": 0}


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
    best: dict[str, Outcome] = {}
    for folder in trial_dirs:  # experiment folders are named by start time: later wins ties
        outcome = _outcome(out.fs, folder, prunable)
        if outcome is None:
            continue
        held = best.get(outcome.cell.id)
        if held is None or _RANK[outcome.status] >= _RANK[held.status]:
            best[outcome.cell.id] = outcome
    return list(best.values())


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
