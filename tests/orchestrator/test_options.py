"""Each search setting is declared once (orchestrator/options.py): the CLI's flags, the
API's signatures, the searches' defaults and search.json's record all come from it."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

import pytest

import auxsearch
from methods.data import load_dataset
from orchestrator import options
from orchestrator.cli import build_parser, main
from orchestrator.errors import UserInputError
from orchestrator.pairs_plan import PairsSettings, resolve_settings

COMMANDS = ("pairs", "sweep", "grid")
API = {"pairs": auxsearch.pairs, "sweep": auxsearch.sweep, "grid": auxsearch.grid}


def _subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    chosen: argparse.ArgumentParser = sub.choices[command]
    return chosen


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_of_a_search_comes_from_its_table(command: str) -> None:
    actions = [a for a in _subparser(command)._actions if a.option_strings != ["-h", "--help"]]
    table = options.options(command)
    assert sorted(a.option_strings[0] for a in actions) == sorted(o.flag for o in table.values())
    for action in actions:
        option = table[action.dest]
        assert action.default == ([] if option.name == "set" else option.default)
        assert action.required == option.required
        if option.choices:
            assert tuple(action.choices or ()) == option.choices
        elif not option.switch and option.name != "set":
            assert action.type is option.kind


@pytest.mark.parametrize("command", COMMANDS)
def test_the_api_takes_each_option_by_name_with_the_same_default(command: str) -> None:
    parameters = inspect.signature(API[command]).parameters
    table = options.options(command)
    expected = {options.API_NAMES.get(name, name) for name in table}
    assert set(parameters) == expected
    for name, option in table.items():
        if name in ("set", "out", "method"):
            continue
        given = parameters[options.API_NAMES.get(name, name)].default
        normal = list(given) if isinstance(given, tuple) else given
        assert normal == option.default, name


def test_resolve_and_settings_defaults_are_the_tables() -> None:
    for name in ("seeds", "seed", "adversaries", "alpha", "lambda_search", "reduction_factor"):
        field = PairsSettings.__dataclass_fields__[name]
        assert field.default == options.default("pairs", name), name
    parameters = inspect.signature(resolve_settings).parameters
    for name in ("seeds", "seed", "adversaries", "alpha", "null_control", "lambda_search"):
        assert parameters[name].default == options.default("pairs", name), name
    assert options.default("pairs", "min_seeds") == 2  # implied: the flag itself is None
    assert options.options("pairs")["min_seeds"].default is None


@pytest.fixture(scope="module")
def shapes() -> object:
    return load_dataset("shapes", {"n": 120, "image_size": 16, "seed": 0})


def test_search_json_records_what_it_recorded_before(shapes: object) -> None:
    """The record every existing --out holds must not change, or a resume would
    rewrite it: the hand-written describe() of before, as literals."""
    base = {"attributes": ["red", "large"], "overrides": {"backbone": "mlp", "epochs": 1}}
    plain = resolve_settings(shapes, lambdas=[0.1, 1.0], **base)  # type: ignore[arg-type]
    assert plain.describe() == {
        "attributes": ["red", "large"],
        "lambdas": [0.1, 1.0],
        "seeds": 1,
        "seed": 0,
        "adversaries": "worst",
        "alpha": 0.05,
        "require_significant": False,
        "null_control": False,
        "lambda_search": "grid",
    }
    auto = resolve_settings(
        shapes,  # type: ignore[arg-type]
        seeds="auto",
        max_seeds=3,
        lambda_search="halving",
        reduction_factor=3,
        **base,
    )
    recorded = auto.describe()
    assert recorded["seeds"] == "auto"
    assert (recorded["min_seeds"], recorded["max_seeds"], recorded["certainty"]) == (2, 3, 0.9)
    assert recorded["reduction_factor"] == 3
    assert recorded["lambdas"] == [0.01, 0.1, 0.3, 0.5, 1.0]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"min_seeds": 3}, "--min-seeds, --max-seeds and --certainty go with --seeds auto"),
        ({"certainty": 0.8, "seeds": 2}, "go with --seeds auto"),
        ({"reduction_factor": 3}, "--reduction-factor goes with --lambda-search halving"),
    ],
)
def test_an_option_without_the_one_it_goes_with_is_refused(
    shapes: object, given: dict[str, object], message: str
) -> None:
    with pytest.raises(UserInputError, match=message):
        resolve_settings(
            shapes,  # type: ignore[arg-type]
            attributes=["red", "large"],
            overrides={"backbone": "mlp"},
            **given,  # type: ignore[arg-type]
        )


@pytest.mark.parametrize(
    ("cli", "python"),
    [
        ("--min-seeds, --max-seeds and --certainty go with --seeds auto",
         "min_seeds, max_seeds and certainty go with seeds='auto'"),
        ("--epochs 1 and epochs=2 from --set/--config disagree",
         "epochs=1 and epochs=2 from settings/config disagree"),
        ("--attributes names 'red' twice", "attributes names 'red' twice"),
        ("--lambda-search halving needs --seeds 2 or more",
         "lambda_search='halving' needs seeds=2 or more"),
        ("pass --data-root DIR", "pass data_root DIR"),
        ("--nonsense 3 stays", "--nonsense 3 stays"),  # not an option: left alone
    ],
)  # fmt: skip
def test_a_cli_message_reads_in_the_apis_words(cli: str, python: str) -> None:
    assert options.python_wording(cli, "pairs") == python


def test_the_cli_and_the_api_refuse_a_value_in_the_same_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [("--alpha", "1.0", "alpha", 1.0), ("--max-concurrent", "0", "max_concurrent", 0)]
    for flag, text, name, value in cases:
        code = main(["pairs", "--dataset", "shapes", flag, text, "--out", str(tmp_path / "x")])
        assert code == 2
        said = capsys.readouterr().err
        reason = said.split("is not allowed; ", 1)[1].split(" (see")[0]
        with pytest.raises(UserInputError) as refused:
            auxsearch.pairs("shapes", out=tmp_path / "y", **{name: value})
        assert str(refused.value).endswith(f"{name}={value!r} is not allowed; {reason}")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_refusal_from_deep_inside_names_the_apis_argument(tmp_path: Path) -> None:
    with pytest.raises(UserInputError) as refused:
        auxsearch.pairs("shapes:n=120,image_size=16", out=tmp_path / "o", min_seeds=3)
    assert str(refused.value) == (
        "auxsearch.pairs: min_seeds, max_seeds and certainty go with seeds='auto'"
    )
