"""Exceptions shared by kernels and the orchestrator.

`UserInputError` and its subclasses mean "the user asked for something that
cannot work": the CLI turns them into exit code 2 and their one-sentence
message, with no traceback. `DivergedError` means a training run produced a
non-finite loss: the run stops and is recorded as failed, never as a NaN score
(`ensure_finite` is the check every kernel uses).
"""

from __future__ import annotations

import math
from typing import Any


class UserInputError(ValueError):
    """A bad value supplied by the user; the message names it and what is allowed."""


class ConfigError(UserInputError):
    """A method config that does not validate."""


class DataError(UserInputError):
    """A dataset that is missing, malformed or does not fit the method."""


class DivergedError(RuntimeError):
    """A training run whose loss became NaN or infinite."""


def ensure_finite(value: float | Any, what: str) -> None:
    """Raise `DivergedError` when `value` (a float or a one-element tensor) is NaN or ±inf."""
    v = float(value)
    if not math.isfinite(v):
        raise DivergedError(f"{what} became {v}; the run diverged (try a smaller lr)")
