"""cluster.yaml (AWS) and cluster.local.yaml (machines you have) pass Ray's own
config preparation and schema validation, and say what they promise: among it, a
control plane closed to whoever lacks the cluster's token (the dashboard's job API
runs any code it is sent)."""

from __future__ import annotations

import copy
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement
from ray.autoscaler._private.util import prepare_config, validate_config

FILES = ("cluster.yaml", "cluster.local.yaml")
REPO = Path(__file__).resolve().parents[2]
# where every node finds the token: the remote side of its file mount
TOKEN_MOUNT = "~/.ray/auth_token"


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


# an editable install of this checkout, with the extras named: -e . or -e '.[a,b]'
EDITABLE = re.compile(r"""pip install .*-e ['"]?\.(?:\[([\w,]+)\])?['"]?(?:\s|$)""")


def installed_extras(commands: list[str]) -> set[str] | None:
    """The extras an editable install of the project among `commands` names (None: no
    such install)."""
    found = None
    for command in commands:
        if "~/auxsearch" in command and (m := EDITABLE.search(command)):
            found = (found or set()) | set(filter(None, (m.group(1) or "").split(",")))
    return found


def test_the_install_check_reads_extras() -> None:
    assert installed_extras(["cd ~/auxsearch && pip install -q -e ."]) == set()
    assert installed_extras(["cd ~/auxsearch && pip install -e '.[postgres,cloud]'"]) == {
        "postgres", "cloud"
    }  # fmt: skip
    assert installed_extras(["pip install -q torch==2.14.1"]) is None


@pytest.mark.parametrize("name", FILES)
def test_every_node_installs_this_project(name: str) -> None:
    config = _load(name)
    assert config["file_mounts"]["~/auxsearch"] == "."
    assert installed_extras(config["setup_commands"]) is not None


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return dict(tomllib.loads((REPO / "pyproject.toml").read_text())["project"])


def _requirement(requirements: list[str], name: str) -> Requirement:
    (found,) = [r for r in map(Requirement, requirements) if r.name == name]
    return found


def makefile_torch() -> tuple[str, list[str]]:
    """The Python version and the torch/torchvision pins the Makefile installs on x86_64
    (the branch that is not aarch64's), read from the Makefile itself."""
    text = (REPO / "Makefile").read_text()
    python = re.search(r"x86_64 \+ Python (\d+\.\d+)", text)
    branch = re.search(r"^else\n(?:.*\n)*?TORCH := (.+)\n(?:.*\n)*?endif", text, re.M)
    assert python and branch, "the Makefile's torch pins moved"
    return python.group(1), branch.group(1).split()


def test_the_makefile_pins_are_read() -> None:
    python, pins = makefile_torch()
    assert python == "3.11" and pins == ["torch==2.14.1", "torchvision==0.29.1"]


# Ray's image tags: {ray version}-py{python without the dot}-cu{CUDA major and minor}
IMAGE = re.compile(r"rayproject/ray:(\d+\.\d+\.\d+)-py(\d)(\d+)-cu(\d+)(\d)")


def _images(config: dict) -> dict[str, str]:
    docker = config["docker"]
    return {k: docker[k] for k in ("image", "head_image", "worker_image") if k in docker}


def test_every_node_runs_one_pinned_ray_image() -> None:
    """A Ray release, Python and CUDA named in the tag: never `latest`, `nightly`, a
    bare `-gpu` alias or no tag (each of which moves under the cluster)."""
    images = _images(_load("cluster.yaml"))
    assert list(images) == ["image"]  # head and workers alike: Ray and Python must match
    (image,) = images.values()
    assert IMAGE.fullmatch(image), image
    assert "latest" not in image and "nightly" not in image


def test_the_images_python_is_the_one_the_torch_pin_is_for() -> None:
    python, _ = makefile_torch()
    match = IMAGE.fullmatch(_load("cluster.yaml")["docker"]["image"])
    assert match and f"{match.group(2)}.{match.group(3)}" == python


def test_the_images_ray_meets_pyprojects_and_the_local_clusters() -> None:
    match = IMAGE.fullmatch(_load("cluster.yaml")["docker"]["image"])
    assert match
    ray_version = match.group(1)
    assert _requirement(_pyproject()["dependencies"], "ray").specifier.contains(ray_version)
    local = " ".join(_load("cluster.local.yaml")["setup_commands"])
    assert f"ray[default,tune]=={ray_version}" in local  # one Ray on both kinds of cluster


def test_the_images_cuda_is_the_pinned_torchs() -> None:
    """The CUDA of the image is the one torch 2.14.1's own build is for (checked against
    the torch installed here by the same pin, where that is a CUDA build)."""
    import torch

    _, pins = makefile_torch()
    if f"torch=={torch.__version__.split('+')[0]}" not in pins or torch.version.cuda is None:
        pytest.skip(f"torch {torch.__version__} here is not the Makefile's x86_64 CUDA build")
    match = IMAGE.fullmatch(_load("cluster.yaml")["docker"]["image"])
    assert match and f"{match.group(4)}.{match.group(5)}" == torch.version.cuda


def test_the_host_ami_is_not_rays_outdated_default() -> None:
    """`latest_dlami` is Ray's Ubuntu 18.04 Deep Learning AMI (a CUDA 11 driver, glibc
    2.27): torch 2.14.1 does not run on it. The hosts name an AMI id, or the SSM
    parameter of AWS's Deep Learning Base AMI with the NVIDIA driver and Docker."""
    types = _load("cluster.yaml")["available_node_types"].values()
    images = {t["node_config"]["ImageId"] for t in types}
    assert len(images) == 1, images
    (image,) = images
    assert image.lower() not in ("", "latest_dlami")
    assert re.fullmatch(r"ami-[0-9a-f]{8,17}", image) or re.fullmatch(
        r"resolve:ssm:/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-[\w.-]+"
        r"/latest/ami-id",
        image,
    ), image


@pytest.mark.parametrize("name", FILES)
def test_every_node_installs_the_makefiles_torch_pins_before_the_project(name: str) -> None:
    """The project asks only for torch>=2.9; the pins come first, or pip would take the
    newest torch for the editable install."""
    _, pins = makefile_torch()
    commands = _load(name)["setup_commands"]
    first_pins = next(i for i, c in enumerate(commands) if all(p in c.split() for p in pins))
    project = next(i for i, c in enumerate(commands) if installed_extras([c]) is not None)
    assert first_pins < project


def test_the_local_cluster_refuses_another_python() -> None:
    python, _ = makefile_torch()
    major, minor = python.split(".")
    (check,) = [c for c in _load("cluster.local.yaml")["setup_commands"] if "version_info" in c]
    assert f"({major}, {minor})" in check
    command = shlex.split(check)
    assert command[:2] == ["python3", "-c"]
    ran = subprocess.run([sys.executable, "-c", command[2]], capture_output=True, text=True)
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert (ran.returncode == 0) == (here == python), ran.stderr


def test_the_head_has_boto3_for_the_autoscaler() -> None:
    """Ray's AWS autoscaler runs on the head and launches the workers through boto3."""
    config = _load("cluster.yaml")
    commands = config["setup_commands"] + config["head_setup_commands"]
    extras = _pyproject()["optional-dependencies"]
    named = installed_extras(commands) or set()
    requirements = [r for extra in named for r in extras[extra]]
    requirements += [w for c in commands if "pip install" in c for w in shlex.split(c)]
    assert any(r.startswith("boto3") for r in requirements), commands


def test_local_cluster_runs_every_listed_machine() -> None:
    config = _load("cluster.local.yaml")
    provider = config["provider"]
    assert provider["type"] == "local" and provider["head_ip"]
    n = len(provider["worker_ips"])
    assert config["min_workers"] == config["max_workers"] == n
    prepared = prepare_config(copy.deepcopy(config))
    (node_type,) = prepared["available_node_types"].values()
    assert node_type["min_workers"] == node_type["max_workers"] == n


def _strings(node: object) -> Iterator[str]:
    """Every string in a parsed config (the commands wherever they sit)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _ray_starts(name: str) -> list[str]:
    """The command lines that start Ray, after Ray's own preparation (its defaults too)."""
    return [c for c in _strings(prepare_config(copy.deepcopy(_load(name)))) if "ray start" in c]


def ray_start_env(command: str) -> dict[str, str] | None:
    """The variables a shell command line sets for the `ray start` it runs (assigned in
    front of it, or exported earlier on the line); None when it runs no `ray start`.
    Each line runs in a shell of its own, so nothing carries over from another line."""
    exported: dict[str, str] = {}
    for part in re.split(r";|&&|\|\|?", command):
        words = shlex.split(part)
        if words[:1] == ["export"]:
            exported.update(w.partition("=")[::2] for w in words[1:] if "=" in w)
            continue
        assigned = dict(exported)
        while words and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
            key, value = words.pop(0).split("=", 1)
            assigned[key] = value
        if words[:2] == ["ray", "start"]:
            return assigned
    return None


def test_the_environment_check_reads_assignments_and_exports() -> None:
    assert ray_start_env("ray stop") is None
    assert ray_start_env("ulimit -n 65536; ray start --head") == {}
    assert ray_start_env("export A=1 B=2 && C=3 ray start --address=x:6379") == {
        "A": "1", "B": "2", "C": "3"
    }  # fmt: skip
    assert ray_start_env("A=1 true; ray start --head") == {}  # A was for `true` only


@pytest.mark.parametrize("name", FILES)
def test_nothing_listens_on_every_interface(name: str) -> None:
    """The dashboard (and its job API) on the head's loopback, reached through
    `ray dashboard <config>`'s SSH tunnel, never on 0.0.0.0."""
    assert "0.0.0.0" not in Path(name).read_text()
    (head,) = [c for c in _ray_starts(name) if "--head" in shlex.split(c.replace(";", " "))]
    assert "--dashboard-host=127.0.0.1" in shlex.split(head.replace(";", " "))


@pytest.mark.parametrize("name", FILES)
def test_every_ray_start_runs_with_token_auth(name: str) -> None:
    """Head and workers alike: RAY_AUTH_MODE=token, and the token read from the file
    the config mounts on every node (a node without it is refused by the head)."""
    starts = _ray_starts(name)
    assert len(starts) == 2  # the head's and the workers'
    mounts = _load(name)["file_mounts"]
    for command in starts:
        env = ray_start_env(command)
        assert env is not None and env.get("RAY_AUTH_MODE") == "token", command
        path = re.sub(r"^(\$HOME|\$\{HOME\})/", "~/", env.get("RAY_AUTH_TOKEN_PATH", ""))
        assert path == TOKEN_MOUNT and TOKEN_MOUNT in mounts, command
        assert "RAY_AUTH_TOKEN" not in env, "the token itself belongs in the mounted file"


def test_the_mounted_token_is_the_one_ray_get_auth_token_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ray get-auth-token --generate` (as the README says) writes the file both
    configs mount, under the user's home: outside the repository, never committed."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    made = subprocess.run(
        [str(Path(sys.executable).parent / "ray"), "get-auth-token", "--generate"],
        env={**env, "HOME": str(home)}, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    monkeypatch.setenv("HOME", str(home))
    for name in FILES:
        source = _load(name)["file_mounts"][TOKEN_MOUNT]
        assert source.startswith("~/"), f"{name}: the token comes from the user's home"
        assert Path(os.path.expanduser(source)).read_text() == made.stdout != ""


def test_no_token_is_in_the_repository() -> None:
    for name in FILES:
        text = Path(name).read_text()
        assert "RAY_AUTH_TOKEN=" not in text, name  # a token on a command line
        assert not re.search(r"\b[0-9a-f]{64}\b", text), name  # a token's shape
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    assert [f for f in tracked if Path(f).name == "auth_token"] == []
    # a token file copied into the checkout (RAY_AUTH_TOKEN_PATH=auth_token) stays out of git
    for path in ("auth_token", ".ray/auth_token"):
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO)
        assert ignored.returncode == 0, f"{path} is not in .gitignore"
