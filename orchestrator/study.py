"""Optuna storages and studies of auxsearch searches.

A search keeps its Optuna study next to its results: by default a SQLite file
`optuna.db` inside `--out DIR`, or any RDB URL given with `--storage`
(`postgresql://user@host/db`, `sqlite:///path.db`). The study is the record of
every trial a sweep proposed, so a rerun continues it: finished trials count
towards `--trials`, and trials left RUNNING by a driver that died are handed
out again (same number, same parameters) instead of being lost or duplicated.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import OutputError, UserInputError
from .storage import OutputDir

STORAGE_FILE = "optuna.db"


def storage_url(out: OutputDir, url: str | None) -> str:
    """The study storage of a search: `url`, or the SQLite file inside a local --out."""
    if url:
        if "://" not in url:
            raise UserInputError(
                f"--storage {url} is not a database URL; use e.g. postgresql://user@host/db"
                " or sqlite:///path/optuna.db"
            )
        return url
    if not out.local:
        raise UserInputError(
            f"--out {out.location} is not a local directory, so the study cannot live there;"
            " pass --storage with a database URL (e.g. postgresql://...)"
        )
    return f"sqlite:///{out.path(STORAGE_FILE)}"


def default_study_name(base: str, identity: dict[str, Any], *, shared: bool) -> str:
    """`base` for a study in the search's own storage file; in a shared database,
    `base-<digest of the search>`, so two searches never meet in one study."""
    if not shared:
        return base
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    return f"{base}-{digest}"


def open_storage(url: str) -> Any:
    """An Optuna RDBStorage object (an object, so Ray's OptunaSearch and the dashboard
    share it), with one sentence if the database cannot be reached."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url.startswith("postgresql://"):  # name the driver we install (psycopg 3)
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        return optuna.storages.RDBStorage(url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise UserInputError(f"study storage {url} cannot be opened ({reason})") from None


def location_to_storage_url(location: str) -> str:
    """`auxsearch dashboard DIR|URL`: a search directory's storage, or a URL as given."""
    if "://" in location and not location.startswith(("s3://", "gs://", "gcs://")):
        return location
    path = Path(location)
    if path.is_file() and path.suffix in (".db", ".sqlite", ".sqlite3"):
        return f"sqlite:///{path.resolve()}"
    db = path / STORAGE_FILE
    if not db.is_file():
        raise UserInputError(
            f"{location} holds no Optuna study ({STORAGE_FILE} is missing); give the --out of"
            " an `auxsearch sweep` or `auxsearch pairs`, or a storage URL"
        )
    return f"sqlite:///{db.resolve()}"


@contextmanager
def exclusive(out: OutputDir) -> Iterator[None]:
    """Hold `--out` for one driver at a time: a second concurrent run would hand out
    the first one's running trials as its own."""
    if not out.local:
        yield
        return
    lock_path = out.path(".lock")
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise OutputError(
                f"another auxsearch is running on --out {out.location}; wait for it or use"
                " another --out"
            ) from None
        try:
            handle.truncate(0)
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
