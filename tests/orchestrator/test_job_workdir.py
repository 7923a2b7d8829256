"""A command started by `ray job submit --working-dir` runs in Ray's temporary copy
of that directory: outputs there would be deleted with the job, inputs named
relatively must survive Ray unpacking the copy again, and the driver must leave it."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import UserInputError
from orchestrator.job_workdir import in_working_dir_copy, leave_working_dir_copy

AUXSEARCH = str(Path(sys.executable).parent / "auxsearch")


@pytest.fixture
def job_copy(tmp_path: Path) -> Path:
    """A directory shaped like Ray's unpacked working dir of a submitted job."""
    copy = tmp_path / "session_x" / "runtime_resources" / "working_dir_files" / "_ray_pkg_ab12"
    copy.mkdir(parents=True)
    return copy


def test_only_rays_working_dir_copies_are_recognised(job_copy: Path, tmp_path: Path) -> None:
    assert in_working_dir_copy(str(job_copy))
    assert in_working_dir_copy(str(job_copy / "sub"))
    assert not in_working_dir_copy(str(tmp_path))
    assert not in_working_dir_copy("/home/me/working_dir_files")


def test_inputs_become_absolute_and_the_driver_leaves_the_copy(
    job_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(job_copy)
    args = argparse.Namespace(
        out="/results/aal", storage=None, data="mine.npz", config="aal.yaml", data_root=None
    )
    leave_working_dir_copy(args)
    assert args.data == str(job_copy / "mine.npz")
    assert args.config == str(job_copy / "aal.yaml")
    assert args.out == "/results/aal"
    assert not in_working_dir_copy(os.getcwd())


def test_outside_a_job_nothing_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(out="runs/x", storage="sqlite:///x.db", data="d.npz")
    leave_working_dir_copy(args)
    assert (args.out, args.data, os.getcwd()) == ("runs/x", "d.npz", str(tmp_path))


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--out", "runs/aal"], "--out runs/aal"),
        (["--out", "/tmp/ok", "--storage", "sqlite:///optuna.db"], "--storage sqlite:///optuna.db"),
    ],
)
def test_outputs_inside_the_copy_are_refused_before_anything_runs(
    job_copy: Path, flags: list[str], named: str
) -> None:
    result = subprocess.run(
        [AUXSEARCH, "sweep", "--method", "stl", "--dataset", "shapes", *flags],
        cwd=job_copy, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert named in result.stderr and "when the job ends" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(job_copy.iterdir()) == []


def test_a_cwd_deleted_under_the_command_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    with pytest.raises(UserInputError, match="no longer exists"):
        leave_working_dir_copy(argparse.Namespace(out="x"))
