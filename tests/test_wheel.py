"""The package as a user installs it: a wheel built from the repo, installed into a
fresh virtual environment outside the checkout, runs a one-epoch training.

Editable installs hide a package left out of the wheel (`import methods.core`
would still find the checkout); this test does not. The fresh environment
borrows the already installed dependencies (torch alone is gigabytes) through a
path file, which adds their directory without running the `.pth` files in it,
so the checkout's editable install stays out of reach.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_a_wheel_installed_outside_the_checkout_trains(tmp_path: Path) -> None:
    # a copy without build leftovers: an in-tree build would pack stale files of build/
    source = tmp_path / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "runs"
        ),
    )
    dist = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(dist), str(source)],
        cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = dist.glob("auxsearch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("auxsearch", "methods", "orchestrator", "search_spaces"):
        for init in (REPO / package).rglob("__init__.py"):
            assert str(init.relative_to(REPO)) in names, f"the wheel lacks {init.parent}"
        for yaml_file in (REPO / package).rglob("*.yaml"):
            assert str(yaml_file.relative_to(REPO)) in names, f"the wheel lacks {yaml_file}"
    for typed in ("auxsearch", "methods", "orchestrator"):  # PEP 561: typed for mypy
        assert f"{typed}/py.typed" in names, f"the wheel lacks {typed}/py.typed"
    packed = {n for n in names if not n.startswith("auxsearch-")}
    assert all((REPO / n).is_file() for n in packed), "the wheel holds files the repo has not"

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=tmp_path,
    ).strip()
    (Path(site) / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], cwd=tmp_path)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}
    where = _run(
        [
            str(python),
            "-c",
            "import methods.core, orchestrator.protocols as p; print(methods.__file__);"
            " p.load_grid_protocol(); p.load_pairs_protocol();"
            " import auxsearch; print(auxsearch.__file__); print(auxsearch.__version__)",
        ],
        cwd=tmp_path,
        env=env,
    )
    methods_file, api_file, version = where.split()
    assert methods_file.startswith(site), f"methods came from {methods_file}, not the wheel"
    assert api_file.startswith(site), f"auxsearch came from {api_file}, not the wheel"
    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert version == declared, "auxsearch.__version__ is not the wheel's version"
    out = _run(
        [
            str(venv / "bin" / "auxsearch"),
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
            "--json",
        ],
        cwd=tmp_path,
        env=env,
    )
    assert 0.0 <= json.loads(out)["val/acc/even"] <= 1.0
