"""`--pack N`: cells that may train as one fused network go to one trial per pack,
and a packed search records what the unpacked one records, cell by cell."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pyarrow.parquet as pq
import pytest

from methods.data import Dataset
from orchestrator.cli import main
from orchestrator.packs import plan_packs
from orchestrator.pair_analysis import Partner
from orchestrator.pairs_plan import resolve_settings, stage1_cells, stage3_cells
from orchestrator.results import rows_to_table
from tests.conftest import TINY_TRAIN
from tests.orchestrator import fault_hook

ATTRS = ["red", "large", "left"]
BASE = ["pairs", "--dataset", "shapes:n=150,image_size=16,correlation=0.5", "--attributes",
        ",".join(ATTRS), "--backbone", "small_cnn", "--epochs", "2", "--set", "lr=0.003",
        "--set", "batch_size=32", "--lambdas", "0.1"]  # fmt: skip


def test_packs_hold_one_seed_s_cells_as_evenly_as_possible(tiny_shapes: Dataset) -> None:
    attrs = list(tiny_shapes.domain().label_names[:6])
    settings = resolve_settings(
        tiny_shapes, attributes=attrs, overrides={**TINY_TRAIN, "backbone": "small_cnn"}, seeds=2
    )
    cells = stage1_cells(settings)  # 2 seeds × (6 singles + 15 pairs)
    packs = plan_packs(cells, 16)
    assert sorted(len(p) for p in packs) == [10, 10, 11, 11]  # 21 per seed: 11 + 10
    assert all(len({c.seed for c in p}) == 1 for p in packs)
    assert sorted(c.id for p in packs for c in p) == sorted(c.id for c in cells)
    assert [len(p) for p in plan_packs(cells, 1)] == [1] * len(cells)
    assert len(plan_packs(cells, 100)) == 2  # one per seed
    # the λ runs of one seed pack too (gradient reversal); the null control, whose
    # partner labels each run shuffles its own way, trains alone
    partners = {a: Partner(a, [attrs[0] if a != attrs[0] else attrs[1]]) for a in attrs}
    adversarial = stage3_cells(settings, partners)  # 6 attributes × 5 λ × 2 seeds
    assert sorted(len(p) for p in plan_packs(adversarial, 16)) == [15, 15, 15, 15]
    null = stage3_cells(settings, partners, null=True)
    assert [len(p) for p in plan_packs(null, 16)] == [1] * len(null)


def _cells(out: Path) -> dict[tuple[str, str, str, str, str | None], tuple[float, int]]:
    return {
        (r["trial_id"], r["split"], r["metric"], r["main_task"], r["aux_task"]): (
            r["value"],
            r["epoch"],
        )
        for r in pq.read_table(out / "results.parquet").to_pylist()
    }


@pytest.mark.integration
def test_a_packed_search_equals_the_unpacked_one_cell_by_cell_and_resumes_per_cell(
    ray_local: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apart, packed = tmp_path / "apart", tmp_path / "packed"
    args = [*BASE, "--lambdas", "0.1,1"]
    assert main([*args, "--pack", "1", "--out", str(apart)]) == 0
    assert main([*args, "--pack", "4", "--out", str(packed)]) == 0
    capsys.readouterr()
    trials = sorted(p.name for p in (packed / "ray").glob("stage1-*/cell_*"))
    assert len(trials) == 2  # 6 cells in packs of 3
    alone, together = _cells(apart), _cells(packed)
    assert len({key[0] for key in alone if key[0].startswith(("single", "pair"))}) == 6
    assert ("pair:large+red:seed=0", "val", "acc", "large", "red") in alone
    adversarial = {key[0] for key in alone if key[0].startswith("adv:")}
    assert len(adversarial) >= 2, "some attribute has a negative partner: λ 0.1 and 1"
    stage3 = list((packed / "ray").glob("stage3-*/cell_*"))
    assert len(stage3) == -(-len(adversarial) // 4)  # the λ runs in packs of up to 4
    assert together.keys() == alone.keys()
    for key, (value, epoch) in alone.items():
        assert together[key][0] == pytest.approx(value, abs=1e-6), key
        assert together[key][1] == epoch, key

    # the λ study is filled as the packed cells are recorded, as the dashboard shows it
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{packed / 'optuna.db'}")
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.user_attrs["cell"] for t in finished) == sorted(adversarial)
    for t in finished:
        # one main task: its validation accuracy is the trial's value
        want = (t.user_attrs["cell"], "val", "acc", t.params["main"])
        accuracy = [v for key, (v, _) in together.items() if key[:4] == want]
        assert t.value == pytest.approx(accuracy[0])

    # a pack whose cells are partly recorded trains only the missing one
    lost = "pair:large+red:seed=0"
    rows = pq.read_table(packed / "results.parquet").to_pylist()
    pq.write_table(
        rows_to_table([r for r in rows if r["trial_id"] != lost]), packed / "results.parquet"
    )
    assert main([*args, "--pack", "4", "--out", str(packed)]) == 0
    assert "6 cell(s), 5 already recorded, 1 to train" in capsys.readouterr().out
    assert _cells(packed) == together
    assert len(optuna.load_study(study_name=None, storage=study._storage).trials) == len(
        study.trials
    )


@pytest.mark.slow  # slow: `make test` keeps under 15 min on 2 cores; `make test-all` runs it
@pytest.mark.integration
def test_a_cell_that_diverges_in_a_pack_fails_alone(tmp_path: Path) -> None:
    """The fault hook gives one cell of the pack labels of +inf: it trains apart in
    the pack's trial, diverges and is recorded failed; its five pack-mates finish."""
    out = tmp_path / "faulty"
    exe = str(Path(sys.executable).with_name("auxsearch"))
    env = {
        **os.environ,
        "AUXSEARCH_TRIAL_HOOK": fault_hook.HOOK,
        fault_hook.FAULT_ENV: "single:left:*=nan",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    env.pop("RAY_ADDRESS", None)
    cmd = [exe, *BASE, "--pack", "6", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 3, proc.stderr
    rows = pq.read_table(out / "results.parquet").to_pylist()
    status = {r["trial_id"]: r["status"] for r in rows if r["stage"] in ("single", "pair")}
    assert status.pop("single:left:seed=0") == "failed"
    assert Counter(status.values()) == Counter({"ok": 5})
    error = next(r["error"] for r in rows if r["trial_id"] == "single:left:seed=0")
    assert "DivergedError" in error and "diverged" in error
    assert len(list((out / "ray").glob("stage1-*/cell_*"))) == 1  # one trial for the pack
