"""A search's tables as pandas DataFrames: `load(out)` reads what `auxsearch pairs`,
`sweep` or `grid` wrote to ``out`` (a local directory, ``s3://`` or ``gs://``),
through the same `OutputDir` the searches write with.

Every table is read when first asked for and then kept: a search still running
shows what was recorded when it was read; call `load` again for newer rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from methods.core.errors import UserInputError

if TYPE_CHECKING:
    import optuna

    from orchestrator.storage import OutputDir

SearchKind = Literal["pairs", "sweep", "grid"]

_MANIFEST = "search.json"
_GRID_KEYS = ["method", "backbone", "train_domain"]


def load(out: str | os.PathLike[str], *, storage: str | None = None) -> SearchTables:
    """The tables of the search in ``out``: a local directory or an ``s3://`` /
    ``gs://`` URI (credentials as pyarrow finds them: the usual AWS and Google
    environment variables and files).

    Args:
        out: the search's ``--out`` (or ``out=``).
        storage: the Optuna storage URL of the search's study, for `SearchTables.study`
            and `SearchTables.trials` when it is not the ``optuna.db`` inside a local
            ``out`` (a database whose password ``search.json`` does not keep).

    Raises:
        UserInputError: ``out`` holds no search, cannot be reached, or its
            ``search.json`` is unreadable.

    Example:
        >>> tables = auxsearch.load("runs/aal")  # doctest: +SKIP
        >>> tables.matrix.loc["red", "large"]  # doctest: +SKIP
    """
    return SearchTables._open(_location(out, "auxsearch.load"), storage)


def _location(out: object, where: str) -> str:
    if not isinstance(out, str | os.PathLike):
        raise UserInputError(
            f"{where}: out={out!r} is not a location; give a directory path or an s3:// or"
            " gs:// URI"
        )
    location = os.fspath(out)
    if not isinstance(location, str) or not location.strip():
        raise UserInputError(
            f"{where}: out is empty; give a directory path or an s3:// or gs:// URI"
        )
    return location


class SearchTables:
    """What a search directory holds, as DataFrames (read when first used); made by
    `load` (and, as `SearchResult`, by the search functions), not constructed directly.

    Attributes:
        location: ``out`` as given.
        kind: ``"pairs"``, ``"sweep"`` or ``"grid"``.
        identity: what decides every cell's result (dataset fingerprint, resolved
            training settings, ...), from ``search.json``; another search is refused
            in this ``out``.
        settings: the search's last settings (attributes, λ values, seeds, trials,
            ...), from ``search.json``.
    """

    location: str
    kind: SearchKind
    identity: dict[str, Any]
    settings: dict[str, Any]

    def __init__(
        self, out: OutputDir, manifest: Mapping[str, Any], storage: str | None = None
    ) -> None:
        self._out = out
        self._storage = storage
        self.location = out.location
        self.identity = dict(manifest.get("identity") or {})
        self.settings = dict(manifest.get("settings") or {})
        self.kind = _kind(str(self.identity.get("search", "")))

    @classmethod
    def _open(cls, location: str, storage: str | None = None) -> SearchTables:
        from orchestrator.errors import short_reason
        from orchestrator.storage import OutputDir

        out = OutputDir(location, flag="auxsearch.load")
        try:
            present = out.exists(_MANIFEST)
            text = out.read_bytes(_MANIFEST) if present else b""
        except OSError as exc:
            raise UserInputError(
                f"{location} cannot be read ({short_reason(exc)}); check the location and"
                " its credentials"
            ) from None
        if not present and out.local and not os.path.isdir(out.root):
            raise UserInputError(f"{location} does not exist; give the out of a search")
        if not present:
            raise UserInputError(
                f"{location} holds no auxsearch search ({_MANIFEST} is missing); give the out"
                " of an auxsearch pairs, sweep or grid search"
            )
        try:
            manifest = json.loads(text)
            if not isinstance(manifest, dict) or not isinstance(manifest.get("identity"), dict):
                raise ValueError("no identity")
        except ValueError as exc:
            raise UserInputError(
                f"{out.display(_MANIFEST)} is not a search's {_MANIFEST} ({short_reason(exc)})"
            ) from None
        return cls(out, manifest, storage)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, location={self.location!r})"

    # --- the tables every search writes -------------------------------------------

    @cached_property
    def results(self) -> pd.DataFrame:
        """``results.parquet``: one row per (trial, metric), the columns of the results
        contract (``stage, method, main_task, aux_task, seed, split, metric, value,
        epoch, trial_id, status, ...``); empty, with those columns, before the first
        cell is recorded."""
        from orchestrator.results import RESULTS_FILE, RESULTS_SCHEMA

        frame = self._frame(RESULTS_FILE)
        if frame is None:
            return RESULTS_SCHEMA.empty_table().to_pandas()
        return frame

    # --- a pair search ------------------------------------------------------------

    @cached_property
    def matrix(self) -> pd.DataFrame | None:
        """A pair search's matrix (``pair_matrix.parquet``), mean over seeds: row a,
        column b = a's val accuracy trained with b, the diagonal a alone; index and
        columns the attributes in the search's order; NaN where cells failed. Before
        the file is written (stage 1 still running), the cells recorded so far, as
        ``auxsearch results show`` prints them. None for a sweep or a grid."""
        if self.kind != "pairs":
            return None
        parts = self._matrix_parts()
        return None if parts is None else parts[0]

    @cached_property
    def matrix_std(self) -> pd.DataFrame | None:
        """The matrix's std over seeds (the ``<b>_std`` columns), shaped as `matrix`;
        None with one seed or before the matrix is written."""
        if self.kind != "pairs":
            return None
        parts = self._matrix_parts()
        return None if parts is None else parts[1]

    @cached_property
    def summary(self) -> pd.DataFrame | None:
        """A pair search's ``aal_summary.parquet`` (the AAL paper's Table 3), indexed by
        attribute: ``neg_partner, lambda, sin_test, mul_test, adv_test``, the
        differences, the val columns, ``p_holm, significant, note``, ...; None
        before stage 3 ends or for another kind of search."""
        from orchestrator.tables import SUMMARY_FILE

        frame = self._frame(SUMMARY_FILE)
        if frame is None:
            return None
        return frame.set_index("attribute") if "attribute" in frame.columns else frame

    # --- a grid -------------------------------------------------------------------

    @cached_property
    def grid(self) -> pd.DataFrame | None:
        """A grid's ``grid_matrix.parquet``: the target task's test accuracy, mean over
        seeds, indexed by (method, backbone, train_domain), one column per test
        domain; None before every cell has run or for another kind of search."""
        parts = self._grid_parts()
        return None if parts is None else parts[0]

    @cached_property
    def grid_std(self) -> pd.DataFrame | None:
        """The grid's std over seeds (``<domain>_std``), shaped as `grid`; None with one seed."""
        parts = self._grid_parts()
        return None if parts is None else parts[1]

    # --- the Optuna study ---------------------------------------------------------

    @cached_property
    def trials(self) -> pd.DataFrame | None:
        """A sweep's trials as Optuna's ``Study.trials_dataframe()`` (number, value,
        state, ``params_*``, ``user_attrs_*``); None for a pair search or a grid
        (a pair search's λ study: ``study().trials_dataframe()``)."""
        if self.kind != "sweep":
            return None
        frame: pd.DataFrame = self.study().trials_dataframe()
        return frame

    def study(self) -> optuna.Study:
        """The search's Optuna study (a sweep's, or a pair search's stage-3 λ study),
        opened read-only from the storage `load` was given, the ``optuna.db`` inside a
        local ``out``, or the one the search recorded.

        Raises:
            UserInputError: the search has no study (a grid), or its storage cannot
                be opened.
        """
        import optuna

        from orchestrator.study import default_study_name, open_storage

        if self.kind == "grid":
            raise UserInputError(f"{self.location} holds a grid, which keeps no Optuna study")
        url = self._storage_url()
        storage = open_storage(url, create=False)
        if self.kind == "sweep":
            name = str(self.identity.get("study", ""))
        else:  # the name `run_pairs` gave it, from the identity search.json keeps
            base = str(self.identity.get("search", "")).removesuffix("-pairs") + "-lambda"
            shared = self.identity.get("storage") not in (None, "inside --out")
            name = default_study_name(base, self.identity, shared=shared)
        names = optuna.get_all_study_names(storage)
        if name not in names:
            raise UserInputError(
                f"the study storage of {self.location} holds no study '{name}' (it holds:"
                f" {', '.join(names) or 'none'}); pass load(..., storage=URL) with this"
                " search's storage"
            )
        return optuna.load_study(study_name=name, storage=storage)

    # --- any table ------------------------------------------------------------------

    def table(self, name: str) -> pd.DataFrame:
        """Any Parquet table of the search as written, by name with or without
        ``.parquet``: ``lambda_sweep``, ``leakage``, ``leakage_curves``, ``curves``,
        ``adaptive_seeds``, ``pca``, ...

        Raises:
            UserInputError: the search holds no such table (the message lists the ones
                it holds), or it cannot be read.
        """
        file = name if name.endswith(".parquet") else f"{name}.parquet"
        frame = self._frame(file)
        if frame is None:
            held = ", ".join(n.removesuffix(".parquet") for n in self.tables()) or "none"
            raise UserInputError(f"{self.location} holds no table {file}; it holds: {held}")
        return frame

    def tables(self) -> list[str]:
        """The Parquet files the search holds, sorted."""
        return [n for n in self._names() if n.endswith(".parquet")]

    def files(self) -> list[str]:
        """Every file the search holds at its top level (Ray's ``ray/`` folder left
        out), as full paths or URIs."""
        return [self._out.display(n) for n in self._names()]

    # --- reading ------------------------------------------------------------------

    def _names(self) -> list[str]:
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self._out.root, allow_not_found=True)
        infos = self._out.fs.get_file_info(selector)
        return sorted(
            i.base_name
            for i in infos
            if i.type == pafs.FileType.File
            and not i.base_name.startswith(".")
            and ".tmp-" not in i.base_name
        )

    def _frame(self, file: str) -> pd.DataFrame | None:
        from orchestrator.results import read_table

        table = read_table(self._out, file)
        return None if table is None else table.to_pandas()

    def _matrix_parts(self) -> tuple[pd.DataFrame, pd.DataFrame | None] | None:
        from orchestrator.tables import PAIR_MATRIX_FILE

        frame = self._frame(PAIR_MATRIX_FILE)
        if frame is None:
            return self._matrix_so_far()
        frame = frame.set_index("main")
        names = [c for c in frame.columns if not c.endswith(("_std", "_n"))]
        mean = frame[names].astype(float)
        std_cols = [f"{n}_std" for n in names if f"{n}_std" in frame.columns]
        std = None
        if std_cols:
            std = frame[std_cols].astype(float).rename(columns=lambda c: c.removesuffix("_std"))
        return mean, std

    def _matrix_so_far(self) -> tuple[pd.DataFrame, pd.DataFrame | None] | None:
        """Stage 1 still running: the mean of the cells recorded so far."""
        from orchestrator.pair_analysis import matrix, pair_values

        attributes = self.settings.get("attributes")
        if not isinstance(attributes, list) or self.results.empty:
            return None
        rows = self.results.to_dict("records")
        mean = matrix(pair_values(rows, "val"), [str(a) for a in attributes])
        mean.index.name = "main"
        return mean, None

    def _grid_parts(self) -> tuple[pd.DataFrame, pd.DataFrame | None] | None:
        from orchestrator.grid import GRID_MATRIX_FILE

        if self.kind != "grid":
            return None
        frame = self._frame(GRID_MATRIX_FILE)
        if frame is None:
            return None
        frame = frame.set_index(_GRID_KEYS)
        tests = [c for c in frame.columns if not c.endswith("_std")]
        std_cols = [f"{t}_std" for t in tests if f"{t}_std" in frame.columns]
        std = None
        if std_cols:
            std = frame[std_cols].astype(float).rename(columns=lambda c: c.removesuffix("_std"))
        return frame[tests].astype(float), std

    def _storage_url(self) -> str:
        from orchestrator.study import STORAGE_FILE, check_storage_url

        if self._storage:
            return check_storage_url(self._storage, "storage=")
        if self._out.local and self._out.exists(STORAGE_FILE):
            return f"sqlite:///{self._out.path(STORAGE_FILE)}"
        recorded = self.settings.get("storage") or self.identity.get("storage")
        if isinstance(recorded, str) and "://" in recorded:
            if "***" in recorded:
                raise UserInputError(
                    f"{self.location} keeps its study in {recorded}, whose password is not"
                    " kept; pass load(..., storage=URL) with it"
                )
            return check_storage_url(recorded, "storage=")
        raise UserInputError(
            f"{self.location} holds no {STORAGE_FILE}; pass load(..., storage=URL), the"
            " search's --storage"
        )


class SearchResult(SearchTables):
    """What `auxsearch.pairs`, `sweep` and `grid` return: the search's tables (all of
    `SearchTables`) and what this run did.

    Attributes:
        trained: cells (trials) trained by this call; 0 when a rerun found every
            cell recorded.
        failed: the ids of cells recorded as failed (their errors in `results`,
            column ``error``); a rerun with ``retry_failed=True`` trains them again.
        resumed: whether ``out`` already held this search.
        raw: the orchestrator's own result (``PairsResult``, ``SweepResult`` or
            ``GridResult``), e.g. a pair search's partners or a sweep's best trial.
    """

    trained: int
    failed: list[str]
    resumed: bool
    raw: Any

    @property
    def ok(self) -> bool:
        """True when no cell failed."""
        return not self.failed


def _result(location: str, raw: Any, *, resumed: bool, storage: str | None = None) -> SearchResult:
    tables = SearchTables._open(location, storage)
    result = SearchResult(tables._out, {"identity": tables.identity, "settings": tables.settings})
    result._storage = storage
    result.trained = int(raw.trained)
    result.failed = list(raw.failed)
    result.resumed = resumed
    result.raw = raw
    return result


def _kind(search: str) -> SearchKind:
    if search == "sweep":
        return "sweep"
    if search == "grid":
        return "grid"
    return "pairs"  # `<adversarial method>-pairs`
