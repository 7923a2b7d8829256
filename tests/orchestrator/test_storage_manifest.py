from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator import manifest
from orchestrator.errors import OutputError
from orchestrator.storage import OutputDir


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(OutputError, match="is a file; give a directory path"):
        OutputDir(str(target)).ensure_writable()


def test_claim_new_resume_and_refuse_another_search(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path / "run"))
    out.ensure_writable()
    identity = {"search": "aal-pairs", "dataset": "x", "train": {"epochs": 2}}
    assert manifest.claim(out, identity, {"seeds": 1}) is False
    assert manifest.claim(out, identity, {"seeds": 2}) is True
    stored = json.loads((tmp_path / "run" / manifest.MANIFEST).read_text())
    assert stored["settings"] == {"seeds": 2}
    other = {**identity, "train": {"epochs": 3}}
    with pytest.raises(OutputError, match=r"different search \(train.epochs: 2 there, 3 here\)"):
        manifest.claim(out, other, {})


def test_unrelated_non_empty_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    out = OutputDir(str(tmp_path))
    with pytest.raises(OutputError, match="already holds files"):
        manifest.claim(out, {"search": "x"}, {})
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_search_written_before_precision_existed_resumes_at_fp32_only(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path / "run"))
    out.ensure_writable()
    before = {"search": "aal-pairs", "dataset": "x", "train": {"epochs": 2}}  # an older search.json
    assert manifest.claim(out, before, {}) is False
    now = {**before, "train": {"epochs": 2, "precision": "fp32"}}
    assert manifest.claim(out, now, {}) is True  # what it ran: the same search
    assert manifest.first_difference(now, before) is None  # either way round
    bf16 = {**before, "train": {"epochs": 2, "precision": "bf16"}}
    with pytest.raises(
        OutputError, match=r'different search \(train.precision: "fp32" there, "bf16" here\)'
    ):
        manifest.claim(out, bf16, {})
    assert manifest.first_difference(before, {**before, "train": {"epochs": 2, "lr": 0.1}}) == (
        "train.lr is set in only one of them"  # any other new key still differs
    )


def test_a_pair_search_written_before_the_probe_existed_resumes_without_one() -> None:
    before = {"search": "aal-pairs", "adversarial": {"adversary_loss": "reversal"}}
    now = {"search": "aal-pairs", "adversarial": {"adversary_loss": "reversal", "probe": False}}
    assert manifest.first_difference(before, now) is None
    probed = {"search": "aal-pairs", "adversarial": {"adversary_loss": "reversal", "probe": True}}
    assert manifest.first_difference(before, probed) == "adversarial.probe: false there, true here"


def test_a_search_json_written_with_a_password_resumes_and_loses_it(tmp_path: Path) -> None:
    """Before issue 28 the identity kept --storage verbatim; such a search is the same
    search now (its URL redacted), and the rewritten search.json holds no password."""
    out = OutputDir(str(tmp_path / "run"))
    out.ensure_writable()
    old = {"search": "aal-pairs", "storage": "postgresql://u:s3cret@h/db"}
    (tmp_path / "run" / manifest.MANIFEST).write_text(json.dumps({"identity": old}))
    now = {"search": "aal-pairs", "storage": "postgresql://u:***@h/db"}
    assert manifest.claim(out, now, {}) is True
    assert "s3cret" not in (tmp_path / "run" / manifest.MANIFEST).read_text()
    with pytest.raises(OutputError, match="different search"):
        manifest.claim(out, {**now, "storage": "postgresql://u:***@other/db"}, {})
