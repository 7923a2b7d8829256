"""`auxsearch sweep` on a real local Ray: the study, ASHA pruning, resume after a
killed driver, optuna-dashboard on loopback, and PostgreSQL storage."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import optuna
import pyarrow.parquet as pq
import pytest
from optuna.trial import TrialState

from orchestrator import sweep
from orchestrator.cli import main
from tests.orchestrator.postgres import postgres_server

pytestmark = pytest.mark.integration

SPACE = """\
method: aal
fixed:
  backbone: small_cnn
  epochs: 3
  batch_size: 32
space:
  lam: {choice: [0.01, 0.1, 0.3, 0.5, 1.0]}
  lr: {loguniform: [1.0e-4, 1.0e-2]}
"""
EXE = str(Path(sys.executable).with_name("auxsearch"))


def _sweep_args(tmp_path: Path, out: Path, trials: int, *extra: str) -> list[str]:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    return [
        "sweep",
        "--method",
        "aal",
        "--space",
        str(space),
        "--trials",
        str(trials),
        "--dataset",
        "shapes:n=300,image_size=16",
        "--set",
        "main=[left]",
        "--set",
        "adversaries=[red]",
        "--max-concurrent",
        "1",
        "--out",
        str(out),
        *extra,
    ]


def _study(url: str, name: str = "aal-sweep") -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=url)


def _check_study_matches_results(study: optuna.Study, out: Path, trials: int) -> None:
    assert [t.number for t in study.trials] == list(range(trials))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    rows = pq.read_table(out / "results.parquet").to_pylist()
    status = {r["trial_id"]: r["status"] for r in rows}
    assert status == {
        f"aal-sweep#{t.number}": "ok" if t.state == TrialState.COMPLETE else "pruned"
        for t in study.trials
    }
    keys = [
        (r["trial_id"], r["seed"], r["split"], r["metric"], r["main_task"], r["aux_task"])
        for r in rows
    ]
    assert len(keys) == len(set(keys))  # nothing recorded twice
    for t in study.trials:
        mean = [
            r["value"]
            for r in rows
            if r["trial_id"] == f"aal-sweep#{t.number}"
            and r["split"] == "val"
            and r["metric"] == "mean_acc"
        ]
        assert mean == [pytest.approx(t.value)]


def test_sweep_study_pruning_and_dashboard(
    ray_local: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    results: list[sweep.SweepResult] = []  # what each run_sweep returned
    run_sweep = sweep.run_sweep

    def kept(*args: Any, **kwargs: Any) -> sweep.SweepResult:
        results.append(run_sweep(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(sweep, "run_sweep", kept)  # the CLI imports it when it runs
    out = tmp_path / "sweep"
    assert main(_sweep_args(tmp_path, out, 6)) == 0
    assert not results[-1].resumed
    assert "best: trial #" in capsys.readouterr().out
    study = _study(f"sqlite:///{out / 'optuna.db'}")
    _check_study_matches_results(study, out, 6)
    states = [t.state for t in study.trials]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    for t in study.trials:
        assert t.user_attrs["dataset"] == "shapes" and t.user_attrs["tasks"] == ["left"]
        assert t.user_attrs["aux"] == ["red"] and t.user_attrs["seeds"] == [0]
        assert set(t.params) == {"lam", "lr"}
        if t.state == TrialState.PRUNED:  # the last reported value is kept
            assert t.value == t.intermediate_values[max(t.intermediate_values)]
            assert max(t.intermediate_values) < 3
        else:
            assert sorted(t.intermediate_values) == [1, 2, 3]

    # A rerun with the same --out trains nothing; more --trials extend the study.
    assert main(_sweep_args(tmp_path, out, 6)) == 0
    assert "6 of 6 trial(s) finished, 0 to run" in capsys.readouterr().out
    assert results[-1].resumed and results[-1].trained == 0
    assert main(_sweep_args(tmp_path, out, 8)) == 0
    assert "6 of 8 trial(s) finished, 2 to run" in capsys.readouterr().out
    _check_study_matches_results(_study(f"sqlite:///{out / 'optuna.db'}"), out, 8)

    assert main(["results", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "study 'aal-sweep'" in shown and "pruned" in shown and "#7" in shown

    # optuna-dashboard on loopback answers for the study and its trials
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [EXE, "dashboard", str(out), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert f"http://127.0.0.1:{port}/" in (server.stdout.readline() if server.stdout else "")
        studies = _get_json(f"http://127.0.0.1:{port}/api/studies")
        (entry,) = studies["study_summaries"]
        assert entry["study_name"] == "aal-sweep"
        detail = _get_json(f"http://127.0.0.1:{port}/api/studies/{entry['study_id']}")
        assert len(detail["trials"]) == 8
        assert {t["state"] for t in detail["trials"]} <= {"Complete", "Pruned"}
        assert any(t["user_attrs"] for t in detail["trials"])
    finally:
        server.terminate()
        server.wait(timeout=30)


def _get_json(url: str, timeout: float = 30.0) -> dict:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.3)


def test_resume_after_the_driver_is_killed(tmp_path: Path) -> None:
    """SIGKILL the whole driver mid-sweep; the rerun finishes with no trial lost or twice."""
    out = tmp_path / "sweep"
    args = _sweep_args(
        tmp_path, out, 6, "--set", "epochs=4", "--dataset", "shapes:n=600,image_size=24"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    first = subprocess.Popen(
        [EXE, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    db = out / "optuna.db"
    deadline = time.time() + 240
    finished = 0
    while time.time() < deadline and first.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                    finished = con.execute(
                        "select count(*) from trials where state in ('COMPLETE', 'PRUNED')"
                    ).fetchone()[0]
            except sqlite3.Error:
                pass
        if finished >= 2:
            break
        time.sleep(0.2)
    assert first.poll() is None, "the sweep ended before it could be interrupted"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    before = _study(f"sqlite:///{db}")
    assert len(before.trials) < 6 or any(t.state == TrialState.RUNNING for t in before.trials)

    second = subprocess.run([EXE, *args], capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr
    _check_study_matches_results(_study(f"sqlite:///{db}"), out, 6)


def test_sweep_on_postgresql(ray_local: None, tmp_path: Path) -> None:
    with postgres_server() as url:
        out = tmp_path / "pg"
        assert main(_sweep_args(tmp_path, out, 3, "--storage", url, "--study", "pg-sweep")) == 0
        study = _study(url, "pg-sweep")
        assert len(study.trials) == 3 and all(t.state.is_finished() for t in study.trials)
        assert not (out / "optuna.db").exists()
        ids = {r["trial_id"] for r in pq.read_table(out / "results.parquet").to_pylist()}
        assert ids == {f"pg-sweep#{n}" for n in range(3)}


def test_grid_sampler_runs_every_mode_once(ray_local: None, tmp_path: Path, capsys) -> None:
    """`--sampler grid` over a method's modes (the MTL-SA comparison), with the per-sample
    weights each trial keeps as Parquet in its trial directory."""
    space = tmp_path / "modes.yaml"
    space.write_text("method: mtl_sa\nspace:\n  mode: {choice: [zero, sa, one]}\n")
    out = tmp_path / "modes"
    args = [
        "sweep",
        "--method",
        "mtl_sa",
        "--space",
        str(space),
        "--sampler",
        "grid",
        "--scheduler",
        "fifo",
        "--dataset",
        "digit_pair",
        "--set",
        "domain=a",
        "--set",
        "task_a=digit",
        "--set",
        "domain_b=b",
        "--set",
        "task_b=photo",
        "--set",
        "backbone=small_cnn",
        "--set",
        "epochs=3",
        "--set",
        "init_epochs=1",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    study = _study(f"sqlite:///{out / 'optuna.db'}", "mtl_sa-sweep")
    assert sorted(t.params["mode"] for t in study.trials) == ["one", "sa", "zero"]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    weights = sorted(out.glob("artifacts/*/sample_weights.seed0.parquet"))
    assert [w.parent.name for w in weights] == [f"mtl_sa-sweep_{n}" for n in range(3)]
    table = pq.read_table(weights[0]).to_pylist()
    assert {"domain", "task", "row", "wc", "wd", "wg", "w", "pseudo"} <= set(table[0])
    assert main(["results", "show", str(out)]) == 0
    assert "test digit %" in capsys.readouterr().out


def test_a_jdm_sweep_optimises_the_ccc_it_reports(ray_local: None, tmp_path: Path) -> None:
    """The objectives come from the method: jdm reports `val/ccc/<value label>`, so a
    sweep on it runs, and AAL's adversary metrics are not offered."""
    space = tmp_path / "jdm.yaml"
    space.write_text("method: jdm\nspace:\n  lam: {choice: [0.2, 1.0]}\n")
    out = tmp_path / "jdm"
    base = [
        "sweep",
        "--method",
        "jdm",
        "--space",
        str(space),
        "--sampler",
        "grid",
        "--scheduler",
        "fifo",
        "--dataset",
        "noisy_sets:n=200",
        "--set",
        "tasks=[digit_n1,ink_n]",
        "--set",
        "continuous=[ink_n]",
        "--set",
        "clean=[digit,ink]",
        "--set",
        "backbone=small_cnn",
        "--set",
        "epochs=2",
        "--out",
        str(out),
    ]
    assert main([*base, "--metric", "val/adv_acc/ink"]) == 2  # not a metric jdm reports
    assert not out.exists()
    assert main([*base, "--metric", "val/ccc/ink", "--mode", "max"]) == 0
    study = _study(f"sqlite:///{out / 'optuna.db'}", "jdm-sweep")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    rows = pq.read_table(out / "results.parquet").to_pylist()
    for trial in study.trials:
        ccc = [
            r["value"]
            for r in rows
            if (r["trial_id"], r["split"], r["metric"], r["main_task"])
            == (trial.user_attrs["cell"], "val", "ccc", "ink")
        ]
        assert ccc == [trial.value] and -1.0 <= trial.value <= 1.0
