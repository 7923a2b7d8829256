"""auxsearch from Python: run a pair search, a sweep or a grid, and read any
search's tables (local or ``s3://`` / ``gs://``) into pandas.

    import auxsearch

    run = auxsearch.pairs(
        dataset="shapes", attributes=["red", "large", "left"], out="runs/aal",
        backbone="small_cnn", epochs=6, seeds=3,
    )
    run.matrix            # val accuracy of a (row) trained with b (column)
    run.summary           # per attribute: partner, λ, sin/mul/adv test accuracy, ...

    tables = auxsearch.load("s3://bucket/runs/aal")   # a finished (or running) search
    tables.results        # one row per (trial, metric)

Each function is its command's twin (``auxsearch pairs|sweep|grid``, ``auxsearch
results show``): the same validation, the same files in ``out``, the same
resume on a rerun with the same ``out``. A mistake raises `UserInputError` (the
CLI's exit code 2) with one sentence, before anything is trained or written.
Progress goes to the ``"auxsearch"`` logger (INFO; failed cells at WARNING),
never to stdout: ``logging.basicConfig(level=logging.INFO)`` shows it.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from methods.core.errors import UserInputError
from orchestrator.errors import SearchInterrupted

from ._searches import grid, pairs, sweep
from .results import SearchResult, SearchTables, load

try:
    __version__ = version("auxsearch")
except PackageNotFoundError:  # a checkout on sys.path, never installed
    __version__ = "0+unknown"

# A library adds no handler of its own beyond this one: the application decides
# where the lines go (logging.basicConfig, its own handlers).
logging.getLogger("auxsearch").addHandler(logging.NullHandler())

__all__ = [
    "SearchInterrupted",
    "SearchResult",
    "SearchTables",
    "UserInputError",
    "__version__",
    "grid",
    "load",
    "pairs",
    "sweep",
]
