"""What `--seeds auto` saves, and whether it reaches the same answer: a pair search
with `--seeds auto --max-seeds 5` against uniform `--seeds 5`, side by side in one
run, on two built-in datasets (run by `make bench`):

1. the demo's data (`shapes`, 2,000 32×32 images, correlated pairs, six
   attributes): large negative transfer;
2. a harder variant with smaller effects (`shapes` with weaker correlations,
   four attributes of the demo);
3. five attributes the demo does not use, at a middling correlation: the
   variant on which the first rule of `--seeds auto` (a futility projection from
   each cell's own two seeds) settled two rows against uniform-5's verdict.

For each: stage-1 trainings used, stage-1 wall time (the sum of its cells' own
wall times, so the two are compared on the same trainings' cost, whatever ran
beside them) and the search's elapsed time, and per row whether auto's settled
decision (the worst partner and whether it is significant, stage 2's Welch test
with Holm's correction) equals uniform-5's. Both searches sweep one λ in stage 3
(which auto runs with its minimum seeds).

    python benchmarks/adaptive_seeds.py [--quick]
    python benchmarks/adaptive_seeds.py --dataset SPEC --attributes A,B,...

`--dataset` (a built-in dataset as `auxsearch pairs --dataset` takes it, e.g.
`shapes:seed=11,correlation=0.3` or `digits`) with `--attributes` runs that
search alone, the same two ways: the check on data this file does not name.

`--replay DIR ...` trains nothing: it replays `--seeds auto` on finished uniform
searches (`auxsearch pairs --seeds K --out DIR`; a cell's numbers depend only on
its seed, so auto's rounds are a subset of uniform-K's cells) and reports the
same comparison, for any data a uniform search has already been run on.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from methods.data import Dataset, load_dataset
from orchestrator.adaptive_seeds import AdaptiveSeeds, CellKey, run_rounds
from orchestrator.demo import DEMO_ATTRIBUTES, DEMO_DATASET, DEMO_SETTINGS
from orchestrator.errors import UserInputError
from orchestrator.inputs import resolve_dataset
from orchestrator.pair_analysis import Values, choose_partners, pair_values
from orchestrator.pairs import run_pairs
from orchestrator.pairs_plan import resolve_settings, stage1_id

CASES = {
    "demo (shapes, correlation 0.5)": (DEMO_DATASET, DEMO_ATTRIBUTES),
    "smaller effects (shapes, correlation 0.2)": (
        {**DEMO_DATASET, "correlation": 0.2, "seed": 1},
        ("red", "large", "left", "striped"),
    ),
    "other attributes (shapes, correlation 0.35)": (
        {**DEMO_DATASET, "correlation": 0.35, "seed": 3},
        ("top", "vertical", "outlined", "bright", "marker"),
    ),
}


def search(dataset: Any, attributes: tuple[str, ...], out: str, **seeds: Any) -> dict[str, Any]:
    settings = resolve_settings(
        dataset, attributes=attributes, overrides=DEMO_SETTINGS, lambdas=[0.1], **seeds
    )
    start = time.perf_counter()
    result = run_pairs(dataset, settings, out, echo=lambda _: None)
    elapsed = time.perf_counter() - start
    rows = pq.read_table(f"{out}/results.parquet").to_pylist()
    stage1 = {(r["trial_id"], r["wall_s"]) for r in rows if r["stage"] in ("single", "pair")}
    return {
        "partners": result.partners,
        "rows": result.rows,
        "trainings": len(stage1),
        "stage1_s": sum(w for _, w in stage1),
        "elapsed": elapsed,
    }


def agreement(uniform: dict[str, Any], auto: dict[str, Any]) -> dict[str, Any]:
    """Per settled row of auto: the same verdict as uniform-5 (a significant negative
    partner or none), and the same partner where both found one."""
    out: dict[str, Any] = {"settled": 0, "verdict": 0, "partner": 0, "both": 0, "open": 0}
    out["notes"] = []
    for a, row in auto["rows"].items():
        if not row.settled:
            out["open"] += 1
            continue
        out["settled"] += 1
        u = uniform["partners"][a]
        u_negative = bool(u.significant) and bool(u.partners)
        same_verdict = (row.decision == "negative") == u_negative
        out["verdict"] += same_verdict
        if same_verdict and u_negative:
            out["both"] += 1
            out["partner"] += row.partner == u.partners[0]
        if not same_verdict or (u_negative and row.partner != u.partners[0]):
            out["notes"].append(
                f"{a}: auto {row.decision} {row.partner or ''} ({row.why}),"
                f" uniform-5 {'negative ' + u.partners[0] if u_negative else 'none'}"
                f" (p {'-' if u.p_holm is None else f'{u.p_holm:.3g}'})"
            )
    return out


def replay(out: Path) -> None:
    """`--seeds auto --max-seeds K` replayed on a uniform-K search's results."""
    settings = json.loads((out / "search.json").read_text())["settings"]
    attributes, k, first = settings["attributes"], int(settings["seeds"]), int(settings["seed"])
    rows = pq.read_table(out / "results.parquet").to_pylist()
    keys = [(a,) for a in attributes] + [
        tuple(sorted((a, b))) for i, a in enumerate(attributes) for b in attributes[i + 1 :]
    ]
    cfg = AdaptiveSeeds(max_seeds=k, alpha=float(settings["alpha"]))
    seeds = dict.fromkeys(keys, cfg.min_seeds)

    def look_up(_round: int, seeds: Mapping[CellKey, int]) -> Values:
        ids = {stage1_id(key, first + j) for key in keys for j in range(seeds[key])}
        return pair_values(rows, "val", ids)

    *_, (_, states, _) = run_rounds(attributes, seeds, cfg, look_up)  # every round; the last
    full = pair_values(rows, "val", {stage1_id(key, first + j) for key in keys for j in range(k)})
    uniform = {"partners": choose_partners(full, attributes, alpha=cfg.alpha)}
    agree = agreement(uniform, {"rows": states})
    print(
        f"{out}: auto 2-{k} would train {sum(seeds.values())} of uniform-{k}'s {k * len(keys)}"
        f" stage-1 cells ({sum(seeds.values()) / (k * len(keys)):.2f});"
        f" {agree['settled']} row(s) settled ({agree['verdict']} with uniform-{k}'s verdict,"
        f" {agree['partner']} of {agree['both']} negative ones with its partner),"
        f" {agree['open']} open"
    )
    for note in agree["notes"]:
        print(f"  differs: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the second dataset only")
    parser.add_argument(
        "--replay", nargs="+", type=Path, metavar="DIR", help="finished uniform searches"
    )
    parser.add_argument("--dataset", metavar="SPEC", help="one search on this dataset")
    parser.add_argument("--attributes", metavar="A,B,...", help="its attributes")
    args = parser.parse_args()
    if args.replay:
        for out in args.replay:
            replay(out)
        return
    if bool(args.dataset) != bool(args.attributes):
        parser.error("--dataset and --attributes go together")
    cases: list[tuple[str, Callable[[], Dataset], tuple[str, ...]]] = [
        (name, partial(load_dataset, "shapes", options), attributes)
        for name, (options, attributes) in CASES.items()
    ]
    if args.dataset:
        named = tuple(args.attributes.split(","))
        try:  # a bad dataset or attribute is one sentence before anything trains
            chosen = resolve_dataset(args.dataset, None)
            resolve_settings(chosen, attributes=named, overrides=DEMO_SETTINGS, lambdas=[0.1])
        except UserInputError as exc:
            parser.error(str(exc))
        cases = [(args.dataset, lambda: chosen, named)]
    elif args.quick:
        cases = cases[1:2]
    print(f"{'dataset':<44}{'seeds':>12}{'stage-1 runs':>14}{'stage-1 s':>11}{'elapsed s':>11}")
    for name, load, attributes in cases:
        dataset = load()
        with tempfile.TemporaryDirectory() as tmp:
            uniform = search(dataset, attributes, f"{tmp}/uniform", seeds=5)
            auto = search(dataset, attributes, f"{tmp}/auto", seeds="auto", max_seeds=5)
        for label, r in (("uniform 5", uniform), ("auto 2-5", auto)):
            print(
                f"{name:<44}{label:>12}{r['trainings']:>14}{r['stage1_s']:>11.1f}"
                f"{r['elapsed']:>11.1f}"
            )
        agree = agreement(uniform, auto)
        print(
            f"  auto ÷ uniform: {auto['trainings'] / uniform['trainings']:.2f} of the stage-1"
            f" trainings, {auto['stage1_s'] / uniform['stage1_s']:.2f} of their time;"
            f" {agree['settled']} row(s) settled ({agree['verdict']} with uniform-5's verdict,"
            f" {agree['partner']} of {agree['both']} negative ones with its partner),"
            f" {agree['open']} open at 5 seeds"
        )
        for note in agree["notes"]:
            print(f"  differs: {note}")
        u_sig = sorted(
            f"{a}~{p.partners[0]}" for a, p in uniform["partners"].items() if p.significant
        )
        a_sig = sorted(
            f"{a}~{r.partner}" for a, r in auto["rows"].items() if r.decision == "negative"
        )
        print(f"  significant partners: uniform-5 {u_sig}; auto {a_sig}")


if __name__ == "__main__":
    main()
