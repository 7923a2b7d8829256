"""Self-describing tables (issue 29): every swept setting a typed column of
results.parquet, units and meanings in field metadata, the search's settings in
each file's key-value metadata, and `epoch` never null."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestrator.cells import Cell, Outcome
from orchestrator.results import (
    RESULTS_FILE,
    RESULTS_SCHEMA,
    ResultsLog,
    outcome_rows,
    swept_setting,
)
from orchestrator.storage import OutputDir

T0 = "2026-01-01T00:00:00+00:00"
THREE = Cell("mtl:a+b+c:seed=0", "pair", "mtl", {"epochs": 7}, 0, ("a", "b", "c"))


def _metrics(epochs: dict[str, int]) -> dict[str, float]:
    out: dict[str, float] = {"train/loss": 0.5}
    for t, e in epochs.items():
        out |= {f"val/acc/{t}": 0.8, f"test/acc/{t}": 0.7, f"epoch/{t}": float(e)}
    out |= {"val/mean_acc": 0.8, "test/mean_acc": 0.7, "test@other/mean_acc": 0.6}
    return out


@pytest.mark.parametrize("epochs", [{"a": 2, "b": 6, "c": 4}, {"a": 5, "b": 5, "c": 5}])
def test_every_row_has_an_epoch_and_a_mean_over_tasks_the_latest(epochs: dict[str, int]) -> None:
    rows = outcome_rows(Outcome(THREE, "ok", _metrics(epochs), 1.0, T0), search="p", dataset="d")
    assert rows and all(isinstance(r["epoch"], int) for r in rows)
    latest = sorted(epochs.values())[-1]  # computed apart from the row builder
    for r in rows:
        if r["split"] == "train":
            assert r["epoch"] == 7  # the last epoch trained: the config's epochs
        elif r["metric"] == "mean_acc":
            assert r["epoch"] == latest, r
        else:
            assert r["epoch"] == epochs[r["main_task"]]


def test_epochs_without_a_selection_pruned_and_failed_rows() -> None:
    no_epochs = {"val/acc/a": 0.8, "val/mean_acc": 0.8}  # a run that recorded no selection
    rows = outcome_rows(Outcome(THREE, "ok", no_epochs, 1.0, T0), search="p", dataset="d")
    assert {r["epoch"] for r in rows} == {7}
    pruned = Outcome(THREE, "pruned", {"val/acc/a": 0.5}, 1.0, T0, stopped_epoch=3)
    assert [r["epoch"] for r in outcome_rows(pruned, search="p", dataset="d")] == [3]
    failed = Outcome(THREE, "failed", {}, 1.0, T0, error="boom")
    assert [r["epoch"] for r in outcome_rows(failed, search="p", dataset="d")] == [0]
    reached = Outcome(THREE, "failed", {}, 1.0, T0, error="boom", stopped_epoch=4)
    assert [r["epoch"] for r in outcome_rows(reached, search="p", dataset="d")] == [4]


def test_swept_columns_take_their_type_and_avoid_the_fixed_names() -> None:
    assert swept_setting("lam", [0.1, 1.0]).type == "float64"
    assert swept_setting("lam", [0, 1], method="aal").type == "float64"  # a float setting
    assert swept_setting("batch_size", [16, 32]).type == "int64"
    assert swept_setting("batch_size", [16, 64], kind="int").type == "int64"
    assert swept_setting("lr", [1e-4, 1e-2], kind="loguniform").type == "float64"
    assert swept_setting("probe", [True, False]).type == "bool"
    assert swept_setting("adversary_loss", ["reversal", "confusion"]).type == "string"
    milestones = swept_setting("lr_milestones", [[4], [2, 4]])
    assert milestones.type == "string" and milestones.value("x", {"lr_milestones": [2, 4]}) == (
        "[2, 4]"
    )
    backbone = swept_setting("backbone", ["small_cnn", "resnet18"])
    assert backbone.column == "param_backbone" and "backbone" in RESULTS_SCHEMA.names
    assert "λ" in swept_setting("lam", [0.1], method="aal").description  # the config's doc


def test_an_older_file_gains_the_swept_column_and_epochs_on_resume(tmp_path: Path) -> None:
    """A results/2 file (null epoch on a mean over tasks selected apart, no λ
    column) is read and rewritten as results/3."""
    adv = Cell("adv:a~b:lam=0.3:seed=0", "adversarial", "aal", {"lam": 0.3, "epochs": 4}, 0, ("a",))
    pair = Cell("pair:a+b:seed=0", "pair", "mtl", {"epochs": 4}, 0, ("a", "b"))
    pair_rows = outcome_rows(
        Outcome(pair, "ok", _metrics({"a": 1, "b": 3}), 1.0, T0), search="p", dataset="d"
    )
    rows = [
        {**r, "epoch": None} if r["metric"] == "mean_acc" else r
        for r in pair_rows
        + outcome_rows(Outcome(adv, "ok", _metrics({"a": 2}), 1.0, T0), search="p", dataset="d")
    ]
    old = pa.schema(list(RESULTS_SCHEMA), metadata={"auxsearch.schema": "results/2"})
    pq.write_table(pa.Table.from_pylist(rows, schema=old), tmp_path / RESULTS_FILE)
    lam = swept_setting("lam", [0.3], method="aal", stages=("adversarial", "null"))
    log = ResultsLog(OutputDir(str(tmp_path)), search="pairs", dataset="d", swept=[lam])
    mean = [r for r in log.rows if r["trial_id"] == pair.id and r["metric"] == "mean_acc"]
    assert {r["epoch"] for r in mean} == {3}  # the latest of a (1) and b (3)
    log.record(Outcome(THREE, "failed", {}, 0.1, T0, error="x"))  # rewrites the file
    table = pq.read_table(tmp_path / RESULTS_FILE)
    assert table.schema.metadata[b"auxsearch.schema"] == b"results/3"
    assert table.schema.field("lam").type == pa.float64()
    assert table.column("epoch").null_count == 0
    for r in table.to_pylist():
        assert r["lam"] == (0.3 if r["stage"] == "adversarial" else None)


def test_grid_tables_state_their_units_and_search(tmp_path: Path) -> None:
    import pandas as pd

    from methods.core import GridRoles
    from orchestrator import grid
    from orchestrator.tables import FRACTION, SearchMeta, write_table

    settings = grid.GridSettings(
        methods=("m",),
        train=("a",),
        test=("a", "b"),
        backbones=("cnn",),
        roles=GridRoles("digit"),
        protocol={},
        seeds=2,
    )
    row = {"method": "m", "backbone": "cnn", "train_domain": "a"}
    matrix = pd.DataFrame([{**row, "a": None, "a_std": None, "b": 0.5, "b_std": 0.1}])
    meta = SearchMeta("grid", {"seeds": 2}, {"search": "grid"})
    docs = grid._matrix_docs(settings, FRACTION)
    write_table(OutputDir(str(tmp_path)), "g.parquet", matrix, "grid_matrix/1", meta, docs)
    table = pq.read_table(tmp_path / "g.parquet")
    assert _unit(table, "b") == _unit(table, "b_std") == "fraction (0-1)"
    assert b"digit" in table.schema.field("b").metadata[b"description"]
    assert _meta(table)[b"auxsearch.search"] == b"grid"
    assert json.loads(_meta(table)[b"auxsearch.settings"]) == {"seeds": 2}
    assert _meta(table)[b"auxsearch.schema"] == b"grid_matrix/1"


# --- real searches, read back from Parquet -------------------------------------------


def _meta(table: pa.Table) -> dict[bytes, bytes]:
    return dict(table.schema.metadata or {})


def _check_settings_metadata(out: Path, search: str) -> list[str]:
    """Every Parquet file of `out` carries its kind and search.json's settings and
    identity; the files checked."""
    manifest = json.loads((out / "search.json").read_text())
    files = sorted(p.name for p in out.glob("*.parquet"))
    for name in files:
        meta = _meta(pq.read_table(out / name))
        assert meta[b"auxsearch.search"] == search.encode(), name
        assert meta[b"auxsearch.schema"], name
        assert json.loads(meta[b"auxsearch.settings"]) == manifest["settings"], name
        assert json.loads(meta[b"auxsearch.identity"]) == manifest["identity"], name
    return files


def _unit(table: pa.Table, column: str) -> str:
    meta = table.schema.field(column).metadata or {}
    assert meta.get(b"description"), f"{column} has no description"
    return meta.get(b"unit", b"").decode()


def _check_results_units(table: pa.Table) -> None:
    assert "fraction" in _unit(table, "value")
    units = json.loads(table.schema.field("value").metadata[b"units"])
    assert "fraction" in units["acc"] and "fraction" in units["mean_acc"]
    assert _unit(table, "wall_s") == "seconds"
    assert _unit(table, "finished_at") == "UTC"
    assert table.schema.field("finished_at").type == pa.timestamp("ms", tz="UTC")
    assert "1-based" in _unit(table, "epoch")
    assert table.column("epoch").null_count == 0


PAIRS = [
    "pairs",
    "--dataset",
    "shapes:n=150,image_size=16,correlation=0.5",
    "--attributes",
    "red,large",
    "--backbone",
    "small_cnn",
    "--epochs",
    "2",
    "--set",
    "lr=0.003",
    "--set",
    "batch_size=32",
    "--lambdas",
    "0.1,1",
]


@pytest.mark.integration
def test_a_pair_search_writes_self_describing_tables(ray_local: None, tmp_path: Path) -> None:
    from orchestrator.cli import main

    out = tmp_path / "pairs"
    assert main([*PAIRS, "--out", str(out)]) == 0
    table = pq.read_table(out / RESULTS_FILE)
    _check_results_units(table)
    assert table.schema.field("lam").type == pa.float64()
    rows = table.to_pylist()
    stages = {r["stage"] for r in rows}
    assert {"single", "pair"} <= stages
    for r in rows:
        if r["stage"] in ("single", "pair"):
            assert r["lam"] is None, r
        else:
            assert r["lam"] == json.loads(r["params"])["lam"], r
    files = _check_settings_metadata(out, "pairs")
    assert {"results.parquet", "pair_matrix.parquet", "aal_summary.parquet"} <= set(files)

    matrix = pq.read_table(out / "pair_matrix.parquet")
    assert _unit(matrix, "red") == "fraction (0-1)" and _unit(matrix, "large")
    summary = pq.read_table(out / "aal_summary.parquet")
    assert _unit(summary, "sin_test") == "fraction (0-1)"
    assert "percentage point" in _unit(summary, "adv_minus_sin_test")
    assert "percentage point" in _unit(summary, "mul_minus_sin")
    assert _unit(summary, "p_holm").startswith("probability")
    if (out / "leakage.parquet").exists():  # stage 3 ran (red~large is negative here)
        leakage = pq.read_table(out / "leakage.parquet")
        assert _unit(leakage, "mean") == "fraction (0-1)"
        assert "1-based" in _unit(leakage, "worst_epoch")
        assert _unit(pq.read_table(out / "lambda_sweep.parquet"), "test_acc")
        assert "1-based" in _unit(pq.read_table(out / "curves.parquet"), "epoch")
        assert any(r["stage"] == "adversarial" for r in rows)


SPACE = """\
method: aal
fixed:
  epochs: 1
  lr: 0.003
space:
  lam: {choice: [0.1, 0.5]}
  batch_size: {choice: [16, 32]}
  backbone: {choice: [small_cnn]}
"""


@pytest.mark.integration
def test_a_sweep_has_a_column_per_searched_key(ray_local: None, tmp_path: Path) -> None:
    from orchestrator.cli import main

    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    out = tmp_path / "sweep"
    args = ["sweep", "--method", "aal", "--space", str(space), "--trials", "2"]
    args += ["--dataset", "shapes:n=150,image_size=16", "--set", "main=[left]"]
    args += ["--set", "adversaries=[red]", "--scheduler", "fifo", "--out", str(out)]
    assert main(args) == 0
    table = pq.read_table(out / RESULTS_FILE)
    _check_results_units(table)
    types = {n: table.schema.field(n).type for n in ("lam", "batch_size", "param_backbone")}
    assert types == {"lam": pa.float64(), "batch_size": pa.int64(), "param_backbone": pa.string()}
    rows: list[dict[str, Any]] = table.to_pylist()
    assert len({r["trial_id"] for r in rows}) == 2
    for r in rows:
        params = json.loads(r["params"])
        assert (r["lam"], r["batch_size"], r["param_backbone"]) == (
            params["lam"],
            params["batch_size"],
            params["backbone"],
        )
    files = _check_settings_metadata(out, "sweep")
    assert "results.parquet" in files
    if "curves.parquet" in files:  # aal declares curves: kept beside the results
        assert "1-based" in _unit(pq.read_table(out / "curves.parquet"), "epoch")
