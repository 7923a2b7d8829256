"""cluster.yaml (AWS) and cluster.local.yaml (machines you have) pass Ray's own
config preparation and schema validation, and say what they promise."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

FILES = ("cluster.yaml", "cluster.local.yaml")


def _load(name: str) -> dict:
    return yaml.safe_load(Path(name).read_text())


@pytest.mark.parametrize("name", FILES)
def test_ray_prepares_and_validates_the_config(name: str) -> None:
    prepared = prepare_config(copy.deepcopy(_load(name)))
    validate_config(prepared)  # raises on any schema violation


@pytest.mark.parametrize("name", FILES)
def test_a_misspelt_key_is_caught_by_the_same_validation(name: str) -> None:
    config = _load(name)
    config["setup_comands"] = config.pop("setup_commands")
    with pytest.raises(jsonschema.ValidationError, match="setup_comands"):
        validate_config(prepare_config(config))


def uncommented_keys(text: str) -> list[str]:
    """Key lines without a comment on the line above or inline (a list item's second
    key may lean on the item's first line)."""
    lines = text.splitlines()
    key = re.compile(r"^\s*(- )?[\"~\w./-]+\"?:")
    missing = []
    for i, line in enumerate(lines):
        if not key.match(line):
            continue
        above = lines[i - 1].strip() if i else ""
        if not (above.startswith(("#", "- ")) or "#" in line):
            missing.append(line.strip())
    return missing


@pytest.mark.parametrize("name", FILES)
def test_every_key_is_commented(name: str) -> None:
    assert uncommented_keys(Path(name).read_text()) == []


def test_the_comment_check_finds_a_bare_key() -> None:
    text = "# the name\ncluster_name: x\nmax_workers: 2\nprovider:  # where\n    type: aws\n"
    assert uncommented_keys(text) == ["max_workers: 2", "type: aws"]


def test_aws_cluster_has_a_cpu_head_and_an_autoscaling_gpu_worker() -> None:
    config = _load("cluster.yaml")
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"] == {"CPU": 0}  # trials never land on the head
    assert head["node_config"]["InstanceType"].startswith(("m5", "m6", "c5", "c6", "r5"))
    workers = {k: v for k, v in types.items() if k != config["head_node_type"]}
    (gpu,) = workers.values()
    assert gpu["node_config"]["InstanceType"].startswith(("g4", "g5", "g6", "p3", "p4", "p5"))
    assert gpu["min_workers"] == 0 < gpu["max_workers"] <= config["max_workers"]
    assert config["provider"]["type"] == "aws"
    assert all(t["node_config"]["ImageId"] == "latest_dlami" for t in types.values())


@pytest.mark.parametrize("name", FILES)
def test_every_node_installs_this_project(name: str) -> None:
    config = _load(name)
    assert config["file_mounts"]["~/auxsearch"] == "."
    assert any(
        "~/auxsearch" in c and "pip install" in c and "-e ." in c for c in config["setup_commands"]
    )


def test_local_cluster_runs_every_listed_machine() -> None:
    config = _load("cluster.local.yaml")
    provider = config["provider"]
    assert provider["type"] == "local" and provider["head_ip"]
    n = len(provider["worker_ips"])
    assert config["min_workers"] == config["max_workers"] == n
    prepared = prepare_config(copy.deepcopy(config))
    (node_type,) = prepared["available_node_types"].values()
    assert node_type["min_workers"] == node_type["max_workers"] == n
