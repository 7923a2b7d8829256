"""What each command-line value must be, declared once as an argparse `type`.

argparse calls these on the raw text before any command starts, and turns the
ArgumentTypeError each raises into exit code 2 with one sentence
(`argument --max-concurrent: 0 is not allowed; use a whole number, 1 or more`).
A number that Python would accept but a search could not use (NaN, infinity, a
negative count, a port past 65535) is refused here, not deep inside a trial.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

SEED_MAX = 2**32 - 1  # NumPy's seed range; every seed of a search must fit it


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _allowed(low: float | None, high: float | None, *, low_open: bool, high_open: bool) -> str:
    """`1 or more`, `more than 0`, `between 0 and 1, both excluded`, ..."""
    if low is not None and high is not None:
        excluded = [
            f"{_num(end)}" for end, is_open in ((low, low_open), (high, high_open)) if is_open
        ]
        note = (
            ", both excluded"
            if len(excluded) == 2
            else "".join(f", {e} excluded" for e in excluded)
        )
        return f"between {_num(low)} and {_num(high)}{note}"
    if low is not None:
        return f"more than {_num(low)}" if low_open else f"{_num(low)} or more"
    if high is not None:
        return f"less than {_num(high)}" if high_open else f"{_num(high)} or less"
    return "of any size"


@dataclass(frozen=True)
class Whole:
    """A whole number in [low, high]; `extra` words such as `auto` pass through."""

    low: int | None = None
    high: int | None = None
    extra: tuple[str, ...] = ()

    def __call__(self, text: str) -> int | str:
        if text in self.extra:
            return text
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"'{text}' is not a number; use {self.describe()}"
            ) from None
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise argparse.ArgumentTypeError(f"{text} is not allowed; use {self.describe()}")
        return value

    def describe(self) -> str:
        span = _allowed(self.low, self.high, low_open=False, high_open=False)
        what = f"a whole number {span}" if self.high is not None else f"a whole number, {span}"
        return ", or ".join([what, *self.extra])


@dataclass(frozen=True)
class Real:
    """A finite number in the interval the flags give (each end open or closed)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __call__(self, text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"'{text}' is not a number; use {self.describe()}"
            ) from None
        if not self.holds(value):
            raise argparse.ArgumentTypeError(f"{text} is not allowed; use {self.describe()}")
        return value

    def holds(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (
            self.high is not None and (value >= self.high if self.high_open else value > self.high)
        )

    def describe(self) -> str:
        span = _allowed(self.low, self.high, low_open=self.low_open, high_open=self.high_open)
        return f"a finite number {span}" if self.high is not None else f"a finite number, {span}"


@dataclass(frozen=True)
class RealList:
    """Comma-separated numbers, each a `Real`: `0.1,0.3,1`."""

    each: Real

    def __call__(self, text: str) -> list[float]:
        items = [t.strip() for t in text.split(",")]
        if not any(items):
            raise argparse.ArgumentTypeError(f"'{text}' holds no number; give e.g. 0.1,1")
        return [self.each(item) for item in items if item]


def names(text: str) -> list[str]:
    """Comma-separated names (`red,large`); an empty item (`a,,b`, `a,`) is a typo."""
    items = [t.strip() for t in text.split(",")]
    if not any(items):
        raise argparse.ArgumentTypeError(f"'{text}' names nothing; give e.g. a,b")
    if "" in items:
        raise argparse.ArgumentTypeError(
            f"'{text}' has an empty name; separate names with single commas"
        )
    return items


# The values several commands share, each declared once.
COUNT = Whole(low=1)  # trials, seeds, epochs, CPUs' worth of concurrency
RETRIES = Whole(low=0)
SEED = Whole(low=0, high=SEED_MAX)
PORT = Whole(low=1, high=65535)
CPUS = Real(low=0, low_open=True)
GPUS = Real(low=0)
PROBABILITY = Real(low=0, high=1, low_open=True, high_open=True)
CERTAINTY = Real(low=0.5, high=1, low_open=True, high_open=True)  # adaptive_seeds.AdaptiveSeeds
LAMBDAS = RealList(Real(low=0))
SEEDS_OR_AUTO = Whole(low=1, extra=("auto",))
PACK = Whole(low=1, extra=("auto",))
