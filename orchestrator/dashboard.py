"""`auxsearch dashboard DIR|URL`: optuna-dashboard on 127.0.0.1 for a search's study storage.

The dashboard has no authentication and can edit the study (notes, trial
states), so it stays on loopback unless the user names another `--host`, and
then it says so. To watch a study on a remote machine, forward the port over
SSH (`ssh -L 8080:127.0.0.1:8080 host`) instead.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys

from .errors import UserInputError
from .study import location_to_storage_url, open_storage


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserInputError(
                    f"port {port} on {host} is in use; pass another --port"
                ) from None
            raise UserInputError(
                f"--host {host} is not an address of this machine ({exc.strerror or exc});"
                " use 127.0.0.1"
            ) from None


def serve(location: str, port: int = 8080, host: str = "127.0.0.1") -> None:
    """Serve until interrupted; prints the address first."""
    url = location_to_storage_url(location)
    storage = open_storage(url)
    if not 0 < port < 65536:
        raise UserInputError(f"--port {port} is not a TCP port; use 1-65535")
    check_port_free(host, port)
    if not _loopback(host):
        print(
            f"warning: optuna-dashboard on {host} has no authentication; anyone who reaches"
            f" port {port} can read and edit the study (an SSH tunnel to 127.0.0.1 avoids this)",
            file=sys.stderr,
            flush=True,
        )
    from optuna_dashboard import run_server

    print(f"optuna-dashboard for {url} at http://{host}:{port}/  (Ctrl+C to stop)", flush=True)
    run_server(storage, host=host, port=port)
