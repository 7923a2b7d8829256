"""Shared by the cloud-storage tests (s3:// against moto, gs:// against
gcp-storage-emulator): a free loopback port, a server run for the length of a
test, the CLI in a subprocess with the server's environment, and the write →
resume → pull path a user takes."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

PAIRS = [
    "pairs", "--dataset", "shapes:n=150,image_size=16", "--attributes", "red,large",
    "--backbone", "small_cnn", "--epochs", "1", "--lambdas", "0.1",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(name: str, args: list[str], ready: Callable[[], object]) -> Iterator[None]:
    """Run the console script `name` of this environment until the block ends (stopped
    by its pid); `ready` is retried until it stops raising OSError."""
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / name), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ready()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.2)
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def write_resume_and_pull(env: dict[str, str], out: str, tmp_path: Path) -> None:
    """A pair search writes to `out`, the same command resumes training nothing, and
    `results pull` brings the tables back for pandas (Ray's folder left behind)."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = cli(env, *PAIRS, "--out", out, "--storage", storage)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "3 to train" in first.stdout
    assert f"{out}/pair_matrix.parquet" in first.stdout
    again = cli(env, *PAIRS, "--out", out, "--storage", storage)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "3 already recorded, 0 to train" in again.stdout and "(resumed)" in again.stdout
    dest = tmp_path / "pulled"
    pulled = cli(env, "results", "pull", out, str(dest))
    assert pulled.returncode == 0, pulled.stderr[-3000:]
    names = {p.name for p in dest.iterdir()}
    assert {"results.parquet", "pair_matrix.parquet", "aal_summary.parquet", "search.json"} <= names
    assert "ray" not in names
    matrix = pd.read_parquet(dest / "pair_matrix.parquet")
    assert list(matrix["main"]) == ["red", "large"]
    results = pd.read_parquet(dest / "results.parquet")
    assert (results["status"] == "ok").all() and len(set(results["trial_id"])) == 3
