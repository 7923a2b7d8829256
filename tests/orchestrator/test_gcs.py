"""`--out gs://...` against a real Cloud Storage JSON API on 127.0.0.1
(gcp-storage-emulator, from PyPI): a pair search writes its tables to a bucket,
a rerun resumes from there, and `auxsearch results pull` brings them back.

pyarrow's GCS filesystem (google-cloud-cpp) is pointed at the emulator by
CLOUD_STORAGE_EMULATOR_ENDPOINT; `anonymous@` in the URI skips the credential
lookup that a real bucket would do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cloud import free_port, write_resume_and_pull

pytestmark = pytest.mark.integration

BUCKET = "auxsearch-gcs"


@pytest.fixture
def gcs_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The emulator on a free loopback port with a bucket; stopped by its pid."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gcp-storage-emulator"), "start",
         "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                request = urllib.request.Request(
                    f"{endpoint}/storage/v1/b?project=test",
                    data=json.dumps({"name": BUCKET}).encode(),
                    headers={"Content-Type": "application/json"},
                )
                urllib.request.urlopen(request, timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("gcp-storage-emulator did not start") from None
                time.sleep(0.2)
        env = {**os.environ, "CLOUD_STORAGE_EMULATOR_ENDPOINT": endpoint}
        env.pop("RAY_ADDRESS", None)
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_pairs_write_resume_and_pull_through_gcs(gcs_env: dict[str, str], tmp_path: Path) -> None:
    write_resume_and_pull(gcs_env, f"gs://anonymous@{BUCKET}/runs/aal", tmp_path)
