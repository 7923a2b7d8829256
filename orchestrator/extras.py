"""The optional parts of auxsearch (pyproject's extras), imported when a command needs one.

`pip install auxsearch` leaves out what only some users need: optuna-dashboard
(`auxsearch dashboard`), psycopg (a `postgresql://` study storage) and boto3
(`ray up cluster.yaml`). A command that needs one that is missing stops with one
sentence naming the package and the pip command that installs it (a
`UserInputError`: exit code 2 through the CLI), before it trains or writes
anything, instead of an ImportError's traceback from deep inside a library.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import UserInputError, short_reason

# extra -> the distribution it installs, as pip names it (pyproject.toml's
# [project.optional-dependencies]; tests/orchestrator/test_extras.py keeps the two equal)
EXTRAS = {
    "dashboard": "optuna-dashboard",
    "postgres": "psycopg",
    "cloud": "boto3",
}


def install_hint(extra: str) -> str:
    """The pip command that installs `extra`."""
    return f"pip install 'auxsearch[{extra}]'"


def require(module: str, extra: str, what: str) -> ModuleType:
    """`module`, imported; if it cannot be, one sentence saying that `what` needs the
    package of `extra` and how to install it.

    A package that is there but fails to import (one of its own dependencies
    missing, a broken build) is told apart from one that is not installed."""
    package = EXTRAS[extra]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or ""
        if isinstance(exc, ModuleNotFoundError) and (
            module == missing or module.startswith(missing + ".")
        ):
            raise UserInputError(
                f"{what} needs {package}, which is not installed; {install_hint(extra)}"
            ) from None
        raise UserInputError(
            f"{what} needs {package}, which is installed but cannot be imported"
            f" ({short_reason(exc)}); reinstall it: {install_hint(extra)}"
        ) from None
