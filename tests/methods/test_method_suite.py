"""The shared suite (`methods.testing`) on every registered method, parametrised
over the registry itself: a newly registered kernel is tested with no edit here."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from methods import ConfigError, get_method, list_methods
from methods.testing import CHECKS

METHODS = list_methods()


def test_registry_holds_the_methods() -> None:
    assert {"stl", "mtl", "aal", "goal1", "tl", "amtl", "dann", "purified", "tl_purified"} <= set(
        METHODS
    )


def test_unknown_method_lists_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match="registered methods: .*aal"):
        get_method("nope")


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
@pytest.mark.parametrize("method", METHODS)
def test_method_contract(method: str, check: Callable[[str], None]) -> None:
    check(method)
