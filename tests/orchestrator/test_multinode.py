"""A real two-node Ray cluster on this machine: a head and a second node started as
separate `ray start --block` processes on 127.0.0.1, with token authentication on as
cluster.yaml runs it, pair searches submitted as Ray jobs. Their trials spread over
both nodes; killing the node that runs a trial loses no cell; a client or a node
without the token is refused. The tests stop the processes they started by their
pids (never `ray stop`)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from .faults import (
    RandomKill,
    check_only_missing_were_trained,
    check_pair_search,
    fault_rng,
    stage_one_cells,
)

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
_LOCAL_RAY_ENV = ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _wait(what: str, check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):  # a refused token does not get better by waiting
                raise
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _get_json(url: str, token: str | None) -> Any:
    """GET from the dashboard, with the token as Ray's HTTP clients send it (None: without)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
        return json.load(r)


def _get(url: str, token: str | None) -> list[dict]:
    """The rows of a state API listing (/api/v0/...)."""
    return list(_get_json(url, token)["data"]["result"]["result"])


def _generate_token(home: Path) -> Path:
    """A cluster token made as the README makes it (`ray get-auth-token --generate`),
    written under `home` instead of the user's own ~/.ray."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    subprocess.run(
        [str(BIN / "ray"), "get-auth-token", "--generate"],
        env={**env, "HOME": str(home)}, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return home / ".ray" / "auth_token"


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc)."""
    parent_of: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent_of[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = {pid}
    while frontier:
        children = {c for c, p in parent_of.items() if p in frontier}
        found += sorted(children)
        frontier = children
    return found


def _pids_running(text: str) -> list[int]:
    """Processes whose command line mentions `text` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline and "pytest" not in cmdline:
                found.append(int(entry.name))
    return found


@dataclass
class Cluster:
    gcs: str
    dashboard: str
    env: dict[str, str]  # what a client with the token runs under
    token: str
    second: subprocess.Popen[bytes]  # the second node's `ray start --block`

    def nodes(self) -> list[dict]:
        return _get(f"{self.dashboard}/api/v0/nodes?limit=100", self.token)

    def jobs(self) -> list[dict]:
        return list(_get_json(f"{self.dashboard}/api/jobs/", self.token))

    def trial_actors(self) -> list[dict]:
        actors = _get(f"{self.dashboard}/api/v0/actors?detail=1&limit=1000", self.token)
        # Ray names the class `ImplicitFunc` or, by its qualified name,
        # `wrap_function.<locals>.ImplicitFunc`: both have been seen from this Ray
        return [a for a in actors if a["class_name"].split(".")[-1] == "ImplicitFunc"]


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[Cluster]:
    gcs, dash, client, agent1, agent2 = _free_ports(5)
    # token authentication as cluster.yaml sets it on every node: both `ray start`
    # processes, and every client below (job submission, the dashboard's REST API,
    # the job's driver, which inherits the node's environment) run with the token
    token_file = _generate_token(tmp_path / "home")
    env = {
        # without what a local Ray of this process (the suite's shared one) set: its
        # token, and the switch that keeps a local Ray single-node on loopback
        **{k: v for k, v in os.environ.items() if k not in _LOCAL_RAY_ENV},
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file),
        "RAY_USAGE_STATS_ENABLED": "0",
    }  # fmt: skip
    token = token_file.read_text().strip()
    # Ray's files (and the ray_current_cluster pointer `ray start` writes) in a
    # directory of this test's own, short enough for Ray's socket paths
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    common = [
        "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]  # fmt: skip
    head_args = [
        "--head", f"--port={gcs}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dash}", f"--ray-client-server-port={client}",
        f"--dashboard-agent-listen-port={agent1}",
    ]  # fmt: skip
    second_args = [f"--address=127.0.0.1:{gcs}", f"--dashboard-agent-listen-port={agent2}"]
    started: list[subprocess.Popen[bytes]] = []
    dashboard = f"http://127.0.0.1:{dash}"

    def start(name: str, args: list[str]) -> None:
        with open(tmp_path / f"{name}.log", "wb") as log:
            started.append(
                subprocess.Popen(
                    [str(BIN / "ray"), "start", *common, *args],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    def alive() -> int:
        nodes = _get(f"{dashboard}/api/v0/nodes?limit=100", token)
        return sum(n["state"] == "ALIVE" for n in nodes)

    try:
        start("head", head_args)
        _wait("the head", lambda: alive() == 1)
        start("second", second_args)
        _wait("the second node", lambda: alive() == 2)
        yield Cluster(f"127.0.0.1:{gcs}", dashboard, env, token, started[1])
    finally:
        for process in reversed(started):  # the second node, then the head
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _submit(cluster: Cluster, out: Path, *extra: str, working_dir: bool = False) -> list[str]:
    return [
        str(BIN / "ray"), "job", "submit", "--address", cluster.dashboard,
        *(["--working-dir", "."] if working_dir else []), "--",
        str(BIN / "auxsearch"), "pairs", "--address", "auto",
        "--attributes", "red,large,left", "--backbone", "small_cnn", "--lambdas", "0.1",
        "--cpus-per-trial", "1", "--out", str(out), *extra,
    ]  # fmt: skip


def _check_complete(out: Path) -> pd.DataFrame:
    results = pd.read_parquet(out / "results.parquet")
    assert (results["status"] == "ok").all()
    cells = results.drop_duplicates(["trial_id", "seed"])
    assert (cells["stage"] == "single").sum() == 3 and (cells["stage"] == "pair").sum() == 3
    # no cell recorded twice: one row per (cell, seed, split, metric, task)
    keys = ["trial_id", "seed", "split", "metric", "main_task", "aux_task"]
    assert not results.duplicated(keys).any()
    matrix = pd.read_parquet(out / "pair_matrix.parquet")
    assert sorted(matrix["main"]) == ["large", "left", "red"]
    return results


def test_a_pair_search_submitted_as_a_job_runs_on_both_nodes(
    two_nodes: Cluster, tmp_path: Path
) -> None:
    """As the README says: `ray job submit --working-dir . -- auxsearch pairs ...` from
    the user's project directory, which holds a config file named relatively."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "aal.yaml").write_text("epochs: 1\nbatch_size: 32\n")
    out = tmp_path / "aal"
    job = subprocess.run(
        _submit(two_nodes, out, "--dataset", "shapes:n=150,image_size=16",
                "--config", "aal.yaml", working_dir=True),
        cwd=project, env=two_nodes.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-2000:]
    assert "succeeded" in job.stdout + job.stderr
    _check_complete(out)
    assert len({a["node_id"] for a in two_nodes.trial_actors()}) == 2


@pytest.mark.slow  # slow: `make test` keeps under 15 min on 2 cores; `make test-all` runs it
def test_without_the_token_no_job_runs_and_no_node_joins(
    two_nodes: Cluster, tmp_path: Path
) -> None:
    """Whoever reaches the dashboard or the GCS port without the cluster's token is
    refused before anything runs: a job submitted with no token (401) or another token
    (403) trains nothing, the state API answers the same, and a node does not join.
    The same submission from a client set up as the README says (RAY_AUTH_MODE=token,
    the token in ~/.ray/auth_token) is accepted and completes."""
    nobody = tmp_path / "nobody"  # a home without ~/.ray/auth_token for Ray to find
    nobody.mkdir()
    stranger = {k: v for k, v in two_nodes.env.items() if not k.startswith("RAY_AUTH")}
    stranger["HOME"] = str(nobody)
    another = {**stranger, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    refusals = [  # (the client's environment, the dashboard's answer)
        (stranger, "Unauthorized: Missing authentication token"),  # knows nothing of tokens
        (another, "Forbidden: Invalid authentication token"),  # another cluster's token
    ]
    search = ("--dataset", "shapes:n=150,image_size=16", "--epochs", "1")
    for i, (env, refusal) in enumerate(refusals):
        out = tmp_path / f"refused{i}"
        job = subprocess.run(
            _submit(two_nodes, out, *search), env=env, capture_output=True, text=True, timeout=120
        )
        assert job.returncode != 0, job.stdout[-2000:]
        assert refusal in job.stderr, job.stderr[-2000:]
        assert not out.exists()
    for token, code in ((None, 401), (secrets.token_hex(32), 403)):
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(f"{two_nodes.dashboard}/api/v0/nodes?limit=100", token)
        assert refused.value.code == code
    assert two_nodes.jobs() == []  # the refused submissions left no job behind

    # a third node without the token: the GCS refuses it, `ray start` gives up
    (agent,) = _free_ports(1)
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    rogue = subprocess.Popen(
        [str(BIN / "ray"), "start", "--block", f"--address={two_nodes.gcs}",
         "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats",
         f"--temp-dir={temp_dir}", f"--dashboard-agent-listen-port={agent}"],
        env=stranger, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        output, _ = rogue.communicate(timeout=180)
    finally:
        if rogue.poll() is None:  # it joined after all: stop it before failing
            rogue.terminate()
            rogue.communicate(timeout=60)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert rogue.returncode != 0 and "InvalidAuthToken" in output, output[-2000:]
    assert [n["state"] for n in two_nodes.nodes()] == ["ALIVE", "ALIVE"]

    user = tmp_path / "user"  # the user's machine: the token where Ray looks by default
    (user / ".ray").mkdir(parents=True)
    (user / ".ray" / "auth_token").write_text(two_nodes.token)
    readme = {**stranger, "HOME": str(user), "RAY_AUTH_MODE": "token"}
    out = tmp_path / "accepted"
    job = subprocess.run(
        _submit(two_nodes, out, *search), env=readme, capture_output=True, text=True, timeout=600
    )
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-2000:]
    _check_complete(out)
    assert [j["status"] for j in two_nodes.jobs()] == ["SUCCEEDED"]


def test_killing_the_node_running_a_trial_loses_no_cell(two_nodes: Cluster, tmp_path: Path) -> None:
    """SIGKILL the second node (its raylet and workers) while it runs a trial: Tune
    retries the trial on the head and the search completes, each cell once."""
    out = tmp_path / "aal"
    job = subprocess.Popen(
        _submit(two_nodes, out, "--dataset", "shapes:n=600,image_size=24", "--epochs", "4",
                "--max-failures", "3"),
        env=two_nodes.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    (second_id,) = [n["node_id"] for n in two_nodes.nodes() if not n["is_head_node"]]
    _wait(
        "a trial on the second node",
        lambda: any(
            a["node_id"] == second_id and a["state"] == "ALIVE" for a in two_nodes.trial_actors()
        ),
        timeout=240,
    )
    rng, seed = fault_rng()
    time.sleep(rng.uniform(0.0, 2.0))  # a moment the test does not choose
    for pid in [*_descendants(two_nodes.second.pid), two_nodes.second.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # the node dies at once, its trial with it
    output, _ = job.communicate(timeout=600)
    assert job.returncode == 0, f"{seed}\n{output[-3000:]}"
    _check_complete(out)


def test_a_killed_job_driver_is_resumed_by_submitting_again(
    two_nodes: Cluster, tmp_path: Path
) -> None:
    """SIGKILL the job's driver at a random moment; submitting the same job again
    trains only the missing cells, and the tables are complete, cell by cell."""
    rng, seed = fault_rng()
    out = tmp_path / "aal"
    command = _submit(two_nodes, out, "--dataset", "shapes:n=600,image_size=24", "--epochs", "3")
    submitted = subprocess.run(
        [*command[:5], "--no-wait", "--submission-id", "first", *command[5:]],
        env=two_nodes.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    logs = subprocess.Popen(
        [str(BIN / "ray"), "job", "logs", "--address", two_nodes.dashboard, "--follow", "first"],
        env=two_nodes.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip

    def kill_driver() -> None:
        # by command line: the driver may not have joined Ray yet (no driver_info then)
        for pid in _pids_running(str(out)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    kill = RandomKill.drawn(logs, kill_driver, rng, total=6)
    kill.run()
    assert kill.killed_after is not None, f"{seed}: the search ended before the kill"
    before = (
        pd.read_parquet(out / "results.parquet") if (out / "results.parquet").exists() else None
    )
    recorded = 0 if before is None else len(stage_one_cells(before))

    again = subprocess.run(command, env=two_nodes.env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, f"{seed}\n{again.stdout[-3000:]}"
    assert f"{recorded} already recorded, {6 - recorded} to train" in again.stdout, seed
    after = pd.read_parquet(out / "results.parquet")
    check_pair_search(after, pd.read_parquet(out / "pair_matrix.parquet"), ["red", "large", "left"])
    if before is not None:
        check_only_missing_were_trained(before, after)
