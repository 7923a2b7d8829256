"""The YAML and data files a command is given, each read one way: a folder, a
missing file, an unreadable one or one that is not text is one sentence naming
the flag, the path and what to give instead."""

from __future__ import annotations

from pathlib import Path

from .errors import UserInputError, short_reason


def read_text(
    path: str | Path, what: str, hint: str, error: type[UserInputError] = UserInputError
) -> str:
    """The text of the file `what` (e.g. `--config x.yaml`) names; `hint` says what to give."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise error(f"{what} is a directory; {hint}")
    if not p.is_file():
        raise error(f"{what} does not exist; {hint}")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} is not UTF-8 text; {hint}") from None
    except OSError as exc:
        raise error(
            f"{what} cannot be read ({short_reason(exc.strerror or exc)}); {hint}"
        ) from None
