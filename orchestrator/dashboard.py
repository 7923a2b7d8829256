"""`auxsearch dashboard DIR|URL`: optuna-dashboard on 127.0.0.1 for a search's study storage.

The dashboard has no authentication and can edit the study (notes, trial
states), so it stays on loopback unless the user names another `--host`, and
then it says so. To watch a study on a remote machine, forward the port over
SSH (`ssh -L 8080:127.0.0.1:8080 host`) instead.

optuna-dashboard's WSGI app is served with the standard library's wsgiref (what
its own `run_server` uses) on a thread, so that Ctrl+C and SIGTERM stop it
every time (`_serve_until_stopped`).
"""

from __future__ import annotations

import errno
import ipaddress
import signal
import socket
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .errors import UserInputError
from .extras import require
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
        # as the server binds (wsgiref allows reuse): a port left in TIME_WAIT by a
        # dashboard just stopped is free, one another server listens on is not
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
    dashboard = require("optuna_dashboard", "dashboard", "auxsearch dashboard")
    url = location_to_storage_url(location)
    storage = open_storage(url, create=False)
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
    try:
        server = make_server(host, port, dashboard.wsgi(storage), _server_class(host), _Handler)
    except OSError as exc:  # e.g. taken since the check above
        raise UserInputError(
            f"cannot listen on {host} port {port} ({exc.strerror or exc}); pass another --port"
        ) from None
    print(f"optuna-dashboard for {url} at http://{host}:{port}/  (Ctrl+C to stop)", flush=True)
    _serve_until_stopped(server)


def _serve_until_stopped(server: WSGIServer) -> None:
    """Serve requests on a thread until SIGINT or SIGTERM, then stop the loop and
    close the socket. The signal only sets an event: raised as KeyboardInterrupt
    into whatever the server was running (optuna-dashboard's own `run_server`),
    it could land in a `__del__` or cleanup that swallows it, and the server then
    ignored the stop (seen once in CI: still serving 30 s after SIGTERM)."""
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda _signum, _frame: stop.set())
    loop = threading.Thread(target=server.serve_forever, name="dashboard", daemon=True)
    loop.start()
    try:
        while not stop.wait(0.5) and loop.is_alive():
            pass
    finally:
        server.shutdown()
        server.server_close()
        for sig, handler in previous.items():
            if handler is not None:  # None: not installed from Python, nothing to restore
                signal.signal(sig, handler)


class _Handler(WSGIRequestHandler):
    def address_string(self) -> str:
        return str(self.client_address[0])  # the client's IP: no reverse DNS lookup


def _server_class(host: str) -> type[WSGIServer]:
    if ":" not in host:
        return WSGIServer

    class IPv6Server(WSGIServer):
        address_family = socket.AF_INET6

    return IPv6Server
