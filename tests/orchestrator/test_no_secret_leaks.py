"""A storage password appears in no output stream and no file of a run (issue 28):
a sweep on a real PostgreSQL given a password in its URL, the same URL pointed at
a port nothing listens on, and a grep for the password over stdout, stderr,
every file under --out and Ray's own session directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from orchestrator.redact import redact
from tests.orchestrator.postgres import postgres_server

pytestmark = pytest.mark.integration

SECRET = "Hunter2-s3cr3t-pw"
EXE = str(Path(sys.executable).with_name("auxsearch"))
SPACE = """\
method: aal
fixed: {backbone: small_cnn, epochs: 1, batch_size: 32}
space:
  lam: {choice: [0.1, 1.0]}
"""


def _with_password(url: str) -> str:
    # the test server trusts loopback, so any password is accepted and kept in the URL
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")


def _files_holding(root: Path, needle: bytes) -> list[str]:
    return [
        str(p)
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and needle in p.read_bytes()
    ]


def test_redact_hides_passwords_and_keeps_the_rest() -> None:
    assert redact("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("at mysql+pymysql://u:p@ss@h/db.") == "at mysql+pymysql://u:***@h/db."
    assert redact("redis://:pw@h/0 and x") == "redis://:***@h/0 and x"
    assert redact("postgresql://h/db?user=u&password=pw&x=1") == (
        "postgresql://h/db?user=u&password=***&x=1"
    )
    for kept in ("postgresql://u@h:5432/db", "sqlite:///a:b/optuna.db", "s3://b/k", "a=b"):
        assert redact(kept) == kept


def test_no_output_stream_or_file_of_a_run_holds_the_password(tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    ray_tmp = Path(tempfile.mkdtemp(prefix="rs"))  # short: Ray's socket paths live here
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))}
    env["RAY_TMPDIR"] = str(ray_tmp)
    out = tmp_path / "sweep"

    def sweep(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
        args = [
            EXE, "sweep", "--method", "aal", "--space", str(space), "--trials", "2",
            "--dataset", "shapes:n=120,image_size=16", "--set", "main=[left]",
            "--set", "adversaries=[red]", "--max-concurrent", "1", "--storage", url, *extra,
        ]  # fmt: skip
        return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)

    try:
        unreachable = sweep(f"postgresql://postgres:{SECRET}@127.0.0.1:9/none", "--out", str(out))
        assert unreachable.returncode == 2, unreachable.stderr
        assert "postgres:***@127.0.0.1:9" in unreachable.stderr
        assert not out.exists()  # refused before anything was written
        with postgres_server() as url:
            ran = sweep(_with_password(url), "--out", str(out))
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert "auxsearch dashboard postgresql://postgres:***@" in ran.stdout
        assert (out / "results.parquet").exists()
        for name, text in (("stdout", unreachable.stdout + ran.stdout),
                           ("stderr", unreachable.stderr + ran.stderr)):  # fmt: skip
            assert SECRET not in text, f"the password is in {name}"
        assert _files_holding(out, SECRET.encode()) == []
        assert _files_holding(ray_tmp, SECRET.encode()) == []
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
