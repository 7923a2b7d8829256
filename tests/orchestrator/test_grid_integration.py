"""`auxsearch grid` on a real local Ray: the matrix read back and compared with
results.parquet, the PCA table, and a rerun that trains nothing."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from orchestrator.cli import main

pytestmark = pytest.mark.integration

ARGS = [
    "grid",
    "--dataset",
    "digit_domains:n_target=80,irrelevant_copies=1",
    "--methods",
    "goal1,mtl,purified",
    "--train",
    "target,coloured",
    "--test",
    "plain,coloured,blended",
    "--backbones",
    "small_cnn",
    "--set",
    "epochs=1",
    "--set",
    "batch_size=32",
    "--pca",
]


def test_grid_end_to_end(
    ray_local: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grid"
    assert main([*ARGS, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "6 cell(s), 0 already recorded, 6 to train" in printed  # 2 train x 1 bb x 3 methods
    assert "coloured → plain" in printed and "target → blended" in printed

    results = pq.read_table(out / "results.parquet").to_pylist()
    matrix = pq.read_table(out / "grid_matrix.parquet")
    assert matrix.schema.metadata[b"auxsearch.schema"] == b"grid_matrix/1"
    assert matrix.column_names == [
        "method",
        "backbone",
        "train_domain",
        "plain",
        "coloured",
        "blended",
    ]
    for row in matrix.to_pylist():
        for test in ("plain", "coloured", "blended"):
            found = [
                r["value"]
                for r in results
                if r["method"] == row["method"]
                and r["train_domain"] == row["train_domain"]
                and r["test_domain"] == test
                and r["split"] == "test"
                and r["metric"] == "acc"
                and r["main_task"] == "digit"
            ]
            if test == row["train_domain"]:
                assert row[test] is None  # train ≠ test, as in the paper
            else:
                assert found == [row[test]] and 0.0 <= row[test] <= 1.0
    assert all(r["status"] == "ok" for r in results)

    pca = pq.read_table(out / "pca.parquet").to_pylist()
    assert {p["component"] for p in pca} == set(range(1, 11))
    assert {(p["method"], p["train_domain"]) for p in pca} == {
        (m, t) for m in ("goal1", "mtl", "purified") for t in ("target", "coloured")
    }
    assert (out / "pca.png").read_bytes()[:4] == b"\x89PNG"

    before = (out / "results.parquet").read_bytes()
    assert main([*ARGS, "--out", str(out)]) == 0
    assert "6 cell(s), 6 already recorded, 0 to train" in capsys.readouterr().out
    assert (out / "results.parquet").read_bytes() == before

    # results show reads a grid's folder back: one row per method x backbone x train
    assert main(["results", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    first = matrix.to_pylist()[0]
    test = next(t for t in ("plain", "coloured", "blended") if first[t] is not None)
    assert "Grid: test accuracy" in shown and f"{first[test] * 100:.2f}" in shown
    assert sum(line.startswith(("goal1", "mtl", "purified")) for line in shown.splitlines()) == 6


def test_grid_on_a_users_npz(ray_local: None, tmp_path: Path, tiny_digits, capsys) -> None:
    """A multi-domain .npz (domain column) with no grid defaults: roles given as flags."""
    import numpy as np

    names = ["target", "irrelevant", "coloured"]
    doms = [tiny_digits.domain(n) for n in names]
    path = tmp_path / "mine.npz"
    np.savez(
        path,
        inputs=np.concatenate([d.inputs for d in doms]),
        labels=np.concatenate([d.labels for d in doms]).astype(np.int64),
        label_names=np.array(["number", "colour"]),
        split=np.concatenate([d.split for d in doms]),
        domain=np.concatenate([np.full(len(d), n) for d, n in zip(doms, names)]),
    )
    base = [
        "grid",
        "--data",
        str(path),
        "--methods",
        "goal1,purified",
        "--train",
        "target",
        "--test",
        "coloured",
        "--backbones",
        "small_cnn",
        "--set",
        "epochs=1",
    ]
    out = tmp_path / "out"
    assert main([*base, "--irrelevant", "irrelevant:colour", "--out", str(out)]) == 2
    assert "no target task; pass --task LABEL" in capsys.readouterr().err
    assert not out.exists()
    assert (
        main([*base, "--task", "number", "--irrelevant", "irrelevant:colour", "--out", str(out)])
        == 0
    )
    matrix = {r["method"]: r for r in pq.read_table(out / "grid_matrix.parquet").to_pylist()}
    assert set(matrix) == {"goal1", "purified"}
    assert all(0.0 <= matrix[m]["coloured"] <= 1.0 for m in matrix)
