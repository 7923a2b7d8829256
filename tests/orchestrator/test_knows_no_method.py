"""The orchestrator knows no particular method: what differs between methods comes
from their declared contract or from a protocol file in search_spaces/."""

from __future__ import annotations

import ast
from pathlib import Path

from methods import list_methods

ORCHESTRATOR = Path(__file__).resolve().parents[2] / "orchestrator"


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants (examples in prose are not code)."""
    out = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            out.add(id(body[0].value))
    return out


def test_no_string_in_the_orchestrator_names_a_method() -> None:
    names = set(list_methods())
    found = []
    for path in sorted(ORCHESTRATOR.glob("*.py")):
        tree = ast.parse(path.read_text())
        prose = _docstrings(tree)
        for node in ast.walk(tree):
            if id(node) in prose:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                words = {w.strip(".,:;()`'\"[]") for w in node.value.split()}
                found += [f"{path.name}:{node.lineno} {w}" for w in words & names]
    assert not found, f"method names in the orchestrator: {found}"
