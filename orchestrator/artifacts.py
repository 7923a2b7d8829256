"""Kernel artifacts (`ctx.artifact(name, columns)`) as Parquet files, plus the plots
some of them have.

Inside a search a trial writes `artifacts/<cell id>/<name>.seed<S>.parquet`
under --out; `auxsearch run --out DIR` writes `DIR/<name>.parquet`. Every file
is written atomically through `OutputDir`. Tables with a plot:

- `alpha_curve` (SOSELETO, Figure 2): effective noise level of the source
  against the fraction of samples kept by α, as `<name>.png` beside the table;
- `samples` (jdm, the paper's Figure 4): G_X's images, one row per class.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from .figures import png_bytes, pyplot
from .storage import OutputDir
from .tables import write_parquet

ArtifactWriter = Callable[[str, dict[str, np.ndarray]], None]


def columns_table(columns: dict[str, np.ndarray]) -> pa.Table:
    return pa.table({k: np.asarray(v) for k, v in columns.items()})


def artifact_writer(out: OutputDir, stem: Callable[[str], str]) -> ArtifactWriter:
    """A `ctx.artifact` callback writing `<stem(name)>.parquet` (and `.png` where the
    table has a plot) under `out`."""

    def write(name: str, columns: dict[str, np.ndarray]) -> None:
        write_parquet(out, f"{stem(name)}.parquet", columns_table(columns))
        plot = PLOTS.get(name)
        if plot is not None:
            out.write_bytes(f"{stem(name)}.png", plot(columns))

    return write


def noise_curve_png(columns: dict[str, np.ndarray]) -> bytes:
    """SOSELETO's Figure 2: effective noise level against the fraction of source
    samples kept, keeping those with the largest α."""
    plt = pyplot()

    kept = np.asarray(columns["kept_fraction"], dtype=np.float64)
    noise = np.asarray(columns["effective_noise"], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    ax.plot(kept, noise, marker="o", color="#1565c0", label="kept by α")
    ax.axhline(noise[-1], color="#9e9e9e", linestyle="--", label="whole source")
    ax.set_xlabel("fraction of source samples kept")
    ax.set_ylabel("effective noise level")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, max(0.05, float(noise.max()) * 1.15))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return png_bytes(fig, dpi=110)


def samples_png(columns: dict[str, np.ndarray]) -> bytes:
    """A grid of generated images: one row per label, one column per sample."""
    plt = pyplot()

    labels = np.asarray(columns["label"])
    order = np.lexsort((np.asarray(columns["sample"]), labels))
    classes = sorted(set(labels.tolist()))
    per_row = int(max(np.bincount(labels - labels.min())))
    fig, axes = plt.subplots(
        len(classes), per_row, figsize=(per_row * 0.6, len(classes) * 0.6), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    column_of: dict[int, int] = {}
    for i in order:
        label = int(labels[i])
        j = column_of.get(label, 0)
        column_of[label] = j + 1
        c, h, w = (int(columns[k][i]) for k in ("channels", "height", "width"))
        image = np.asarray(columns["pixels"][i], dtype=np.float64).reshape(c, h, w)
        ax = axes[classes.index(label)][j]
        if c == 3:
            ax.imshow(np.clip(image.transpose(1, 2, 0), 0, 1))
        else:  # grey, or the first channel of other channel counts
            ax.imshow(image[0], cmap="gray", vmin=0, vmax=1)
    for row, label in enumerate(classes):
        axes[row][0].set_title(str(label), fontsize=6, loc="left")
    fig.tight_layout(pad=0.2)
    return png_bytes(fig, dpi=100)


PLOTS: dict[str, Callable[[dict[str, np.ndarray]], bytes]] = {
    "alpha_curve": noise_curve_png,
    "samples": samples_png,
}
