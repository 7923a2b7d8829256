"""`auxsearch`: the command line. Thin: it parses flags, calls the orchestrator
modules, and turns user mistakes into exit code 2 with one sentence.

    auxsearch pairs --dataset shapes --attributes red,large,left --out runs/pairs
    auxsearch run --method stl --dataset digits --set task=even --set backbone=small_cnn
    auxsearch results show runs/pairs
    auxsearch demo
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from methods.core import DivergedError, UserInputError

from . import flag_types as ft
from .errors import SearchInterrupted
from .options import add_options
from .redact import RedactingStream

# Exit codes: 0 done, 1 a run diverged or an internal error, 2 a user mistake
# (nothing trained or written), 3 the search finished but some cells failed (their
# errors are in results.parquet; `--retry-failed` trains them again), 130 stopped
# by Ctrl+C or SIGTERM (rerun the same command to resume).
EXIT_CELLS_FAILED = 3


class _HelpFormatter(argparse.HelpFormatter):
    """Shows a flag's default after its help unless the help already names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, [], argparse.SUPPRESS)
            or action.option_strings == []
        ):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, list | tuple) else default
        return f"{text} (default: {shown})"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        # One line, no usage dump: the sentence names the bad flag and value.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="auxsearch",
        description="Ray Tune searches for auxiliary-label deep learning: AAL pair matrices,"
        " adversarial λ sweeps, one-off runs. `auxsearch demo` runs a small pair search.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("pairs", help="AAL end to end: pair matrix, partners, adversarial λ sweep")
    add_options(p, "pairs")

    p = sub.add_parser(
        "sweep",
        help="a method over a search space: Ray Tune + Optuna TPE + ASHA, live in optuna-dashboard",
    )
    add_options(p, "sweep")

    p = sub.add_parser(
        "grid",
        help="cross-dataset grids: every method x backbone x train domain, tested on"
        " the other domains",
    )
    add_options(p, "grid")

    p = sub.add_parser("dashboard", help="optuna-dashboard on 127.0.0.1 for a search's study")
    p.add_argument(
        "location", metavar="DIR|URL", help="the --out of a sweep or pair search, or a storage URL"
    )
    p.add_argument("--port", type=ft.PORT, default=8080, help="the port to serve on")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to serve on; another than loopback exposes the study to the"
        " network without authentication (a warning says so)",
    )

    p = sub.add_parser("run", help="one training of any registered method, in this process")
    add_options(p, "run")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument(
        "--threads", type=ft.COUNT, help="torch CPU threads (default: torch's own choice)"
    )
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    p.add_argument(
        "--out",
        metavar="DIR|URI",
        help="also write the run there: history.parquet (metrics per epoch), final.json and"
        " the method's tables (SOSELETO: alpha.parquet, alpha_curve.parquet and .png);"
        " a directory that already holds a run is refused",
    )

    p = sub.add_parser("results", help="show the tables of a finished search")
    rsub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    show = rsub.add_parser("show", help="print the pair matrix and the summary")
    show.add_argument("dir", metavar="DIR|URI")
    pull = rsub.add_parser(
        "pull", help="copy a search's tables (Parquet, plots, artifacts) to a local directory"
    )
    pull.add_argument("src", metavar="SRC", help="the search's --out (s3://, gs:// or a directory)")
    pull.add_argument("dest", metavar="DEST", help="a local directory (created if missing)")
    pull.add_argument(
        "--with-ray", action="store_true", help="also copy Ray's experiment folder ray/"
    )

    p = sub.add_parser("demo", help="a pair search on built-in data, sized for a laptop")
    p.add_argument(
        "--out", default="auxsearch-demo", metavar="DIR", help="where the demo's search goes"
    )
    p.add_argument("--seeds", type=ft.COUNT, default=1, metavar="K", help="seeds per cell")
    p.add_argument(
        "--cpus-per-trial", type=ft.CPUS, default=1.0, metavar="N", help="CPUs per trial"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a flag argparse rejected (exit 2, one line)
        return int(exc.code or 0)
    from .signals import stop_on_sigterm

    stop_on_sigterm()
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)
    try:
        return _run_command(args)
    finally:
        sys.stdout, sys.stderr = streams


def _run_command(args: argparse.Namespace) -> int:
    try:
        return _dispatch(args)
    except BrokenPipeError:
        # `auxsearch results show DIR | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except UserInputError as exc:
        print(f"auxsearch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except DivergedError as exc:
        print(f"auxsearch {args.command}: the run diverged: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, SearchInterrupted) as exc:
        why = f" ({exc})" if str(exc) else ""
        print(
            f"\nauxsearch {args.command}: interrupted{why}; rerun the same command to resume",
            file=sys.stderr,
        )
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from .job_workdir import leave_working_dir_copy

    leave_working_dir_copy(args)  # a no-op unless run by `ray job submit --working-dir`
    if args.command in ("pairs", "sweep", "grid"):
        return _search(args)
    if args.command == "dashboard":
        from .dashboard import serve

        serve(args.location, args.port, args.host)
        return 0
    if args.command == "run":
        return _run(args)
    if args.command == "results":
        return _results(args)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args.out, seeds=args.seeds, cpus_per_trial=args.cpus_per_trial)
    raise AssertionError(args.command)


def _search(args: argparse.Namespace) -> int:
    """`pairs`, `sweep` or `grid`, started the way the Python API starts them."""
    from . import launch
    from .inputs import parse_sets

    values = vars(args)
    started = getattr(launch, args.command)(values, parse_sets(args.set), launch.Voice())
    result = started.result
    failed = result.counts.get("FAIL", 0) if args.command == "sweep" else len(result.failed)
    return EXIT_CELLS_FAILED if failed else 0


def _run(args: argparse.Namespace) -> int:
    from .inputs import method_overrides, resolve_dataset
    from .single_run import run_one

    overrides = method_overrides(args.config, args.set)
    dataset = resolve_dataset(args.dataset, args.data, args.data_root)
    # With --json, stdout holds only the JSON document: epoch lines go to stderr.
    stream = sys.stderr if args.json else sys.stdout

    def on_epoch(metrics: dict[str, float], epoch: int) -> None:
        shown = "  ".join(
            f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith(("train/", "val/acc"))
        )
        print(f"epoch {epoch}: {shown}", file=stream, flush=True)

    result = run_one(
        args.method,
        dataset,
        overrides,
        seed=args.seed,
        device=args.device,
        threads=args.threads or 0,
        out=args.out,
        on_epoch=on_epoch,
    )
    if args.json:
        print(json.dumps(result.final, indent=2, sort_keys=True))
    else:
        print("final (selected on val):")
        for k in sorted(result.final):
            print(f"  {k:<32} {result.final[k]:.4f}")
    if result.out is not None:
        print(f"wrote {result.out.location}", file=stream)
    return 0


def _results(args: argparse.Namespace) -> int:
    if args.action == "pull":
        from .pull import pull

        pull(args.src, args.dest, with_ray=args.with_ray)
        return 0
    from .show import show_dir

    show_dir(args.dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
