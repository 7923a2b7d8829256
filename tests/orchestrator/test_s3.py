"""`--out s3://...` against a real S3 API server on 127.0.0.1 (moto's server mode): a
pair search writes its tables there, a rerun resumes from there, and
`auxsearch results pull` brings them back for pandas."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from .cloud import PAIRS, cli, free_port, serving, write_resume_and_pull
from .faults import (
    RandomKill,
    check_only_missing_were_trained,
    check_pair_search,
    fault_rng,
    stage_one_cells,
)

pytestmark = pytest.mark.integration

BUCKET = "auxsearch-test"


@pytest.fixture
def s3_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A moto S3 server on a free loopback port, a bucket in it, and the environment
    that points boto3, pyarrow and Ray's workers at it; stopped by its pid."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    ready = lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close()  # noqa: E731
    with serving("moto_server", ["-H", "127.0.0.1", "-p", str(port)], ready):
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


def test_pairs_write_resume_and_pull_through_s3(s3_env: dict[str, str], tmp_path: Path) -> None:
    write_resume_and_pull(s3_env, f"s3://{BUCKET}/runs/aal", tmp_path)


def _read_s3_parquet(env: dict[str, str], key: str) -> pd.DataFrame | None:
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    fs = pafs.S3FileSystem(
        access_key="test",
        secret_key="test",
        region="us-east-1",
        endpoint_override=env["AWS_ENDPOINT_URL_S3"],
    )
    if fs.get_file_info(f"{BUCKET}/{key}").type == pafs.FileType.NotFound:
        return None
    return pq.read_table(f"{BUCKET}/{key}", filesystem=fs).to_pandas()


# ~50 s on 2 cores; a killed driver's resume is also checked locally, on the two-node
# cluster and for sweeps in the default run, and s3:// resume by
# test_pairs_write_resume_and_pull_through_s3
@pytest.mark.slow
def test_a_driver_killed_at_a_random_moment_resumes_from_s3(
    s3_env: dict[str, str], tmp_path: Path
) -> None:
    """SIGKILL the driver (and its local Ray) at a random moment of a pair search
    writing to s3://; the same command again trains only the missing cells, and the
    tables read back from S3 are complete, cell by cell."""
    rng, seed = fault_rng()
    attributes = ["red", "large", "left"]
    command = [
        sys.executable, "-m", "orchestrator.cli", "pairs",
        "--dataset", "shapes:n=600,image_size=24", "--attributes", ",".join(attributes),
        "--backbone", "small_cnn", "--epochs", "3", "--lambdas", "0.1",
        "--out", f"s3://{BUCKET}/runs/killed", "--storage", f"sqlite:///{tmp_path / 'o.db'}",
    ]  # fmt: skip
    first = subprocess.Popen(
        command, env={**s3_env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    kill = RandomKill.drawn(first, lambda: os.killpg(first.pid, signal.SIGKILL), rng, total=6)
    output = kill.run()
    assert kill.killed_after is not None, f"{seed}: the search ended before the kill\n{output}"
    before = _read_s3_parquet(s3_env, "runs/killed/results.parquet")
    recorded = 0 if before is None else len(stage_one_cells(before))

    again = cli(s3_env, *command[3:])
    assert again.returncode == 0, f"{seed}\n{again.stderr[-3000:]}"
    assert f"{recorded} already recorded, {6 - recorded} to train" in again.stdout, seed
    after = _read_s3_parquet(s3_env, "runs/killed/results.parquet")
    matrix = _read_s3_parquet(s3_env, "runs/killed/pair_matrix.parquet")
    assert after is not None and matrix is not None
    check_pair_search(after, matrix, attributes)
    if before is not None:
        check_only_missing_were_trained(before, after)


def test_s3_without_storage_or_bucket_fails_in_one_sentence(
    s3_env: dict[str, str], tmp_path: Path
) -> None:
    no_db = cli(s3_env, *PAIRS, "--out", f"s3://{BUCKET}/runs/x")
    assert no_db.returncode == 2
    assert "pass --storage with a database URL" in no_db.stderr
    assert "Traceback" not in no_db.stderr
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    no_bucket = cli(s3_env, *PAIRS, "--out", "s3://missing-bucket/runs", "--storage", storage)
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
    for folder, x in ((a, 1), (b, 2)):
        folder.mkdir()
        (folder / "search.json").write_text(
            f'{{"identity": {{"x": {x}}}, "settings": {{"seeds": 1}}}}'
        )
        (folder / "results.parquet").write_text(f"table {x}")
        (folder / "ray").mkdir()
        (folder / "ray" / "big.log").write_text("log")
    assert pull(str(a), str(dest), echo=lambda _: None) == 2  # ray/ left out
    # the same search, grown by a rerun with more seeds: refreshed, not refused
    (a / "search.json").write_text('{"identity": {"x": 1}, "settings": {"seeds": 3}}')
    (a / "results.parquet").write_text("table 1, 3 seeds")
    assert pull(str(a), str(dest), echo=lambda _: None) == 2
    assert (dest / "results.parquet").read_text() == "table 1, 3 seeds"
    with pytest.raises(OutputError, match="already holds another search"):
        pull(str(b), str(dest))
    assert (dest / "results.parquet").read_text() == "table 1, 3 seeds"
