"""`auxsearch run --out`: a method's tables (SOSELETO's α) on a user's own .npz with
`source` and `target` domains, written as Parquet and read back; an --out that
already holds a run is refused with nothing overwritten."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from methods import get_method
from orchestrator.artifacts import artifact_writer
from orchestrator.cli import main
from orchestrator.storage import OutputDir


def _noisy_blobs(path: Path, with_split: bool = True) -> tuple[Path, np.ndarray]:
    """Three Gaussian blobs in 6-D: a source of 240 with 30% of labels flipped, a clean
    target of 30 train / 60 val / 90 test; label columns y (given) and y_true."""
    rng = np.random.default_rng(7)
    centres = rng.normal(scale=3.0, size=(3, 6))

    def blobs(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % 3
        return (centres[y] + rng.normal(size=(n, 6))).astype(np.float32), y

    xs, ys = blobs(240)
    flip = rng.random(240) < 0.3
    given = np.where(flip, (ys + rng.integers(1, 3, size=240)) % 3, ys)
    xt, yt = blobs(180)
    split_t = np.array(["train"] * 30 + ["val"] * 60 + ["test"] * 90)
    arrays = {
        "inputs": np.concatenate([xs, xt]),
        "labels": np.stack([np.concatenate([given, yt]), np.concatenate([ys, yt])], axis=1),
        "label_names": np.array(["y", "y_true"]),
        "domain": np.array(["source"] * 240 + ["target"] * 180),
    }
    if with_split:
        arrays["split"] = np.concatenate([np.full(240, "train"), split_t])
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path, given != ys


ARGS = [
    "run",
    "--method",
    "soseleto",
    "--set",
    "task=y",
    "--set",
    "clean_label=y_true",
    "--set",
    "backbone=mlp",
    "--set",
    "epochs=3",
    "--set",
    "alpha_lr=50",
]


def test_run_writes_alpha_of_a_users_noisy_npz(tmp_path: Path) -> None:
    data, noisy = _noisy_blobs(tmp_path / "blobs.npz")
    out = tmp_path / "run"
    assert main([*ARGS, "--data", str(data), "--out", str(out)]) == 0
    alpha = pd.read_parquet(out / "alpha.parquet")
    assert len(alpha) == 240 and list(alpha["row"]) == list(range(240))
    assert alpha["alpha"].between(0.0, 1.1).all()
    np.testing.assert_array_equal(alpha["noisy"].to_numpy(), noisy)
    # the target's gradient pushes the flipped labels down relative to the rest
    assert alpha["alpha"][noisy].mean() < alpha["alpha"][~noisy].mean()
    curve = pd.read_parquet(out / "alpha_curve.parquet")
    assert curve["effective_noise"].iloc[-1] == pytest.approx(noisy.mean())
    assert (out / "alpha_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = pd.read_parquet(out / "history.parquet")
    assert list(history["epoch"]) == [1, 2, 3] and history["epoch"].dtype == "int64"
    assert "train/alpha_noisy" in history
    final = json.loads((out / "final.json").read_text())
    assert 0.0 <= final["test/acc/y"] <= 1.0


def test_every_source_row_is_weighted_without_a_split_array(tmp_path: Path) -> None:
    """An .npz without `split` gets 70/15/15 in every domain; the source is a training
    set all the same, so α covers all of it."""
    data, _ = _noisy_blobs(tmp_path / "blobs.npz", with_split=False)
    out = tmp_path / "run"
    assert main([*ARGS, "--set", "epochs=1", "--data", str(data), "--out", str(out)]) == 0
    alpha = pd.read_parquet(out / "alpha.parquet")
    assert sorted(alpha["row"]) == list(range(240))


def test_run_refuses_an_out_holding_a_run_and_keeps_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = _noisy_blobs(tmp_path / "blobs.npz")
    out = tmp_path / "run"
    out.mkdir()
    (out / "final.json").write_text("{}\n")
    assert main([*ARGS, "--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already holds a run (final.json); choose a new directory" in err
    assert (out / "final.json").read_text() == "{}\n"
    assert not (out / "alpha.parquet").exists()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main([*ARGS, "--data", str(data), "--out", str(blocker)]) == 2
    assert "is a file; give a directory path" in capsys.readouterr().err


def test_artifact_writer_names_files_and_plots_the_noise_curve(tmp_path: Path) -> None:
    plots = get_method("soseleto").config_cls.plots
    write = artifact_writer(OutputDir(str(tmp_path)), "artifacts/c1/{}.seed3".format, plots)
    write("weights", {"row": np.arange(3), "w": np.array([0.1, 0.5, 1.0])})
    write(
        "alpha_curve",
        {
            "kept_fraction": np.array([0.5, 1.0]),
            "kept": np.array([1, 2]),
            "min_alpha": np.array([1.0, 0.0]),
            "effective_noise": np.array([0.0, 0.5]),
        },
    )
    folder = tmp_path / "artifacts" / "c1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "alpha_curve.seed3.parquet",
        "alpha_curve.seed3.png",
        "weights.seed3.parquet",
    ]
    assert pd.read_parquet(folder / "weights.seed3.parquet")["w"].tolist() == [0.1, 0.5, 1.0]


def test_generated_samples_become_a_png_grid(tmp_path: Path) -> None:
    pixels = np.empty(6, dtype=object)
    pixels[:] = [np.full(2 * 4 * 4, v, dtype=np.float32) for v in np.linspace(0, 1, 6)]
    columns = {
        "label": np.array([0, 0, 0, 1, 1, 1]),
        "sample": np.array([0, 1, 2, 0, 1, 2]),
        "channels": np.full(6, 2),
        "height": np.full(6, 4),
        "width": np.full(6, 4),
        "pixels": pixels,
    }
    plots = get_method("jdm").config_cls.plots
    artifact_writer(OutputDir(str(tmp_path)), lambda name: name, plots)("samples", columns)
    assert (tmp_path / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    back = pd.read_parquet(tmp_path / "samples.parquet")
    assert len(back["pixels"][5]) == 32 and back["pixels"][5][0] == 1.0
