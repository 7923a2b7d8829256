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
import uuid
from pathlib import Path

import pyarrow.fs as pafs

from .errors import OutputError

_URI_SCHEMES = ("s3://", "gs://", "gcs://")


def is_uri(location: str) -> bool:
    return location.startswith(_URI_SCHEMES)


class OutputDir:
    """An output location with atomic file writes; `path(name)` gives the full path."""

    def __init__(self, location: str):
        self.location = location
        if is_uri(location):
            try:
                self.fs, root = pafs.FileSystem.from_uri(location)
            except Exception as exc:  # pyarrow raises several types for bad URIs
                raise OutputError(f"--out {location} cannot be opened: {exc}") from None
            self.root = root.rstrip("/")
            self.local = False
        else:
            self.fs = pafs.LocalFileSystem()
            self.root = str(Path(location).expanduser().resolve())
            self.local = True

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
            if root_dir.exists() and not root_dir.is_dir():
                raise OutputError(f"--out {self.location} is a file; give a directory path")
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
