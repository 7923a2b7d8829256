"""`--out s3://...` against a real S3 API server on 127.0.0.1 (moto's server mode): a
pair search writes its tables there, a rerun resumes from there, and
`auxsearch results pull` brings them back for pandas."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

BUCKET = "auxsearch-test"
PAIRS = [
    "pairs",
    "--dataset",
    "shapes:n=150,image_size=16",
    "--attributes",
    "red,large",
    "--backbone",
    "small_cnn",
    "--epochs",
    "1",
    "--lambdas",
    "0.1",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A moto S3 server on a free loopback port, a bucket in it, and the environment
    that points boto3, pyarrow and Ray's workers at it; stopped by its pid."""
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        endpoint = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ENDPOINT_URL_S3": endpoint,
        }
        env.pop("RAY_ADDRESS", None)
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        ).create_bucket(Bucket=BUCKET)
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_pairs_write_resume_and_pull_through_s3(s3_env: dict[str, str], tmp_path: Path) -> None:
    out = f"s3://{BUCKET}/runs/aal"
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = _cli(s3_env, *PAIRS, "--out", out, "--storage", storage)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "3 to train" in first.stdout
    assert f"{out}/pair_matrix.parquet" in first.stdout
    again = _cli(s3_env, *PAIRS, "--out", out, "--storage", storage)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "3 already recorded, 0 to train" in again.stdout and "(resumed)" in again.stdout
    dest = tmp_path / "pulled"
    pulled = _cli(s3_env, "results", "pull", out, str(dest))
    assert pulled.returncode == 0, pulled.stderr[-2000:]
    names = sorted(p.name for p in dest.iterdir())
    assert {"results.parquet", "pair_matrix.parquet", "aal_summary.parquet", "search.json"} <= set(
        names
    )
    assert "ray" not in names
    matrix = pd.read_parquet(dest / "pair_matrix.parquet")
    assert list(matrix["main"]) == ["red", "large"]
    results = pd.read_parquet(dest / "results.parquet")
    assert set(results["trial_id"]) and (results["status"] == "ok").all()


def test_s3_without_storage_or_bucket_fails_in_one_sentence(
    s3_env: dict[str, str], tmp_path: Path
) -> None:
    no_db = _cli(s3_env, *PAIRS, "--out", f"s3://{BUCKET}/runs/x")
    assert no_db.returncode == 2
    assert "pass --storage with a database URL" in no_db.stderr
    assert "Traceback" not in no_db.stderr
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    no_bucket = _cli(s3_env, *PAIRS, "--out", "s3://missing-bucket/runs", "--storage", storage)
    assert no_bucket.returncode == 2
    assert "cannot be written" in no_bucket.stderr and "Traceback" not in no_bucket.stderr


def test_pull_refuses_what_is_not_a_search_and_another_search(tmp_path: Path) -> None:
    from orchestrator.errors import OutputError
    from orchestrator.pull import pull

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OutputError, match="holds no auxsearch search"):
        pull(str(empty), str(tmp_path / "d"))
    a, b, dest = tmp_path / "a", tmp_path / "b", tmp_path / "dest"
    for folder, text in ((a, '{"x": 1}'), (b, '{"x": 2}')):
        folder.mkdir()
        (folder / "search.json").write_text(text)
        (folder / "results.parquet").write_bytes(text.encode())
        (folder / "ray").mkdir()
        (folder / "ray" / "big.log").write_text("log")
    assert pull(str(a), str(dest), echo=lambda _: None) == 2  # ray/ left out
    assert pull(str(a), str(dest), echo=lambda _: None) == 2  # the same search: refreshed
    with pytest.raises(OutputError, match="already holds another search"):
        pull(str(b), str(dest))
    assert (dest / "results.parquet").read_text() == '{"x": 1}'
