"""Options of the on-disk formats, given after the name:
`--dataset celeba:size=64,crop=178 --data-root DIR`.

Image options change what is decoded (and so key the cache); the others change
only how rows are split or found.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...core.errors import DataError

# the options every format takes
COMMON = ("size", "crop", "channels", "val_fraction", "split_seed")


@dataclass(frozen=True)
class ReadOptions:
    size: int = field(default=0, metadata={"help": "resize images to size x size (0: as stored)"})
    crop: int = field(
        default=0, metadata={"help": "centre-crop a crop x crop square first (0: no crop)"}
    )
    channels: int = field(default=0, metadata={"help": "1 (grey) or 3 (RGB); 0: as stored"})
    val_fraction: float = field(
        default=0.1,
        metadata={"help": "share of each class of train moved to val, for releases without val"},
    )
    split_seed: int = field(default=0, metadata={"help": "seed of that val draw"})
    extra: bool = field(default=False, metadata={"help": "SVHN: add extra_32x32.mat to train"})
    csv: str = field(default="labels.csv", metadata={"help": "image_csv: the label file"})
    path_column: str = field(default="path", metadata={"help": "image_csv: the image path column"})

    @property
    def image_key(self) -> dict[str, int]:
        """What decides the decoded pixels (the cache key)."""
        return {"size": self.size, "crop": self.crop, "channels": self.channels}


def parse_options(name: str, given: Mapping[str, Any], specific: Sequence[str] = ()) -> ReadOptions:
    """Validated options for format `name`, which takes COMMON plus `specific`."""
    allowed = (*COMMON, *specific)
    defaults = {f.name: f.default for f in dataclasses.fields(ReadOptions)}
    values: dict[str, Any] = {}
    for key, value in given.items():
        if key not in allowed:
            raise DataError(f"dataset '{name}' has no option '{key}'; its options: "
                            f"{', '.join(allowed)}")  # fmt: skip
        default = defaults[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise DataError(f"dataset '{name}': option {key}={value!r} must be true or false")
        elif isinstance(default, int):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise DataError(
                    f"dataset '{name}': option {key}={value!r} must be a whole number ≥ 0"
                )
        elif isinstance(default, float):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise DataError(f"dataset '{name}': option {key}={value!r} must be a number")
            value = float(value)
        elif not isinstance(value, str) or not value:
            raise DataError(f"dataset '{name}': option {key}={value!r} must be a name")
        values[key] = value
    options = ReadOptions(**values)
    if options.channels not in (0, 1, 3):
        raise DataError(
            f"dataset '{name}': channels={options.channels} is not allowed; use 1 (grey),"
            " 3 (RGB) or 0 (as stored)"
        )
    if not 0.0 <= options.val_fraction < 1.0:
        raise DataError(f"dataset '{name}': val_fraction={options.val_fraction} must be in [0, 1)")
    return options
