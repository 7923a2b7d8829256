"""The noisy multi-task FER paper's Figure 4 as a PNG: G_X's generated images,
one row per class (drawn from `jdm`'s `samples` artifact)."""

from __future__ import annotations

import numpy as np

from ..core.figures import png_bytes, pyplot


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
