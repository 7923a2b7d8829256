"""auxsearch orchestrator: plans, distributes (Ray Tune), resumes and records searches.

The only package that imports Ray, Optuna and pyarrow. Everything the CLI does
is importable: `run_pairs(dataset, resolve_settings(...), out)`.
"""

from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
