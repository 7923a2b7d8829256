from __future__ import annotations

import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from orchestrator.cells import Cell, Outcome
from orchestrator.errors import OutputError
from orchestrator.results import RESULTS_FILE, RESULTS_SCHEMA, ResultsLog, outcome_rows
from orchestrator.storage import OutputDir

T0 = "2026-01-01T00:00:00+00:00"  # a finish time
PAIR = Cell("pair:a+b:seed=0", "pair", "mtl", {"backbone": "small_cnn", "epochs": 3}, 0, ("a", "b"))


def _ok(cell: Cell = PAIR) -> Outcome:
    metrics = {
        "train/loss": 0.4,
        "val/acc/a": 0.9,
        "val/acc/b": 0.7,
        "test/acc/a": 0.88,
        "test/acc/b": 0.69,
        "epoch/a": 2.0,
        "epoch/b": 3.0,
        "val/loss/a": float("nan"),
    }
    return Outcome(cell, "ok", metrics, 2.5, "2026-01-01T00:00:00+00:00")


def test_pair_rows_carry_both_directions() -> None:
    rows = {
        (r["split"], r["metric"], r["main_task"]): r
        for r in outcome_rows(_ok(), search="pairs", dataset="d")
    }
    assert rows[("val", "acc", "a")]["aux_task"] == "b"
    assert rows[("val", "acc", "b")]["aux_task"] == "a"
    assert rows[("val", "acc", "a")]["epoch"] == 2 and rows[("val", "acc", "b")]["epoch"] == 3
    assert rows[("train", "loss", "a+b")]["epoch"] == 3
    assert ("val", "loss", "a") not in rows  # a NaN is not a result
    assert all(
        not (isinstance(r["value"], float) and math.isnan(r["value"])) for r in rows.values()
    )


def test_adversary_rows_name_the_adversary() -> None:
    cell = Cell("adv", "adversarial", "aal", {"lam": 0.1}, 0, ("a",), ("b",))
    out = Outcome(
        cell,
        "ok",
        {"val/acc/a": 0.9, "val/adv_acc/b": 0.3, "epoch/a": 1.0, "epoch/b": 1.0},
        1.0,
        T0,
    )
    rows = {r["metric"]: r for r in outcome_rows(out, search="pairs", dataset="d")}
    assert (rows["acc"]["main_task"], rows["acc"]["aux_task"]) == ("a", "b")
    assert (rows["adv_acc"]["main_task"], rows["adv_acc"]["aux_task"]) == ("a", "b")


def test_failed_cell_is_one_error_row_without_a_value() -> None:
    out = Outcome(PAIR, "failed", {}, 0.1, T0, error="RuntimeError: boom")
    (row,) = outcome_rows(out, search="pairs", dataset="d")
    assert row["status"] == "failed" and row["metric"] == "error" and row["value"] is None
    assert row["error"] == "RuntimeError: boom"


def test_log_roundtrip_schema_and_resume(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path))
    log = ResultsLog(out, search="pairs", dataset="d")
    log.record(_ok())
    table = pq.read_table(tmp_path / RESULTS_FILE)
    assert table.schema.equals(RESULTS_SCHEMA, check_metadata=False)
    assert table.schema.metadata[b"auxsearch.schema"] == b"results/3"
    assert table.schema.metadata[b"auxsearch.search"] == b"pairs"
    assert all(table.schema.field(f.name).metadata == f.metadata for f in RESULTS_SCHEMA)
    again = ResultsLog(out, search="pairs", dataset="d")
    assert again.finished() == {PAIR.id: "ok"}
    assert len(again.rows) == len(log.rows)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # no temp file left


def test_a_failed_write_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = OutputDir(str(tmp_path))
    log = ResultsLog(out, search="pairs", dataset="d")
    log.record(_ok())
    before = (tmp_path / RESULTS_FILE).read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("orchestrator.storage.os.fsync", disk_full)
    with pytest.raises(OutputError, match="No space left on device.*earlier files are intact"):
        log.record(_ok(Cell("single:a:seed=0", "single", "stl", {}, 0, ("a",))))
    assert (tmp_path / RESULTS_FILE).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [RESULTS_FILE]


def test_a_file_in_the_way_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "sub").write_text("a file where a directory is needed")
    with pytest.raises(OutputError, match="cannot write .*sub/results.parquet"):
        OutputDir(str(tmp_path)).write_bytes("sub/results.parquet", b"x")


def test_a_results_1_file_is_read_and_its_finish_times_become_timestamps(tmp_path: Path) -> None:
    """Files of the first schema held finished_at as ISO text; a resume rewrites them."""
    import datetime

    import pyarrow as pa

    old_schema = pa.schema(
        [(f.name, pa.string()) if f.name == "finished_at" else f for f in RESULTS_SCHEMA],
        metadata={"auxsearch.schema": "results/1"},
    )
    rows = outcome_rows(_ok(), search="pairs", dataset="d")
    rows = [{**r, "finished_at": T0} for r in rows]
    pq.write_table(pa.Table.from_pylist(rows, schema=old_schema), tmp_path / RESULTS_FILE)
    log = ResultsLog(OutputDir(str(tmp_path)), search="pairs", dataset="d")
    log.record(Outcome(PAIR, "failed", {}, 0.1, T0, error="x"))  # rewrites the file
    table = pq.read_table(tmp_path / RESULTS_FILE)
    assert table.schema.field("finished_at").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("epoch").type == pa.int64()
    when = table.column("finished_at")[0].as_py()
    assert when == datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def test_an_unreadable_results_file_is_kept_aside_not_lost(tmp_path: Path, capsys) -> None:
    out = OutputDir(str(tmp_path))
    ResultsLog(out, search="pairs", dataset="d").record(_ok())
    damaged = (tmp_path / RESULTS_FILE).read_bytes()[:40]
    (tmp_path / RESULTS_FILE).write_bytes(damaged)
    log = ResultsLog(out, search="pairs", dataset="d")  # no Ray records here: nothing rebuilt
    assert log.rows == []
    (aside,) = tmp_path.glob(f"{RESULTS_FILE}.damaged-*")
    assert aside.read_bytes() == damaged
    err = capsys.readouterr().err.strip()
    assert "could not be read" in err and "rebuilt 0 cell(s)" in err and len(err.splitlines()) == 1
    assert pq.read_table(tmp_path / RESULTS_FILE).num_rows == 0  # readable again


def test_curves_are_recorded_beside_the_results_and_a_damaged_file_is_kept_aside(
    tmp_path: Path, capsys
) -> None:
    from orchestrator.curves import CURVES_FILE
    from tests.orchestrator.test_leakage import _aal_outcome

    out = OutputDir(str(tmp_path))
    log = ResultsLog(out, search="pairs", dataset="d")
    log.record(_ok())
    assert not (tmp_path / CURVES_FILE).exists()  # a method without curves writes none
    log.record(_aal_outcome(0.1, 0, [0.5, 0.4, 0.3]))
    rows = pq.read_table(tmp_path / CURVES_FILE).to_pylist()
    assert sorted((r["split"], r["epoch"], r["value"]) for r in rows) == sorted(
        (s, e, v) for s in ("val", "test") for e, v in ((1, 0.5), (2, 0.4), (3, 0.3))
    )
    assert {(r["main_task"], r["aux_task"], r["metric"]) for r in rows} == {("a", "b", "adv_acc")}
    # curve keys never become results rows
    assert not any(
        r["metric"] == "curve" for r in pq.read_table(tmp_path / RESULTS_FILE).to_pylist()
    )
    damaged = (tmp_path / CURVES_FILE).read_bytes()[:30]
    (tmp_path / CURVES_FILE).write_bytes(damaged)
    again = ResultsLog(out, search="pairs", dataset="d")
    assert again.curves == [] and len(again.rows) > 0  # no Ray records here to rebuild from
    (aside,) = tmp_path.glob(f"{CURVES_FILE}.damaged-*")
    assert aside.read_bytes() == damaged
    assert "could not be read" in capsys.readouterr().err
