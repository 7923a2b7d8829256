"""A trial hook that makes chosen cells fail, for the tests of retries and failure
records. Run a search with

    AUXSEARCH_TRIAL_HOOK=tests.orchestrator.fault_hook:inject
    AUXSEARCH_INJECT_FAULT="<cell-id glob>=raise|nan[;...]"

(and the repository on PYTHONPATH, so that trial workers import this module):
matching cells raise, or train on labels half corrupted to +inf, so the loss becomes
non-finite and the kernel's own divergence check stops the run; `block` puts a
directory where the path in AUXSEARCH_BLOCK_PATH is (the search's
results.parquet), so the driver can no longer write it: an --out that became
unwritable mid-run, even for root.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import replace

import numpy as np

from methods.data import Dataset, Domain

HOOK = "tests.orchestrator.fault_hook:inject"
FAULT_ENV = "AUXSEARCH_INJECT_FAULT"
BLOCK_ENV = "AUXSEARCH_BLOCK_PATH"


def inject(cell_id: str, dataset: Dataset) -> Dataset:
    for rule in filter(None, os.environ.get(FAULT_ENV, "").split(";")):
        pattern, _, kind = rule.partition("=")
        if not fnmatch.fnmatch(cell_id, pattern):
            continue
        if kind == "raise":
            raise RuntimeError(f"injected fault in cell {cell_id}")
        if kind == "nan":
            return _poisoned(dataset)
        if kind == "block":
            target = os.environ[BLOCK_ENV]
            if os.path.isfile(target):
                os.replace(target, target + ".moved")
            os.makedirs(target, exist_ok=True)
    return dataset


def _poisoned(dataset: Dataset) -> Dataset:
    domains = {}
    for name, d in dataset.domains.items():
        labels = d.labels.copy()
        # every other train row: the rest keep both classes, so the data checks pass
        # and the loss, not a check, is what stops the run
        labels[np.flatnonzero(d.split == "train")[::2]] = np.inf
        domains[name] = Domain(name, d.inputs, labels, d.label_names, d.split)
    return replace(dataset, domains=domains)
