"""Every malformed input is refused before anything starts (issue 28), tested by
generation rather than case by case: data files with one thing wrong, every
declared flag given a value outside its declaration, and paths and URLs of the
wrong kind. Each ends in exit code 2, one sentence on stderr naming what is
wrong, no traceback, and nothing written (no --out, no lock, no database file).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator import flag_types as ft
from orchestrator.cli import build_parser, main
from orchestrator.inputs import resolve_dataset
from orchestrator.pairs_plan import resolve_settings

N = 36  # 24 train, 6 val, 6 test rows
SPLIT = np.array(["train"] * 24 + ["val"] * 6 + ["test"] * 6)
TINY = "shapes:n=60,image_size=16"
PAIRS = ["--epochs", "1", "--backbone", "small_cnn", "--lambdas", "0.1"]
QUICK = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

Arrays = dict[str, Any]


def valid_arrays() -> Arrays:
    """A file every check accepts: both classes of every attribute in every split."""
    rows = np.arange(N)
    labels = np.stack([rows % 2, (rows // 2) % 2, (rows // 3) % 2], axis=1)
    images = (np.arange(N * 8 * 8 * 3) % 251).astype(np.uint8).reshape(N, 8, 8, 3)
    return {
        "inputs": images,
        "labels": labels.astype(np.int64),
        "label_names": np.array(["a", "b", "c"]),
        "split": SPLIT.copy(),
        "domain": np.array(["d"] * N),
    }


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="refused-") as tmp:
        yield Path(tmp)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def assert_refused(argv: list[str], root: Path, *, mentions: str, command: str) -> None:
    before = snapshot(root)
    code, out, err = run_cli(argv)
    lines = err.strip().splitlines()
    assert code == 2, (argv, out[-500:], err[-2000:])
    assert len(lines) == 1 and lines[0].startswith(f"auxsearch {command}: error: "), err
    assert "Traceback" not in err + out
    assert mentions in lines[0], (mentions, lines[0])
    assert snapshot(root) == before, "a refused command wrote something"


def test_the_base_file_is_valid() -> None:
    """The mutations below break one thing each of a file that is itself accepted."""
    with workdir() as tmp:
        np.savez(tmp / "ok.npz", **valid_arrays())
        dataset = resolve_dataset(None, str(tmp / "ok.npz"))
        plan = resolve_settings(dataset, attributes=None, overrides={"epochs": 1})
        assert plan.attributes == ("a", "b", "c")


# Each mutation: (name, draw → (arrays or raw bytes, a word the sentence must hold)).
Mutation = Callable[[st.DrawFn, Arrays], tuple[Arrays | bytes, str]]


def _drop(draw: st.DrawFn, a: Arrays) -> tuple[Arrays, str]:
    key = draw(st.sampled_from(["inputs", "labels", "label_names"]))
    del a[key]
    return a, key


def _inputs(draw: st.DrawFn, a: Arrays) -> tuple[Arrays, str]:
    kind = draw(st.sampled_from(["empty", "rank", "dtype", "channels", "nan", "no_pixels"]))
    if kind == "empty":
        a["inputs"] = a["inputs"][:0]
    elif kind == "rank":
        shape = draw(st.sampled_from([(N,), (N, 2, 2, 2, 2)]))
        a["inputs"] = np.zeros(shape, np.uint8)
    elif kind == "dtype":
        a["inputs"] = np.zeros((N, 4), draw(st.sampled_from([np.bool_, np.complex64, "U3"])))
    elif kind == "channels":
        a["inputs"] = np.zeros((N, 4, 4, draw(st.sampled_from([2, 5]))), np.uint8)
    elif kind == "nan":
        x = np.ones((N, 4), np.float64)
        x[draw(st.integers(0, N - 1)), draw(st.integers(0, 3))] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf, 1e300])
        )
        a["inputs"] = x
    else:
        a["inputs"] = np.zeros((N, 0, 4, 3), np.uint8)
    return a, "inputs"


def _labels(draw: st.DrawFn, a: Arrays) -> tuple[Arrays, str]:
    kind = draw(st.sampled_from(["rows", "rank", "dtype", "below", "inf", "no_columns"]))
    y = a["labels"]
    if kind == "rows":
        a["labels"] = y[: draw(st.integers(0, N - 1))]
    elif kind == "rank":
        a["labels"] = y[:, :, None]
    elif kind == "dtype":
        a["labels"] = y.astype("U1")
    elif kind == "below":
        y = y.copy()
        y[draw(st.integers(0, N - 1)), draw(st.integers(0, 2))] = draw(st.integers(-(2**31), -2))
        a["labels"] = y
    elif kind == "inf":
        y = y.astype(np.float64)
        y[draw(st.integers(0, N - 1)), 0] = draw(st.sampled_from([np.inf, -np.inf]))
        a["labels"] = y
    else:
        a["labels"], a["label_names"] = y[:, :0], np.array([], dtype=str)
    return a, "labels"


def _names(draw: st.DrawFn, a: Arrays) -> tuple[Arrays, str]:
    kind = draw(st.sampled_from(["length", "rank", "dtype", "repeat", "bad_name"]))
    names = ["a", "b", "c"]
    if kind == "length":
        a["label_names"] = np.array(names[: draw(st.integers(0, 2))] or ["x", "y", "z", "w"])
    elif kind == "rank":
        a["label_names"] = np.array([names])
    elif kind == "dtype":
        a["label_names"] = np.arange(3)
    elif kind == "repeat":
        a["label_names"] = np.array(["a", "a", "c"])
    else:
        word = draw(st.text("abc", min_size=1, max_size=3))
        bad = draw(st.sampled_from(["", "  ", f"{word},{word}", f" {word}", f"{word} "]))
        a["label_names"] = np.array([bad, "b", "c"])
    return a, "label_names"


def _split(draw: st.DrawFn, a: Arrays) -> tuple[Arrays, str]:
    kind = draw(st.sampled_from(["length", "value", "dtype", "no_train"]))
    if kind == "length":
        a["split"] = SPLIT[: draw(st.integers(1, N - 1))]
        return a, "split"
    if kind == "value":
        word = draw(
            st.text(min_size=0, max_size=6).filter(
                lambda w: w.rstrip("\x00") not in ("train", "val", "test")
            )
        )
        split = SPLIT.copy().astype("U8")
        split[draw(st.integers(0, N - 1))] = word
        a["split"] = split
        return a, "split"
    if kind == "dtype":
        a["split"] = np.zeros(N)
        return a, "split"
    a["split"] = np.where(SPLIT == "train", "val", SPLIT)
    return a, "train"


def _domain(draw: st.DrawFn, a: Arrays) -> tuple[Arrays, str]:
    if draw(st.booleans()):
        a["domain"] = a["domain"][: draw(st.integers(1, N - 1))]
    else:
        domain = a["domain"].copy()
        domain[draw(st.integers(0, N - 1))] = draw(st.sampled_from(["", "  "]))
        a["domain"] = domain
    return a, "domain"


def _one_class_in_train(draw: st.DrawFn, a: Arrays) -> tuple[Arrays, str]:
    """Both classes overall, one in the train split: a classifier learns a constant."""
    j = draw(st.integers(0, 2))
    y = a["labels"].copy()
    train = SPLIT == "train"
    y[train, j] = draw(st.sampled_from([0, 1]))
    if draw(st.booleans()):  # some train rows missing the label changes nothing
        y[np.flatnonzero(train)[: draw(st.integers(1, 12))], j] = -1
    a["labels"] = y
    return a, f"attribute '{'abc'[j]}' has one class"


def _object_array(draw: st.DrawFn, a: Arrays) -> tuple[Arrays, str]:
    key = draw(st.sampled_from(["label_names", "split"]))
    a[key] = np.array(list(a[key]), dtype=object)
    return a, key


def _not_an_archive(draw: st.DrawFn, a: Arrays) -> tuple[bytes, str]:
    if draw(st.booleans()):
        return draw(st.binary(max_size=200).filter(lambda b: not b.startswith(b"PK"))), "npz"
    buffer = io.BytesIO()
    np.savez(buffer, **a)
    whole = buffer.getvalue()
    return whole[: draw(st.integers(4, len(whole) - 1))], "npz"


MUTATIONS: dict[str, Mutation] = {
    "drop": _drop,
    "inputs": _inputs,
    "labels": _labels,
    "label_names": _names,
    "split": _split,
    "domain": _domain,
    "one_class_in_train": _one_class_in_train,
    "object_array": _object_array,
    "not_an_archive": _not_an_archive,
}


@st.composite
def malformed_files(draw: st.DrawFn) -> tuple[str, Arrays | bytes, str]:
    name = draw(st.sampled_from(sorted(MUTATIONS)))
    content, mentions = MUTATIONS[name](draw, valid_arrays())
    return name, content, mentions


@QUICK
@given(malformed_files())
def test_a_malformed_data_file_is_refused_before_anything_starts(
    case: tuple[str, Arrays | bytes, str],
) -> None:
    _, content, mentions = case
    with workdir() as tmp:
        data = tmp / "data.npz"
        if isinstance(content, bytes):
            data.write_bytes(content)
        else:
            with data.open("wb") as f:
                np.savez(f, **content)
        argv = ["pairs", "--data", str(data), *PAIRS, "--out", str(tmp / "out")]
        assert_refused(argv, tmp, mentions=mentions, command="pairs")


def _declared_flags() -> list[tuple[str, str, Any]]:
    """(command, flag, its declared type) for every flag whose value type is declared
    in flag_types, found in the parser itself: a flag added later is covered too."""
    found = []
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, sub in commands.choices.items():
        for action in sub._actions:
            if isinstance(action.type, ft.Whole | ft.Real | ft.RealList):
                found.append((command, action.option_strings[0], action.type))
    return found


DECLARED = _declared_flags()


def test_the_counts_are_declared() -> None:
    flags = {(c, f) for c, f, _ in DECLARED}
    for command in ("pairs", "sweep", "grid"):
        for flag in ("--max-concurrent", "--cpus-per-trial", "--seed", "--seeds"):
            assert (command, flag) in flags
    assert {("run", "--threads"), ("dashboard", "--port"), ("sweep", "--trials")} <= flags


@st.composite
def outside(draw: st.DrawFn, declared: Any) -> str:
    """Text the declaration refuses: not a number, or a number outside its range."""
    if isinstance(declared, ft.RealList):
        good = draw(st.lists(st.sampled_from(["0.1", "1"]), max_size=2))
        return ",".join([*good, draw(outside(declared.each))])
    options: list[st.SearchStrategy[str]] = [
        st.text("xyz!%", min_size=1, max_size=4).filter(
            lambda t: t not in getattr(declared, "extra", ())
        ),
    ]
    if isinstance(declared, ft.Whole):
        options.append(st.sampled_from(["1.5", "2e3", "0x10"]))
        if declared.low is not None:
            options.append(st.integers(max_value=declared.low - 1).map(str))
        if declared.high is not None:
            options.append(st.integers(min_value=declared.high + 1).map(str))
    else:
        options.append(st.sampled_from(["nan", "inf", "-inf"]))
        if declared.low is not None:
            below = st.floats(max_value=declared.low, exclude_max=not declared.low_open)
            options.append(below.filter(lambda x: not declared.holds(x)).map(repr))
        if declared.high is not None:
            above = st.floats(min_value=declared.high, exclude_min=not declared.high_open)
            options.append(above.filter(lambda x: not declared.holds(x)).map(repr))
    return draw(st.one_of(options))


REQUIRED = {
    "pairs": ["--dataset", TINY, "--out", "{out}"],
    "sweep": [
        "--method",
        "aal",
        "--trials",
        "2",
        "--dataset",
        TINY,
        "--set",
        "main=[left]",
        "--set",
        "adversaries=[red]",
        "--out",
        "{out}",
    ],
    "grid": ["--dataset", "digit_domains", "--out", "{out}"],
    "run": ["--method", "stl", "--dataset", "digits"],
    "dashboard": ["{out}"],
    "demo": ["--out", "{out}"],
}


@QUICK
@given(st.sampled_from(DECLARED).flatmap(lambda d: st.tuples(st.just(d), outside(d[2]))))
def test_a_declared_flag_refuses_every_value_outside_its_declaration(
    case: tuple[tuple[str, str, Any], str],
) -> None:
    (command, flag, _), value = case
    with workdir() as tmp:
        base = [a.replace("{out}", str(tmp / "out")) for a in REQUIRED[command]]
        argv = [command, *base, f"{flag}={value}"]  # = keeps a value such as -1 a value
        assert_refused(argv, tmp, mentions=f"argument {flag}:", command=command)


@QUICK
@given(
    st.from_regex(r"[a-z][a-z0-9+.\-]{0,6}", fullmatch=True).filter(
        lambda s: s not in ("s3", "gs", "gcs", "file")
    )
)
def test_an_out_of_an_unknown_scheme_is_refused(scheme: str) -> None:
    with workdir() as tmp, _in(tmp):
        argv = ["pairs", "--dataset", TINY, *PAIRS, "--out", f"{scheme}://host/x"]
        assert_refused(argv, tmp, mentions=f"{scheme}://", command="pairs")


@settings(QUICK, max_examples=15)
@given(
    st.sampled_from(["redis", "ftp", "mongodb", "postgresq", "http"]),
    st.sampled_from(["sweep", "pairs", "dashboard"]),
)
def test_a_storage_of_an_unknown_kind_is_refused(dialect: str, command: str) -> None:
    with workdir() as tmp:
        url = f"{dialect}://user:pw@127.0.0.1:1/db"
        argv = _with_storage(command, url, tmp)
        assert_refused(argv, tmp, mentions=f"{dialect}://", command=command)


def _with_storage(command: str, url: str, tmp: Path) -> list[str]:
    if command == "dashboard":
        return ["dashboard", url]
    base = [a.replace("{out}", str(tmp / "out")) for a in REQUIRED[command]]
    return [command, *base, "--storage", url]


@contextlib.contextmanager
def _in(folder: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _path_cases(tmp: Path) -> list[tuple[list[str], str, str]]:
    """(argv, what the sentence names, command) for paths of the wrong kind."""
    (tmp / "file").write_text("precious")
    (tmp / "dir.npz").mkdir()
    (tmp / "dir.yaml").mkdir()
    (tmp / "search").mkdir()
    (tmp / "search" / "results.parquet").mkdir()
    (tmp / "search2").mkdir()
    (tmp / "search2" / "ray").write_text("not a folder")
    pairs = ["pairs", "--dataset", TINY, *PAIRS]
    missing_db = f"sqlite:///{tmp}/absent.db"
    return [
        ([*pairs, "--out", str(tmp / "file" / "inside")], "lies inside the file", "pairs"),
        ([*pairs, "--out", str(tmp / "file")], "is a file", "pairs"),
        ([*pairs, "--out", str(tmp / "search")], "holds a folder results.parquet", "pairs"),
        ([*pairs, "--out", str(tmp / "search2")], "holds a file ray", "pairs"),
        (
            ["pairs", "--data", str(tmp / "dir.npz"), "--out", str(tmp / "o")],
            "is a directory",
            "pairs",
        ),
        ([*pairs, "--config", str(tmp / "dir.yaml"), "--out", str(tmp / "o")], "dir.yaml", "pairs"),
        (
            [
                "sweep",
                "--method",
                "aal",
                "--space",
                str(tmp / "dir.yaml"),
                "--dataset",
                "shapes",
                "--out",
                str(tmp / "o"),
            ],
            "dir.yaml",
            "sweep",
        ),
        (
            [
                "pairs",
                "--dataset",
                "celeba",
                "--data-root",
                str(tmp / "file"),
                "--out",
                str(tmp / "o"),
            ],
            "is not a directory",
            "pairs",
        ),
        (["dashboard", missing_db], "does not exist", "dashboard"),
        (["dashboard", str(tmp / "search")], "holds no Optuna study", "dashboard"),
        (
            [*pairs, "--storage", f"sqlite:///{tmp}/nowhere/x.db", "--out", str(tmp / "o")],
            "does not exist",
            "pairs",
        ),
        (
            [*pairs, "--storage", f"sqlite:///{tmp}/search", "--out", str(tmp / "o")],
            "names a directory",
            "pairs",
        ),
        ([*pairs, "--storage", "sqlite://", "--out", str(tmp / "o")], "in-memory", "pairs"),
        (["results", "show", str(tmp / "file")], "is a file", "results"),
        (["results", "show", "ftp://host/x"], "ftp://", "results"),
    ]


def test_a_path_or_url_of_the_wrong_kind_is_refused() -> None:
    with workdir() as tmp:
        for argv, mentions, command in _path_cases(tmp):
            assert_refused(argv, tmp, mentions=mentions, command=command)
        assert (tmp / "file").read_text() == "precious"


def test_the_dashboard_does_not_create_a_database_it_was_asked_to_open() -> None:
    """An empty SQLite file (or one of another program) holds no study; the
    dashboard says so and leaves it as it was, without Optuna's tables."""
    import sqlite3

    with workdir() as tmp:
        empty = tmp / "empty.db"
        sqlite3.connect(empty).close()
        assert_refused(
            ["dashboard", f"sqlite:///{empty}"],
            tmp,
            mentions="holds no Optuna study",
            command="dashboard",
        )
        with sqlite3.connect(empty) as db:
            assert db.execute("select name from sqlite_master").fetchall() == []


@pytest.mark.parametrize("flag", ["--data", "--config"])
def test_a_file_flag_given_a_folder_says_so(flag: str) -> None:
    with workdir() as tmp:
        (tmp / "x").mkdir()
        argv = [
            "pairs",
            "--dataset",
            "shapes",
            *PAIRS,
            "--out",
            str(tmp / "o"),
            flag,
            str(tmp / "x"),
        ]
        if flag == "--data":
            argv.remove("--dataset")
            argv.remove("shapes")
        code, _, err = run_cli(argv)
        assert code == 2 and "directory" in err, err
