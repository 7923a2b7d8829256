"""What ASHA buys a sweep: the same sweep run with `--scheduler asha` and `fifo`,
side by side in one run (run by `make bench`).

Same data, space, trial count and TPE seed; printed: wall time, epochs trained
(the sum over trials of the epochs each reached), best objective, and the
ASHA ÷ FIFO ratios. TPE proposals depend on earlier results, so the two sweeps
see the same first trials and then drift apart; compare the best values as two
draws, not as a controlled experiment.

    python benchmarks/sweep_asha.py [--trials 16]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import optuna

from methods.data import load_dataset
from orchestrator.spaces import parse_space
from orchestrator.sweep import resolve_sweep, run_sweep

SPACE = {
    "method": "aal",
    "fixed": {"backbone": "small_cnn", "epochs": 6, "batch_size": 64},
    "space": {"lam": {"choice": [0.01, 0.1, 0.3, 0.5, 1.0]}, "lr": {"loguniform": [1e-4, 1e-2]}},
}


def one(scheduler: str, trials: int, dataset, tmp: str) -> tuple[float, int, float]:
    settings = resolve_sweep(
        dataset,
        method="aal",
        space=parse_space(SPACE, "aal", "benchmark"),
        overrides={"main": ["left"], "adversaries": ["dark_bg"]},
        trials=trials,
        scheduler=scheduler,
    )
    start = time.perf_counter()
    result = run_sweep(dataset, settings, f"{tmp}/{scheduler}", echo=lambda _: None)
    wall = time.perf_counter() - start
    study = optuna.load_study(study_name=result.study_name, storage=result.storage_url)
    epochs = sum(max(t.intermediate_values, default=0) for t in study.trials)
    return wall, epochs, float(result.best["value"]) if result.best else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dataset = load_dataset("shapes", {"n": 1000, "image_size": 24})
    with tempfile.TemporaryDirectory() as tmp:
        rows = {s: one(s, args.trials, dataset, tmp) for s in ("fifo", "asha")}
    print(
        f"sweep of aal (left vs dark_bg) on shapes n=1000 24x24, {args.trials} trials of up"
        " to 6 epochs, lam x lr, TPE seed 0"
    )
    print(f"{'scheduler':<10}{'wall s':>9}{'epochs':>9}{'best val/mean_acc':>20}")
    for name, (wall, epochs, best) in rows.items():
        print(f"{name:<10}{wall:>9.1f}{epochs:>9d}{best:>20.4f}")
    (fw, fe, fb), (aw, ae, ab) = rows["fifo"], rows["asha"]
    print(f"asha ÷ fifo: wall {aw / fw:.2f}, epochs {ae / fe:.2f}, best {ab - fb:+.4f}")


if __name__ == "__main__":
    main()
