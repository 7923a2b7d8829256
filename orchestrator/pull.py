"""`auxsearch results pull SRC DEST`: copy a search's tables from where it ran
(an `s3://` / `gs://` URI or a directory) to a local directory, for pandas.

Copied: every file of the search except Ray's own experiment folder `ray/`
(trial logs and staging, often large; `--with-ray` copies it too), so the
Parquet tables, plots, `search.json`, the study file and `artifacts/`. Each file
is written atomically. DEST may hold an earlier pull of the same search (the
same identity in `search.json`, even if a rerun has since added seeds or λ
values): its files are refreshed. A DEST holding another search is refused, so
no result is ever overwritten by an unrelated one.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pyarrow.fs as pafs

from . import manifest
from .errors import OutputError
from .storage import OutputDir

Echo = Callable[[str], None]


def pull(source: str, destination: str, *, with_ray: bool = False, echo: Echo = print) -> int:
    """Copy the files; returns how many were copied."""
    src = OutputDir(source, flag="results pull")
    dest = OutputDir(destination, flag="results pull destination")
    if not src.exists(manifest.MANIFEST):
        raise OutputError(
            f"{source} holds no auxsearch search ({manifest.MANIFEST} is missing); give the --out"
            " of a pairs, sweep or grid run"
        )
    # the same search may have grown since the last pull (more seeds or λ values:
    # other settings, the same identity); only another identity is refused
    theirs = _identity(src.read_bytes(manifest.MANIFEST))
    if dest.exists(manifest.MANIFEST) and (
        theirs is None
        or manifest.first_difference(_identity(dest.read_bytes(manifest.MANIFEST)), theirs)
    ):
        raise OutputError(
            f"{destination} already holds another search (the identity in"
            f" {manifest.MANIFEST} differs); pull into a new directory"
        )
    dest.ensure_writable()
    try:
        infos = src.fs.get_file_info(pafs.FileSelector(src.root, recursive=True))
    except OSError as exc:
        raise OutputError(f"cannot list {source} ({exc})") from None
    copied = 0
    for info in sorted(infos, key=lambda i: i.path):
        if info.type != pafs.FileType.File:
            continue
        name = info.path[len(src.root) :].lstrip("/")
        if not with_ray and (name == "ray" or name.startswith("ray/")):
            continue
        if name.startswith(".") or "/." in name:  # locks and write probes
            continue
        dest.write_bytes(name, src.read_bytes(name))
        copied += 1
    echo(f"pulled {copied} file(s) from {source} to {destination}")
    return copied


def _identity(text: bytes) -> object | None:
    try:
        loaded = json.loads(text)
    except ValueError:
        return None
    return loaded.get("identity") if isinstance(loaded, dict) else None
