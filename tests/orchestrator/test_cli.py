"""User mistakes end in exit code 2 and one sentence, before anything is written."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from methods import list_methods
from methods.data import BUILTIN_DATASETS
from orchestrator.cli import main
from orchestrator.errors import UserInputError
from tests.conftest import write_npz

TINY = ["--dataset", "shapes:n=90,image_size=16", "--backbone", "small_cnn", "--epochs", "1"]


def _pairs(tmp_path: Path, *extra: str) -> list[str]:
    return ["pairs", *TINY, "--out", str(tmp_path / "out"), *extra]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--attributes", "red,purple"], "unknown attribute 'purple' in domain 'shapes'"),
        (["--attributes", "red"], "needs at least 2 attributes, got 1"),
        (["--backbone", "resnet9"], "backbone='resnet9' is not allowed; choose one of small_cnn"),
        (
            ["--lambdas", "0.1,-1"],
            "argument --lambdas: -1 is not allowed; use a finite number, 0 or",
        ),
        (["--lambdas", "0.1,x"], "argument --lambdas: 'x' is not a number"),
        (["--set", "colour=red"], "unknown setting 'colour'"),
        (["--set", "lr=fast"], "lr='fast' is not valid; expected a number"),
        (["--set", "lam=0.3"], "'lam' is set by the pair search itself"),
        (
            ["--seeds", "0"],
            "argument --seeds: 0 is not allowed; use a whole number, 1 or more, or auto",
        ),
        (["--seeds", "many"], "argument --seeds: 'many' is not a number; use a whole number"),
        (["--seeds", "auto", "--min-seeds", "1"], "--min-seeds 1 is not allowed"),
        (["--seeds", "auto", "--max-seeds", "1"], "--max-seeds 1 is below --min-seeds 2"),
        (
            ["--seeds", "3", "--max-seeds", "5"],
            "--min-seeds, --max-seeds and --certainty go with --seeds auto",
        ),
        (
            ["--seeds", "auto", "--certainty", "1"],
            "argument --certainty: 1 is not allowed; use a finite number between 0.5 and 1, both",
        ),
        (["--seeds", "auto", "--certainty", "x"], "argument --certainty: 'x' is not a number"),
        (["--epochs", "x"], "argument --epochs: 'x' is not a number; use a whole number, 1 or"),
        (["--epochs", "0"], "argument --epochs: 0 is not allowed; use a whole number, 1 or more"),
        (["--gpus-per-trial", "-1"], "argument --gpus-per-trial: -1 is not allowed"),
        (["--gpus-per-trial", "nan"], "argument --gpus-per-trial: nan is not allowed"),
        (["--max-concurrent", "0"], "argument --max-concurrent: 0 is not allowed"),
        (["--max-failures", "-1"], "argument --max-failures: -1 is not allowed"),
        (["--cpus-per-trial", "64"], "--cpus-per-trial 64 exceeds the"),
        (["--seed", "-1"], "argument --seed: -1 is not allowed; use a whole number between 0 and"),
        (["--dataset", "shapes:seed=-1"], "seed=-1 must be a non-negative integer"),
        (
            ["--dataset", "imagenet"],
            f"unknown dataset 'imagenet'; built-in datasets: {', '.join(sorted(BUILTIN_DATASETS))};"
            " read from --data-root: celeba, cifar10, image_csv, mnist, mnist_m, svhn",
        ),
        (["--dataset", "shapes:n"], "option 'n' is not key=value"),
        (["--config", "missing.yaml"], "--config missing.yaml does not exist"),
        (["--lambda-search", "halving"], "--lambda-search halving drops λ values between seeds"),
        (["--lambda-search", "random"], "argument --lambda-search: invalid choice: 'random'"),
        (["--reduction-factor", "3"], "--reduction-factor goes with --lambda-search halving"),
        (
            ["--seeds", "2", "--lambda-search", "halving", "--reduction-factor", "1"],
            "argument --reduction-factor: 1 is not allowed; use a whole number, 2 or more",
        ),
        (
            ["--pack", "0"],
            "argument --pack: 0 is not allowed; use a whole number, 1 or more, or auto",
        ),
        (["--pack", "many"], "argument --pack: 'many' is not a number"),
        (["--storage="], "--storage is empty"),
        (["--seed", "4294967295", "--seeds", "3"], "reaches seed 4294967297, past the largest"),
    ],
)
def test_pairs_mistakes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(_pairs(tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing written


def test_pairs_refuses_weights_that_do_not_fit_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "w.pth").write_bytes(b"not a state dict")
    args = ["--backbone", "resnet18", "--set", f"weights={tmp_path / 'w.pth'}"]
    assert main([*_pairs(tmp_path, *args)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a state dict of torchvision's resnet18" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "absent.npz", "does not exist"),
        (lambda p: write_npz(p / "bad.npz", labels=None), "has no 'labels' array"),
        (
            lambda p: write_npz(p / "bad.npz", inputs=np.zeros((90, 2, 2, 2, 2), np.uint8)),
            "uint8 inputs must be",
        ),
    ],
)
def test_bad_npz(tmp_path: Path, capsys: pytest.CaptureFixture[str], make, message: str) -> None:
    path = make(tmp_path)
    code = main(["pairs", "--data", str(path), "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a GPU")
def test_gpus_on_a_machine_without_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_pairs(tmp_path, "--gpus-per-trial", "0.5")) == 2
    assert "--gpus-per-trial 0.5 but this machine has 0 GPU(s)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out"
    target.write_text("precious")
    assert main(["pairs", *TINY, "--attributes", "red,large", "--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert target.read_text() == "precious"


def test_run_mistakes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--method", "nope", "--dataset", "digits"]) == 2
    assert (
        f"unknown method 'nope'; registered methods: {', '.join(sorted(list_methods()))}"
        in capsys.readouterr().err
    )
    assert main(["run", "--method", "stl", "--dataset", "digits"]) == 2
    assert "method 'stl' needs task=<attribute>" in capsys.readouterr().err


def test_run_trains_one_model_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "run",
            "--method",
            "stl",
            "--dataset",
            "digits",
            "--set",
            "task=even",
            "--set",
            "backbone=small_cnn",
            "--set",
            "epochs=1",
            "--set",
            "lr=0.003",
            "--json",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "epoch 1:" in captured.err  # progress on stderr: stdout is the JSON alone
    assert json.loads(captured.out)["val/acc/even"] > 0.5


def test_results_show_on_a_directory_without_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["results", "show", str(tmp_path)]) == 2
    assert "holds no pair search results" in capsys.readouterr().err


def test_console_script_prints_no_traceback(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("auxsearch")
    proc = subprocess.run(
        [str(exe), *_pairs(tmp_path, "--attributes", "red,nope")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "auxsearch pairs: error: unknown attribute 'nope' in domain 'shapes'; available: round,"
        " red, bright, large, left, top, vertical, striped, outlined, dark_bg, textured_bg, marker"
    ]


def _sweep(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "sweep",
        "--method",
        "aal",
        "--trials",
        "2",
        "--dataset",
        "shapes:n=90,image_size=16",
        "--set",
        "main=[red]",
        "--set",
        "adversaries=[large]",
        "--set",
        "backbone=small_cnn",
        "--out",
        str(tmp_path / "out"),
        *extra,
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metric", "val/acc/blue"], "--metric val/acc/blue cannot be the objective"),
        (["--metric", "test/mean_acc"], "a sweep selects on validation data only"),
        (["--metric", "val/loss/red"], "is better lower; pass --mode min"),
        (["--set", "lam=0.3"], "'lam' is searched by"),
        (["--trials", "0"], "argument --trials: 0 is not allowed; use a whole number, 1 or more"),
        (["--space", "nope.yaml"], "search space nope.yaml does not exist"),
        (["--set", "main=[purple]"], "unknown attribute 'purple'"),
        (["--storage", "postgres"], "--storage postgres is not a database URL"),
        (["--scheduler", "pbt"], "argument --scheduler: invalid choice: 'pbt'"),
    ],
)
def test_sweep_mistakes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(_sweep(tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_grid_sampler_needs_choices_and_the_grid_size(tmp_path: Path, capsys) -> None:
    assert main([*_sweep(tmp_path, "--sampler", "grid", "--set", "lam=0.1")]) == 2
    assert "'lam' is searched by" in capsys.readouterr().err
    space = tmp_path / "s.yaml"
    space.write_text("space:\n  lr: {loguniform: [0.001, 0.1]}\n")
    assert main(_sweep(tmp_path, "--space", str(space), "--sampler", "grid")) == 2
    assert "--sampler grid needs every searched key to be a choice; 'lr'" in capsys.readouterr().err
    space.write_text("space:\n  lam: {choice: [0.1, 0.5]}\n")
    assert main(_sweep(tmp_path, "--space", str(space), "--sampler", "grid", "--trials", "3")) == 2
    assert "--trials 3 does not cover the grid of 2 point(s)" in capsys.readouterr().err


def test_sweep_with_a_broken_space_file(tmp_path: Path, capsys) -> None:
    space = tmp_path / "s.yaml"
    space.write_text("space:\n  lr: {loguniform: [0, 0.1]}\n")
    assert main(_sweep(tmp_path, "--space", str(space))) == 2
    err = capsys.readouterr().err.strip()
    assert f"{space}: space.lr: loguniform bounds must be > 0" in err


def test_dashboard_without_a_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", str(tmp_path)]) == 2
    assert "holds no Optuna study" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "epochs=3"], "--epochs 1 and epochs=3 from --set/--config disagree"),
        (["--set", "backbone=resnet18"], "--backbone small_cnn and backbone=resnet18"),
        (["--cpus-per-trial", "1.5"], "--cpus-per-trial 1.5 is not allowed; use a fraction"),
    ],
)
def test_conflicting_or_fractional_settings_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(_pairs(tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_flag_and_a_set_agreeing_is_accepted_and_a_flag_alone_applies() -> None:
    from orchestrator.inputs import merge_flags

    flags = {"epochs": ("--epochs", 1), "backbone": ("--backbone", None)}
    assert merge_flags({"epochs": 1, "lr": 0.1}, flags) == {"epochs": 1, "lr": 0.1}
    assert merge_flags({"lr": 0.1}, flags) == {"epochs": 1, "lr": 0.1}
    assert merge_flags({"backbone": "mlp"}, flags) == {"backbone": "mlp", "epochs": 1}
    with pytest.raises(UserInputError, match="--epochs 1 and epochs=2 from --set/--config"):
        merge_flags({"epochs": 2}, flags)


def test_a_refused_out_is_left_as_it_was(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(_pairs(tmp_path)) == 2
    assert "already holds files (notes.txt" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # no .lock left behind


def test_grid_refuses_a_set_of_what_its_flags_set(tmp_path: Path, capsys) -> None:
    args = ["grid", "--dataset", "digit_domains:n_target=120", "--backbones", "small_cnn",
            "--set", "backbone=resnet18", "--out", str(tmp_path / "g")]  # fmt: skip
    assert main(args) == 2
    assert "--set backbone is set by the grid for each cell; use --backbones" in (
        capsys.readouterr().err
    )


def test_every_flag_has_help_and_shows_its_default() -> None:
    from orchestrator.cli import build_parser

    parser = build_parser()
    commands = {"auxsearch": parser}
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        for name, sub in action.choices.items():
            commands[name] = sub
            for inner in sub._subparsers._group_actions if sub._subparsers else []:
                commands.update({f"{name} {n}": p for n, p in inner.choices.items()})
    for name, command in commands.items():
        formatter = command._get_formatter()
        for flag in command._actions:
            if not flag.option_strings or flag.dest == "help":
                continue
            assert flag.help, f"auxsearch {name} {flag.option_strings[0]} has no help"
            if flag.default not in (None, False, [], argparse.SUPPRESS):
                shown = formatter._get_help_string(flag)  # type: ignore[attr-defined]
                assert "default" in shown, f"auxsearch {name} {flag.option_strings[0]}"


def test_dashboard_on_an_address_this_machine_lacks(tmp_path: Path, capsys) -> None:
    import optuna

    optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}", study_name="s")
    assert main(["dashboard", str(tmp_path), "--host", "192.0.2.1"]) == 2  # TEST-NET-1
    assert "--host 192.0.2.1 is not an address of this machine" in capsys.readouterr().err


def test_dashboard_on_a_port_another_server_listens_on(tmp_path: Path, capsys) -> None:
    import socket

    import optuna

    optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}", study_name="s")
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        assert main(["dashboard", str(tmp_path), "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is in use; pass another --port" in capsys.readouterr().err


def test_dashboard_off_loopback_warns_that_it_is_open(tmp_path: Path) -> None:
    import socket

    import optuna

    optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}", study_name="s")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("auxsearch")
    cmd = [str(exe), "dashboard", str(tmp_path), "--host", "0.0.0.0", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline() if proc.stderr else ""
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert first.startswith("warning: optuna-dashboard on 0.0.0.0 has no authentication")
