"""Errors the CLI reports as one sentence with exit code 2.

`UserInputError` comes from `methods` (bad configs and data raise it there);
the orchestrator adds the mistakes only it can see: an `--out` that cannot be
written or holds a different search, a malformed flag value.
"""

from __future__ import annotations

from methods.core.errors import ConfigError, DataError, UserInputError


class OutputError(UserInputError):
    """An output location that cannot be used (not writable, or another search's)."""


class SearchInterrupted(Exception):
    """A stage stopped before all its cells finished (Ctrl+C, a lost cluster).

    What finished is recorded; rerunning the same command resumes.
    """


def short_reason(error: BaseException | str, limit: int = 200) -> str:
    """A library's error text on one line, for the parenthesis of our sentence:
    whole if short, else its first sentences or words up to `limit` and an ellipsis
    (never cut inside a word)."""
    text = " ".join(str(error).split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("; "))
    if end >= limit // 2:
        return cut[: end + 1] + " …"
    return cut.rsplit(" ", 1)[0].rstrip(",;:") + " …"


__all__ = [
    "ConfigError",
    "DataError",
    "OutputError",
    "SearchInterrupted",
    "UserInputError",
    "short_reason",
]
