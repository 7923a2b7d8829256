"""The optional parts (pyproject's extras): a command that needs a missing one stops
with exit code 2 and one sentence naming the package and the pip command, before it
trains or writes anything.

The missing package is simulated in a subprocess (`sys.modules[name] = None` makes
its import fail as if it were not installed), so the real one stays importable for
every other test in this process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.errors import UserInputError
from orchestrator.extras import EXTRAS, install_hint, require

REPO = Path(__file__).resolve().parents[2]
DATASET = ["--dataset", "shapes:n=90,image_size=16"]
TINY = [*DATASET, "--epochs", "1"]
SWEEP = ["sweep", "--method", "aal", "--trials", "2", *DATASET, "--set", "epochs=1",
         "--set", "main=[red]", "--set", "adversaries=[large]"]  # fmt: skip
# never reached: the storage is refused before anything connects to it
POSTGRES = "postgresql://auxsearch@127.0.0.1:1/optuna"


def _without(modules: list[str], argv: list[str]) -> subprocess.CompletedProcess[str]:
    """`auxsearch ARGV` (orchestrator.cli.main, as the console script calls it) in a
    fresh interpreter in which `modules` cannot be imported."""
    script = textwrap.dedent(
        f"""
        import sys
        for name in {modules!r}:
            sys.modules[name] = None  # import fails: ModuleNotFoundError, as if not installed
        from orchestrator.cli import main
        raise SystemExit(main({argv!r}))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def _one_sentence(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


def test_the_dashboard_without_optuna_dashboard(tmp_path: Path) -> None:
    before = _files(tmp_path)
    proc = _without(["optuna_dashboard"], ["dashboard", str(tmp_path)])
    assert _one_sentence(proc) == (
        "auxsearch dashboard: error: auxsearch dashboard needs optuna-dashboard, which is not"
        " installed; pip install 'auxsearch[dashboard]'"
    )
    assert _files(tmp_path) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["pairs", *TINY, "--attributes", "red,large", "--storage", POSTGRES],
        [*SWEEP, "--storage", POSTGRES],
        [*SWEEP, "--storage", POSTGRES.replace("://", "+psycopg://")],
    ],
    ids=["pairs", "sweep", "sweep-psycopg-driver"],
)
def test_a_postgresql_storage_without_psycopg(tmp_path: Path, argv: list[str]) -> None:
    out = tmp_path / "out"
    proc = _without(["psycopg"], [*argv, "--out", str(out)])
    assert _one_sentence(proc) == (
        f"auxsearch {argv[0]}: error: a postgresql:// study storage needs psycopg, which is not"
        " installed; pip install 'auxsearch[postgres]'"
    )
    assert not out.exists()  # refused before --out was created, let alone trained into
    assert _files(tmp_path) == []


def test_the_dashboard_of_a_postgresql_study_without_psycopg(tmp_path: Path) -> None:
    proc = _without(["psycopg"], ["dashboard", POSTGRES])
    assert _one_sentence(proc) == (
        "auxsearch dashboard: error: a postgresql:// study storage needs psycopg, which is not"
        " installed; pip install 'auxsearch[postgres]'"
    )


def test_without_the_extras_everything_else_imports_and_sqlite_is_accepted(
    tmp_path: Path,
) -> None:
    """Only what is used is required: with neither extra installed, every package
    imports (the CLI, the Python API, the dashboard module) and a SQLite storage,
    the default, passes the check a postgresql:// one fails."""
    script = textwrap.dedent(
        f"""
        import sys
        for name in ("psycopg", "optuna_dashboard", "boto3"):
            sys.modules[name] = None
        import auxsearch, orchestrator.cli, orchestrator.dashboard, orchestrator.study as s
        print(s.check_storage_url("sqlite:///{tmp_path}/optuna.db"))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f"sqlite:///{tmp_path}/optuna.db"
    assert _files(tmp_path) == []


def test_require_returns_the_module() -> None:
    assert require("json", "dashboard", "x") is json


def test_require_names_the_extra_of_a_missing_module() -> None:
    with pytest.raises(UserInputError) as caught:
        require("auxsearch_no_such_module.sub", "cloud", "ray up")
    assert str(caught.value) == (
        "ray up needs boto3, which is not installed; pip install 'auxsearch[cloud]'"
    )


def test_require_tells_a_broken_install_from_a_missing_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package that is there but whose own import fails (a dependency of its own
    missing) is not called "not installed"."""
    (tmp_path / "auxsearch_broken_pkg.py").write_text("import auxsearch_absent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserInputError) as caught:
        require("auxsearch_broken_pkg", "postgres", "a postgresql:// study storage")
    message = str(caught.value)
    assert "installed but cannot be imported" in message
    assert "auxsearch_absent_dependency" in message
    assert message.endswith("reinstall it: pip install 'auxsearch[postgres]'")
    assert "\n" not in message


def test_the_extras_are_pyprojects() -> None:
    """EXTRAS names, for each extra, the distribution pyproject.toml puts in it; the
    base install has none of them, and `all` (and so the Makefile's install) has every one."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]

    def names(requirements: list[str]) -> set[str]:
        from packaging.requirements import Requirement

        return {Requirement(r).name.lower() for r in requirements}

    for extra, package in EXTRAS.items():
        assert package in names(extras[extra]), (extra, extras[extra])
        assert package not in names(project["dependencies"]), package
    (everything,) = extras["all"]
    assert everything.replace(" ", "") == f"auxsearch[{','.join(EXTRAS)}]"
    makefile = (REPO / "Makefile").read_text()
    assert "install --quiet -e '.[dev,all]'" in makefile


def test_install_hint_is_a_command_a_shell_takes_whole() -> None:
    assert install_hint("postgres") == "pip install 'auxsearch[postgres]'"
