"""`auxsearch pairs` on a real local Ray cluster, read back from Parquet."""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import optuna
import pyarrow.parquet as pq
import pytest

from orchestrator.cli import main
from tests.orchestrator import fault_hook

pytestmark = pytest.mark.integration

ATTRS = ["red", "large", "left"]
BASE = [
    "pairs",
    "--dataset",
    "shapes:n=150,image_size=16,correlation=0.5",
    "--attributes",
    ",".join(ATTRS),
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


def _tables(out: Path):
    results = pq.read_table(out / "results.parquet").to_pylist()
    matrix = pq.read_table(out / "pair_matrix.parquet")
    summary = pq.read_table(out / "aal_summary.parquet").to_pylist()
    return results, matrix, summary


def _tables_results(out: Path) -> list[dict]:
    return pq.read_table(out / "results.parquet").to_pylist()


def _rows(results, stage: str, split: str, main: str, aux: str | None) -> list[dict]:
    return [
        r
        for r in results
        if (r["stage"], r["split"], r["metric"]) == (stage, split, "acc")
        and (r["main_task"], r["aux_task"]) == (main, aux)
    ]


def _val_acc(results, stage: str, main: str, aux: str | None) -> list[float]:
    return [r["value"] for r in _rows(results, stage, "val", main, aux)]


def _test_acc_by_seed(results, stage: str, main: str, aux: str | None, lam=None) -> dict:
    return {
        r["seed"]: r["value"]
        for r in _rows(results, stage, "test", main, aux)
        if lam is None or json.loads(r["params"])["lam"] == lam
    }


def _check_stage3_tables(out: Path, results: list[dict]) -> None:
    """The gain test, the λ sweep, the leakage and the curves, against results.parquet."""
    summary = pq.read_table(out / "aal_summary.parquet")
    assert summary.schema.metadata[b"auxsearch.schema"] == b"aal_summary/2"
    sweep = pq.read_table(out / "lambda_sweep.parquet").to_pylist()
    leakage = pq.read_table(out / "leakage.parquet").to_pylist()
    curves = pq.read_table(out / "curves.parquet").to_pylist()
    for row in summary.to_pylist():
        if not row["neg_partner"]:
            assert row["adv_minus_sin_test"] is None or math.isnan(row["adv_minus_sin_test"])
            continue
        a, lam = row["attribute"], row["lambda"]
        sin = _test_acc_by_seed(results, "single", a, None)
        adv = _test_acc_by_seed(results, "adversarial", a, row["neg_partner"], lam)
        diffs = [adv[s] - sin[s] for s in sorted(sin)]
        assert row["gain_seeds"] == 2
        assert row["adv_minus_sin_test"] == pytest.approx(statistics.mean(diffs))
        assert row["adv_minus_sin_test_low"] <= row["adv_minus_sin_test"]
        assert row["adv_minus_sin_test"] <= row["adv_minus_sin_test_high"]
        assert 0 <= row["adv_minus_sin_test_p"] <= 1
        assert row["sin_test_std"] == pytest.approx(statistics.stdev(sin.values()))
        assert row["neg_partner"] not in (row["tied_partners"] or "").split(",")
        # one λ-sweep row per λ, the chosen one the summary's
        mine = [r for r in sweep if r["attribute"] == a and r["stage"] == "adversarial"]
        assert sorted(r["lambda"] for r in mine) == [0.1, 1.0]
        assert [r["lambda"] for r in mine if r["chosen"]] == [lam]
        # the adversary's accuracy on its partner, per λ and split, with its chance band
        adv_leak = [r for r in leakage if r["attribute"] == a and r["metric"] == "adv_acc"]
        assert {(r["lambda"], r["split"]) for r in adv_leak} == {
            (x, s) for x in (0.1, 1.0) for s in ("val", "test")
        }
        for r in adv_leak:
            assert 0 <= r["mean"] <= 1 and r["chance_low"] <= r["chance_high"]
            assert r["verdict"] in ("chance", "reads", "inverted", "mixed")
    # every adversarial cell has one curve point per epoch for each split's adv_acc
    adv_cells = {r["trial_id"] for r in results if r["stage"] == "adversarial"}
    for cell in adv_cells:
        epochs = sorted(
            c["epoch"]
            for c in curves
            if c["trial_id"] == cell and c["metric"] == "adv_acc" and c["split"] == "val"
        )
        assert epochs == [1, 2]
    assert (out / "lambda_sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pairs_end_to_end_resume_and_extend(
    ray_local: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "aal"
    assert main([*BASE, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        "stage 1: single-task and pair runs: 6 cell(s), 0 already recorded, 6 to train" in printed
    )

    results, matrix, summary = _tables(out)
    # Stage 1: 3 single + 3 pair runs; stage 3: one run per partnered attribute and λ.
    trials = {r["trial_id"]: r["stage"] for r in results}
    assert sum(s == "single" for s in trials.values()) == 3
    assert sum(s == "pair" for s in trials.values()) == 3
    with_partner = [row for row in summary if row["neg_partner"]]
    assert sum(s == "adversarial" for s in trials.values()) == 2 * len(with_partner)
    assert all(r["status"] == "ok" for r in results)
    assert not any(isinstance(r["value"], float) and math.isnan(r["value"]) for r in results)
    assert {r["seed"] for r in results} == {0}
    assert all(json.loads(r["params"])["backbone"] == "small_cnn" for r in results)

    # pair_matrix agrees with results.parquet cell by cell
    assert matrix.column_names == ["main", *ATTRS]
    assert matrix.schema.metadata[b"auxsearch.schema"] == b"pair_matrix/1"
    m = {row["main"]: row for row in matrix.to_pylist()}
    for a in ATTRS:
        assert m[a][a] == _val_acc(results, "single", a, None)[0]
        for b in ATTRS:
            if a != b:
                assert m[a][b] == _val_acc(results, "pair", a, b)[0]

    # the summary agrees with the matrix and with the adversarial runs
    for row in summary:
        a = row["attribute"]
        assert row["sin"] == m[a][a]
        off = {b: m[a][b] for b in ATTRS if b != a}
        worst = min(off, key=lambda b: (off[b], ATTRS.index(b)))
        if off[worst] < m[a][a]:
            assert row["neg_partner"] == worst and row["mul"] == off[worst]
            adv = {
                json.loads(r["params"])["lam"]: r["value"]
                for r in results
                if r["stage"] == "adversarial"
                and r["main_task"] == a
                and r["split"] == "val"
                and r["metric"] == "acc"
            }
            assert set(adv) == {0.1, 1.0}
            assert row["adv"] == max(adv.values()) and adv[row["lambda"]] == row["adv"]
            assert row["adv_minus_sin"] == pytest.approx(row["adv"] - row["sin"])
        else:
            assert row["neg_partner"] is None and row["note"] == "no negative transfer"
    assert (out / "pair_heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Stage 3 ran as an Optuna study (the sweep machinery): one trial per cell.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="aal-lambda", storage=f"sqlite:///{out / 'optuna.db'}")
    adv_cells = {t for t, s in trials.items() if s == "adversarial"}
    assert {t.user_attrs["cell"] for t in study.trials} == adv_cells
    for t in study.trials:
        assert t.state.name == "COMPLETE" and t.params["lam"] in (0.1, 1.0)
        val = [
            r["value"]
            for r in results
            if r["trial_id"] == t.user_attrs["cell"]
            and r["split"] == "val"
            and r["metric"] == "mean_acc"
        ]
        assert val == [pytest.approx(t.value)]

    # Actors are reused: fewer worker processes than trials.
    pids = {
        json.loads(line)["pid"]
        for f in (out / "ray").rglob("result.json")
        for line in f.read_text().splitlines()
        if line
    }
    assert 0 < len(pids) < len(trials)

    # A rerun trains nothing and changes no result.
    before = (out / "results.parquet").read_bytes()
    assert main([*BASE, "--out", str(out)]) == 0
    assert "trained 0 cell(s) (resumed)" in capsys.readouterr().out
    assert (out / "results.parquet").read_bytes() == before

    # A results.parquet cut short is kept aside and rebuilt from Ray's trial records:
    # the rerun trains nothing and every row comes back as it was.
    (out / "results.parquet").write_bytes(before[: len(before) // 2])
    assert main([*BASE, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "could not be read" in captured.err and f"rebuilt {len(trials)} cell(s)" in captured.err
    assert "trained 0 cell(s) (resumed)" in captured.out
    (aside,) = out.glob("results.parquet.damaged-*")
    assert aside.read_bytes() == before[: len(before) // 2]

    def comparable(rows: list[dict]) -> list[tuple]:
        # the finish time is Ray's report time now, the driver's record time before
        return sorted(tuple(sorted((k, str(v)) for k, v in r.items() if k != "finished_at"))
                      for r in rows)  # fmt: skip

    assert comparable(_tables(out)[0]) == comparable(results)
    before = (out / "results.parquet").read_bytes()

    # A second seed extends the same search: only seed-1 cells are trained.
    assert main([*BASE, "--seeds", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "6 cell(s), 0 already recorded" not in printed
    assert (
        "stage 1: single-task and pair runs: 12 cell(s), 6 already recorded, 6 to train" in printed
    )
    results, matrix, _ = _tables(out)
    assert {r["seed"] for r in results} == {0, 1}
    assert all(c in matrix.column_names for c in ("red_std", "large_std", "left_std"))
    _check_stage3_tables(out, results)

    # A different search in the same directory is refused, nothing touched.
    after = (out / "results.parquet").read_bytes()
    assert main([*BASE[:-2], "--epochs", "3", "--out", str(out)]) == 2
    assert "holds a different search (train.epochs: 2 there, 3 here)" in capsys.readouterr().err
    assert (out / "results.parquet").read_bytes() == after

    # results show prints the tables back, also into a pipe its reader closes early
    assert main(["results", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "Pair matrix" in shown and "±" in shown and "adv-sin" in shown
    exe = str(Path(sys.executable).with_name("auxsearch"))
    piped = subprocess.run(
        f"'{exe}' results show '{out}' | head -1", shell=True, capture_output=True, text=True
    )
    assert piped.stdout.startswith("Pair matrix") and "Traceback" not in piped.stderr

    # before stage 2 writes the matrix, results show reads results.parquet as it stands
    (out / "pair_matrix.parquet").unlink()
    assert main(["results", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "still running" in shown and "pair 6" in shown and "single 6" in shown
    red_alone = statistics.mean(_val_acc(_tables_results(out), "single", "red", None))
    assert f"{red_alone * 100:.2f}" in shown


def test_pairs_on_a_users_npz(ray_local: None, tmp_path: Path, capsys) -> None:
    from tests.conftest import write_npz

    data = write_npz(tmp_path / "faces.npz", n=150)
    out = tmp_path / "out"
    code = main(
        [
            "pairs",
            "--data",
            str(data),
            "--backbone",
            "mlp",
            "--epochs",
            "2",
            "--set",
            "lr=0.003",
            "--lambdas",
            "0.5",
            "--null-control",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    m = {r["main"]: r for r in pq.read_table(out / "pair_matrix.parquet").to_pylist()}
    assert set(m) == {"a", "b", "c"}
    # a and b are visible in the pixels, c is noise: learned above chance / near chance
    assert m["a"]["a"] > 0.8 and m["b"]["b"] > 0.8
    # the null control: stage 3 again with the partner's labels shuffled, one per
    # adversarial run, and its gain over single-task training in the summary
    results, _, summary = _tables(out)
    runs = {r["trial_id"]: r for r in results if r["stage"] in ("adversarial", "null")}
    null = {k.removeprefix("null:") for k, r in runs.items() if r["stage"] == "null"}
    assert null and null == {k.removeprefix("adv:") for k in runs if k.startswith("adv:")}
    assert all(
        json.loads(r["params"])["permute_adversaries"] == (r["stage"] == "null")
        for r in runs.values()
    )
    for row in summary:
        has_partner = row["neg_partner"] is not None
        assert (row["null_test"] is not None) == has_partner
        if has_partner:
            assert row["null_minus_sin_test"] == pytest.approx(row["null_test"] - row["sin_test"])
    assert "null-sin" in capsys.readouterr().out


def test_failures_are_retried_recorded_and_then_retrainable(tmp_path: Path) -> None:
    """A real CLI run on its own Ray: one cell raises, one diverges; the search goes on."""
    out = tmp_path / "faulty"
    exe = str(Path(sys.executable).with_name("auxsearch"))
    cmd = [exe, *BASE, "--lambdas", "0.5", "--max-failures", "1", "--out", str(out)]
    env = {
        **os.environ,
        "AUXSEARCH_TRIAL_HOOK": fault_hook.HOOK,
        fault_hook.FAULT_ENV: "pair:large+red:*=raise;single:left:*=nan",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),  # trials import the hook
    }
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 3, proc.stderr  # finished, with failed cells
    assert "FAILED pair" in proc.stderr and "after 2 attempt(s)" in proc.stderr
    assert "Traceback" not in proc.stdout
    assert "stage 2 works from a partial matrix: 2 of 6 stage-1 cell(s) failed" in proc.stdout
    assert "2 cell(s) failed" in proc.stderr and "--retry-failed" in proc.stderr

    results, matrix, summary = _tables(out)
    failed = {r["trial_id"]: r for r in results if r["status"] == "failed"}
    assert set(failed) == {"pair:large+red:seed=0", "single:left:seed=0"}
    assert "injected fault" in failed["pair:large+red:seed=0"]["error"]
    assert "diverged" in failed["single:left:seed=0"]["error"]
    assert all(r["value"] is None for r in failed.values())
    m = {row["main"]: row for row in matrix.to_pylist()}
    assert m["red"]["large"] is None and m["large"]["red"] is None and m["left"]["left"] is None
    assert m["red"]["left"] is not None  # the other cells are complete
    notes = {row["attribute"]: row["note"] for row in summary}
    assert notes["left"] == "single-task run failed"

    # A rerun without --retry-failed trains nothing and says again what failed.
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 3, proc.stderr
    assert "trained 0 cell(s) (resumed)" in proc.stdout and "2 cell(s) failed" in proc.stderr

    # Without the fault and with --retry-failed, only the two failed cells train again.
    env.pop(fault_hook.FAULT_ENV)
    proc = subprocess.run(
        [*cmd, "--retry-failed"], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "6 cell(s), 4 already recorded, 2 to train" in proc.stdout
    results, matrix, _ = _tables(out)
    assert all(r["status"] == "ok" for r in results)
    assert None not in [v for row in matrix.to_pylist() for v in row.values()]


def test_sigterm_stops_a_search_as_ctrl_c_does(tmp_path: Path) -> None:
    """What schedulers and `ray job stop` send: a clean stop (exit 130, the
    unfinished cells named, no Ray abort dump), and a rerun finishes the rest."""
    out = tmp_path / "term"
    exe = str(Path(sys.executable).with_name("auxsearch"))
    cmd = [exe, *BASE, "--dataset", "shapes:n=600,image_size=24", "--epochs", "3",
           "--max-concurrent", "1", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "AUXSEARCH_PROGRESS": "plain"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "[stage 1 1/6]" in line:
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "rerun the same command to resume" in err
    assert "Traceback" not in err and "SIGABRT" not in err and "*** " not in err
    recorded = {r["trial_id"] for r in _tables_results(out)}
    assert 1 <= len(recorded) < 6

    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"6 cell(s), {len(recorded)} already recorded, {6 - len(recorded)} to train" in (
        again.stdout
    )


def test_an_out_that_becomes_unwritable_ends_in_one_sentence(tmp_path: Path) -> None:
    out = tmp_path / "blocked"
    exe = str(Path(sys.executable).with_name("auxsearch"))
    env = {
        **os.environ,
        "AUXSEARCH_PROGRESS": "plain",
        "AUXSEARCH_TRIAL_HOOK": fault_hook.HOOK,
        fault_hook.FAULT_ENV: "single:large:*=block",
        fault_hook.BLOCK_ENV: str(out / "results.parquet"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    env.pop("RAY_ADDRESS", None)
    cmd = [exe, *BASE, "--max-concurrent", "1", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert (
        lines[-1].startswith("auxsearch pairs: error: cannot write")
        and "Is a directory" in lines[-1]
    )
    assert "Traceback" not in proc.stderr and len(lines) < 5, proc.stderr


@pytest.mark.slow  # slow: `make test` keeps under 15 min on 2 cores; `make test-all` runs it
def test_adaptive_seeds_spend_seeds_where_an_open_row_needs_them(
    ray_local: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--seeds auto --max-seeds 3`: every cell gets 2 seeds, and a third goes to
    exactly the cells that the rows still open after round 1 depend on (recomputed
    here from the 2-seed results); a rerun trains nothing, and a cell of round 2
    lost with a killed driver is the only one trained again."""
    from orchestrator.adaptive_seeds import AdaptiveSeeds, assess, cell_key, next_round
    from orchestrator.pair_analysis import pair_values
    from orchestrator.results import rows_to_table

    out = tmp_path / "auto"
    attrs = ["red", "large", "left", "dark_bg"]  # dark_bg hurts the others: rows stay open
    args = [*BASE, "--dataset", "shapes:n=300,image_size=16,correlation=0.5", "--attributes",
            ",".join(attrs), "--set", "batch_size=64", "--lambdas", "0.1", "--seeds", "auto",
            "--max-seeds", "3",
            "--out", str(out)]  # fmt: skip
    assert main(args) in (0, 3)
    printed = capsys.readouterr().out
    assert "stage 1 round 1: single-task and pair runs, 2–2 seeds per cell" in printed
    results = _tables_results(out)
    stage1 = [r for r in results if r["stage"] in ("single", "pair") and r["metric"] == "acc"]
    seeds_of: dict[tuple[str, ...], set[int]] = {}
    for r in stage1:
        pair = tuple(sorted((r["main_task"], r["aux_task"] or "")))
        key = (r["main_task"],) if r["stage"] == "single" else pair
        seeds_of.setdefault(key, set()).add(r["seed"])
    assert all(s in ({0, 1}, {0, 1, 2}) for s in seeds_of.values())

    first_round = [r for r in stage1 if r["seed"] < 2]
    values = pair_values(first_round, "val")
    cfg = AdaptiveSeeds(min_seeds=2, max_seeds=3, alpha=0.05)
    rows = assess(values, attrs, {k: 2 for k in seeds_of}, cfg)
    wanted = next_round(rows, {k: 2 for k in seeds_of}, cfg)
    assert wanted, "on this data a row stays open after round 1"
    assert {k for k, s in seeds_of.items() if 2 in s} == wanted

    table = pq.read_table(out / "adaptive_seeds.parquet").to_pylist()
    assert {r["attribute"] for r in table} == set(attrs)
    for r in table:
        assert r["seeds"] == len(seeds_of[cell_key(r["attribute"], r["attribute"])])
        p = r["p_negative_at_max"]
        assert r["decision"] != "failed" and 0.0 <= p <= 1.0
        if r["settled"]:  # a settled verdict is the one max seeds give with ≥ certainty
            assert p >= 0.9 if r["decision"] == "negative" else p <= 0.1
    matrix = {row["main"]: row for row in pq.read_table(out / "pair_matrix.parquet").to_pylist()}
    assert matrix["red"]["large_n"] == len(seeds_of[("large", "red")])

    before = (out / "results.parquet").read_bytes()
    assert main(args) in (0, 3)
    assert "trained 0 cell(s) (resumed)" in capsys.readouterr().out
    assert (out / "results.parquet").read_bytes() == before
    # a round-2 cell lost with a killed driver: the rerun trains it and nothing else
    lost = min(k for k in wanted if len(k) == 2)  # an open row's worst partner: a pair cell
    lost_id = f"pair:{lost[0]}+{lost[1]}:seed=2"
    kept = [
        r for r in pq.read_table(out / "results.parquet").to_pylist() if r["trial_id"] != lost_id
    ]
    pq.write_table(rows_to_table(kept), out / "results.parquet")
    assert main(args) in (0, 3)
    printed = capsys.readouterr().out
    total = sum(len(s) for s in seeds_of.values())
    assert f"{total} cell(s), {total - 1} already recorded, 1 to train" in printed
    assert f"{'+'.join(lost)} seed 2:" in printed  # the progress line of that cell


@pytest.mark.slow  # slow: `make test` keeps under 15 min on 2 cores; `make test-all` runs it
def test_lambda_halving_trains_the_best_half_and_selects_among_finalists(
    ray_local: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--lambda-search halving`: seed 0 of every λ, seed 1 of the best ⌈3/2⌉ = 2 by
    seed 0's validation accuracy (recomputed here from results.parquet), λ chosen
    among those on both seeds; a rerun trains nothing, and the grid on the same
    --out trains only the cells halving skipped."""
    out = tmp_path / "halving"
    args = [*BASE, "--lambdas", "0.01,0.1,1", "--seeds", "2", "--lambda-search", "halving",
            "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "stage 3 round 1: adversarial runs over λ, seed 0 of" in printed
    results, _, summary = _tables(out)
    adv = [r for r in results if r["stage"] == "adversarial" and r["metric"] == "acc"]
    val = {
        (r["main_task"], json.loads(r["params"])["lam"], r["seed"]): r["value"]
        for r in adv
        if r["split"] == "val"
    }
    partnered = {a for a, _, _ in val}
    assert partnered, "on this data some attribute has a negative partner"
    for a in partnered:
        seed0 = {lam: v for (m, lam, s), v in val.items() if m == a and s == 0}
        seed1 = {lam for (m, lam, s) in val if m == a and s == 1}
        assert set(seed0) == {0.01, 0.1, 1.0}
        best_two = sorted(seed0, key=lambda lam: (-seed0[lam], lam))[:2]
        assert seed1 == set(best_two)
        row = next(r for r in summary if r["attribute"] == a)
        means = {lam: (seed0[lam] + val[(a, lam, 1)]) / 2 for lam in seed1}
        chosen = max(sorted(seed1), key=lambda lam: means[lam])
        assert row["lambda"] == chosen
        assert row["adv"] == pytest.approx(means[chosen])
    assert len({r["trial_id"] for r in adv}) == 5 * len(partnered)

    assert main(args) == 0
    assert "trained 0 cell(s) (resumed)" in capsys.readouterr().out
    grid = [a for a in args if a not in ("--lambda-search", "halving")]
    assert main(grid) == 0
    printed = capsys.readouterr().out
    n = len(partnered)
    assert f"{6 * n} cell(s), {5 * n} already recorded, {n} to train" in printed
