from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from methods.core.config import config_to_dict, meta, parse_config
from methods.core.errors import ConfigError


@dataclass(frozen=True)
class Example:
    lam: float = field(default=0.1, metadata=meta("λ", min=0.0))
    lr: float = field(default=1e-3, metadata=meta("lr", min=0.0, min_exclusive=True))
    epochs: int = field(default=3, metadata=meta("epochs", min=1))
    names: tuple[str, ...] = ()
    mode: Literal["a", "b"] = "a"
    flag: bool = False


def test_defaults_and_coercion() -> None:
    c = parse_config(Example, {"lam": 1, "names": "x, y", "epochs": 4.0, "flag": True})
    assert c == Example(lam=1.0, names=("x", "y"), epochs=4, flag=True)
    assert isinstance(c.lam, float) and isinstance(c.epochs, int)
    assert config_to_dict(c)["names"] == ["x", "y"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"lamda": 1}, "unknown config key 'lamda' for method 'm'; valid keys: epochs, flag"),
        ({"lam": -0.5}, "lam=-0.5 is out of range; it must be ≥ 0"),
        ({"lr": 0}, "lr=0 is out of range; it must be > 0"),
        ({"epochs": 2.5}, "epochs=2.5 is not valid; expected an integer"),
        ({"epochs": True}, "expected an integer"),
        ({"mode": "c"}, "mode='c' is not valid; expected one of 'a', 'b'"),
        ({"flag": "yes"}, "expected true/false"),
        ({"names": [1, 2]}, "names=1 is not valid; expected a string"),
        ({"names": 3}, "names=3 is not valid; expected a list of strings"),
        ({"lam": float("nan")}, "not a finite number"),
    ],
)
def test_rejections_name_the_key_and_what_is_allowed(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", "\\(")):
        parse_config(Example, values, method="m")
