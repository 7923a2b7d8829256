"""A local search's Ray is reachable from this machine only, and only with its token
(issue 28): the sockets every Ray process of a run listens on, read from /proc
while the run trains, and a client without the token turned away."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.orchestrator.sockets import descendants, listening, off_loopback

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc"),
]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}


def test_a_pair_searchs_ray_listens_on_loopback_only(tmp_path: Path) -> None:
    exe = str(Path(sys.executable).with_name("auxsearch"))
    cmd = [
        exe, "pairs", "--dataset", "shapes:n=80,image_size=16", "--attributes", "red,large",
        "--backbone", "small_cnn", "--epochs", "1", "--lambdas", "0.1",
        "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen: dict[tuple[int, str, int], str] = {}
    while proc.poll() is None:
        for sock in listening(descendants(proc.pid)):
            if sock not in seen:
                seen[sock] = Path(f"/proc/{sock[0]}/comm").read_text().strip()
        time.sleep(0.2)
    out = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode == 0, out[-2000:]
    # Ray was up while we looked: its GCS, raylet and workers all listen
    assert {"gcs_server", "raylet"} <= set(seen.values()), seen
    assert off_loopback(list(seen)) == [], {s: seen[s] for s in off_loopback(list(seen))}


def test_a_client_without_the_token_is_turned_away() -> None:
    script = textwrap.dedent(
        """
        import os, subprocess, sys
        import ray
        from orchestrator.ray_session import _LOOPBACK_ENV, ray_session

        with ray_session(num_cpus=1):
            gcs = ray.get_runtime_context().gcs_address
            # the session's environment is the caller's: no token to inherit
            assert "RAY_AUTH_TOKEN" not in os.environ
            join = f"import ray; ray.init(address='{gcs}'); print('JOINED')"
            loopback = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
            stranger = subprocess.run(
                [sys.executable, "-c", join], env=loopback, capture_output=True, text=True,
                timeout=120,
            )
            # what Ray's own processes were started with: the token, token mode, loopback
            friend = subprocess.run(
                [sys.executable, "-c", join], env={**loopback, **_LOOPBACK_ENV,
                "RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=120,
            )
            print("stranger", stranger.returncode, "JOINED" in stranger.stdout)
            print("friend", friend.returncode, "JOINED" in friend.stdout)
        print("token left behind", "RAY_AUTH_TOKEN" in os.environ)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=_clean_env(), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert "stranger 1 False" in lines, proc.stdout
    assert "friend 0 True" in lines, proc.stdout  # the same join with the token works
    assert "token left behind False" in lines
