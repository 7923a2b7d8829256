"""search.json: what a search directory holds, so a rerun can resume it and a
different search is refused instead of mixed in.

The identity is what decides every cell's result: the kind of search, the
dataset's fingerprint, the resolved training settings and (for a pair search)
the attribute set. Seeds and λ values are not part of it: cells are keyed by
them, so a rerun with more seeds or λ values extends the same search and trains
only the new cells.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import OutputError
from .redact import redact
from .storage import OutputDir

MANIFEST = "search.json"

# Training settings added after searches were already written, with the value that
# reproduces what those searches ran: an identity without the key is the same
# search as one that has it at this value (a search started before `precision`
# existed trained in fp32, so resuming it with the default continues it; one
# before AAL's `probe` trained without a probe).
ADDED_SETTINGS: dict[str, Any] = {"precision": "fp32", "probe": False}


def first_difference(old: Any, new: Any, path: str = "") -> str | None:
    """The first setting that differs between two identities, as `a.b: 1 there, 2 here`.
    A setting of `ADDED_SETTINGS` missing from one side counts as its old value."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            where = f"{path}.{key}" if path else key
            if key in ADDED_SETTINGS:
                was = ADDED_SETTINGS[key]
                diff = first_difference(old.get(key, was), new.get(key, was), where)
                if diff:
                    return diff
                continue
            if key not in old or key not in new:
                return f"{where} is set in only one of them"
            diff = first_difference(old[key], new[key], where)
            if diff:
                return diff
        return None
    if old != new:
        return f"{path}: {json.dumps(old)} there, {json.dumps(new)} here"
    return None


def claim(out: OutputDir, identity: dict[str, Any], settings: dict[str, Any]) -> bool:
    """Make `out` this search's directory; True when it already was (a resume)."""
    if out.exists(MANIFEST):
        try:
            stored = json.loads(out.read_bytes(MANIFEST))
        except (ValueError, OSError) as exc:
            raise OutputError(f"{out.path(MANIFEST)} is unreadable ({exc})") from None
        stored_identity = stored.get("identity")
        if isinstance(stored_identity, dict) and isinstance(stored_identity.get("storage"), str):
            # written before passwords were redacted: the same search, kept without one now
            stored_identity = {**stored_identity, "storage": redact(stored_identity["storage"])}
        diff = first_difference(stored_identity, identity)
        if diff:
            raise OutputError(
                f"--out {out.location} holds a different search ({diff}); use another --out"
                " or the settings it was started with"
            )
        resumed = True
    else:
        if out.local:
            from pathlib import Path

            leftovers = [p.name for p in Path(out.root).iterdir() if not p.name.startswith(".")]
            if leftovers:
                raise OutputError(
                    f"--out {out.location} already holds files ({leftovers[0]}, ...) but no"
                    f" {MANIFEST}; choose a new or empty directory"
                )
        resumed = False
    out.write_bytes(
        MANIFEST,
        json.dumps({"identity": identity, "settings": settings}, indent=2, sort_keys=True).encode(),
    )
    return resumed
