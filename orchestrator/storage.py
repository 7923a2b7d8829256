"""Where a search's files live: a local directory or an `s3://` / `gs://` URI.

All access goes through pyarrow.fs, so the same code writes to a laptop's disk
and to cloud storage. Writes are atomic: local files are written to a temporary
name in the same directory and renamed over the target (a reader sees the old
file or the new one, never half of one); object stores publish an object only
when its upload completes.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path

import pyarrow.fs as pafs

from .errors import OutputError

_URI_SCHEMES = ("s3://", "gs://", "gcs://")
_ANY_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
# What a search keeps inside its location that must be a file, or a folder: a
# folder where a file goes (or the reverse) is refused before anything starts.
KEPT_FILES = ("search.json", "results.parquet", "curves.parquet", "optuna.db", ".lock")
KEPT_FOLDERS = ("ray",)


def is_uri(location: str) -> bool:
    return location.startswith(_URI_SCHEMES)


def check_location(location: str, flag: str = "--out") -> str:
    """`location` as a local path or an s3:// / gs:// URI; `file://` is a local
    path; any other scheme (`ftp://`, a typo such as `s4://`) is refused, since it
    would otherwise name a local folder `ftp:`."""
    if not location.strip():
        raise OutputError(f"{flag} is empty; give a directory or an s3:// or gs:// URI")
    if location.startswith("file://"):
        return location.removeprefix("file://") or "/"
    if _ANY_SCHEME.match(location) and not is_uri(location):
        scheme = location.split("://", 1)[0]
        raise OutputError(
            f"{flag} {location}: auxsearch does not read or write {scheme}:// locations; use a"
            " local directory, s3://bucket/path or gs://bucket/path"
        )
    return location


class OutputDir:
    """An output location with atomic file writes; `path(name)` gives the full path."""

    def __init__(self, location: str, flag: str = "--out"):
        location = check_location(location, flag)
        self.location, self.flag = location, flag
        if is_uri(location):
            try:
                self.fs, root = pafs.FileSystem.from_uri(location)
            except Exception as exc:  # pyarrow raises several types for bad URIs
                raise OutputError(f"{flag} {location} cannot be opened: {exc}") from None
            self.root = root.rstrip("/")
            self.local = False
        else:
            self.fs = pafs.LocalFileSystem()
            self.root = str(Path(location).expanduser().resolve())
            self.local = True
            self._check_levels(Path(self.root))

    @property
    def uri(self) -> str:
        """The location as Ray Tune's `storage_path` expects it (absolute path or URI)."""
        return self.root if self.local else self.location.rstrip("/")

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def display(self, name: str) -> str:
        """Where a file is, as the user wrote the location (`s3://bucket/...` for a URI)."""
        return self.path(name) if self.local else f"{self.location.rstrip('/')}/{name}"

    def ray_storage(self) -> str:
        """Where Ray Tune keeps its experiments: `ray/` inside this location."""
        return self.path("ray") if self.local else f"{self.uri}/ray"

    def exists(self, name: str) -> bool:
        return self.fs.get_file_info(self.path(name)).type != pafs.FileType.NotFound

    def ensure_writable(self) -> None:
        """Create the location and prove a file can be written there, or fail in one sentence."""
        if self.local:
            root_dir = Path(self.root)
            self._check_levels(root_dir)  # again: it may have changed since
            try:
                root_dir.mkdir(parents=True, exist_ok=True)
                local_probe = root_dir / f".write-test-{uuid.uuid4().hex}"
                local_probe.write_bytes(b"")
                local_probe.unlink()
            except OSError as exc:
                raise OutputError(
                    f"--out {self.location} cannot be written ({exc.strerror or exc});"
                    " choose a directory you can write to"
                ) from None
            return
        try:
            self.fs.create_dir(self.root, recursive=True)
            probe = self.path(f".write-test-{uuid.uuid4().hex}")
            with self.fs.open_output_stream(probe) as f:
                f.write(b"")
            self.fs.delete_file(probe)
        except OSError as exc:
            raise OutputError(f"--out {self.location} cannot be written ({exc})") from None

    def _check_levels(self, root_dir: Path) -> None:
        """Every level of a local location is a folder or not there yet, and what a
        search keeps inside it has the kind the search expects."""
        for level in (root_dir, *root_dir.parents):
            if level.exists() or level.is_symlink():
                if not level.is_dir():
                    where = "is a file" if level == root_dir else f"lies inside the file {level}"
                    raise OutputError(f"{self.flag} {self.location} {where}; give a directory path")
                break
        for name in KEPT_FILES:
            if (root_dir / name).is_dir():
                raise OutputError(
                    f"{self.flag} {self.location} holds a folder {name} where a search keeps a"
                    " file; move it away or use another directory"
                )
        for name in KEPT_FOLDERS:
            kept = root_dir / name
            if kept.exists() and not kept.is_dir():
                raise OutputError(
                    f"{self.flag} {self.location} holds a file {name} where a search keeps a"
                    " folder; move it away or use another directory"
                )

    def read_bytes(self, name: str) -> bytes:
        with self.fs.open_input_file(self.path(name)) as f:
            data: bytes = f.read()
            return data

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write a whole file atomically."""
        target = self.path(name)
        if self.local:
            tmp = f"{target}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise OutputError(
                    f"cannot write {target} ({exc.strerror or exc}); earlier files are intact"
                ) from None
            return
        try:
            with self.fs.open_output_stream(target) as f:
                f.write(data)
        except OSError as exc:
            raise OutputError(f"cannot write {target} ({exc}); earlier files are intact") from None
