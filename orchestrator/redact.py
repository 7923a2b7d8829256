"""Credentials stay out of what auxsearch shows and keeps (issue 28).

A storage URL such as `postgresql://user:pw@host/db` carries its password.
`redact_url` is what every message, file and table holds instead (the password
replaced by `***`; the user, host and database kept, since those say which
storage it was), and `RedactingStream` is the last line behind them: the CLI
writes its stdout and stderr through it, so a message built from a URL we did
not think of (a driver's error text, a library's warning) is redacted too.
"""

from __future__ import annotations

import re
from typing import Any, TextIO

HIDDEN = "***"

# scheme://user:password@ — the password runs to the last @ before the path, so
# a raw @ inside it (which some users do not percent-encode) is hidden whole.
_USERINFO = re.compile(r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^:@/\s]*:)(?P<secret>[^/\s]*)@", re.I)
# ...?password=... in a query string (libpq and SQLAlchemy accept both forms).
_QUERY = re.compile(r"(?P<head>[?&](?:password|passwd|pwd)=)(?P<secret>[^&\s#]+)", re.I)


def redact(text: str) -> str:
    """`text` with every URL password replaced by ***."""
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['head']}{HIDDEN}@", text)
    return _QUERY.sub(lambda m: f"{m['head']}{HIDDEN}", text)


def redact_url(url: str | None) -> str | None:
    return None if url is None else redact(url)


class RedactingStream:
    """A text stream that redacts what is written to it; everything else (isatty,
    fileno, encoding) is the wrapped stream's, so progress bars behave as before."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
