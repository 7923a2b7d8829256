"""`--out gs://...` against a real Cloud Storage JSON API on 127.0.0.1
(gcp-storage-emulator, from PyPI): a pair search writes its tables to a bucket,
a rerun resumes from there, and `auxsearch results pull` brings them back.

pyarrow's GCS filesystem (google-cloud-cpp) is pointed at the emulator by
CLOUD_STORAGE_EMULATOR_ENDPOINT; `anonymous@` in the URI skips the credential
lookup that a real bucket would do."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cloud import free_port, serving, write_resume_and_pull

pytestmark = pytest.mark.integration

BUCKET = "auxsearch-gcs"


@pytest.fixture
def gcs_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The emulator on a free loopback port with a bucket; stopped by its pid."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    make_bucket = urllib.request.Request(  # also the readiness probe
        f"{endpoint}/storage/v1/b?project=test",
        data=json.dumps({"name": BUCKET}).encode(),
        headers={"Content-Type": "application/json"},
    )
    args = ["start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"]
    with serving(
        "gcp-storage-emulator", args, lambda: urllib.request.urlopen(make_bucket, timeout=2).close()
    ):
        env = {**os.environ, "CLOUD_STORAGE_EMULATOR_ENDPOINT": endpoint}
        env.pop("RAY_ADDRESS", None)
        yield env


@pytest.mark.slow  # slow: `make test` keeps under 15 min on 2 cores; `make test-all` runs it
def test_pairs_write_resume_and_pull_through_gcs(gcs_env: dict[str, str], tmp_path: Path) -> None:
    write_resume_and_pull(gcs_env, f"gs://anonymous@{BUCKET}/runs/aal", tmp_path)
