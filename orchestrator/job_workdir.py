"""Running as a Ray job submitted with `ray job submit --working-dir DIR`.

Ray starts the command inside its unpacked copy of DIR
(`<ray temp>/session_*/runtime_resources/working_dir_files/_ray_pkg_*`). Two
things follow, both seen on Ray 2.60:

- When the driver joins the cluster, Ray deletes that copy and unpacks it again
  at the same path. The driver's current directory is then a deleted one:
  `os.getcwd()` raises, and Tune fails as `Tuner.fit` ends (it takes relative
  paths against the cwd). So the driver moves to a directory that stays put,
  after every relative path it was given has been made absolute.
- The copy is removed when the job ends: a relative `--out` or sqlite storage
  would write results into it and lose them. Those are refused, in one sentence,
  before anything runs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .errors import UserInputError
from .storage import is_uri

_COPY_MARKER = f"{os.sep}runtime_resources{os.sep}working_dir_files{os.sep}"

# flags that name files or directories the command reads
_INPUT_PATHS = ("data", "config", "data_root")


def in_working_dir_copy(cwd: str) -> bool:
    """Whether `cwd` lies in Ray's unpacked copy of a job's working dir."""
    return _COPY_MARKER in cwd + os.sep


def leave_working_dir_copy(args: argparse.Namespace) -> None:
    """In a job's working-dir copy: refuse outputs that would be deleted with it,
    make input paths absolute, and move the driver's cwd out of the copy."""
    try:
        cwd = os.getcwd()
    except FileNotFoundError:  # already deleted under us: nothing relative can be resolved
        raise UserInputError(
            "the current directory no longer exists; run auxsearch from an existing directory"
        ) from None
    if not in_working_dir_copy(cwd):
        return
    out = getattr(args, "out", None)
    if out and not is_uri(out) and not Path(out).is_absolute():
        raise UserInputError(
            f"--out {out} is relative, so it would land in Ray's temporary copy of the job's"
            " working dir, which Ray deletes when the job ends; give an absolute path on the"
            " head node or a shared filesystem, or s3://bucket/prefix"
        )
    storage = getattr(args, "storage", None)
    if storage and storage.startswith("sqlite:///") and not storage.startswith("sqlite:////"):
        raise UserInputError(
            f"--storage {storage} is a relative sqlite path inside Ray's temporary copy of the"
            " job's working dir, deleted when the job ends; use sqlite:////absolute/path.db"
            " or a server (postgresql://...)"
        )
    for name in _INPUT_PATHS:
        value = getattr(args, name, None)
        if value and not is_uri(value) and not Path(value).is_absolute():
            setattr(args, name, str(Path(cwd, value)))
    home = Path.home()
    os.chdir(home if home.is_dir() else Path(os.sep))
