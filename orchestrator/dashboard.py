"""`auxsearch dashboard DIR|URL`: optuna-dashboard on 127.0.0.1 for a search's study storage."""

from __future__ import annotations

import socket

from .errors import UserInputError
from .study import location_to_storage_url, open_storage


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise UserInputError(f"port {port} on {host} is in use; pass another --port") from None


def serve(location: str, port: int = 8080, host: str = "127.0.0.1") -> None:
    """Serve until interrupted; prints the address first."""
    url = location_to_storage_url(location)
    storage = open_storage(url)
    if not 0 < port < 65536:
        raise UserInputError(f"--port {port} is not a TCP port; use 1-65535")
    check_port_free(host, port)
    from optuna_dashboard import run_server

    print(f"optuna-dashboard for {url} at http://{host}:{port}/  (Ctrl+C to stop)", flush=True)
    run_server(storage, host=host, port=port)
