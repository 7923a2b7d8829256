"""`import auxsearch`: a pair search and a sweep from Python on a real local Ray, their
tables back as DataFrames (from a directory and from a real S3 API on loopback),
progress on the "auxsearch" logger and not on stdout, and mistakes refused as the
CLI refuses them, before anything is written."""

from __future__ import annotations

import ast
import importlib.metadata
import logging
import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import auxsearch
from tests.orchestrator.test_s3 import BUCKET, s3_env  # noqa: F401  (a fixture)

DATASET = "shapes:n=120,image_size=16"
ATTRS = ["red", "large", "left"]
TINY = {"dataset": DATASET, "epochs": 1, "backbone": "small_cnn", "lambdas": [0.1]}
PACKAGE = Path(auxsearch.__file__).parent


def _matrix_from_parquet(path: Path) -> pd.DataFrame:
    table = pq.read_table(path)
    return pd.DataFrame(
        {name: table.column(name).to_pylist() for name in ATTRS},
        index=table.column("main").to_pylist(),
        dtype=float,
    )


def _progress(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "auxsearch"]


@pytest.mark.integration
def test_a_pair_search_from_python_and_its_tables(
    ray_local: None,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    s3_env: dict[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "aal"
    caplog.set_level(logging.INFO, logger="auxsearch")
    run = auxsearch.pairs(attributes=ATTRS, out=out, max_concurrent=2, **TINY)

    # progress went to the logger, none of it to stdout
    lines = _progress(caplog)
    assert any(line.startswith("stage 1: single-task and pair runs: 6 cell(s)") for line in lines)
    assert sum("[stage 1 " in line for line in lines) == 6
    assert any("pair search done: trained" in line for line in lines)
    # the summary the CLI prints, to the logger: the same lines, the same matrix
    assert any(line.startswith("Pair matrix: val accuracy") for line in lines)
    assert any(line.startswith("Summary (the layout of the AAL paper's Table 3)") for line in lines)
    printed = capsys.readouterr()
    assert "stage 1" not in printed.out and "Pair matrix" not in printed.out
    assert "[stage 1 " not in printed.err

    assert isinstance(run, auxsearch.SearchResult) and run.kind == "pairs"
    assert run.ok and not run.resumed and run.trained >= 6

    # every DataFrame equals its Parquet file read independently
    matrix = _matrix_from_parquet(out / "pair_matrix.parquet")
    assert run.matrix is not None and run.matrix.shape == (3, 3)
    assert list(run.matrix.index) == ATTRS and list(run.matrix.columns) == ATTRS
    pd.testing.assert_frame_equal(run.matrix, matrix, check_names=False)
    assert run.matrix_std is None  # one seed
    results = pq.read_table(out / "results.parquet")
    assert run.results.shape == (results.num_rows, results.num_columns)
    assert list(run.results.columns) == results.column_names
    assert run.results["value"].tolist() == pytest.approx(
        results.column("value").to_pylist(), nan_ok=True
    )
    summary = pq.read_table(out / "aal_summary.parquet").to_pylist()
    assert run.summary is not None and list(run.summary.index) == [r["attribute"] for r in summary]
    for row in summary:
        for column, value in row.items():
            if column == "attribute":
                continue
            got = run.summary.loc[row["attribute"], column]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                assert pd.isna(got), column
            else:
                assert got == value, column
    assert run.settings["attributes"] == ATTRS and run.settings["lambdas"] == [0.1]
    assert run.identity["train"]["epochs"] == 1
    assert run.grid is None and run.trials is None
    assert str(out / "pair_matrix.parquet") in run.files()
    assert "results.parquet" in run.tables()

    # the same call again resumes: nothing trains
    caplog.clear()
    again = auxsearch.pairs(attributes=ATTRS, out=str(out), **TINY)
    assert again.resumed and again.trained == 0
    assert any("6 already recorded, 0 to train" in line for line in _progress(caplog))
    pd.testing.assert_frame_equal(again.matrix, run.matrix)

    # load() reads the same tables from a local directory and from s3://
    local = auxsearch.load(out)
    pd.testing.assert_frame_equal(local.matrix, run.matrix)
    pd.testing.assert_frame_equal(local.results, run.results)
    # a search still in stage 1 (no pair_matrix.parquet yet): the matrix of what is recorded
    running = tmp_path / "running"
    running.mkdir()
    for name in ("search.json", "results.parquet"):
        (running / name).write_bytes((out / name).read_bytes())
    pd.testing.assert_frame_equal(auxsearch.load(running).matrix, run.matrix)
    assert auxsearch.load(running).summary is None
    for key, value in s3_env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    import pyarrow.fs as pafs

    s3, root = pafs.FileSystem.from_uri(f"s3://{BUCKET}/runs/api")
    for name in ("search.json", "results.parquet", "pair_matrix.parquet", "aal_summary.parquet"):
        with s3.open_output_stream(f"{root}/{name}") as f:
            f.write((out / name).read_bytes())
    remote = auxsearch.load(f"s3://{BUCKET}/runs/api")
    assert remote.kind == "pairs" and remote.settings == run.settings
    pd.testing.assert_frame_equal(remote.matrix, run.matrix)
    pd.testing.assert_frame_equal(remote.summary, run.summary)
    pd.testing.assert_frame_equal(remote.results, run.results)
    assert f"s3://{BUCKET}/runs/api/results.parquet" in remote.files()
    with pytest.raises(auxsearch.UserInputError, match="holds no auxsearch search"):
        auxsearch.load(f"s3://{BUCKET}/runs/nothing")

    # a damaged results.parquet is rebuilt from Ray's records on the next call, and
    # the note of it goes to the logger as a warning, not to stderr
    (out / "results.parquet").write_bytes(b"not parquet")
    capsys.readouterr()
    caplog.clear()
    rebuilt = auxsearch.pairs(attributes=ATTRS, out=str(out), **TINY)
    assert rebuilt.trained == 0 and len(rebuilt.results) == len(run.results)
    notes = [r for r in caplog.records if "could not be read" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.WARNING
    assert "could not be read" not in capsys.readouterr().err


SPACE = {
    "fixed": {"backbone": "small_cnn", "epochs": 1, "batch_size": 32},
    "space": {"lam": {"choice": [0.1, 1.0]}},
}


@pytest.mark.integration
def test_a_sweep_from_python_gives_its_trials(
    ray_local: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="auxsearch")
    run = auxsearch.sweep(
        "aal",
        DATASET,
        out=tmp_path / "sweep",
        space=SPACE,
        trials=2,
        scheduler="fifo",
        settings={"main": ["left"], "adversaries": ["red"]},
    )
    assert run.kind == "sweep" and run.trained == 2 and run.ok
    assert sum("[sweep " in line for line in _progress(caplog)) == 2
    assert any(line.startswith("best: trial #") for line in _progress(caplog))
    trials = run.trials
    assert trials is not None and len(trials) == 2
    assert sorted(trials["params_lam"]) == [0.1, 1.0]
    assert set(trials["state"]) == {"COMPLETE"}
    best = run.raw.best
    assert trials["value"].max() == pytest.approx(best["value"])
    cells = set(run.results["trial_id"])
    assert cells == {f"aal-sweep#{n}" for n in trials["number"]} == set(trials["user_attrs_cell"])
    assert run.matrix is None and run.summary is None


@pytest.mark.integration
def test_a_grid_from_python_on_a_dataset_object(
    ray_local: None, tmp_path: Path, tiny_digits
) -> None:
    """A `methods.data.Dataset` goes in as it is; the grid comes back indexed by
    (method, backbone, train_domain), one column per test domain."""
    run = auxsearch.grid(
        tiny_digits,
        out=tmp_path / "grid",
        methods=["goal1"],
        train="target",
        test=["plain", "coloured"],
        backbones="small_cnn",
        settings={"epochs": 1, "batch_size": 32},
    )
    assert run.kind == "grid" and run.trained == 1 and run.ok
    table = pq.read_table(tmp_path / "grid" / "grid_matrix.parquet").to_pylist()
    assert run.grid is not None and list(run.grid.columns) == ["plain", "coloured"]
    assert list(run.grid.index.names) == ["method", "backbone", "train_domain"]
    for row in table:
        key = (row["method"], row["backbone"], row["train_domain"])
        assert run.grid.loc[key].tolist() == [row["plain"], row["coloured"]]
    assert run.grid_std is None and run.matrix is None
    with pytest.raises(auxsearch.UserInputError, match="keeps no Optuna study"):
        run.study()


BAD = [
    ({"epochs": 0}, "epochs=0 is not allowed; use a whole number, 1 or more"),
    ({"epochs": 1.5}, "epochs=1.5 is not allowed"),
    ({"seeds": True}, "seeds=True is not allowed"),
    ({"lambdas": [0.1, -1.0]}, "lambdas=-1.0 is not allowed"),
    ({"lambdas": [math.nan]}, "lambdas=nan is not allowed"),
    ({"attributes": ["red", "nope"]}, "nope"),
    ({"attributes": "red"}, "at least 2 attributes"),
    ({"backbone": "nope"}, "nope"),
    ({"settings": {"bogus": 1}}, "unknown setting 'bogus'"),
    ({"settings": {"epochs": 2}}, "epochs=1 and epochs=2 from settings/config disagree"),
    ({"cpus_per_trial": 0}, "cpus_per_trial=0.0 is not allowed"),
    ({"alpha": 1.0}, "alpha=1.0 is not allowed"),
    ({"adversaries": "best"}, "adversaries='best': choose worst or all"),
    ({"null_control": "yes"}, "null_control='yes' is not allowed; use True or False"),
    ({"dataset": 3}, "dataset=3 is neither"),
    ({"dataset": "nosuchset"}, "nosuchset"),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[next(iter(c)) for c, _ in BAD])
def test_a_bad_argument_is_refused_before_anything_is_written(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    out = tmp_path / "never"
    arguments: dict[str, object] = {**TINY, "attributes": ATTRS, "epochs": 1, **change}
    with pytest.raises(auxsearch.UserInputError) as refused:
        auxsearch.pairs(out=out, **arguments)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)
    assert not out.exists()


def test_an_out_that_cannot_hold_a_search_is_refused(tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("")
    for out, message in ((afile, "is a file"), ("ftp://host/x", "ftp://"), ("", "out is empty")):
        with pytest.raises(auxsearch.UserInputError, match=message):
            auxsearch.pairs(attributes=ATTRS, out=out, **TINY)


def test_loading_a_directory_without_a_search_says_so_in_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a search")
    with pytest.raises(auxsearch.UserInputError) as refused:
        auxsearch.load(tmp_path)
    text = str(refused.value)
    assert text == (
        f"{tmp_path} holds no auxsearch search (search.json is missing); give the out of an"
        " auxsearch pairs, sweep or grid search"
    )
    with pytest.raises(auxsearch.UserInputError, match="does not exist"):
        auxsearch.load(tmp_path / "missing")
    (tmp_path / "search.json").write_text("{not json")
    with pytest.raises(auxsearch.UserInputError, match="is not a search's search.json"):
        auxsearch.load(tmp_path)


def test_the_package_is_typed_documented_and_quiet() -> None:
    assert auxsearch.__version__ == importlib.metadata.version("auxsearch")
    assert sorted(auxsearch.__all__) == sorted(
        name for name in dir(auxsearch) if name in auxsearch.__all__
    )
    for name in ("pairs", "sweep", "grid", "load"):
        assert getattr(auxsearch, name).__doc__, name
    from orchestrator.errors import OutputError

    assert issubclass(OutputError, auxsearch.UserInputError)  # what the CLI exits 2 on
    for package in ("auxsearch", "orchestrator", "methods"):
        assert (PACKAGE.parent / package / "py.typed").is_file(), package
    handlers = logging.getLogger("auxsearch").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)
    # a library never prints: its messages go to the "auxsearch" logger
    for source in PACKAGE.glob("*.py"):
        tree = ast.parse(source.read_text())
        calls = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "print"
        ]
        assert not calls, f"{source.name} calls print()"
