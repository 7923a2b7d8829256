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

from methods import list_methods
from methods.core import DivergedError, UserInputError

from . import flag_types as ft
from .errors import SearchInterrupted
from .redact import RedactingStream, redact

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


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--dataset",
        metavar="NAME[:k=v,...]",
        help="built-in dataset (shapes, digits, digit_domains, digit_pair, digit_transfer,"
        " noisy_digits, noisy_plane, noisy_sets), or with --data-root one read from disk"
        " (celeba, mnist, svhn, cifar10, mnist_m, image_csv; join several with +); options"
        " after a colon: e.g. shapes:n=2000,image_size=24 or celeba:crop=178,size=64",
    )
    g.add_argument(
        "--data-root",
        metavar="DIR",
        help="the folder holding a real dataset as distributed (README: 'Real datasets,"
        " as distributed'); images are decoded once into DIR/.auxsearch-cache",
    )
    g.add_argument("--data", metavar="FILE.npz", help="your own data as an .npz (see README)")


def _add_method_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("method settings")
    g.add_argument("--config", metavar="FILE.yaml", help="a YAML mapping of config values")
    g.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        default=[],
        help="override one config value (repeatable), e.g. --set lr=0.001",
    )


def _add_ray_flags(p: argparse.ArgumentParser, *, packs: bool = False) -> None:
    g = p.add_argument_group("Ray")
    g.add_argument(
        "--address",
        help="join this Ray cluster ('auto', or RAY_ADDRESS); default: start Ray on this machine",
    )
    g.add_argument(
        "--cpus-per-trial",
        type=ft.CPUS,
        default=1.0,
        metavar="N",
        help="CPUs per trial, also its torch threads (default 1)",
    )
    g.add_argument(
        "--gpus-per-trial",
        type=ft.GPUS,
        default=0.0,
        metavar="F",
        help="GPUs per trial, fractions allowed (0.25 packs 4 trials per GPU;"
        " Ray does not cap GPU memory)",
    )
    g.add_argument(
        "--max-concurrent",
        type=ft.COUNT,
        metavar="N",
        help="at most N trials at once (default: as resources allow)",
    )
    g.add_argument(
        "--max-failures",
        type=ft.RETRIES,
        default=1,
        metavar="N",
        help="retries of a trial that raises or diverges (default 1)",
    )
    if packs:
        g.add_argument(
            "--pack",
            type=ft.PACK,
            default="auto",
            metavar="N|auto",
            help="train up to N cells of the same settings and seed in one trial as one fused"
            " network, with the results they get apart (a pair search's single, pair and λ"
            " runs on small_cnn or resnet18/34); auto: 1 on CPUs, on a GPU as many as fit"
            " its memory, up to 64 (default auto)",
        )


def _add_out_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR|URI",
        help="where results go; rerun with the same --out to resume",
    )


def _add_pairs_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pair search")
    g.add_argument(
        "--attributes",
        type=ft.names,
        metavar="A,B,...",
        help="attributes to pair (default: every binary attribute)",
    )
    g.add_argument("--backbone", help="feature extractor (default: the paper's resnet18)")
    g.add_argument("--epochs", type=ft.COUNT, help="epochs per run (default: the paper's 6)")
    g.add_argument(
        "--lambdas",
        type=ft.LAMBDAS,
        metavar="L1,L2,...",
        help="λ values of stage 3 (default: 0.01,0.1,0.3,0.5,1.0)",
    )
    g.add_argument(
        "--seeds",
        type=ft.SEEDS_OR_AUTO,
        default=1,
        metavar="K|auto",
        help="seeds per cell; with K ≥ 2 cells hold mean and std; auto: from --min-seeds,"
        " more seeds only for the cells an undecided row depends on, up to --max-seeds",
    )
    g.add_argument(
        "--min-seeds",
        type=ft.COUNT,
        metavar="K",
        help="--seeds auto: seeds every cell gets (default 2)",
    )
    g.add_argument(
        "--max-seeds",
        type=ft.COUNT,
        metavar="K",
        help="--seeds auto: the most a cell gets (default 5)",
    )
    g.add_argument(
        "--certainty",
        type=ft.CERTAINTY,
        metavar="P",
        help="--seeds auto: a row settles when --max-seeds seeds would give its verdict with"
        " this probability (default 0.9)",
    )
    g.add_argument("--seed", type=ft.SEED, default=0, help="first seed (default 0)")
    g.add_argument(
        "--adversaries",
        choices=("worst", "all"),
        default="worst",
        help="adversary per attribute: the worst partner (paper) or all negative ones",
    )
    g.add_argument(
        "--alpha",
        type=ft.PROBABILITY,
        default=0.05,
        help="significance level of the negative-transfer test over seeds",
    )
    g.add_argument(
        "--require-significant",
        action="store_true",
        help="skip partners whose negative transfer is within seed noise",
    )
    g.add_argument(
        "--null-control",
        action="store_true",
        help="also train stage 3 with the partner's labels shuffled: the gain that choosing"
        " λ and epoch alone produces",
    )
    g.add_argument(
        "--lambda-search",
        choices=("grid", "halving"),
        default="grid",
        help="stage 3: every λ at every seed (grid, the paper's sweep), or successive halving"
        " over λ seed by seed, the λ values worse on validation dropped after each seed",
    )
    g.add_argument(
        "--reduction-factor",
        type=ft.Whole(low=2),
        metavar="N",
        help="--lambda-search halving: the best 1/N of the λ values go on after each seed"
        " (default 2)",
    )
    g.add_argument(
        "--retry-failed", action="store_true", help="train again the cells recorded as failed"
    )
    g.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage of the stage-3 λ study (default: optuna.db inside --out)",
    )


_METHOD_HELP = "a registered method: " + ", ".join(list_methods())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="auxsearch",
        description="Ray Tune searches for auxiliary-label deep learning: AAL pair matrices,"
        " adversarial λ sweeps, one-off runs. `auxsearch demo` runs a small pair search.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("pairs", help="AAL end to end: pair matrix, partners, adversarial λ sweep")
    _add_data_flags(p)
    _add_pairs_flags(p)
    _add_method_flags(p)
    _add_ray_flags(p, packs=True)
    _add_out_flag(p)

    p = sub.add_parser(
        "sweep",
        help="a method over a search space: Ray Tune + Optuna TPE + ASHA, live in optuna-dashboard",
    )
    p.add_argument("--method", required=True, help=_METHOD_HELP)
    p.add_argument(
        "--space",
        metavar="FILE.yaml",
        help="search space (default: the bundled search_spaces/<method>.yaml)",
    )
    p.add_argument(
        "--trials",
        type=ft.COUNT,
        metavar="N",
        help="trials in the study in all (a rerun continues up to N; --sampler grid: the"
        " grid's size)",
    )
    _add_data_flags(p)
    _add_method_flags(p)
    g = p.add_argument_group("search")
    g.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna RDB storage (default: sqlite file optuna.db inside --out)",
    )
    g.add_argument("--study", help="study name (default: <method>-sweep)")
    g.add_argument(
        "--sampler",
        choices=("tpe", "random", "grid"),
        default="tpe",
        help="how Optuna proposes trials; grid runs every point of a space of"
        " choices (e.g. to compare a method's modes)",
    )
    g.add_argument(
        "--scheduler",
        choices=("asha", "fifo"),
        default="asha",
        help="asha stops weak trials early (their Optuna state: PRUNED); fifo runs every"
        " trial to its end",
    )
    g.add_argument(
        "--grace-period",
        type=ft.COUNT,
        default=1,
        metavar="N",
        help="ASHA: epochs a trial runs before it can be stopped (default 1)",
    )
    g.add_argument(
        "--metric",
        help="the objective (default: val/mean_acc, the mean val"
        " accuracy of the main tasks at their selected epochs)",
    )
    g.add_argument(
        "--mode",
        choices=("max", "min"),
        default="max",
        help="whether --metric is better higher (max) or lower (min)",
    )
    g.add_argument(
        "--seeds",
        type=ft.COUNT,
        default=1,
        metavar="K",
        help="seeds per trial, trained in turn; the score is their mean",
    )
    g.add_argument("--seed", type=ft.SEED, default=0, help="first seed; also seeds TPE")
    _add_ray_flags(p)
    _add_out_flag(p)

    p = sub.add_parser(
        "grid",
        help="cross-dataset grids: every method x backbone x train domain, tested on"
        " the other domains",
    )
    g = p.add_argument_group("grid")
    g.add_argument(
        "--methods",
        type=ft.names,
        metavar="M1,M2,...",
        help="registered methods that take a grid's roles (default: the protocol's)",
    )
    g.add_argument(
        "--protocol",
        metavar="FILE.yaml",
        help="the grid's methods and shared training settings (default: the Purified"
        " Learning paper's, search_spaces/protocols/grid.yaml)",
    )
    g.add_argument("--train", type=ft.names, metavar="D1,D2,...", help="train domains")
    g.add_argument("--test", type=ft.names, metavar="D1,D2,...", help="test domains")
    g.add_argument(
        "--backbones",
        type=ft.names,
        default=["resnet18"],
        metavar="B1,B2,...",
        help="feature extractors, each a grid column of its own",
    )
    g.add_argument("--task", help="the target label column")
    g.add_argument(
        "--irrelevant",
        metavar="DOMAIN:LABEL",
        help="the task-irrelevant set and its label (e.g. irrelevant:bg)",
    )
    g.add_argument(
        "--relevant",
        metavar="DOMAIN:LABEL",
        help="a task-relevant set, for methods that pre-train on one or take it as source",
    )
    g.add_argument(
        "--seeds",
        type=ft.COUNT,
        default=1,
        metavar="K",
        help="seeds per cell; the table shows the mean",
    )
    g.add_argument("--seed", type=ft.SEED, default=0, help="first seed")
    g.add_argument(
        "--include-self",
        action="store_true",
        help="also test on the train domain (its own test split)",
    )
    g.add_argument(
        "--pca",
        action="store_true",
        help="record the explained-variance ratio of the top 10 principal"
        " components of the test features (PL Figure 2)",
    )
    g.add_argument(
        "--retry-failed", action="store_true", help="train again the cells recorded as failed"
    )
    _add_data_flags(p)
    _add_method_flags(p)
    _add_ray_flags(p)
    _add_out_flag(p)

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
    p.add_argument("--method", required=True, help=_METHOD_HELP)
    _add_data_flags(p)
    _add_method_flags(p)
    p.add_argument("--seed", type=ft.SEED, default=0, help="the training's seed")
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
    if args.command == "pairs":
        return _pairs(args)
    if args.command == "sweep":
        return _sweep(args)
    if args.command == "grid":
        return _grid(args)
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


def _pairs(args: argparse.Namespace) -> int:
    from .inputs import merge_flags, method_overrides, resolve_dataset
    from .pairs import run_pairs
    from .pairs_plan import resolve_settings
    from .show import print_pairs_result

    overrides = merge_flags(
        method_overrides(args.config, args.set),
        {"backbone": ("--backbone", args.backbone), "epochs": ("--epochs", args.epochs)},
    )
    resources = _resources(args)
    dataset = resolve_dataset(args.dataset, args.data, args.data_root)
    settings = resolve_settings(
        dataset,
        attributes=args.attributes,
        overrides=overrides,
        lambdas=args.lambdas,
        seeds=args.seeds,
        seed=args.seed,
        adversaries=args.adversaries,
        alpha=args.alpha,
        require_significant=args.require_significant,
        null_control=args.null_control,
        min_seeds=args.min_seeds,
        max_seeds=args.max_seeds,
        certainty=args.certainty,
        lambda_search=args.lambda_search,
        reduction_factor=args.reduction_factor,
    )
    result = run_pairs(
        dataset,
        settings,
        args.out,
        resources=resources,
        address=args.address,
        retry_failed=args.retry_failed,
        storage=args.storage,
    )
    print_pairs_result(result)
    return EXIT_CELLS_FAILED if result.failed else 0


def _resources(args: argparse.Namespace) -> Any:
    from .runner import Resources

    return Resources(
        args.cpus_per_trial,
        args.gpus_per_trial,
        args.max_concurrent,
        args.max_failures,
        pack=getattr(args, "pack", "auto"),
    )


def _sweep(args: argparse.Namespace) -> int:
    from methods import get_method

    from .inputs import method_overrides, resolve_dataset
    from .spaces import bundled_space_path, load_space
    from .sweep import resolve_sweep, run_sweep

    get_method(args.method)
    resources = _resources(args)
    space = load_space(args.space or bundled_space_path(args.method), args.method)
    dataset = resolve_dataset(args.dataset, args.data, args.data_root)
    settings = resolve_sweep(
        dataset,
        method=args.method,
        space=space,
        overrides=method_overrides(args.config, args.set),
        trials=args.trials,
        metric=args.metric,
        mode=args.mode,
        scheduler=args.scheduler,
        sampler=args.sampler,
        grace_period=args.grace_period,
        seeds=args.seeds,
        seed=args.seed,
        study=args.study or "",
    )
    result = run_sweep(
        dataset, settings, args.out, storage=args.storage, resources=resources, address=args.address
    )
    counts = ", ".join(f"{n.lower()} {c}" for n, c in result.counts.items())
    print(f"\nstudy '{result.study_name}': {counts}")
    if result.best:
        params = ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in result.best["params"].items()
        )
        print(
            f"best: trial #{result.best['number']} ({params}): {settings.metric}"
            f" {result.best['value']:.4f}"
        )
    print(f"trained {result.trained} trial(s); files:")
    for path in result.files():
        print(f"  {path}")
    print(f"watch or browse it: auxsearch dashboard {redact(args.storage or args.out)}")
    failed = result.counts.get("FAIL", 0)
    if failed:
        print(
            f"{failed} trial(s) failed; their errors are in results.parquet (column error)",
            file=sys.stderr,
        )
    return EXIT_CELLS_FAILED if failed else 0


def _grid(args: argparse.Namespace) -> int:
    from .grid import format_table1, resolve_grid, run_grid
    from .inputs import method_overrides, resolve_dataset

    resources = _resources(args)
    dataset = resolve_dataset(args.dataset, args.data, args.data_root)
    settings = resolve_grid(
        dataset,
        methods=args.methods,
        train=args.train,
        test=args.test,
        backbones=args.backbones,
        overrides=method_overrides(args.config, args.set),
        task=args.task,
        irrelevant=args.irrelevant,
        relevant=args.relevant,
        seeds=args.seeds,
        seed=args.seed,
        include_self=args.include_self,
        pca=10 if args.pca else 0,
        protocol=args.protocol,
    )
    result = run_grid(
        dataset,
        settings,
        args.out,
        resources=resources,
        address=args.address,
        retry_failed=args.retry_failed,
    )
    print(
        f"\ntest accuracy (%) of '{settings.roles.task}', mean over {settings.seeds} seed(s)"
        " (the layout of the PL paper's Table 1)"
    )
    print(format_table1(result.matrix, settings))
    if result.failed:
        from .report import failed_cells_note

        print(f"\n{failed_cells_note(result.failed)}", file=sys.stderr)
    print(f"\ntrained {result.trained} model(s); files:")
    for path in result.files():
        print(f"  {path}")
    return EXIT_CELLS_FAILED if result.failed else 0


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
