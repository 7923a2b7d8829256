"""The live display of a running stage: cells done, failed, running and left, the
elapsed time and an estimate of what remains, under the stage's name.

On a terminal a tqdm bar sits under the per-cell lines (written with
`tqdm.write`, so they scroll above it) and is redrawn at most once a second,
also while no cell finishes, so the clock moves during the first, long trials:

    stage 1:  40%|████      | 48/120 [12:07, done 47, failed 1, running 4, left 68, ETA 17:40]

Anywhere else (a file, a pipe, CI, the logs of `ray job submit`) the output is
exactly the plain lines, one per finished cell, and nothing is ever written
between them: a log grows by what finished, never by a refresh.

`AUXSEARCH_PROGRESS` chooses:
    auto   (default, also for an unknown value) a bar when the output is a
           terminal: stdout, or stderr when stdout is redirected (the bar on
           the terminal, the plain lines in the file)
    plain  the plain lines always
    bar    a bar even when the output does not say it is a terminal (some
           IDE consoles); never use it for a log file
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

from tqdm import tqdm

from .cells import Cell, Outcome

Echo = Callable[[str], None]
ENV = "AUXSEARCH_PROGRESS"
REFRESH_S = 1.0  # the bar's redraws per second are at most 1 / REFRESH_S (plus one per cell)
_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def bar_stream(lines: TextIO | None, *, stderr_fallback: bool) -> TextIO | None:
    """Where the bar is drawn (None: plain lines only), given `lines`, the stream the
    per-cell lines go to (None when the caller's echo writes somewhere unknown)."""
    mode = os.environ.get(ENV, "auto").strip().lower()
    if lines is None or mode == "plain":
        return None
    if mode == "bar" or _isatty(lines):
        return lines
    # `auxsearch pairs ... > run.log` at a terminal: the log gets the plain lines,
    # the terminal the bar (tqdm clears it from stderr before each line to stdout).
    if stderr_fallback and _isatty(sys.stderr):
        return sys.stderr
    return None


class Progress:
    """The display of one stage of `total` cells.

    `echo` writes a plain line; `stream` is where it writes (found for `print`:
    sys.stdout). An echo writing somewhere unknown (a list in tests, a logger)
    gets the plain lines only, since a bar drawn elsewhere could not keep out of
    their way. Call `started` when a cell starts running (again on a retry: it
    counts once) and `finished` with its outcome and line when it ends.
    """

    def __init__(
        self,
        stage: str,
        total: int,
        *,
        echo: Echo = print,
        stream: TextIO | None = None,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stage, self.total, self.echo, self.clock = stage, total, echo, clock
        self.done = 0  # finished ok (or pruned: a sweep's trial stopped early on purpose)
        self.failed = 0
        self.running: set[str] = set()
        self.concurrency = 0  # the most cells seen running at once
        self._wall_sum = 0.0
        self._last_finish = clock()
        lines = stream if stream is not None else (sys.stdout if echo is print else None)
        self._lines = lines
        # a failed cell's line is an error message: on a terminal run it goes to stderr
        self._failures = sys.stderr if stream is None and echo is print else None
        self._bar: tqdm[Any] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        where = bar_stream(lines, stderr_fallback=stream is None and echo is print)
        if where is not None:
            self._open(where, refresh_s)

    @property
    def bar(self) -> bool:
        """Whether a bar is drawn (else the plain lines only)."""
        return self._bar is not None

    @property
    def left(self) -> int:
        """Cells not started yet."""
        return max(0, self.total - self.done - self.failed - len(self.running))

    def eta(self) -> float | None:
        """Seconds until the stage ends; None before the first cell finishes.

        The finished cells' mean wall time × the cells still to finish (running
        or not started) / the most cells seen running at once. Not tqdm's rate
        (finished / elapsed): cells finish in waves of `concurrency`, so the rate
        jumps from 0 to `concurrency` per cell-time at the first wave, and the
        elapsed time holds Ray's start-up (actors, the dataset's upload); the
        wall times are the trainings themselves, known from the first cell on.
        Running cells count as not begun, so it errs long. Between two finishes
        it counts down from the estimate made at the last one: hour-long cells
        would otherwise show an ETA that stands still for an hour.
        """
        finished = self.done + self.failed
        if finished == 0:
            return None
        remaining = self.total - finished
        at_last = self._wall_sum / finished * remaining / max(1, self.concurrency)
        return max(0.0, at_last - (self.clock() - self._last_finish))

    def started(self, cell: Cell) -> None:
        with self._lock:
            self.running.add(cell.id)
            self.concurrency = max(self.concurrency, len(self.running))
            self._draw()

    def finished(self, outcome: Outcome, line: str) -> None:
        """Count `outcome` and write its line (plain, or above the bar)."""
        with self._lock:
            self.running.discard(outcome.cell.id)
            if outcome.status == "failed":
                self.failed += 1
            else:
                self.done += 1
            self._wall_sum += outcome.wall_s
            self._last_finish = self.clock()
            to_stderr = outcome.status == "failed" and self._failures is not None
            if self._bar is None:
                if to_stderr:
                    print(line, file=self._failures, flush=True)
                else:
                    self.echo(line)
                return
            self._bar.set_postfix_str(self.postfix(), refresh=False)
            self._bar.update(1)
            # clears the bar, writes, draws it anew
            tqdm.write(line, file=self._failures if to_stderr else self._lines)

    def postfix(self) -> str:
        eta = self.eta()
        shown = "?" if eta is None else tqdm.format_interval(eta)
        return (
            f"done {self.done}, failed {self.failed}, running {len(self.running)},"
            f" left {self.left}, ETA {shown}"
        )

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        with self._lock:
            if self._bar is not None:
                self._bar.close()  # leave=False: the terminal keeps what a log would
                self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # Ray Tune pickles its callbacks (into the experiment's tuner.pkl) and with
        # them the closures that reach this object; the callbacks then run in the
        # driver, on the original. The copy keeps the counts, not the terminal.
        state = self.__dict__.copy()
        state.update(_lines=None, _failures=None, _bar=None, _lock=None, _stop=None, _ticker=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock, self._stop = threading.Lock(), threading.Event()

    def _open(self, where: TextIO, refresh_s: float) -> None:
        self._bar = tqdm(
            total=self.total,
            desc=self.stage,
            file=where,
            bar_format=_FORMAT,
            dynamic_ncols=True,
            leave=False,
            mininterval=refresh_s,
            postfix=self.postfix(),
        )
        # tqdm redraws only when told; without a tick the clock would stand still
        # until the first cell finishes, which is what this display is for.
        self._ticker = threading.Thread(
            target=self._tick, args=(refresh_s,), name="auxsearch-progress", daemon=True
        )
        self._ticker.start()

    def _tick(self, every: float) -> None:
        while not self._stop.wait(every):
            with self._lock:
                if self._bar is None:
                    return
                self._bar.set_postfix_str(self.postfix(), refresh=False)
                self._bar.refresh()

    def _draw(self) -> None:
        """New counts onto the bar; drawn now only if the last draw is old enough."""
        if self._bar is None:
            return
        self._bar.set_postfix_str(self.postfix(), refresh=False)
        if time.time() - self._bar.last_print_t >= self._bar.mininterval:  # tqdm's clock
            self._bar.refresh()
