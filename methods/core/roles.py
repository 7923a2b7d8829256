"""The roles a cross-dataset grid assigns, and how a method's config takes them.

A grid trains every method on a train domain and tests it on the others. What
the methods need beyond that differs (a target task; a task-irrelevant set and
label; a task-relevant set to pre-train on), so each config class turns one
`GridRoles` into its own settings with `for_grid(roles, train, tests)`. The
shared method test suite uses the same hook to build a small valid config for
every registered method.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GridRoles:
    """The target task and the auxiliary sets of a grid (domain names and label columns)."""

    task: str
    irrelevant_domain: str = ""
    irrelevant_label: str = ""
    relevant_domain: str = ""
    relevant_label: str = ""
