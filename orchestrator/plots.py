"""The search plots written beside the tables: the pair matrix as a heatmap and
the PCA of test features per method (the PL paper's Figure 2). A kernel's own
plots come with its method (`MethodConfig.plots`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from methods.core.figures import png_bytes, pyplot


def heatmap_png(mean: pd.DataFrame, partners: dict[str, list[str]]) -> bytes:
    """Row minus its diagonal, in accuracy points; chosen partners boxed."""
    plt = pyplot()
    from matplotlib.patches import Rectangle

    names = list(mean.index)
    values = mean.to_numpy(dtype=float)
    delta = (values - np.diag(values)[:, None]) * 100.0
    np.fill_diagonal(delta, np.nan)
    finite = delta[np.isfinite(delta)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    limit = max(limit, 1e-3)
    size = 1.2 + 0.55 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(delta, cmap="RdBu", vmin=-limit, vmax=limit)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("trained with (b)")
    ax.set_ylabel("main attribute (a)")
    ax.set_title("val accuracy of a with b minus a alone (points)")
    if len(names) <= 16:
        for i in range(len(names)):
            for j in range(len(names)):
                if np.isfinite(delta[i, j]):
                    dark = abs(delta[i, j]) > 0.6 * limit
                    ax.text(
                        j,
                        i,
                        f"{delta[i, j]:+.1f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if dark else "black",
                    )
    for i, a in enumerate(names):
        for b in partners.get(a, []):
            j = names.index(b)
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2, ec="black"))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return png_bytes(fig, dpi=110)


def pca_png(pca: pd.DataFrame, methods: Sequence[str]) -> bytes:
    """Stacked bars per method: the share of test-feature variance in PC1, PC2, the
    next components and the rest (the PL paper's Figure 2), one panel per backbone."""
    plt = pyplot()

    backbones = sorted(pca["backbone"].unique()) if len(pca) else []
    fig, axes = plt.subplots(
        1,
        max(1, len(backbones)),
        figsize=(2 + 1.2 * len(methods) * max(1, len(backbones)), 4),
        squeeze=False,
    )
    for ax, backbone in zip(axes[0], backbones, strict=False):
        sub = pca[pca["backbone"] == backbone]
        # average over train→test pairs, per method and component
        mean = sub.groupby(["method", "component"])["ratio"].mean()
        shown = [m for m in methods if m in mean.index.get_level_values(0)]
        pc1 = np.array([mean.get((m, 1), 0.0) for m in shown])
        pc2 = np.array([mean.get((m, 2), 0.0) for m in shown])
        more = np.array([sum(v for (mm, c), v in mean.items() if mm == m and c > 2) for m in shown])
        rest = np.clip(1.0 - pc1 - pc2 - more, 0.0, 1.0)
        x = np.arange(len(shown))
        ax.bar(x, pc1, color="#1b5e20", label="PC 1")
        ax.bar(x, pc2, bottom=pc1, color="#43a047", label="PC 2")
        ax.bar(x, more, bottom=pc1 + pc2, color="#a5d6a7", label="next PCs")
        ax.bar(x, rest, bottom=pc1 + pc2 + more, color="#eeeeee", label="rest")
        ax.set_xticks(x, shown, rotation=30, ha="right")
        ax.set_ylim(0, 1)
        ax.set_title(str(backbone))
        ax.set_ylabel("share of test-feature variance")
    axes[0][0].legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return png_bytes(fig, dpi=110)


def lambda_sweep_png(sweep: pd.DataFrame, leakage: pd.DataFrame, single: dict[str, tuple]) -> bytes:
    """Per attribute: val and test accuracy against λ (the single-task level and the
    null control beside it; the chosen λ ringed), and each leakage metric against λ
    with the test split's chance band shaded. `single`: attribute → (val, test) of
    its single-task runs."""
    plt = pyplot()

    attributes = list(dict.fromkeys(sweep["attribute"])) if len(sweep) else []
    fig, axes = plt.subplots(
        max(1, len(attributes)), 2, figsize=(9, 2.8 * max(1, len(attributes))), squeeze=False
    )
    if not attributes:
        axes[0][0].set_axis_off()
        axes[0][1].set_axis_off()
        axes[0][0].text(0.5, 0.5, "no adversarial runs", ha="center", va="center")
    for (acc_ax, leak_ax), a in zip(axes, attributes, strict=False):
        for stage, style in (("adversarial", "-"), ("null", ":")):
            sub = sweep[(sweep["attribute"] == a) & (sweep["stage"] == stage)].sort_values("lambda")
            for split, color in (("val", "#1f77b4"), ("test", "#d62728")):
                acc_ax.plot(
                    sub["lambda"],
                    sub[f"{split}_acc"] * 100,
                    style,
                    marker="o",
                    ms=3,
                    color=color,
                    label=f"{split} ({'null control' if stage == 'null' else 'adv'})",
                )
                chosen = sub[sub["chosen"]]
                if stage == "adversarial" and len(chosen):
                    acc_ax.plot(
                        chosen["lambda"],
                        chosen[f"{split}_acc"] * 100,
                        "o",
                        ms=9,
                        mfc="none",
                        color="black",
                    )
        for i, (split, color) in enumerate((("val", "#1f77b4"), ("test", "#d62728"))):
            level = single.get(a, (None, None))[i]
            if level is not None:
                acc_ax.axhline(
                    level * 100, ls="--", lw=1, color=color, label=f"{split} single-task"
                )
        acc_ax.set_xscale("symlog", linthresh=1e-3)
        acc_ax.set_title(f"{a} vs {sweep[sweep['attribute'] == a]['partner'].iloc[0]}")
        acc_ax.set_xlabel("λ")
        acc_ax.set_ylabel(f"accuracy of {a} (%)")
        leak = leakage[(leakage["attribute"] == a) & (leakage["stage"] == "adversarial")]
        if len(leak):
            band = leak[leak["split"] == "test"]
            if len(band):
                leak_ax.axhspan(
                    band["chance_low"].min() * 100,
                    band["chance_high"].max() * 100,
                    color="#cccccc",
                    alpha=0.5,
                    label="test chance band",
                )
            for (metric, split), sub in leak.groupby(["metric", "split"]):
                sub = sub.sort_values("lambda")
                leak_ax.plot(
                    sub["lambda"],
                    sub["mean"] * 100,
                    "-" if split == "test" else "--",
                    marker="o",
                    ms=3,
                    label=f"{metric} {split}",
                )
        leak_ax.set_xscale("symlog", linthresh=1e-3)
        leak_ax.set_ylim(-2, 102)
        leak_ax.set_xlabel("λ")
        leak_ax.set_ylabel("accuracy on the partner (%)")
        leak_ax.set_title("leakage at the selected epoch")
        for ax in (acc_ax, leak_ax):
            ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    return png_bytes(fig, dpi=100)
