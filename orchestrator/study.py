"""Optuna storages and studies of auxsearch searches.

A search keeps its Optuna study next to its results: by default a SQLite file
`optuna.db` inside `--out DIR`, or any RDB URL given with `--storage`
(`postgresql://user@host/db`, `sqlite:///path.db`). The study is the record of
every trial a sweep proposed, so a rerun continues it: finished trials count
towards `--trials`, and trials left RUNNING by a driver that died are handed
out again (same number, same parameters) instead of being lost or duplicated.

A study carries the identity of the search that made it (a study user
attribute), as `--out` carries it in its manifest: a second search that names
the same study in the same storage with different settings is refused before
it trains, instead of reading the first one's trials as its own.
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

from .errors import OutputError, UserInputError, short_reason
from .extras import require
from .manifest import first_difference
from .redact import redact
from .storage import OutputDir

STORAGE_FILE = "optuna.db"
IDENTITY_ATTR = "auxsearch_search"  # the study user attribute holding the search's identity


# SQLAlchemy dialects Optuna's RDBStorage runs on (each may name a driver: mysql+pymysql)
STORAGE_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb")


def check_storage_url(url: str, flag: str = "--storage", *, must_exist: bool = False) -> str:
    """`url` if it names a database Optuna can keep a study in, else one sentence.

    `must_exist`: a command that only reads a study (the dashboard) refuses a
    SQLite file that is not there, rather than creating an empty one."""
    shown = redact(url)
    example = "use e.g. postgresql://user@host/db or sqlite:///path/optuna.db"
    if not url.strip():
        raise UserInputError(f"{flag} is empty; {example}, or leave it out")
    if "://" not in url:
        raise UserInputError(f"{flag} {shown} is not a database URL; {example}")
    dialect = url.split("://", 1)[0].split("+", 1)[0].lower()
    if dialect not in STORAGE_DIALECTS:
        raise UserInputError(
            f"{flag} {shown}: {dialect}:// is not a database Optuna keeps studies in; {example}"
            f" (dialects: {', '.join(STORAGE_DIALECTS)})"
        )
    if dialect == "postgresql" and _driver(url) in ("", "psycopg"):
        # the driver we name (open_storage), an extra: refused here, before a search
        # trains or writes anything, rather than when the study is first opened
        require("psycopg", "postgres", "a postgresql:// study storage")
    if dialect == "sqlite":
        target = url.split("://", 1)[1].split("?", 1)[0]
        if target in ("", "/", "/:memory:"):
            raise UserInputError(
                f"{flag} {shown} is an in-memory database, lost when the command ends;"
                " give a file: sqlite:///path/optuna.db"
            )
        path = Path(target[1:]).expanduser()  # sqlite:///rel.db, sqlite:////abs.db
        if path.is_dir():
            raise UserInputError(f"{flag} {shown} names a directory; give a database file")
        if not path.parent.is_dir():
            raise UserInputError(
                f"{flag} {shown}: the folder {path.parent} does not exist; create it first"
            )
        if must_exist and not path.is_file():
            raise UserInputError(f"{flag} {shown}: {path} does not exist; give an existing study")
    return url


def _driver(url: str) -> str:
    """The driver a database URL names (`postgresql+psycopg://` -> psycopg), "" if none."""
    scheme = url.split("://", 1)[0]
    return scheme.split("+", 1)[1].lower() if "+" in scheme else ""


def storage_url(out: OutputDir, url: str | None) -> str:
    """The study storage of a search: `url`, or the SQLite file inside a local --out."""
    if url is not None:  # "" is a mistake (an unset variable), not "inside --out"
        return check_storage_url(url)
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


def open_storage(url: str, *, create: bool = True) -> Any:
    """An Optuna RDBStorage object (an object, so Ray's OptunaSearch and the dashboard
    share it), with one sentence if the database cannot be reached.

    `create=False` (a command that only reads): a database without Optuna's tables
    is refused instead of being given them."""
    import optuna
    import sqlalchemy
    from sqlalchemy.exc import SQLAlchemyError

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url.startswith("postgresql://"):  # name the driver we install (psycopg 3)
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        if not create:
            engine = sqlalchemy.create_engine(url)
            try:
                has_studies = sqlalchemy.inspect(engine).has_table("studies")
            finally:
                engine.dispose()
            if not has_studies:
                raise UserInputError(
                    f"study storage {redact(url)} holds no Optuna study; give the --storage"
                    " of a sweep or pair search"
                )
        return optuna.storages.RDBStorage(url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise UserInputError(
            f"study storage {redact(url)} cannot be opened ({redact(short_reason(exc))})"
        ) from None


def claim_study(
    storage: Any, name: str, identity: dict[str, Any], url: str, *, minimize: bool = False
) -> None:
    """Make sure study `name` in `storage` is this search's: a new study (or an
    empty one) takes `identity`; one made by another search is refused with the
    settings that differ. Nothing is written before the check passes."""
    from optuna.exceptions import DuplicatedStudyError

    ours = json.loads(json.dumps(identity, sort_keys=True, default=str))
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:  # a new study: created here, so the claim and the study arrive together
        try:
            from optuna.study import StudyDirection

            direction = StudyDirection.MINIMIZE if minimize else StudyDirection.MAXIMIZE
            study_id = storage.create_new_study(directions=[direction], study_name=name)
        except DuplicatedStudyError:  # another driver created it a moment ago
            study_id = storage.get_study_id_from_name(name)
    theirs = storage.get_study_user_attrs(study_id).get(IDENTITY_ATTR)
    if theirs is None:
        held = len(storage.get_all_trials(study_id, deepcopy=False))
        if held:
            raise UserInputError(
                f"study '{name}' in {url} holds {held} trial(s) that no auxsearch search"
                " claimed; pass another --study name"
            )
        storage.set_study_user_attr(study_id, IDENTITY_ATTR, ours)
        return
    diff = first_difference(theirs, ours)
    if diff:
        raise UserInputError(
            f"study '{name}' in {url} belongs to another search ({diff});"
            " pass another --study name, or the settings that search used"
        )


def location_to_storage_url(location: str) -> str:
    """`auxsearch dashboard DIR|URL`: a search directory's storage, or a URL as given."""
    if "://" in location and not location.startswith(("s3://", "gs://", "gcs://")):
        return check_storage_url(location, "dashboard", must_exist=True)
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
    created = not os.path.exists(lock_path)
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
        except (UserInputError, OutputError):
            # a refused --out (another search's, or not a search) keeps nothing of ours
            if created:
                os.unlink(lock_path)
            raise
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
