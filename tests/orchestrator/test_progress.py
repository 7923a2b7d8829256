"""The live progress display: counts, ETA, the bar on a terminal and the plain
lines everywhere else. No Ray: a stand-in runner feeds `StageRunner` its events."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from ray import cloudpickle

from orchestrator.cells import Cell, Outcome
from orchestrator.progress import ENV, Progress
from orchestrator.results import ResultsLog
from orchestrator.runner import Resources, _Recorder
from orchestrator.stages import StageRunner
from orchestrator.storage import OutputDir

WHEN = "2026-01-01T00:00:00+00:00"


class TTY(io.StringIO):
    """A terminal, as far as isatty() tells."""

    def isatty(self) -> bool:
        return True


def _cell(i: int) -> Cell:
    return Cell(f"single:t{i}:seed=0", "single", "stl", {"epochs": 1}, 0, (f"t{i}",))


def _outcome(i: int, status: str = "ok", wall: float = 2.0) -> Outcome:
    metrics = {f"val/acc/t{i}": 0.5} if status == "ok" else {}
    error = "RuntimeError: boom" if status == "failed" else None
    return Outcome(_cell(i), status, metrics, wall, WHEN, error)


def _to(stream: io.StringIO) -> Callable[[str], None]:
    return lambda line: print(line, file=stream)


@pytest.fixture(autouse=True)
def _auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


@pytest.mark.parametrize("stream_cls", [io.StringIO, TTY])
def test_counts_done_failed_running_left(stream_cls: type[io.StringIO]) -> None:
    stream = stream_cls()
    with Progress("stage 1", 5, echo=_to(stream), stream=stream) as p:
        assert p.bar == (stream_cls is TTY)
        for i in range(3):
            p.started(_cell(i))
        p.started(_cell(0))  # a retried trial starts again: still one cell
        assert (p.done, p.failed, len(p.running), p.left) == (0, 0, 3, 2)
        p.finished(_outcome(0), "line 0")
        p.finished(_outcome(1, "failed"), "line 1")
        p.finished(_outcome(4, "pruned"), "line 4")  # a cell never seen starting
        assert (p.done, p.failed, len(p.running), p.left) == (2, 1, 1, 1)
        assert "done 2, failed 1, running 1, left 1," in p.postfix()


def test_eta_is_mean_wall_times_remaining_over_concurrency() -> None:
    now = [100.0]
    p = Progress("grid", 10, echo=lambda _: None, clock=lambda: now[0])
    assert p.eta() is None  # nothing finished: nothing to go by
    for i in range(4):
        p.started(_cell(i))
    p.finished(_outcome(0, wall=3.0), "")
    p.finished(_outcome(1, "failed", wall=9.0), "")  # a failure held its slot too
    p.started(_cell(5))
    walls, remaining, at_once = [3.0, 9.0], 10 - 2, 4
    expected = sum(walls) / len(walls) * remaining / at_once  # 12 s
    assert p.eta() == pytest.approx(expected)
    assert p.postfix().endswith("ETA 00:12")
    now[0] += 5.0  # no cell finished since: it counts down, to 0 at the least
    assert p.eta() == pytest.approx(expected - 5.0)
    now[0] += 60.0
    assert p.eta() == 0.0
    p.finished(_outcome(2, wall=6.0), "")  # a new estimate from the finished cells
    assert p.eta() == pytest.approx(sum([3.0, 9.0, 6.0]) / 3 * (10 - 3) / at_once)


def test_plain_output_is_one_line_per_finished_cell_and_nothing_else() -> None:
    stream = io.StringIO()
    p = Progress("stage 1", 3, echo=_to(stream), stream=stream, refresh_s=0.01)
    p.started(_cell(0))
    p.started(_cell(1))
    time.sleep(0.1)  # a long cell: ten refresh periods, and no line for any of them
    assert stream.getvalue() == ""
    p.finished(_outcome(0), "  [stage 1 1/3] a")
    p.finished(_outcome(1, "failed"), "  [stage 1 2/3] FAILED b")
    p.close()
    assert stream.getvalue() == "  [stage 1 1/3] a\n  [stage 1 2/3] FAILED b\n"
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_a_bar_writes_the_lines_above_it() -> None:
    tty = TTY()
    with Progress("stage 3", 2, echo=_to(tty), stream=tty) as p:
        p.started(_cell(0))
        p.finished(_outcome(0), "  [stage 3 1/2] first")
        p.finished(_outcome(1), "  [stage 3 2/2] second")
    shown = tty.getvalue()
    assert "\r" in shown and "stage 3:" in shown
    assert "1/2 [00:00, done 1, failed 0, running 0, left 1, ETA 00:0" in shown
    lines = [ln.split("\r")[-1] for ln in shown.split("\n")]
    assert lines[:2] == ["  [stage 3 1/2] first", "  [stage 3 2/2] second"]
    assert shown.endswith("\r")  # closed: the bar cleared, the lines stay


def test_the_bar_ticks_while_nothing_finishes_at_a_bounded_rate() -> None:
    tty = TTY()
    with Progress("sweep", 4, echo=_to(tty), stream=tty, refresh_s=0.05) as p:
        before = tty.getvalue().count("\r")
        began = time.monotonic()
        while tty.getvalue().count("\r") == before and time.monotonic() - began < 5:
            time.sleep(0.01)
        time.sleep(0.2)
        frames = tty.getvalue().count("\r") - before
        took = time.monotonic() - began
        assert p.done == 0
    assert 1 <= frames <= took / 0.05 + 2


def test_environment_forces_either(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "plain")
    tty = TTY()
    with Progress("s", 1, echo=_to(tty), stream=tty) as p:
        assert not p.bar
    monkeypatch.setenv(ENV, "bar")
    log = io.StringIO()
    with Progress("s", 1, echo=_to(log), stream=log) as p:
        assert p.bar


def test_an_echo_that_writes_elsewhere_gets_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    out, err = TTY(), TTY()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    said: list[str] = []
    with Progress("s", 1, echo=said.append) as p:
        assert not p.bar
        p.finished(_outcome(0), "line")
    assert said == ["line"]
    assert out.getvalue() == err.getvalue() == ""


def test_print_draws_on_stdout_or_on_stderr_when_stdout_is_a_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tty = TTY()
    monkeypatch.setattr(sys, "stdout", tty)
    with Progress("s", 1) as p:
        p.finished(_outcome(0), "line")
    assert "\r" in tty.getvalue() and "line\n" in tty.getvalue()

    log, err = io.StringIO(), TTY()  # `... > run.log` at a terminal
    monkeypatch.setattr(sys, "stdout", log)
    monkeypatch.setattr(sys, "stderr", err)
    with Progress("s", 1) as p:
        assert p.bar
        p.finished(_outcome(0), "line")
    assert log.getvalue() == "line\n"
    assert "s:" in err.getvalue()


def test_a_pickled_copy_keeps_the_counts_not_the_terminal() -> None:
    tty = TTY()
    with Progress("s", 3, echo=_to(tty), stream=tty) as p:
        p.started(_cell(0))
        copy = cloudpickle.loads(cloudpickle.dumps(p))  # as Ray Tune does
    assert (copy.total, copy.running, copy.bar) == (3, {_cell(0).id}, False)
    copy.started(_cell(1))


class _FakeRunner:
    """Plays Ray Tune's part: each cell starts, then finishes (the second one fails).
    Like Tune, it pickles its callback before calling it."""

    def run(
        self,
        name: str,
        cells: Sequence[Cell],
        on_outcome: Callable[[Outcome], None],
        on_start: Callable[[Cell], None] | None = None,
    ) -> None:
        cloudpickle.dumps(_Recorder(on_outcome, prunable=False, on_start=on_start))
        assert on_start is not None
        for i, cell in enumerate(cells):
            on_start(cell)
            status = "failed" if i == 1 else "ok"
            on_outcome(Outcome(cell, status, {f"val/acc/{cell.tasks[0]}": 0.5}, 1.25, WHEN, "E: x"))


def _run_stage(tmp_path: Path, echo: Any = print) -> StageRunner:
    out = OutputDir(str(tmp_path))
    log = ResultsLog(out, search="pairs", dataset="shapes")
    stages = StageRunner(None, out, log, resources=Resources(), echo=echo)  # type: ignore[arg-type]
    stages._runner = _FakeRunner()  # type: ignore[assignment]
    with stages:
        stages.run("stage 1: single-task runs", [_cell(i) for i in range(3)])
    return stages


def test_a_stage_prints_the_same_lines_in_a_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run_stage(tmp_path)
    captured = capsys.readouterr()
    printed = captured.out.splitlines()
    assert printed[:3] == [
        "stage 1: single-task runs: 3 cell(s), 0 already recorded, 3 to train",
        "  [stage 1 1/3] single:t0:seed=0: val t0 50.0%  (1.2s)",
        "  [stage 1 3/3] single:t2:seed=0: val t2 50.0%  (1.2s)",
    ]
    assert printed[3].startswith("  stage 1: 3 cell(s) in ")
    assert len(printed) == 4
    # a failure is an error message: stderr, in the same words
    assert captured.err == "  [stage 1 2/3] FAILED single:t1:seed=0 after 1 attempt(s): E: x\n"


def test_a_stage_on_a_terminal_draws_the_bar_around_the_same_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tty, errors = TTY(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", tty)
    monkeypatch.setattr(sys, "stderr", errors)
    stages = _run_stage(tmp_path)
    shown = tty.getvalue()
    assert "stage 1:" in shown and "\r" in shown
    assert "  [stage 1 3/3] single:t2:seed=0: val t2 50.0%  (1.2s)\n" in shown
    assert "  [stage 1 2/3] FAILED single:t1:seed=0 after 1 attempt(s): E: x\n" in errors.getvalue()
    assert (stages.trained, stages.failed) == (3, ["single:t1:seed=0"])
