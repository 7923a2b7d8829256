"""`auxsearch.load` is a reader: a table that cannot be read is raised as one
sentence that says how to rebuild it; load prints nothing, logs nothing, and
rebuilds nothing (a rebuild is the search's rerun, which owns --out)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import auxsearch
from orchestrator import manifest
from orchestrator.storage import OutputDir

DAMAGED = b"PAR1 cut short"


def _damaged_search(root: Path) -> Path:
    out = root / "aal"
    out.mkdir()
    identity = {"search": "aal-pairs", "dataset": "shapes", "attributes": ["large", "red"]}
    manifest.claim(OutputDir(str(out)), identity, {"attributes": ["red", "large"]})
    for name in ("results.parquet", "curves.parquet", "pair_matrix.parquet"):
        (out / name).write_bytes(DAMAGED)
    return out


def test_loading_damaged_tables_raises_and_is_silent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _damaged_search(tmp_path)
    before = sorted(p.name for p in out.iterdir())
    caplog.set_level(logging.DEBUG)
    tables = auxsearch.load(out)
    for read in (lambda: tables.results, lambda: tables.table("curves"), lambda: tables.matrix):
        with pytest.raises(auxsearch.UserInputError) as refused:
            read()
        text = str(refused.value)
        assert "cannot be read" in text and "same --out to rebuild it" in text
        assert "\n" not in text
    assert capsys.readouterr() == ("", "")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("auxsearch")] == []
    # nothing set aside, nothing rebuilt: the files are as the search left them
    assert sorted(p.name for p in out.iterdir()) == before
    assert (out / "results.parquet").read_bytes() == DAMAGED
