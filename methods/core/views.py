"""Domains on the device: inputs encoded for a model, labels as a tensor, and
shuffled minibatches of rows."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ..data import Domain
from .errors import DataError


class InputEncoder:
    """Turns rows of a domain into model-ready float tensors on the device.

    Images: uint8 (N, H, W, C) → float (N, C, H, W), standardised per channel;
    vectors: standardised per feature. The statistics come from (at most
    `STATS_ROWS` evenly spaced rows of) the train split of the domain trained
    on; other domains are encoded with those same statistics (`like=`), as a
    deployed model would see them. On a GPU, a domain of up to
    `DEVICE_CACHE_BYTES` is copied to the device once as uint8, so batches are
    gathered there instead of crossing the bus each step.
    """

    STATS_ROWS = 4096
    DEVICE_CACHE_BYTES = 1 << 30

    def __init__(self, domain: Domain, device: torch.device, like: InputEncoder | None = None):
        self.domain = domain
        self.device = device
        self.mean: torch.Tensor
        self.std: torch.Tensor
        if like is not None:
            self.mean, self.std = like.mean, like.std
        else:
            train_rows = domain.indices("train")
            step = max(1, len(train_rows) // self.STATS_ROWS)
            sample = domain.inputs[train_rows[::step]]
            if domain.is_image:
                pixels = sample.reshape(-1, sample.shape[-1]).astype(np.float64) / 255.0
                mean, std = pixels.mean(0), pixels.std(0)
                shape: tuple[int, ...] = (1, -1, 1, 1)
            else:
                mean, std = sample.mean(0, dtype=np.float64), sample.std(0, dtype=np.float64)
                shape = (1, -1)
            std = np.where(std < 1e-6, 1.0, std)
            # torch's default float type (float32 unless a caller, e.g. an exactness
            # test, runs everything in float64)
            dtype = torch.get_default_dtype()
            self.mean = torch.tensor(mean, dtype=dtype, device=device).view(shape)
            self.std = torch.tensor(std, dtype=dtype, device=device).view(shape)
        self.cached: torch.Tensor | None = None
        if device.type != "cpu" and domain.inputs.nbytes <= self.DEVICE_CACHE_BYTES:
            self.cached = torch.tensor(domain.inputs, device=device)

    def __call__(self, rows: np.ndarray) -> torch.Tensor:
        if self.cached is not None:
            x = self.cached[torch.from_numpy(rows).to(self.device)]
        else:
            x = torch.from_numpy(self.domain.inputs[rows]).to(self.device)
        if self.domain.is_image:
            x = x.permute(0, 3, 1, 2).to(torch.get_default_dtype()).div_(255.0)
        return (x - self.mean) / self.std


class DomainView:
    """One domain on the device: encoded inputs, the label table and split rows."""

    def __init__(self, domain: Domain, device: torch.device, like: InputEncoder | None = None):
        self.domain = domain
        self.name = domain.name
        self.device = device
        self.encoder = InputEncoder(domain, device, like)
        # A copy: arrays arriving through Ray's object store are read-only.
        self.labels = torch.tensor(domain.labels, device=device)
        self.rows = {s: domain.indices(s) for s in ("train", "val", "test")}

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, the whole label rows) of the given rows."""
        return self.encoder(rows), self.labels[torch.from_numpy(rows).to(self.device)]

    def epoch(
        self, batch_size: int, rng: np.random.Generator, split: str = "train"
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One shuffled pass over a split."""
        for rows in minibatches(self.rows[split], batch_size, rng):
            yield self.batch(rows)

    def epoch_rows(
        self, batch_size: int, rng: np.random.Generator
    ) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
        """One shuffled pass over the train split, with each batch's row numbers."""
        for rows in minibatches(self.rows["train"], batch_size, rng):
            yield (rows, *self.batch(rows))

    def forever(
        self, batch_size: int, rng: np.random.Generator, rows: np.ndarray | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless shuffled batches of `rows` (default: the train split), pass after pass:
        a second dataset drawn alongside the one an epoch is counted on."""
        pool = self.rows["train"] if rows is None else rows
        if len(pool) < 2:
            raise DataError(f"domain '{self.name}' has fewer than 2 rows to draw batches from")
        while True:
            yield from (self.batch(r) for r in minibatches(pool, batch_size, rng))


def minibatches(
    rows: np.ndarray, batch_size: int, rng: np.random.Generator | None
) -> Iterator[np.ndarray]:
    """Shuffled (rng given) or ordered batches; a trailing batch of one is dropped
    when shuffling, since batch norm cannot train on a single sample."""
    order = rows[rng.permutation(len(rows))] if rng is not None else rows
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        if rng is not None and len(batch) < 2:
            continue
        yield batch
