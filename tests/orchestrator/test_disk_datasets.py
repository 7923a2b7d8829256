"""Real dataset formats through the command line, as a new user would run them:
`--dataset NAME --data-root DIR` on fixtures the tests write in each format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.cli import main

from ..methods.data.format_fixtures import corrupt, write_celeba, write_mnist, write_svhn

AUXSEARCH = str(Path(sys.executable).parent / "auxsearch")


@pytest.mark.integration
def test_a_pair_search_on_celeba_as_distributed(ray_local: None, tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    write_celeba(data, n=60, partition=(40, 10, 10))
    attributes = ["Smiling", "Male", "Young"]
    args = [
        "pairs", "--dataset", "celeba:size=16", "--data-root", str(data),
        "--attributes", ",".join(attributes), "--backbone", "small_cnn", "--epochs", "1",
        "--lambdas", "0.1", "--out", str(tmp_path / "aal"),
    ]  # fmt: skip
    assert main(args) == 0
    first = capsys.readouterr()
    assert "celeba/celeba: decoding 60 images once" in first.err
    matrix = pd.read_parquet(tmp_path / "aal" / "pair_matrix.parquet")
    assert list(matrix["main"]) == attributes
    assert matrix[attributes].notna().all().all()
    results = pd.read_parquet(tmp_path / "aal" / "results.parquet")
    assert set(results["dataset"]) == {"celeba"} and (results["status"] == "ok").all()

    assert main(args) == 0  # the same command: decoded images and cells both reused
    again = capsys.readouterr()
    assert "decoding" not in again.err and "6 already recorded, 0 to train" in again.out


def test_one_run_on_joined_digit_formats(tmp_path: Path, capsys) -> None:
    """SVHN → MNIST transfer as in the SOSELETO / Purified Learning papers' digits."""
    write_mnist(tmp_path, n_train=40, n_test=20)
    write_svhn(tmp_path, n_train=40, n_test=20)
    code = main([
        "run", "--method", "stl", "--dataset", "mnist+svhn:size=32,channels=3",
        "--data-root", str(tmp_path), "--set", "task=digit", "--set", "domain=svhn",
        "--set", "test_domains=[mnist]", "--set", "backbone=small_cnn", "--set", "epochs=1",
        "--json",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    metrics = json.loads(out[out.index("{\n") :])
    assert {"test/acc/digit", "test@mnist/acc/digit"} <= set(metrics)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "celeba"], "--dataset celeba is read from disk; add --data-root DIR"),
        (["--dataset", "shapes", "--data-root", "."], "is built in and takes no --data-root"),
        (["--dataset", "celeba", "--data-root", "/nonexistent"], "--data-root /nonexistent is not"),
        (["--dataset", "mnist:size=-3", "--data-root", "."], "size=-3 must be a whole number"),
    ],
)
def test_data_flag_mistakes(args: list[str], message: str, capsys) -> None:
    assert main(["run", "--method", "stl", "--set", "task=digit", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_malformed_file_exits_2_naming_it_before_training(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    corrupt(tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte")
    out = tmp_path / "out"
    proc = subprocess.run(
        [AUXSEARCH, "pairs", "--dataset", "mnist", "--data-root", str(tmp_path),
         "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "t10k-images-idx3-ubyte is not an IDX file" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert not out.exists()
