"""AAL against a shortcut: does the adversarial gain survive a paired test, and
does the adversary remove the shortcut or merely invert itself? (issue 27; run
by `make bench`, about 4 minutes on 2 CPU cores.)

Data (shortcut_data.py): `large` (the target) agrees with `dark_bg` (an easy
shortcut) in 90% of train and 50% of val and test; `top` and `striped` are
unrelated. Each objective runs the full pair search with 3 seeds, the null
control (the partner's labels permuted) and the linear probe:

- reversal: the paper's gradient reversal (eq. 4 by reversal)
- confusion: ours, the features push the adversary to the uniform prediction
  (Tzeng et al. 2015 eq. 3; Alvi et al. 2018)
- reversal, val like train: the same data but a validation split that shares
  train's 90% agreement, the design under which selection sees no signal

Per run, for the target: its partner and whether the choice is a tie, the
paired test gain over single-task training and over the null control with the
95% CI and p, the val/test warning, and per λ the test accuracy, the
adversary's and the probe's test accuracy on the shortcut with their verdicts.

    python benchmarks/aal_shortcut.py [--seeds 3] [--epochs 6]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))

from shortcut_data import ShortcutDesign, write_shortcut_npz

from methods.data.npz import load_npz
from orchestrator.pairs import run_pairs
from orchestrator.pairs_plan import resolve_settings

LAMBDAS = (0.1, 0.3, 1.0, 3.0)
RUNS = (
    ("reversal", "reversal", (0.9, 0.5, 0.5)),
    ("confusion", "confusion", (0.9, 0.5, 0.5)),
    ("reversal, val like train", "reversal", (0.9, 0.9, 0.5)),
)


def _pct(v: object, signed: bool = False) -> str:
    if v is None or v != v:
        return "-"
    return f"{float(v) * 100:+.2f}" if signed else f"{float(v) * 100:.2f}"


def _ci(r: pd.Series, name: str) -> str:
    return (
        f"{_pct(r[name], True)} [{_pct(r[name + '_low'], True)}, {_pct(r[name + '_high'], True)}]"
        f" p={r[name + '_p']:.3f}"
        if r[name + "_p"] == r[name + "_p"]
        else _pct(r[name], True)
    )


def report(label: str, design: ShortcutDesign, result) -> list[str]:
    s = result.summary.set_index("attribute").loc[design.target]
    lines = [
        f"### {label}",
        "",
        f"- partner chosen for `{design.target}`: `{s['neg_partner']}`"
        f" (MTL with it {_pct(s['mul_minus_sin_test'], True)} test points, Holm p"
        f" {s['p_holm']:.3f}); tie with: {s['tied_partners'] or 'none'}",
        f"- single-task test {_pct(s['sin_test'])}%, adversarial test {_pct(s['adv_test'])}%"
        f" at λ={s['lambda']:g}",
        f"- gain over single-task (test, paired, 95% CI): {_ci(s, 'adv_minus_sin_test')}",
        f"- gain over the null control (test): {_ci(s, 'adv_minus_null_test')}",
        f"- val/test warning: {'yes' if 'disagree' in str(s['note']) else 'no'}",
        "",
        "| λ | val acc | test acc | adversary test acc on the shortcut | probe test acc |",
        "|---|---|---|---|---|",
    ]
    sweep = result.lambda_sweep
    leak = result.leakage
    for r in sweep[
        (sweep["attribute"] == design.target) & (sweep["stage"] == "adversarial")
    ].to_dict("records"):
        cells = []
        for metric in ("adv_acc", "probe_acc"):
            m = leak[
                (leak["stage"] == "adversarial")
                & (leak["attribute"] == design.target)
                & (leak["lambda"] == r["lambda"])
                & (leak["metric"] == metric)
                & (leak["split"] == "test")
            ]
            cells.append(f"{_pct(m['mean'].iloc[0])} ({m['verdict'].iloc[0]})" if len(m) else "-")
        lines.append(
            f"| {r['lambda']:g}{' (chosen)' if r['chosen'] else ''} | {_pct(r['val_acc'])}"
            f" | {_pct(r['test_acc'])} | {cells[0]} | {cells[1]} |"
        )
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    out: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, loss, agreement in RUNS:
            design = ShortcutDesign(agreement=agreement)
            dataset = load_npz(write_shortcut_npz(Path(tmp) / f"{label}.npz", design))
            settings = resolve_settings(
                dataset,
                attributes=design.attributes,
                overrides={
                    "backbone": "small_cnn",
                    "epochs": args.epochs,
                    "lr": 1e-3,
                    "batch_size": 64,
                    "adversary_loss": loss,
                    "probe": True,
                },
                lambdas=LAMBDAS,
                seeds=args.seeds,
                null_control=True,
            )
            start = time.perf_counter()
            result = run_pairs(dataset, settings, f"{tmp}/{label}", echo=lambda _: None)
            print(f"{label}: {time.perf_counter() - start:.0f}s", file=sys.stderr)
            out += report(label, design, result)
    print("\n".join(out))


if __name__ == "__main__":
    main()
