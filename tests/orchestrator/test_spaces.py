"""Search-space files: YAML → Optuna spaces, and the one-sentence errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from methods import get_method, list_methods
from methods.core.config import config_keys
from orchestrator.spaces import SpaceError, bundled_space_path, load_space, parse_space

SPACE_FILES = sorted(Path("search_spaces").glob("*.yaml"))


def test_every_registered_method_ships_a_space_file() -> None:
    assert {p.stem for p in SPACE_FILES} == set(list_methods())


@pytest.mark.parametrize("path", SPACE_FILES, ids=lambda p: p.stem)
def test_each_file_becomes_an_optuna_space(path: Path) -> None:
    space = load_space(path, path.stem)
    assert space.params, "a space file should search something"
    assert set(space.to_optuna()) == set(space.params)
    assert not set(space.fixed) & set(space.params)


@pytest.mark.parametrize(
    "path", sorted(Path("search_spaces/comparisons").glob("*.yaml")), ids=lambda p: p.stem
)
def test_comparison_files_are_valid_grids(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    if "method" in doc:
        assert path.stem.startswith(doc["method"])
        methods = [doc["method"]]
    else:  # a setting shared by every method that has its keys
        keys = {*doc.get("fixed", {}), *doc["space"]}
        methods = [m for m in list_methods() if keys <= set(config_keys(get_method(m).config_cls))]
        assert methods
    for method in methods:
        space = load_space(path, method)
        assert all(p.kind == "choice" for p in space.params.values())  # a --sampler grid space


def test_paper_values_in_the_bundled_files() -> None:
    aal = load_space(bundled_space_path("aal"), "aal")
    assert aal.params["lam"].values == (0.01, 0.1, 0.3, 0.5, 1.0)
    assert aal.fixed["lr"] == 1e-4 and aal.fixed["weight_decay"] == 5e-4
    assert aal.fixed["epochs"] == 6 and aal.fixed["lr_milestones"] == [4]


def test_soseleto_space_covers_clip_range_rates_and_batch_sizes() -> None:
    space = load_space(bundled_space_path("soseleto"), "soseleto")
    assert set(space.params) == {"lr", "alpha_lr", "alpha_max", "batch_size", "target_batch_size"}
    assert 1.1 in space.params["alpha_max"].values  # the paper's practical range
    assert 256 in space.params["batch_size"].values
    assert 10 in space.params["target_batch_size"].values


def test_a_space_without_parameters_is_refused_in_one_sentence() -> None:
    with pytest.raises(SpaceError, match="'space' names no setting to search"):
        parse_space({"method": "stl", "fixed": {"lr": 0.001}, "space": {}}, "stl")


def test_kinds_map_to_the_right_distributions() -> None:
    doc = {
        "space": {
            "lam": {"choice": [0.1, 1.0]},
            "lr": {"loguniform": [1e-4, 1e-2]},
            "weight_decay": {"uniform": [0.0, 0.001]},
            "batch_size": {"int": [16, 64]},
        }
    }
    space = parse_space(doc, "aal", "t.yaml")
    o = space.to_optuna()
    assert o["lam"] == CategoricalDistribution([0.1, 1.0])
    assert o["lr"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert o["weight_decay"] == FloatDistribution(0.0, 0.001)
    assert o["batch_size"] == IntDistribution(16, 64)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"spaces": {}}, "unknown top-level key 'spaces'; allowed: method, fixed, space"),
        ({"method": "stl"}, "written for method 'stl', not 'aal'"),
        ({"space": {"lamda": {"choice": [1]}}}, "key 'lamda' is not a setting of method 'aal'"),
        ({"fixed": {"colour": 1}}, "key 'colour' is not a setting of method 'aal'"),
        ({"space": {"lam": {"choice": []}}}, "space.lam: choice is empty"),
        ({"space": {"lam": {"uniform": [1.0, 0.1]}}}, "space.lam: low 1.0 > high 0.1"),
        ({"space": {"lr": {"loguniform": [0.0, 0.1]}}}, "space.lr: loguniform bounds must be > 0"),
        ({"space": {"lam": {"uniform": [-1.0, 1.0]}}}, "space.lam: lam=-1 is out of range"),
        ({"space": {"lam": {"normal": [0, 1]}}}, "space.lam: unknown kind 'normal'"),
        ({"space": {"lam": [0.1, 0.2]}}, "space.lam must be one of {choice: [...]}"),
        (
            {"space": {"epochs": {"uniform": [1, 3]}}},
            "'epochs' is not a real-valued setting; use int",
        ),
        ({"space": {"lr": {"int": [1, 3]}}}, "'lr' is not an integer setting"),
        ({"space": {"backbone": {"choice": ["resnet18", "vit"]}}}, "backbone='vit'"),
        ({"space": {"adversary_loss": {"choice": ["gan", "bce"]}}}, "adversary_loss='bce'"),
        ({"fixed": {"lam": 0.1}, "space": {"lam": {"choice": [0.1]}}}, "'lam' is both fixed"),
        ({"fixed": {"epochs": 0}}, "fixed: epochs=0 is out of range"),
    ],
)
def test_broken_files_name_file_key_and_problem(doc: dict, message: str) -> None:
    with pytest.raises(SpaceError) as info:
        parse_space(doc, "aal", "my_space.yaml")
    text = str(info.value)
    assert text.startswith("my_space.yaml: ") and message in text and "\n" not in text


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match="does not exist"):
        load_space(tmp_path / "none.yaml", "aal")
    bad = tmp_path / "bad.yaml"
    bad.write_text("space: {lam: [")
    with pytest.raises(SpaceError, match="is not valid YAML"):
        load_space(bad, "aal")
