"""Kernel artifacts (`ctx.artifact(name, columns)`) as Parquet files, plus a PNG
for those the method declares a plot of (`MethodConfig.plots`, e.g. SOSELETO's
Figure 2 from its `alpha_curve`).

Inside a search a trial writes `artifacts/<cell id>/<name>.seed<S>.parquet`
under --out; `auxsearch run --out DIR` writes `DIR/<name>.parquet`. Every file
is written atomically through `OutputDir`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from methods.core import PlotFn

from .storage import OutputDir
from .tables import columns_table, write_parquet

ArtifactWriter = Callable[[str, dict[str, np.ndarray]], None]


def artifact_writer(
    out: OutputDir, stem: Callable[[str], str], plots: Mapping[str, PlotFn]
) -> ArtifactWriter:
    """A `ctx.artifact` callback writing `<stem(name)>.parquet` under `out`, and
    `<stem(name)>.png` where `plots` has a plot of that artifact."""

    def write(name: str, columns: dict[str, np.ndarray]) -> None:
        write_parquet(out, f"{stem(name)}.parquet", columns_table(columns))
        plot = plots.get(name)
        if plot is not None:
            out.write_bytes(f"{stem(name)}.png", plot(columns))

    return write
